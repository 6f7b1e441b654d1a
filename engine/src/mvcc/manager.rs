//! The transaction manager: one lock around the store and the SSI graph, the
//! transaction lifecycle, and the [`Txn`] handle. See the module doc of [`super`] for the
//! protocol and its invariants.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::{Mutex, MutexGuard};

use super::ssi::{Ssi, SsiCanary, TxnRecord};
use super::store::VersionedStore;
use super::types::{CommitOutcome, Conflict, Error, Key, KeyRange, Timestamp, TxnId, Value};

/// Serializable snapshot isolation over a [`VersionedStore`]. Synchronous and I/O-free
/// apart from the store's own calls; every method takes one internal lock, so a
/// manager may be shared (`&TxnManager` or `Arc<TxnManager>`) between tasks.
pub struct TxnManager<S: VersionedStore> {
    inner: Mutex<Inner<S>>,
}

struct Inner<S> {
    store: S,
    ssi: Ssi,
    /// The newest commit ts handed out; new snapshots read at it.
    latest: Timestamp,
    next_id: u64,
    /// The highest horizon the store has been garbage-collected at.
    gc_horizon: Timestamp,
    /// Set when applying a validated commit failed: the store may hold part of it.
    poisoned: Option<String>,
}

/// A read-only view of one transaction's SSI record, for tests, tools and the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnInfo {
    /// The transaction.
    pub id: TxnId,
    /// Its snapshot.
    pub snapshot: Timestamp,
    /// Its commit ts, if committed (and still retained for conflict detection).
    pub commit_ts: Option<Timestamp>,
    /// Keys read from the snapshot.
    pub reads: Vec<Key>,
    /// Ranges scanned.
    pub ranges: Vec<KeyRange>,
    /// Keys written (buffered, or applied if committed).
    pub writes: Vec<Key>,
    /// Readers `r` with `r →rw self`.
    pub in_edges: Vec<TxnId>,
    /// Writers `w` with `self →rw w` (including collected ones).
    pub out_edges: Vec<TxnId>,
}

/// The manager's state as a whole, for tests and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerState {
    /// The newest commit ts.
    pub latest: Timestamp,
    /// The store's garbage-collection horizon.
    pub gc_horizon: Timestamp,
    /// Active transactions, then retained committed ones, by id.
    pub txns: Vec<TxnInfo>,
    /// Transactions aborted by the engine whose handle has not yet acknowledged it.
    pub doomed: Vec<(TxnId, Conflict)>,
}

impl<S: VersionedStore> TxnManager<S> {
    /// A manager over `store`, resuming its clock at the store's last commit ts.
    pub fn new(store: S) -> TxnManager<S> {
        let latest = store.last_commit_ts();
        TxnManager {
            inner: Mutex::new(Inner {
                store,
                ssi: Ssi::default(),
                latest,
                next_id: 1,
                gc_horizon: Timestamp::ZERO,
                poisoned: None,
            }),
        }
    }

    /// A manager with deliberate SSI bugs switched on (tests and the canary sweep only).
    #[cfg(any(test, feature = "canary"))]
    pub fn with_canaries(store: S, canaries: impl IntoIterator<Item = SsiCanary>) -> TxnManager<S> {
        let mgr = TxnManager::new(store);
        mgr.lock()
            .expect("fresh lock")
            .ssi
            .canaries
            .extend(canaries);
        mgr
    }

