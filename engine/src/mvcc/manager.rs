//! The synchronous transaction manager: a [`TxnCore`] plus a synchronous
//! [`VersionedStore`], and the [`Txn`] handle. Every operation goes through the core's
//! split protocol exactly as the asynchronous database does — the store is read
//! *between* `read_start` and `record_read`, outside the core's lock, and a commit is
//! `prepare_commit` (applying to the store invisibly) then `publish` — so the
//! exhaustive and property tests exercise the same code the `Db` runs. See the module
//! doc of [`super`] for the protocol and its invariants.

use std::ops::RangeBounds;
use std::sync::{Mutex, MutexGuard};

use super::core::{Prepared, ReadStart, TxnCore};
use super::readonly::ReadOnlyStart;
#[cfg(any(test, feature = "canary"))]
use super::ssi::SsiCanary;
use super::store::VersionedStore;
use super::types::{CommitOutcome, Error, TxnId};
use crate::kv::{Key, KeyRange, Timestamp, Value};

use super::core::ManagerState;

/// Serializable snapshot isolation over a synchronous [`VersionedStore`]. Every method
/// is synchronous; the manager may be shared (`&TxnManager` or `Arc<TxnManager>`).
pub struct TxnManager<S: VersionedStore> {
    core: TxnCore,
    /// Taken after the core's lock when applying, alone when reading.
    store: Mutex<S>,
}

impl<S: VersionedStore> TxnManager<S> {
    /// A manager over `store`, resuming its clock at the store's last commit ts.
    pub fn new(store: S) -> TxnManager<S> {
        TxnManager {
            core: TxnCore::new(store.last_commit_ts()),
            store: Mutex::new(store),
        }
    }

    /// A manager with deliberate SSI bugs switched on (tests and the canary sweep only).
    #[cfg(any(test, feature = "canary"))]
    pub fn with_canaries(store: S, canaries: impl IntoIterator<Item = SsiCanary>) -> TxnManager<S> {
        TxnManager {
            core: TxnCore::with_canaries(store.last_commit_ts(), canaries),
            store: Mutex::new(store),
        }
    }

    /// The core (for tests that drive the split protocol step by step).
    pub fn core(&self) -> &TxnCore {
        &self.core
    }

