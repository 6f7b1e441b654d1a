//! Seedbank's embedded database (`engine::Db`, SSI on, `Options::default()`).
//!
//! Writes are serializable transactions (`Db::begin`, `Txn::get`/`put`, `commit`).
//! Reads use the API an application reads with when it does not write: `Db::get` (a
//! point read at the newest acknowledged state, registered nowhere: one key cannot
//! close a cycle) and `Db::scan_each` (a read-only transaction of one scan, untracked
//! at a safe snapshot, else tracked and retried on the rare Fekete abort; it lends each
//! row to a closure, as the peers' iterators lend theirs, and the closure does what
//! the peers' loops do with a row). See
//! `engine::mvcc::readonly` for why both are serializable.
//!
//! The engine is asynchronous; the workloads' worker threads enter it with
//! `Runtime::block_on`, one call per transaction attempt, on a multi-thread runtime
//! with one worker per core (where flushes and compactions run; the WAL is written and
//! fsynced by the leading committer, on its own thread).

use super::{
    retry, Attempt, Committed, Engine, EngineError, EngineResult, Key, Modify, Settled,
    SETTLE_LIMIT,
};
use engine::{CommitOutcome, Db, Options};
use std::path::Path;

const NAME: &str = "seedbank";

pub struct Seedbank {
    rt: tokio::runtime::Runtime,
    db: Db,
}

fn err(op: &'static str) -> impl Fn(engine::Error) -> EngineError {
    move |e| EngineError::new(NAME, op, e)
}

/// Runs one attempt of a write transaction: a conflict reported by any call of it (the
/// engine may doom a transaction before its commit) is a conflict to retry.
fn attempt(op: &'static str, r: engine::Result<Attempt>) -> EngineResult<Attempt> {
    match r {
        Ok(a) => Ok(a),
        Err(e) if e.conflict().is_some() => Ok(Attempt::Conflict),
        Err(e) => Err(EngineError::new(NAME, op, e)),
    }
}

fn outcome(o: CommitOutcome) -> Attempt {
    match o {
        CommitOutcome::Committed { .. } => Attempt::Committed,
        CommitOutcome::Aborted(_) => Attempt::Conflict,
    }
}

impl Seedbank {
    pub fn open(dir: &Path) -> EngineResult<Seedbank> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .map_err(|e| EngineError::new(NAME, "start runtime", e))?;
        let db = rt
            .block_on(Db::open(dir, Options::default()))
            .map_err(err("open"))?;
        Ok(Seedbank { rt, db })
    }
}

impl Engine for Seedbank {
    fn put_batch(&self, pairs: &[(Key, Vec<u8>)]) -> EngineResult<Committed> {
        retry(NAME, "fill commit", || {
            attempt(
                "fill commit",
                self.rt.block_on(async {
                    let mut t = self.db.begin();
                    for (k, v) in pairs {
                        t.put(k.to_vec(), v.clone()).await?;
                    }
                    Ok(outcome(t.commit().await?))
                }),
            )
        })
    }

    fn read_modify_write(&self, key: &[u8], modify: Modify<'_>) -> EngineResult<Committed> {
        retry(NAME, "read-modify-write", || {
            attempt(
                "read-modify-write",
                self.rt.block_on(async {
                    let mut t = self.db.begin();
                    let old = t.get(key).await?;
                    t.put(key.to_vec(), modify(old.as_deref())).await?;
                    Ok(outcome(t.commit().await?))
                }),
            )
        })
    }

    fn write(&self, key: &[u8], value: &[u8]) -> EngineResult<Committed> {
        retry(NAME, "write", || {
            attempt(
                "write",
                self.rt.block_on(async {
                    let mut t = self.db.begin();
                    t.put(key.to_vec(), value.to_vec()).await?;
                    Ok(outcome(t.commit().await?))
                }),
            )
        })
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        let v = self.rt.block_on(self.db.get(key)).map_err(err("get"))?;
        Ok(v.map(|v| v.len()))
    }

    fn scan(&self, start: &[u8], end: &[u8]) -> EngineResult<usize> {
        let mut rows = 0;
        // Tracked (a writer predates the snapshot), the scan can be the reader caught
        // in Fekete's anomaly: retried like a conflicting write.
        retry(NAME, "scan", || {
            rows = 0;
            let scanned =
                self.rt
                    .block_on(self.db.scan_each(start.to_vec()..end.to_vec(), |k, v| {
                        rows += usize::from(!k.is_empty() && !v.is_empty());
                    }));
            match scanned {
                Ok(()) => Ok(Attempt::Committed),
                Err(e) if e.conflict().is_some() => Ok(Attempt::Conflict),
                Err(e) => Err(EngineError::new(NAME, "scan", e)),
            }
        })?;
        Ok(rows)
    }

    fn settle(&self) -> EngineResult<Settled> {
        self.rt.block_on(async {
            match tokio::time::timeout(SETTLE_LIMIT, self.db.wait_idle()).await {
                Ok(r) => r.map(|()| Settled::Idle).map_err(err("wait_idle")),
                Err(_elapsed) => Ok(Settled::GaveUp),
            }
        })
    }

    fn bytes_written(&self) -> Option<u64> {
        let lsm = self.db.stats().lsm;
        Some(lsm.wal_bytes_written + lsm.flush_bytes_written + lsm.compaction_bytes_written)
    }

    fn close(self: Box<Self>) -> EngineResult<()> {
        self.rt.block_on(self.db.close()).map_err(err("close"))
    }
}
