//! # The embedded database: [`Db`] and [`Txn`]
//!
//! Serializable transactions (SSI, [`crate::mvcc::TxnCore`]) over the LSM store
//! ([`crate::lsm::LsmStore`]), all asynchronous, all I/O through `sim-fs`.
//!
//! ```ignore
//! let db = Db::open("/data", Options::default()).await?;
//! let mut t = db.begin();
//! let v = t.get(b"k").await?;
//! t.put(b"k".to_vec(), b"v".to_vec()).await?;
//! match t.commit().await? {
//!     CommitOutcome::Committed { ts } => { /* durable */ }
//!     CommitOutcome::Aborted(conflict) => { /* retry the transaction */ }
//! }
//! ```
//!
//! ## One process per directory
//! [`Db::open`] takes the directory's exclusive lock (`sim_fs::lock_dir`, D54) before
//! recovery reads anything; a second opener — another process, or another `open` in
//! this one — gets [`Error::Locked`] naming the holder. [`Db::close`] releases it, as
//! does dropping the last handle (or, in simulation, the node's kill or power loss).
//!
//! ## Reads
//! A read takes the snapshot from the core (`read_start`), reads the store at it with
//! no lock held (asynchronous table I/O), then reports what it read (`record_read` /
//! `record_scan`), which runs SSI's reader-side check. A writer that commits in the
//! window between is found by that check (it is retained, having committed after the
//! reader's snapshot); one that commits after is found by its own writer-side check.
//!
//! Reads that cannot take part in a cycle skip all of that (module `read`): [`Db::get`] (one
//! key at the watermark, no transaction), [`Db::scan`] (also [`Db::scan_rows`], and
//! [`Db::scan_each`], which lends each row to a closure instead of copying it) and
//! [`Db::begin_read_only`] (read-only, untracked at a safe snapshot, tracked otherwise).
//!
//! ## Commit protocol
//! 1. *Prepare*, under the core's lock: validate (first committer wins, the dangerous-
//!    structure tests); allocate `ts = allocated + 1`; queue the commit's WAL record
//!    (`Wal::submit`: the log's order is ts order) and insert its versions into the
//!    memtable; record the commit in the SSI graph. Nothing is visible yet: snapshots
//!    read at the watermark `visible < ts`.
//! 2. *Durable*: the WAL's group commit writes and fsyncs the batch (led by one of the
//!    waiting committers, see `lsm::wal::group`). In log order, before waking the
//!    committer, the hook publishes `visible = ts`.
//! 3. *Acknowledge*: the committer returns `Committed { ts }`.
//!
//! A failed WAL write or fsync (or any failed write in the store) poisons the core and
//! the store: every later call returns [`Error::Poisoned`] until the database is
//! reopened, which recovers exactly the durable log.
//!
//! ## Invariants
//! - **Visibility watermark.** `visible` only moves in the WAL's leader after an fsync
//!   returned, to the ts of a record in that synced batch; since records are logged in
//!   ts order and the log is fail-stop, every commit with writes and ts ≤ `visible` is
//!   durable. So a snapshot never sees a ts whose WAL write is not durable.
//! - A commit is acknowledged only after its hook has published it, so a transaction
//!   that begins after the acknowledgement sees it: no snapshot misses a durable,
//!   acknowledged commit (real-time order). A durable commit whose committer stopped
//!   waiting is still published by the hook.
//! - Commits with ts in `(visible, allocated]` are in the SSI graph as committed:
//!   first-committer-wins and rw-edges treat them as concurrent with every snapshot
//!   below them, which is what they are. Their records are retained (the retention
//!   horizon is at most `visible`).
//! - Compaction collects versions below the oldest active snapshot (or `visible`),
//!   keeping the newest at or below it, so every read any transaction can still make
//!   returns what it would have.
//!
//! ## Non-goals
//! - Long-running read-only snapshots that pin nothing (all snapshots pin GC; a safe
//!   read-only transaction pins without being tracked).
//! - Streaming scans: a scan gathers its sources' rows (blocks held, memtable rows
//!   copied) before it merges them; [`Db::scan_each`] only avoids copying the result.

mod error;
mod read_only;
#[cfg(test)]
mod tests;

use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use error::{Error, Result};
pub use read_only::{ReadStats, ReadTxn};