    /// Begins a transaction (TLA+ `Begin`): its snapshot is the latest commit ts.
    pub fn begin(&self) -> Txn<'_, S> {
        match self.begin_id() {
            Ok((id, snapshot)) => Txn {
                mgr: self,
                id,
                snapshot,
                finished: false,
            },
            // A poisoned manager hands out a dead handle; its every call reports why.
            Err(_) => Txn {
                mgr: self,
                id: TxnId(0),
                snapshot: Timestamp::ZERO,
                finished: false,
            },
        }
    }

    /// [`TxnManager::begin`] for callers that keep transactions by id (the async `Db`,
    /// the shell): returns the id and the snapshot.
    pub fn begin_id(&self) -> Result<(TxnId, Timestamp), Error> {
        self.mutate("begin", |m| {
            let id = TxnId(m.next_id);
            m.next_id += 1;
            m.ssi.active.insert(id, TxnRecord::new(id, m.latest));
            Ok((id, m.latest))
        })
    }

    /// Reads `key` (TLA+ `Read`): the transaction's own write if it has one, else the
    /// newest version in its snapshot. Records the read, and the edges to concurrent
    /// writers that already committed a version it cannot see.
    pub fn get(&self, id: TxnId, key: &[u8]) -> Result<Option<Value>, Error> {
        self.mutate("get", |m| {
            let rec = m.active_mut(id)?;
            if let Some(own) = rec.writes.get(key) {
                return Ok(own.clone());
            }
            rec.reads.insert(key.to_vec());
            let snapshot = rec.snapshot;
            let value = m.store.get(key, snapshot)?.and_then(|v| v.value);
            m.after_read(id, |k| k.as_slice() == key)?;
            Ok(value)
        })
    }

    /// Scans `range` (TLA+ `ScanRange`): the snapshot's live rows merged with the
    /// transaction's own writes. Records the whole range, so a concurrent writer that
    /// inserts, updates or deletes *any* key in it gets an edge (phantoms).
    pub fn scan(&self, id: TxnId, range: KeyRange) -> Result<Vec<(Key, Value)>, Error> {
        self.mutate("scan", |m| {
            let track = !m.ssi.canary(SsiCanary::SkipRangeTracking);
            let rec = m.active_mut(id)?;
            if range.is_empty() {
                return Ok(Vec::new());
            }
            if track {
                rec.ranges.push(range.clone());
            }
            let snapshot = rec.snapshot;
            let mut rows: BTreeMap<Key, Value> =
                m.store.scan(&range, snapshot)?.into_iter().collect();
            let rec = m.active_mut(id)?;
            for (k, v) in rec.writes.iter().filter(|(k, _)| range.contains(k)) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
            if track {
                m.after_read(id, |k| range.contains(k))?;
            }
            Ok(rows.into_iter().collect())
        })
    }

    /// Buffers a put (TLA+ `Write`). First-updater-wins: if a concurrent transaction has
    /// already committed `key`, this transaction is doomed now rather than at commit.
    pub fn put(&self, id: TxnId, key: Key, value: Value) -> Result<(), Error> {
        self.mutate("put", |m| m.write(id, key, Some(value)))
    }

    /// Buffers a delete (TLA+ `Write` of a tombstone); as [`TxnManager::put`].
    pub fn delete(&self, id: TxnId, key: Key) -> Result<(), Error> {
        self.mutate("delete", |m| m.write(id, key, None))
    }

    /// Commits (TLA+ `Commit`, or `Abort` when validation fails). A conflict is an
    /// outcome, not an error; errors mean misuse, a poisoned manager or a failed store.
    pub fn commit(&self, id: TxnId) -> Result<CommitOutcome, Error> {
        self.mutate("commit", |m| m.commit(id))
    }

    /// Rolls back (TLA+ `Abort`). Also acknowledges an engine abort.
    pub fn rollback(&self, id: TxnId) -> Result<(), Error> {
        self.mutate("rollback", |m| {
            if m.ssi.doomed.remove(&id).is_some() {
                return Ok(());
            }
            m.active_mut(id)?;
            m.ssi.remove_active(id);
            Ok(())
        })
    }

    /// Garbage-collects store versions below the oldest active snapshot (or the latest
    /// commit if none is active); returns that horizon.
    pub fn gc(&self) -> Result<Timestamp, Error> {
        self.mutate("gc", |m| {
            let horizon = m.ssi.oldest_active_snapshot().unwrap_or(m.latest);
            m.store.gc(horizon)?;
            m.gc_horizon = m.gc_horizon.max(horizon);
            Ok(horizon)
        })
    }

    /// The newest commit ts.
    pub fn latest_commit_ts(&self) -> Result<Timestamp, Error> {
        Ok(self.lock()?.latest)
    }

    /// Runs `f` on the store (inspection: dumps, final-state checks).
    pub fn with_store<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, Error> {
        Ok(f(&self.lock()?.store))
    }

    /// The SSI state, for tests and tools.
    pub fn state(&self) -> Result<ManagerState, Error> {
        let m = self.lock()?;
        let info = |r: &TxnRecord| TxnInfo {
            id: r.id,
            snapshot: r.snapshot,
            commit_ts: r.commit_ts,
            reads: r.reads.iter().cloned().collect(),
            ranges: r.ranges.clone(),
            writes: r.writes.keys().cloned().collect(),
            in_edges: r.in_edges.iter().copied().collect(),
            out_edges: r
                .out_edges
                .keys()
                .copied()
                .chain(r.out_gc_min.map(|(_, t)| t))
                .collect(),
        };
        Ok(ManagerState {
            latest: m.latest,
            gc_horizon: m.gc_horizon,
            txns: m
                .ssi
                .active
                .values()
                .chain(m.ssi.committed.values())
                .map(info)
                .collect(),
            doomed: m.ssi.doomed.iter().map(|(t, c)| (*t, c.clone())).collect(),
        })
    }

    /// Checks every invariant of the manager (see the module doc); returns the first
    /// violation. Debug builds call this after every operation and panic on a violation.
    pub fn verify_invariants(&self) -> Result<(), String> {
        self.lock().map_err(|e| e.to_string())?.verify()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner<S>>, Error> {
        let m = self
            .inner
            .lock()
            .map_err(|_| Error::Poisoned("a panic while holding the lock".into()))?;
        match &m.poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(m),
        }
    }

    /// Runs one operation under the lock, then drops committed records no active
    /// transaction needs and, in debug builds, checks the invariants.
    fn mutate<R>(
        &self,
        op: &str,
        f: impl FnOnce(&mut Inner<S>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut m = self.lock()?;
        let result = f(&mut m);
        m.ssi.gc();
        if cfg!(debug_assertions) && m.poisoned.is_none() {
            if let Err(violation) = m.verify() {
                panic!("mvcc invariant violated after {op}: {violation}");
            }
        }
        result
    }
}

