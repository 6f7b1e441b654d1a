//! [`TxnCore`]: the transaction state machine without a store. Snapshots, buffered
//! writes, first-committer-wins, the SSI graph, and the commit timestamps and
//! visibility watermark, under one lock that is never held across I/O.
//!
//! Reads are split so the store can be read *outside* the lock (asynchronously):
//! [`TxnCore::read_start`] gives the snapshot, the caller reads the store at it, then
//! [`TxnCore::record_read`] (or [`TxnCore::scan_start`] / [`TxnCore::record_scan`])
//! reports what was read. Commits are split so the WAL write happens outside the lock:
//! [`TxnCore::prepare_commit`] validates, picks the ts and runs the caller's `apply`
//! (log + memtable) under the lock; [`TxnCore::publish`] makes it visible once durable.
//! See the module doc of [`super`] for why each split keeps SSI exactly as strong.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::readonly::ReadPoints;
use super::ssi::{Ssi, SsiCanary, TxnRecord};
use super::types::{CommitOutcome, Conflict, Error, StoreError, TxnId};
use crate::kv::{Key, KeyRange, Timestamp, Value, WriteSet};

/// The store-free transaction core.
pub struct TxnCore {
    pub(super) inner: Mutex<Inner>,
    /// Lock-free copies of the watermark and the newest safe snapshot, for the reads
    /// that register nothing (see [`super::readonly`]). Written under `inner`'s lock
    /// after every operation.
    pub(super) points: ReadPoints,
}

pub(super) struct Inner {
    pub(super) ssi: Ssi,
    /// The visibility watermark: new snapshots read at it. Every ts ≤ it with writes is
    /// applied to the store and durable.
    pub(super) visible: Timestamp,
    /// The newest commit ts handed out (≥ `visible`; the gap holds commits whose WAL
    /// write is in flight).
    pub(super) allocated: Timestamp,
    pub(super) next_id: u64,
    /// Snapshots pinned by reads that are not in the SSI graph (safe read-only
    /// transactions, and a point read's fallback): GC keeps what they can see.
    pub(super) pins: BTreeMap<TxnId, Timestamp>,
    /// The highest horizon the store has been garbage-collected at.
    pub(super) gc_horizon: Timestamp,
    /// Set when a prepared commit could not be applied or logged.
    pub(super) poisoned: Option<String>,
}

/// What a point read needs: the transaction's own buffered write, or a store read at
/// the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStart {
    /// The transaction wrote the key itself: this is the value (`None`: deleted). No
    /// store read and nothing to record.
    Own(Option<Value>),
    /// Read the store at this snapshot, then call [`TxnCore::record_read`].
    Snapshot(Timestamp),
}

/// The result of [`TxnCore::prepare_commit`].
#[derive(Debug)]
pub enum Prepared<R> {
    /// Validated and applied at `ts`; not yet visible. `token` is what `apply` returned
    /// (`None` for a read-only transaction, whose `apply` is not called).
    Committed {
        /// The commit ts.
        ts: Timestamp,
        /// The value `apply` returned.
        token: Option<R>,
    },
    /// Validation failed; nothing was applied.
    Aborted(Conflict),
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

/// The core's state as a whole, for tests and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerState {
    /// The visibility watermark (the snapshot a new transaction gets).
    pub latest: Timestamp,
    /// The newest commit ts handed out (above `latest` while commits are in flight).
    pub allocated: Timestamp,
    /// The store's garbage-collection horizon.
    pub gc_horizon: Timestamp,
    /// Active transactions, then retained committed ones, by id.
    pub txns: Vec<TxnInfo>,
    /// Transactions aborted by the engine whose handle has not yet acknowledged it.
    pub doomed: Vec<(TxnId, Conflict)>,
    /// Snapshots pinned by untracked readers (safe read-only transactions), by id.
    pub pins: Vec<(TxnId, Timestamp)>,
}

impl TxnCore {
    /// A core whose clock resumes at `last_ts` (the store's newest commit).
    pub fn new(last_ts: Timestamp) -> TxnCore {
        TxnCore {
            inner: Mutex::new(Inner {
                ssi: Ssi::default(),
                visible: last_ts,
                allocated: last_ts,
                next_id: 1,
                pins: BTreeMap::new(),
                gc_horizon: Timestamp::ZERO,
                poisoned: None,
            }),
            // Nothing is active yet: the recovered state is a safe snapshot.
            points: ReadPoints::new(last_ts),
        }
    }