use crate::lsm::{Hook, LsmStats, LsmStore, Options, Recovery};
use crate::mvcc::{
    CommitOutcome, Key, KeyRange, ManagerState, Prepared, ReadStart, StoreError, Timestamp,
    TxnCore, TxnId, Value,
};

struct Inner {
    core: Arc<TxnCore>,
    lsm: LsmStore,
    path: PathBuf,
    closed: AtomicBool,
    recovery: Recovery,
    /// Counters of the untracked read path ([`read`]).
    reads: read_only::ReadCounters,
    /// The directory's exclusive lock (D54), released by `close` or when the last
    /// handle goes.
    dir_lock: std::sync::Mutex<Option<sim_fs::DirLock>>,
}

/// An open database. Cheap to clone (all clones share it).
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Counters and shape of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbStats {
    /// The visibility watermark: the snapshot a new transaction gets.
    pub latest_ts: Timestamp,
    /// The storage's counters.
    pub lsm: LsmStats,
    /// The untracked read path's counters.
    pub reads: ReadStats,
}

/// Creates `dir` if needed and takes its exclusive lock (D54) for `holder`.
pub(crate) async fn lock_dir(dir: &Path, holder: &str) -> Result<sim_fs::DirLock> {
    let failed = |error: std::io::Error| Error::LockFailed {
        path: dir.display().to_string(),
        reason: error.to_string(),
    };
    // Not durable yet: opening makes the directory's entry durable after the lock.
    sim_fs::create_dir_all(dir).await.map_err(failed)?;
    sim_fs::lock_dir(dir, holder).await.map_err(|e| match e {
        sim_fs::LockError::Held { holder, .. } => Error::Locked {
            path: dir.display().to_string(),
            holder: if holder.is_empty() {
                "another process".to_string()
            } else {
                holder
            },
        },
        sim_fs::LockError::Io { error, .. } => failed(error),
    })
}

impl Db {
    /// Opens the database in `path`, creating it if needed and recovering it otherwise
    /// (manifest, tables, then the WAL; see `lsm/store/recovery.rs`).
    pub async fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let path = path.as_ref().to_path_buf();
        let dir_lock = lock_dir(&path, "embedded database").await?;
        let (lsm, recovery) = LsmStore::open(&path, opts).await?;
        #[cfg(feature = "canary")]
        let core = Arc::new(
            if crate::canary::enabled(crate::canary::Canary::SsiSkipOutConflictCheck) {
                TxnCore::with_canaries(
                    recovery.last_ts,
                    [crate::mvcc::SsiCanary::SkipReaderSideCheck],
                )
            } else {
                TxnCore::new(recovery.last_ts)
            },
        );
        #[cfg(not(feature = "canary"))]
        let core = Arc::new(TxnCore::new(recovery.last_ts));
        let c = core.clone();
        // A poisoned core reports nothing: keep every version then.
        lsm.set_gc_horizon(Arc::new(move || c.gc_horizon().unwrap_or(Timestamp::ZERO)));
        Ok(Db {
            inner: Arc::new(Inner {
                core,
                lsm,
                path,
                closed: AtomicBool::new(false),
                recovery,
                reads: read_only::ReadCounters::default(),
                dir_lock: std::sync::Mutex::new(Some(dir_lock)),
            }),
        })
    }

    /// Begins a transaction: its snapshot is every acknowledged commit. On a closed or
    /// poisoned database the handle is dead: its every call returns why.
    pub fn begin(&self) -> Txn {
        let begun = if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            // A failure in the background (a flush's write) poisons the store alone.
            self.inner
                .lsm
                .check_open()
                .map_err(Error::from)
                .and_then(|()| self.inner.core.begin().map_err(Error::from))
        };
        match begun {
            Ok((id, snapshot)) => Txn {
                db: self.inner.clone(),
                id,
                snapshot,
                state: State::Open,
            },
            Err(e) => Txn {
                db: self.inner.clone(),
                id: TxnId(0),
                snapshot: Timestamp::ZERO,
                state: State::Dead(e),
            },
        }
    }

    /// Stops background work and the WAL writer after what is queued. Later calls
    /// return [`Error::Closed`]. Unflushed data stays in the WAL; reopening replays it.
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        let closed = self.inner.lsm.close().await;
        // Closed (or failed closing): nothing more is written through this handle.
        let mut lock = sim_runtime::sync::lock(&self.inner.dir_lock);
        lock.take();
        drop(lock);
        closed?;
        Ok(())
    }

    /// The newest acknowledged commit ts (the snapshot of a new transaction).
    pub fn latest_commit_ts(&self) -> Result<Timestamp> {
        Ok(self.inner.core.latest_commit_ts()?)
    }

    /// Counters and shape.
    pub fn stats(&self) -> DbStats {
        DbStats {
            latest_ts: self
                .inner
                .core
                .latest_commit_ts()
                .unwrap_or(Timestamp::ZERO),
            lsm: self.inner.lsm.stats(),
            reads: self.inner.reads.stats(),
        }
    }

    /// What recovery found when this database was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// The transaction graph, for tools and tests.
    pub fn txn_state(&self) -> Result<ManagerState> {
        Ok(self.inner.core.state()?)
    }

    /// Checks the transaction core's and the levels' invariants.
    pub fn verify_invariants(&self) -> std::result::Result<(), String> {
        self.inner.core.verify_invariants()?;
        self.inner.lsm.verify_invariants()
    }

    /// Flushes the memtable to a table and waits (maintenance and tests).
    pub async fn flush(&self) -> Result<()> {
        Ok(self.inner.lsm.flush().await?)
    }

    /// Rewrites every level with garbage collection at the current horizon and waits.
    pub async fn compact(&self) -> Result<()> {
        Ok(self.inner.lsm.compact_all().await?)
    }

    /// Waits until the storage has no background work pending or running: every frozen
    /// memtable flushed, no compaction under way and no level over its size target. The
    /// active memtable is left as it is (nothing is flushed on purpose). Commits and reads
    /// never need this; it is for a caller that wants what comes next measured (or
    /// observed) without the flushes and compactions earlier writes left behind, such as
    /// `seedbank bench` between workloads. Writes that keep arriving meanwhile can keep
    /// it waiting. Fails with [`Error::Poisoned`] if background work fails, and
    /// [`Error::Closed`] on a closed database.
    pub async fn wait_idle(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(self.inner.lsm.wait_idle().await?)
    }
}