impl<S: VersionedStore> Inner<S> {
    /// The active record of `id`, or why there is none.
    fn active_mut(&mut self, id: TxnId) -> Result<&mut TxnRecord, Error> {
        if let Some(conflict) = self.ssi.doomed.get(&id) {
            return Err(Error::Aborted(conflict.clone()));
        }
        self.ssi.active.get_mut(&id).ok_or(Error::NotActive(id))
    }

    /// Aborts active `id` on the engine's initiative; its handle learns on its next call.
    fn doom(&mut self, id: TxnId, conflict: Conflict) {
        self.ssi.remove_active(id);
        self.ssi.doomed.insert(id, conflict);
    }

    fn after_read(&mut self, id: TxnId, touched: impl Fn(&Key) -> bool) -> Result<(), Error> {
        self.ssi.on_read(id, touched).map_err(|conflict| {
            self.doom(id, conflict.clone());
            Error::Aborted(conflict)
        })
    }

    /// Whether a version of `key` committed after `snapshot` exists (first committer
    /// wins), and its ts.
    fn newer_version(&self, key: &[u8], snapshot: Timestamp) -> Result<Option<Timestamp>, Error> {
        if self.ssi.canary(SsiCanary::SkipFirstCommitterWins) {
            return Ok(None);
        }
        Ok(self
            .store
            .latest_commit_ts(key)?
            .filter(|ts| *ts > snapshot))
    }