    /// A core with deliberate SSI bugs switched on (tests and the canary sweep only).
    #[cfg(any(test, feature = "canary"))]
    pub fn with_canaries(
        last_ts: Timestamp,
        canaries: impl IntoIterator<Item = SsiCanary>,
    ) -> TxnCore {
        let core = TxnCore::new(last_ts);
        core.lock()
            .expect("fresh lock")
            .ssi
            .canaries
            .extend(canaries);
        core
    }

    /// Begins a transaction (TLA+ `Begin`): its snapshot is the visibility watermark.
    pub fn begin(&self) -> Result<(TxnId, Timestamp), Error> {
        self.mutate("begin", |m| {
            let id = m.new_id();
            m.ssi.active.insert(id, TxnRecord::new(id, m.visible));
            Ok((id, m.visible))
        })
    }

    /// First half of a read (TLA+ `Read`): the own write, or the snapshot to read at.
    pub fn read_start(&self, id: TxnId, key: &[u8]) -> Result<ReadStart, Error> {
        self.mutate("read_start", |m| {
            let rec = m.active_mut(id)?;
            Ok(match rec.writes.get(key) {
                Some(own) => ReadStart::Own(own.clone()),
                None => ReadStart::Snapshot(rec.snapshot),
            })
        })
    }

    /// Second half of a read: `id` read `key` at its snapshot and found the version
    /// committed at `observed` (`None`: no version). Records the read and the edges to
    /// every concurrent writer of `key` that is committed by now (reader side). A writer
    /// that commits later finds the read on its side. `Err(Aborted)` if the read
    /// completed a dangerous structure or the transaction was doomed meanwhile: the
    /// value read must then be discarded.
    pub fn record_read(
        &self,
        id: TxnId,
        key: &[u8],
        observed: Option<Timestamp>,
    ) -> Result<(), Error> {
        self.mutate("record_read", |m| {
            let rec = m.active_mut(id)?;
            if observed.is_some_and(|ts| ts > rec.snapshot) {
                return Err(Error::Store(StoreError::new(format!(
                    "store returned a version at {observed:?} to a read at {}",
                    rec.snapshot
                ))));
            }
            rec.reads.insert(key.to_vec());
            m.after_read(id, |k| k.as_slice() == key)
        })
    }

    /// First half of a scan (TLA+ `ScanRange`): the snapshot to scan at, or `None` for
    /// an empty range (nothing to read or record).
    pub fn scan_start(&self, id: TxnId, range: &KeyRange) -> Result<Option<Timestamp>, Error> {
        self.mutate("scan_start", |m| {
            let snapshot = m.active_mut(id)?.snapshot;
            Ok((!range.is_empty()).then_some(snapshot))
        })
    }

