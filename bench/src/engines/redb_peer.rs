//! redb 2: one write transaction at a time, each committed with
//! `Durability::Immediate`; reads and scans in read transactions.

use super::{retry, Attempt, Committed, Engine, EngineError, EngineResult, Key, Modify, Settled};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::fmt::Display;
use std::path::Path;

const NAME: &str = "redb";
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

pub struct Redb {
    db: Database,
}

fn err<E: Display>(op: &'static str) -> impl Fn(E) -> EngineError {
    move |e| EngineError::new(NAME, op, e)
}

impl Redb {
    pub fn open(dir: &Path) -> EngineResult<Redb> {
        let db = Database::create(dir.join("bench.redb")).map_err(err("open"))?;
        let redb = Redb { db };
        // Create the table, so readers never race its creation.
        redb.write_txn(|_| Ok(()))?;
        Ok(redb)
    }

    /// One durable write transaction running `f` on the table.
    fn write_txn(
        &self,
        f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> EngineResult<()>,
    ) -> EngineResult<Attempt> {
        let mut tx = self.db.begin_write().map_err(err("begin"))?;
        tx.set_durability(Durability::Immediate);
        {
            let mut table = tx.open_table(TABLE).map_err(err("open table"))?;
            f(&mut table)?;
        }
        tx.commit().map_err(err("commit"))?;
        Ok(Attempt::Committed)
    }
}

impl Engine for Redb {
    fn put_batch(&self, pairs: &[(Key, Vec<u8>)]) -> EngineResult<Committed> {
        retry(NAME, "fill commit", || {
            self.write_txn(|t| {
                for (k, v) in pairs {
                    t.insert(k.as_slice(), v.as_slice())
                        .map_err(err("insert"))?;
                }
                Ok(())
            })
        })
    }

    fn read_modify_write(&self, key: &[u8], modify: Modify<'_>) -> EngineResult<Committed> {
        retry(NAME, "read-modify-write", || {
            self.write_txn(|t| {
                let old = t.get(key).map_err(err("get"))?.map(|g| g.value().to_vec());
                let new = modify(old.as_deref());
                t.insert(key, new.as_slice()).map_err(err("insert"))?;
                Ok(())
            })
        })
    }

    fn write(&self, key: &[u8], value: &[u8]) -> EngineResult<Committed> {
        retry(NAME, "write", || {
            self.write_txn(|t| {
                t.insert(key, value).map_err(err("insert"))?;
                Ok(())
            })
        })
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        let tx = self.db.begin_read().map_err(err("begin read"))?;
        let table = tx.open_table(TABLE).map_err(err("open table"))?;
        let v = table.get(key).map_err(err("get"))?;
        Ok(v.map(|g| g.value().len()))
    }

    fn scan(&self, start: &[u8], end: &[u8]) -> EngineResult<usize> {
        let tx = self.db.begin_read().map_err(err("begin read"))?;
        let table = tx.open_table(TABLE).map_err(err("open table"))?;
        let mut rows = 0;
        for kv in table.range(start..end).map_err(err("scan"))? {
            let (k, v) = kv.map_err(err("scan"))?;
            rows += usize::from(!k.value().is_empty() && !v.value().is_empty());
        }
        Ok(rows)
    }

    fn settle(&self) -> EngineResult<Settled> {
        Ok(Settled::NotApplicable)
    }

    fn close(self: Box<Self>) -> EngineResult<()> {
        drop(self.db);
        Ok(())
    }
}