    fn write(&mut self, id: TxnId, key: Key, value: Option<Value>) -> Result<(), Error> {
        let snapshot = self.active_mut(id)?.snapshot;
        if let Some(committed) = self.newer_version(&key, snapshot)? {
            let conflict = Conflict::WriteWrite { key, committed };
            self.doom(id, conflict.clone());
            return Err(Error::Aborted(conflict));
        }
        self.active_mut(id)?.writes.insert(key, value);
        Ok(())
    }

    /// Commit, in two steps under the one lock: validate and pick the ts, then apply and
    /// publish. Nothing is changed until validation has passed.
    fn commit(&mut self, id: TxnId) -> Result<CommitOutcome, Error> {
        if let Some(conflict) = self.ssi.doomed.remove(&id) {
            return Ok(CommitOutcome::Aborted(conflict));
        }
        let rec = self.active_mut(id)?;
        let snapshot = rec.snapshot;
        let keys: Vec<Key> = rec.writes.keys().cloned().collect();
        let ts = self.latest.next();
        // Step 1: validate. First committer wins (already enforced at each write and by
        // dooming at each commit; re-checked here against the store, which is the
        // authority), then the SSI structure test.
        for key in &keys {
            if let Some(committed) = self.newer_version(key, snapshot)? {
                self.ssi.remove_active(id);
                return Ok(CommitOutcome::Aborted(Conflict::WriteWrite {
                    key: key.clone(),
                    committed,
                }));
            }
        }
        let readers = match self.ssi.validate_commit(id, ts) {
            Ok(readers) => readers,
            Err(conflict) => {
                self.ssi.remove_active(id);
                return Ok(CommitOutcome::Aborted(conflict));
            }
        };
        // Step 2: apply and publish. A failure here leaves the store unknown: fail-stop.
        if !keys.is_empty() {
            let writes = &self.ssi.active[&id].writes;
            if let Err(e) = self.store.apply(ts, writes) {
                self.poisoned = Some(format!("applying commit {ts} of {id} failed: {e}"));
                return Err(Error::Store(e));
            }
        }
        self.latest = ts;
        self.ssi.commit(id, ts, readers);
        // Concurrent transactions that buffered a write to one of these keys can never
        // commit now: doom them so they learn at their next call.
        if !self.ssi.canary(SsiCanary::SkipFirstCommitterWins) {
            let losers: Vec<(TxnId, Key)> = self
                .ssi
                .active
                .values()
                .filter_map(|a| {
                    keys.iter()
                        .find(|k| a.writes.contains_key(*k))
                        .map(|k| (a.id, k.clone()))
                })
                .collect();
            for (loser, key) in losers {
                self.doom(loser, Conflict::WriteWrite { key, committed: ts });
            }
        }
        Ok(CommitOutcome::Committed { ts })
    }

    fn verify(&self) -> Result<(), String> {
        self.ssi.verify(self.latest, self.gc_horizon)?;
        if self.store.last_commit_ts() > self.latest {
            return Err(format!(
                "store at {} ahead of latest {}",
                self.store.last_commit_ts(),
                self.latest
            ));
        }
        for r in self.ssi.active.values() {
            if r.id.0 >= self.next_id {
                return Err(format!("{} was never handed out", r.id));
            }
            // First committer wins was enforced early: no concurrent committed writer
            // (all are retained) shares a key with an active write set. Checked from
            // the retained write sets, so that debug builds do no store I/O here.
            if self.ssi.canary(SsiCanary::SkipFirstCommitterWins) {
                continue;
            }
            for c in self.ssi.committed.values() {
                let after = c.commit_ts.is_some_and(|ts| ts > r.snapshot);
                if after && c.writes.keys().any(|k| r.writes.contains_key(k)) {
                    return Err(format!(
                        "{} still active with a write lost to {}",
                        r.id, c.id
                    ));
                }
            }
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