    /// Second half of a scan: `rows` are the store's live rows of `range` at the
    /// snapshot. Records the whole range (phantoms: a concurrent write of *any* key in
    /// it is an edge), runs the reader-side check, and returns the rows merged with the
    /// transaction's own writes.
    pub fn record_scan(
        &self,
        id: TxnId,
        range: KeyRange,
        rows: Vec<(Key, Value)>,
    ) -> Result<Vec<(Key, Value)>, Error> {
        self.mutate("record_scan", |m| {
            let track = !m.ssi.canary(SsiCanary::SkipRangeTracking);
            let rec = m.active_mut(id)?;
            let mut rows: BTreeMap<Key, Value> = rows.into_iter().collect();
            for (k, v) in rec.writes.iter().filter(|(k, _)| range.contains(k)) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
            if track {
                rec.ranges.push(range.clone());
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

    /// Buffers a delete (TLA+ `Write` of a tombstone); as [`TxnCore::put`].
    pub fn delete(&self, id: TxnId, key: Key) -> Result<(), Error> {
        self.mutate("delete", |m| m.write(id, key, None))
    }

    /// Commits, first half (TLA+ `Commit`, or `Abort` when validation fails). Under the
    /// lock: validate (first committer wins, the dangerous-structure tests), pick
    /// ts = allocated + 1, run `apply(ts, writes)` for a transaction with writes (the
    /// caller logs and applies them to the store, invisibly), then record the commit in
    /// the SSI graph and doom concurrent transactions that buffered one of its keys.
    /// The commit is not visible to new snapshots until [`TxnCore::publish`]. An `apply`
    /// error poisons the core (fail-stop).
    pub fn prepare_commit<R>(
        &self,
        id: TxnId,
        apply: impl FnOnce(Timestamp, &WriteSet) -> Result<R, StoreError>,
    ) -> Result<Prepared<R>, Error> {
        self.mutate("commit", |m| m.prepare(id, apply))
    }

    /// Makes every commit with ts ≤ `ts` visible to new snapshots. The caller promises
    /// they are all durable and applied (a WAL that acknowledges in order gives this).
    /// Does nothing on a poisoned core.
    pub fn publish(&self, ts: Timestamp) {
        let _ = self.mutate("publish", |m| {
            assert!(
                ts <= m.allocated,
                "publish of {ts} beyond allocated {}",
                m.allocated
            );
            m.visible = m.visible.max(ts);
            Ok(())
        });
    }

    /// Fail-stop: every later call returns [`Error::Poisoned`].
    pub fn poison(&self, why: &str) {
        let mut m = sim_runtime::sync::lock(&self.inner);
        if m.poisoned.is_none() {
            m.poisoned = Some(why.to_string());
        }
        self.points.sync(&m);
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

    /// The oldest snapshot any transaction may still read at: the oldest active one or
    /// pinned one, or the watermark. Versions the store keeps for reads at or above it
    /// suffice. It never decreases: every snapshot taken later is the watermark then.
    pub fn gc_horizon(&self) -> Result<Timestamp, Error> {
        Ok(self.lock()?.store_horizon())
    }

    /// Notes that the store was garbage-collected at `horizon` (for the invariants).
    pub fn note_gc(&self, horizon: Timestamp) -> Result<(), Error> {
        self.mutate("gc", |m| {
            m.gc_horizon = m.gc_horizon.max(horizon);
            Ok(())
        })
    }

    /// The visibility watermark.
    pub fn latest_commit_ts(&self) -> Result<Timestamp, Error> {
        Ok(self.lock()?.visible)
    }

    /// The newest ts handed out.
    pub fn allocated_ts(&self) -> Result<Timestamp, Error> {
        Ok(self.lock()?.allocated)
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
            latest: m.visible,
            allocated: m.allocated,
            gc_horizon: m.gc_horizon,
            txns: m
                .ssi
                .active
                .values()
                .chain(m.ssi.committed.values())
                .map(info)
                .collect(),
            doomed: m.ssi.doomed.iter().map(|(t, c)| (*t, c.clone())).collect(),
            pins: m.pins.iter().map(|(t, s)| (*t, *s)).collect(),
        })
    }

    /// Checks every invariant (see the module doc of [`super`]); returns the first
    /// violation. Debug builds check after every operation and panic on a violation.
    pub fn verify_invariants(&self) -> Result<(), String> {
        let m = self.lock().map_err(|e| e.to_string())?;
        m.verify()?;
        self.points.verify(&m)
    }

    pub(super) fn lock(&self) -> Result<MutexGuard<'_, Inner>, Error> {
        let m = self
            .inner
            .lock()
            .map_err(|_| Error::Poisoned("a panic while holding the lock".into()))?;
        match &m.poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(m),
        }
    }

    /// Runs one operation under the lock, then drops committed records no transaction
    /// needs and, in debug builds, checks the invariants.
    pub(super) fn mutate<R>(
        &self,
        op: &str,
        f: impl FnOnce(&mut Inner) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut m = self.lock()?;
        let result = f(&mut m);
        let visible = m.visible;
        m.ssi.gc(visible);
        self.points.sync(&m);
        if cfg!(debug_assertions) && m.poisoned.is_none() {
            if let Err(violation) = m.verify() {
                panic!("mvcc invariant violated after {op}: {violation}");
            }
        }
        result
    }
}

impl Inner {
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

