//! RocksDB (Debian's librocksdb 7.8.3 through the `rocksdb` crate 0.20.1): a
//! pessimistic `TransactionDB`; every write transaction commits with
//! `WriteOptions::sync = true` (the WAL is fdatasync'd; concurrent committers share a
//! sync through RocksDB's write groups). Reads and scans go to the DB directly.

use super::{retry, Attempt, Committed, Engine, EngineError, EngineResult, Key, Modify, Settled};
use rocksdb::{
    Direction, ErrorKind, IteratorMode, Options, ReadOptions, Transaction, TransactionDB,
    TransactionDBOptions, TransactionOptions, WriteOptions,
};
use std::path::Path;

const NAME: &str = "rocksdb";

pub struct Rocks {
    db: TransactionDB,
    write_opts: WriteOptions,
}

fn err(op: &'static str) -> impl Fn(rocksdb::Error) -> EngineError {
    move |e| EngineError::new(NAME, op, e)
}

/// A lock timeout, deadlock or write conflict: the transaction is to be retried.
fn is_conflict(e: &rocksdb::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Busy | ErrorKind::TimedOut | ErrorKind::TryAgain
    )
}

impl Rocks {
    pub fn open(dir: &Path) -> EngineResult<Rocks> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = TransactionDB::open(&opts, &TransactionDBOptions::default(), dir)
            .map_err(err("open"))?;
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(true);
        Ok(Rocks { db, write_opts })
    }

    fn txn(
        &self,
        op: &'static str,
        f: impl Fn(&Transaction<'_, TransactionDB>) -> Result<(), rocksdb::Error>,
    ) -> EngineResult<Attempt> {
        let t = self
            .db
            .transaction_opt(&self.write_opts, &TransactionOptions::default());
        match f(&t).and_then(|()| t.commit()) {
            Ok(()) => Ok(Attempt::Committed),
            Err(e) if is_conflict(&e) => Ok(Attempt::Conflict),
            Err(e) => Err(EngineError::new(NAME, op, e)),
        }
    }
}

impl Engine for Rocks {
    fn put_batch(&self, pairs: &[(Key, Vec<u8>)]) -> EngineResult<Committed> {
        retry(NAME, "fill commit", || {
            self.txn("fill commit", |t| {
                for (k, v) in pairs {
                    t.put(k, v)?;
                }
                Ok(())
            })
        })
    }

    fn read_modify_write(&self, key: &[u8], modify: Modify<'_>) -> EngineResult<Committed> {
        retry(NAME, "read-modify-write", || {
            self.txn("read-modify-write", |t| {
                let old = t.get_for_update(key, true)?;
                t.put(key, modify(old.as_deref()))
            })
        })
    }

    fn write(&self, key: &[u8], value: &[u8]) -> EngineResult<Committed> {
        retry(NAME, "write", || self.txn("write", |t| t.put(key, value)))
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        let v = self.db.get_pinned(key).map_err(err("get"))?;
        Ok(v.map(|v| v.len()))
    }

    fn scan(&self, start: &[u8], end: &[u8]) -> EngineResult<usize> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        let mut rows = 0;
        for kv in self
            .db
            .iterator_opt(IteratorMode::From(start, Direction::Forward), ro)
        {
            let (k, v) = kv.map_err(err("scan"))?;
            rows += usize::from(!k.is_empty() && !v.is_empty());
        }
        Ok(rows)
    }

    fn settle(&self) -> EngineResult<Settled> {
        // See `mode`: TransactionDB has no property API in this crate version.
        Ok(Settled::NotApplicable)
    }

    fn close(self: Box<Self>) -> EngineResult<()> {
        // Every commit synced its WAL already; dropping closes the database.
        drop(self.db);
        Ok(())
    }
}