    fn store(&self) -> MutexGuard<'_, S> {
        sim_runtime::sync::lock(&self.store)
    }

    /// Begins a transaction (TLA+ `Begin`): its snapshot is the latest commit ts.
    pub fn begin(&self) -> Txn<'_, S> {
        let (id, snapshot) = self.begin_id().unwrap_or((TxnId(0), Timestamp::ZERO));
        // A poisoned manager hands out a dead handle; its every call reports why.
        Txn {
            mgr: self,
            id,
            snapshot,
            finished: false,
        }
    }

    /// [`TxnManager::begin`] for callers that keep transactions by id: returns the id
    /// and the snapshot.
    pub fn begin_id(&self) -> Result<(TxnId, Timestamp), Error> {
        self.core.begin()
    }

    /// Reads `key` (TLA+ `Read`): the transaction's own write if it has one, else the
    /// newest version in its snapshot, read from the store outside the core's lock.
    pub fn get(&self, id: TxnId, key: &[u8]) -> Result<Option<Value>, Error> {
        let at = match self.core.read_start(id, key)? {
            ReadStart::Own(v) => return Ok(v),
            ReadStart::Snapshot(at) => at,
        };
        let found = self.read_store(|s| s.get(key, at))?;
        self.core
            .record_read(id, key, found.as_ref().map(|v| v.ts))?;
        Ok(found.and_then(|v| v.value))
    }

    /// Scans `range` (TLA+ `ScanRange`): the snapshot's live rows merged with the
    /// transaction's own writes; the whole range is recorded (phantoms).
    pub fn scan(&self, id: TxnId, range: KeyRange) -> Result<Vec<(Key, Value)>, Error> {
        let Some(at) = self.core.scan_start(id, &range)? else {
            return Ok(Vec::new());
        };
        let rows = self.read_store(|s| s.scan(&range, at))?;
        self.core.record_scan(id, range, rows)
    }

    /// Begins a read-only transaction ([`TxnCore::begin_read_only`]): untracked and
    /// pinned when the watermark is a safe snapshot (read it with
    /// [`TxnManager::get_untracked`] / [`TxnManager::scan_untracked`], end it with
    /// [`TxnManager::unpin`]), else tracked (use the `id` as any transaction's).
    pub fn begin_read_only(&self) -> Result<ReadOnlyStart, Error> {
        self.core.begin_read_only()
    }

    /// Reads `key` at `at` from the store alone, registering nothing: for a safe
    /// read-only transaction's pinned snapshot.
    pub fn get_untracked(&self, key: &[u8], at: Timestamp) -> Result<Option<Value>, Error> {
        Ok(self.read_store(|s| s.get(key, at))?.and_then(|v| v.value))
    }

    /// Scans `range` at `at` from the store alone, registering nothing (see
    /// [`TxnManager::get_untracked`]).
    pub fn scan_untracked(
        &self,
        range: &KeyRange,
        at: Timestamp,
    ) -> Result<Vec<(Key, Value)>, Error> {
        self.read_store(|s| s.scan(range, at))
    }

    /// Releases the pin of a safe read-only transaction.
    pub fn unpin(&self, pin: TxnId) -> Result<(), Error> {
        self.core.unpin(pin)
    }

    /// A point read of `key` at the watermark that registers nothing (the path of
    /// `Db::get`; see [`super::readonly`]). The read point is taken under the store's
    /// lock, so no garbage collection can run between it and the read, and any that ran
    /// before used a horizon at or below it.
    pub fn get_latest(&self, key: &[u8]) -> Result<Option<Value>, Error> {
        let store = self.store();
        let at = self.core.read_point()?;
        Ok(store.get(key, at)?.and_then(|v| v.value))
    }

    fn read_store<R>(
        &self,
        f: impl FnOnce(&S) -> Result<R, super::types::StoreError>,
    ) -> Result<R, Error> {
        Ok(f(&self.store())?)
    }

    /// Buffers a put (TLA+ `Write`); first-updater-wins dooms it early.
    pub fn put(&self, id: TxnId, key: Key, value: Value) -> Result<(), Error> {
        self.core.put(id, key, value)
    }

    /// Buffers a delete (TLA+ `Write` of a tombstone); as [`TxnManager::put`].
    pub fn delete(&self, id: TxnId, key: Key) -> Result<(), Error> {
        self.core.delete(id, key)
    }

    /// Commits (TLA+ `Commit`, or `Abort` when validation fails): prepare (validate,
    /// apply to the store at the new ts) then publish — the store is durable at once.
    /// A conflict is an outcome, not an error.
    pub fn commit(&self, id: TxnId) -> Result<CommitOutcome, Error> {
        let prepared = self
            .core
            .prepare_commit(id, |ts, writes| self.store().apply(ts, writes))?;
        if let Prepared::Committed { ts, .. } = &prepared {
            self.core.publish(*ts);
        }
        self.verify_store()?;
        Ok(match prepared {
            Prepared::Committed { ts, .. } => CommitOutcome::Committed { ts },
            Prepared::Aborted(c) => CommitOutcome::Aborted(c),
        })
    }

    /// Rolls back (TLA+ `Abort`). Also acknowledges an engine abort.
    pub fn rollback(&self, id: TxnId) -> Result<(), Error> {
        self.core.rollback(id)
    }

    /// Garbage-collects store versions below the oldest active snapshot (or the latest
    /// commit if none is active); returns that horizon.
    pub fn gc(&self) -> Result<Timestamp, Error> {
        let horizon = self.core.gc_horizon()?;
        self.store().gc(horizon)?;
        self.core.note_gc(horizon)?;
        Ok(horizon)
    }

    /// The newest visible commit ts.
    pub fn latest_commit_ts(&self) -> Result<Timestamp, Error> {
        self.core.latest_commit_ts()
    }

    /// Runs `f` on the store (inspection: dumps, final-state checks).
    pub fn with_store<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, Error> {
        self.core.latest_commit_ts()?;
        Ok(f(&self.store()))
    }

    /// The SSI state, for tests and tools.
    pub fn state(&self) -> Result<ManagerState, Error> {
        self.core.state()
    }

    /// Checks every invariant of the core and that the store is not ahead of it.
    pub fn verify_invariants(&self) -> Result<(), String> {
        self.core.verify_invariants()?;
        self.verify_store().map_err(|e| e.to_string())
    }

    fn verify_store(&self) -> Result<(), Error> {
        let allocated = self.core.allocated_ts()?;
        let store = self.store().last_commit_ts();
        if store > allocated {
            return Err(Error::Poisoned(format!(
                "store at {store} ahead of allocated {allocated}"
            )));
        }
        Ok(())
    }
}

/// A transaction handle. Dropping it without committing rolls it back.
pub struct Txn<'m, S: VersionedStore> {
    mgr: &'m TxnManager<S>,
    id: TxnId,
    snapshot: Timestamp,
    finished: bool,
}

impl<S: VersionedStore> Txn<'_, S> {
    /// The transaction's id.
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// The commit ts of the last transaction this one sees.
    pub fn snapshot(&self) -> Timestamp {
        self.snapshot
    }

    /// See [`TxnManager::get`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, Error> {
        self.mgr.get(self.id, key.as_ref())
    }

    /// See [`TxnManager::scan`]; `range` is any `RangeBounds<Vec<u8>>` (`a..b`, `..`).
    pub fn scan(&self, range: impl RangeBounds<Key>) -> Result<Vec<(Key, Value)>, Error> {
        self.mgr.scan(self.id, KeyRange::new(range)?)
    }

    /// See [`TxnManager::put`].
    pub fn put(&mut self, key: impl Into<Key>, value: impl Into<Value>) -> Result<(), Error> {
        self.mgr.put(self.id, key.into(), value.into())
    }

    /// See [`TxnManager::delete`].
    pub fn delete(&mut self, key: impl Into<Key>) -> Result<(), Error> {
        self.mgr.delete(self.id, key.into())
    }

    /// See [`TxnManager::commit`].
    pub fn commit(&mut self) -> Result<CommitOutcome, Error> {
        let outcome = self.mgr.commit(self.id);
        self.finished = true;
        outcome
    }

    /// See [`TxnManager::rollback`].
    pub fn rollback(&mut self) -> Result<(), Error> {
        let result = self.mgr.rollback(self.id);
        self.finished = true;
        result
    }
}

impl<S: VersionedStore> Drop for Txn<'_, S> {
    fn drop(&mut self) {
        if !self.finished {
            // Nothing to report from a destructor: a finished or unknown id is fine here.
            let _ = self.mgr.rollback(self.id);
        }
    }
}