    /// The newest commit ts > `snapshot` of a committed (or prepared) write of `key`.
    /// Every such writer is retained: it committed after the snapshot of a transaction
    /// that is still active, so this is exactly "the store holds a version of `key`
    /// newer than `snapshot`" without reading the store.
    fn newer_version(&self, key: &[u8], snapshot: Timestamp) -> Option<Timestamp> {
        if self.ssi.canary(SsiCanary::SkipFirstCommitterWins) {
            return None;
        }
        self.ssi
            .committed
            .values()
            .filter(|c| c.commit_ts.is_some_and(|ts| ts > snapshot) && c.writes.contains_key(key))
            .filter_map(|c| c.commit_ts)
            .max()
    }

    fn write(&mut self, id: TxnId, key: Key, value: Option<Value>) -> Result<(), Error> {
        let rec = self.active_mut(id)?;
        if rec.read_only {
            return Err(Error::ReadOnly(id));
        }
        let snapshot = rec.snapshot;
        if let Some(committed) = self.newer_version(&key, snapshot) {
            sim_runtime::cover!("mvcc.write_write_conflict_at_write");
            let conflict = Conflict::WriteWrite { key, committed };
            self.doom(id, conflict.clone());
            return Err(Error::Aborted(conflict));
        }
        self.active_mut(id)?.writes.insert(key, value);
        Ok(())
    }

    fn prepare<R>(
        &mut self,
        id: TxnId,
        apply: impl FnOnce(Timestamp, &WriteSet) -> Result<R, StoreError>,
    ) -> Result<Prepared<R>, Error> {
        if let Some(conflict) = self.ssi.doomed.remove(&id) {
            sim_runtime::cover!("mvcc.doomed_txn_learns_at_commit");
            return Ok(Prepared::Aborted(conflict));
        }
        let rec = self.active_mut(id)?;
        let snapshot = rec.snapshot;
        let keys: Vec<Key> = rec.writes.keys().cloned().collect();
        let ts = self.allocated.next();
        // Snapshot isolation: a commit lands after the snapshot it read (snapshots are
        // published timestamps, at most `allocated`).
        debug_assert!(
            ts > snapshot,
            "commit at {ts} not after its snapshot {snapshot}"
        );
        // Step 1: validate, changing nothing. First committer wins (already enforced at
        // each write and by dooming at each commit; re-checked here), then SSI.
        for key in &keys {
            if let Some(committed) = self.newer_version(key, snapshot) {
                self.ssi.remove_active(id);
                return Ok(Prepared::Aborted(Conflict::WriteWrite {
                    key: key.clone(),
                    committed,
                }));
            }
        }
        let readers = match self.ssi.validate_commit(id, ts) {
            Ok(readers) => readers,
            Err(conflict) => {
                self.ssi.remove_active(id);
                return Ok(Prepared::Aborted(conflict));
            }
        };
        // Step 2: apply (log + store), invisibly. A failure leaves the store unknown.
        let token = if keys.is_empty() {
            None
        } else {
            match apply(ts, &self.ssi.active[&id].writes) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.poisoned = Some(format!("applying commit {ts} of {id} failed: {e}"));
                    return Err(Error::Store(e));
                }
            }
        };
        self.allocated = ts;
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
                sim_runtime::cover!("mvcc.concurrent_writer_doomed_by_commit");
                self.doom(loser, Conflict::WriteWrite { key, committed: ts });
            }
        }
        Ok(Prepared::Committed { ts, token })
    }

    fn verify(&self) -> Result<(), String> {
        if self.visible > self.allocated {
            return Err(format!(
                "visible {} beyond allocated {}",
                self.visible, self.allocated
            ));
        }
        self.verify_read_only()?;
        self.ssi
            .verify(self.visible, self.allocated, self.gc_horizon)?;
        for r in self.ssi.active.values() {
            if r.id.0 >= self.next_id {
                return Err(format!("{} was never handed out", r.id));
            }
            // First committer wins was enforced early: no concurrent committed writer
            // (all are retained) shares a key with an active write set.
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

impl From<Prepared<()>> for CommitOutcome {
    fn from(p: Prepared<()>) -> CommitOutcome {
        match p {
            Prepared::Committed { ts, .. } => CommitOutcome::Committed { ts },
            Prepared::Aborted(c) => CommitOutcome::Aborted(c),
        }
    }
}