enum State {
    Open,
    Finished,
    Dead(Error),
}

/// A transaction. Dropping it without committing rolls it back. Any number may run
/// concurrently, from any tasks.
pub struct Txn {
    db: Arc<Inner>,
    id: TxnId,
    snapshot: Timestamp,
    state: State,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("id", &self.id)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

impl Txn {
    /// The transaction's id.
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// The commit ts of the newest transaction it sees.
    pub fn snapshot(&self) -> Timestamp {
        self.snapshot
    }

    fn live(&self) -> Result<()> {
        match &self.state {
            State::Open => Ok(self.db.lsm.check_open()?),
            State::Finished => Err(Error::Txn(crate::mvcc::Error::NotActive(self.id))),
            State::Dead(e) => Err(e.clone()),
        }
    }

    /// The value of `key` in the snapshot (or as this transaction wrote it).
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.live()?;
        widen_window(&self.db).await;
        let key = key.as_ref();
        let at = match self.db.core.read_start(self.id, key)? {
            ReadStart::Own(v) => return Ok(v),
            ReadStart::Snapshot(at) => at,
        };
        let found = self.db.lsm.get(key, at).await?;
        self.db
            .core
            .record_read(self.id, key, found.as_ref().map(|v| v.ts))?;
        Ok(found.and_then(|v| v.value))
    }

    /// The live rows of `range` (`a..b`, `a..`, `..`) in the snapshot, merged with this
    /// transaction's writes, in key order. The whole range counts as read.
    pub async fn scan(&self, range: impl RangeBounds<Key>) -> Result<Vec<(Key, Value)>> {
        self.live()?;
        widen_window(&self.db).await;
        let range = KeyRange::new(range)?;
        let Some(at) = self.db.core.scan_start(self.id, &range)? else {
            return Ok(Vec::new());
        };
        let rows = self.db.lsm.scan(&range, at).await?;
        Ok(self.db.core.record_scan(self.id, range, rows)?)
    }

    /// Buffers a put (visible to this transaction's own reads).
    pub async fn put(&mut self, key: impl Into<Key>, value: impl Into<Value>) -> Result<()> {
        self.live()?;
        Ok(self.db.core.put(self.id, key.into(), value.into())?)
    }

