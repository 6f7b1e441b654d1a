//! fjall 2: the transactional keyspace with optimistic (conflict-checked) write
//! transactions (`ssi_tx`), each persisted with `PersistMode::SyncData` at commit.

use super::{
    poll_until_quiet, retry, Attempt, Committed, Engine, EngineError, EngineResult, Key, Modify,
    Settled, SETTLE_LIMIT,
};
use fjall::{Config, PartitionCreateOptions, PersistMode, TxKeyspace, TxPartitionHandle};
use std::path::Path;
use std::time::Duration;

const NAME: &str = "fjall";

pub struct Fjall {
    keyspace: TxKeyspace,
    part: TxPartitionHandle,
}

fn err(op: &'static str) -> impl Fn(fjall::Error) -> EngineError {
    move |e| EngineError::new(NAME, op, e)
}

impl Fjall {
    pub fn open(dir: &Path) -> EngineResult<Fjall> {
        let keyspace = Config::new(dir).open_transactional().map_err(err("open"))?;
        let part = keyspace
            .open_partition("bench", PartitionCreateOptions::default())
            .map_err(err("open partition"))?;
        Ok(Fjall { keyspace, part })
    }

    fn write_tx(&self) -> EngineResult<fjall::WriteTransaction> {
        Ok(self
            .keyspace
            .write_tx()
            .map_err(err("begin"))?
            .durability(Some(PersistMode::SyncData)))
    }
}

fn outcome(r: fjall::Result<Result<(), impl std::fmt::Debug>>) -> EngineResult<Attempt> {
    match r.map_err(err("commit"))? {
        Ok(()) => Ok(Attempt::Committed),
        Err(_conflict) => Ok(Attempt::Conflict),
    }
}

impl Engine for Fjall {
    fn put_batch(&self, pairs: &[(Key, Vec<u8>)]) -> EngineResult<Committed> {
        retry(NAME, "fill commit", || {
            let mut tx = self.write_tx()?;
            for (k, v) in pairs {
                tx.insert(&self.part, k.as_slice(), v.as_slice());
            }
            outcome(tx.commit())
        })
    }

    fn read_modify_write(&self, key: &[u8], modify: Modify<'_>) -> EngineResult<Committed> {
        retry(NAME, "read-modify-write", || {
            let mut tx = self.write_tx()?;
            let old = tx.get(&self.part, key).map_err(err("get"))?;
            let new = modify(old.as_deref());
            tx.insert(&self.part, key, new);
            outcome(tx.commit())
        })
    }

    fn write(&self, key: &[u8], value: &[u8]) -> EngineResult<Committed> {
        retry(NAME, "write", || {
            let mut tx = self.write_tx()?;
            tx.insert(&self.part, key, value);
            outcome(tx.commit())
        })
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        let v = self
            .keyspace
            .read_tx()
            .get(&self.part, key)
            .map_err(err("get"))?;
        Ok(v.map(|v| v.len()))
    }

    fn scan(&self, start: &[u8], end: &[u8]) -> EngineResult<usize> {
        let tx = self.keyspace.read_tx();
        let mut rows = 0;
        for kv in tx.range(&self.part, start..end) {
            let (k, v) = kv.map_err(err("scan"))?;
            rows += usize::from(!k.is_empty() && !v.is_empty());
        }
        Ok(rows)
    }

    fn settle(&self) -> EngineResult<Settled> {
        let ks = self.keyspace.inner();
        Ok(poll_until_quiet(
            || ks.active_compactions() == 0 && ks.journal_count() <= 1,
            5,
            Duration::from_millis(20),
            SETTLE_LIMIT,
        ))
    }

    fn close(self: Box<Self>) -> EngineResult<()> {
        self.keyspace
            .persist(PersistMode::SyncAll)
            .map_err(err("close"))
    }
}
