//! sled 0.34: `Tree::transaction` for every write, with `flush()` inside the
//! transaction so the commit is flushed before it returns. sled's flush ends in
//! `sync_file_range`, not `fdatasync` (see [`super::mode`]).

use super::{retry, Attempt, Committed, Engine, EngineError, EngineResult, Key, Modify, Settled};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::path::Path;

const NAME: &str = "sled";

pub struct Sled {
    db: sled::Db,
}

fn err<E: std::fmt::Display>(op: &'static str) -> impl Fn(E) -> EngineError {
    move |e| EngineError::new(NAME, op, e)
}

type TxResult = Result<(), ConflictableTransactionError<()>>;

impl Sled {
    pub fn open(dir: &Path) -> EngineResult<Sled> {
        let db = sled::open(dir).map_err(err("open"))?;
        Ok(Sled { db })
    }

    /// One flushed transaction (sled retries its own conflicts inside `transaction`).
    fn txn(
        &self,
        op: &'static str,
        f: impl Fn(&TransactionalTree) -> TxResult,
    ) -> EngineResult<Attempt> {
        let r: Result<(), TransactionError<()>> = self.db.transaction(|t| {
            f(t)?;
            t.flush();
            Ok(())
        });
        match r {
            Ok(()) => Ok(Attempt::Committed),
            Err(TransactionError::Abort(())) => Ok(Attempt::Conflict),
            Err(TransactionError::Storage(e)) => Err(EngineError::new(NAME, op, e)),
        }
    }
}

impl Engine for Sled {
    fn put_batch(&self, pairs: &[(Key, Vec<u8>)]) -> EngineResult<Committed> {
        retry(NAME, "fill commit", || {
            self.txn("fill commit", |t| {
                for (k, v) in pairs {
                    t.insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            })
        })
    }

    fn read_modify_write(&self, key: &[u8], modify: Modify<'_>) -> EngineResult<Committed> {
        retry(NAME, "read-modify-write", || {
            self.txn("read-modify-write", |t| {
                let old = t.get(key)?;
                let new = modify(old.as_deref());
                t.insert(key, new)?;
                Ok(())
            })
        })
    }

    fn write(&self, key: &[u8], value: &[u8]) -> EngineResult<Committed> {
        retry(NAME, "write", || {
            self.txn("write", |t| {
                t.insert(key, value)?;
                Ok(())
            })
        })
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        let v = self.db.get(key).map_err(err("get"))?;
        Ok(v.map(|v| v.len()))
    }

    fn scan(&self, start: &[u8], end: &[u8]) -> EngineResult<usize> {
        let mut rows = 0;
        for kv in self.db.range(start..end) {
            let (k, v) = kv.map_err(err("scan"))?;
            rows += usize::from(!k.is_empty() && !v.is_empty());
        }
        Ok(rows)
    }

    fn settle(&self) -> EngineResult<Settled> {
        Ok(Settled::NotApplicable)
    }

    fn close(self: Box<Self>) -> EngineResult<()> {
        self.db.flush().map_err(err("close"))?;
        Ok(())
    }
}