    /// Buffers a delete.
    pub async fn delete(&mut self, key: impl Into<Key>) -> Result<()> {
        self.live()?;
        Ok(self.db.core.delete(self.id, key.into())?)
    }

    /// Commits (see the module doc for the protocol). `Committed` means durable; a
    /// conflict is `Aborted`, not an error. After this the handle is finished.
    pub async fn commit(&mut self) -> Result<CommitOutcome> {
        self.live()?;
        widen_window(&self.db).await;
        if let Err(e) = self.wait_for_room().await {
            self.finish_with_rollback();
            return Err(e);
        }
        self.state = State::Finished;
        let db = &self.db;
        let prepared = db.core.prepare_commit(self.id, |ts, writes| {
            let core = db.core.clone();
            let poisoner = db.lsm.poisoner();
            let hook: Hook = Box::new(move |result| match result {
                Ok(()) => core.publish(ts),
                Err(e) => {
                    let why = format!("wal write of commit {ts} failed: {e}");
                    core.poison(&why);
                    poisoner.poison(&why);
                }
            });
            db.lsm
                .apply(ts, writes, Some(hook))
                .map_err(StoreError::new)
        });
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                let e = Error::from(e);
                if e.is_fail_stop() {
                    db.lsm.poison(&e.to_string());
                }
                return Err(e);
            }
        };
        match prepared {
            Prepared::Aborted(c) => Ok(CommitOutcome::Aborted(c)),
            Prepared::Committed { ts, token: None } => Ok(CommitOutcome::Committed { ts }),
            Prepared::Committed {
                ts,
                token: Some(wait),
            } => match wait.wait().await {
                Ok(()) => Ok(CommitOutcome::Committed { ts }),
                // The hook poisoned both halves already (or the writer is gone).
                Err(e) => {
                    sim_runtime::cover!("db.commit_wal_failure_poisons");
                    let why = format!("wal write of commit {ts} failed: {e}");
                    db.core.poison(&why);
                    db.lsm.poison(&why);
                    Err(Error::Poisoned(why))
                }
            },
        }
    }

    async fn wait_for_room(&self) -> Result<()> {
        if self.db.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(self.db.lsm.wait_for_room().await?)
    }

    fn finish_with_rollback(&mut self) {
        if matches!(self.state, State::Open) {
            let _ = self.db.core.rollback(self.id);
        }
        self.state = State::Finished;
    }

    /// Rolls back (also acknowledges an abort by the engine).
    pub async fn rollback(&mut self) -> Result<()> {
        self.live()?;
        self.state = State::Finished;
        Ok(self.db.core.rollback(self.id)?)
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.finish_with_rollback();
    }
}

/// Simulated world: sometimes let other tasks run between a transaction's steps (its
/// reads, its commit), so transactions overlap the way a busy server's do: the SSI and
/// first-committer-wins branches need concurrent transactions, which a workload that
/// never yields inside a transaction would rarely produce. Rarely, pause for longer —
/// a client that thinks between its reads — and let the store catch up on a flush and
/// a full compaction meanwhile, so the transaction's snapshot is open across them: they
/// must keep every version it can still read, and it reads on afterwards (D91). Free in
/// the real world.
async fn widen_window(db: &Inner) {
    if cfg!(madsim) && sim_runtime::buggify!(0.2) {
        let us = rand::Rng::gen_range(&mut sim_runtime::rng::stream("db.widen_window"), 0..3_000);
        sim_runtime::time::sleep(std::time::Duration::from_micros(us)).await;
    } else if cfg!(madsim) && sim_runtime::buggify!(0.03) {
        let ms = rand::Rng::gen_range(&mut sim_runtime::rng::stream("db.widen_window"), 5..=60);
        sim_runtime::time::sleep(std::time::Duration::from_millis(ms)).await;
        if sim_runtime::buggify!(0.5) {
            // A failure poisons the store; this transaction meets it at its next step.
            let caught_up = match db.lsm.flush().await {
                Ok(()) => db.lsm.compact_all().await,
                Err(e) => Err(e),
            };
            if let Err(e) = caught_up {
                tracing::debug!(error = %e, "buggify: flush and compaction under an open transaction failed");
            }
        }
    }
}
