//! Reads that pay no SSI bookkeeping where it cannot matter: [`Db::get`] (one key),
//! [`Db::scan`] and [`Db::begin_read_only`] / [`ReadTxn`] (read-only, untracked when
//! the snapshot is safe). Why each is serializable without being tracked, and how GC
//! is kept from collecting what it reads, is argued in [`crate::mvcc::readonly`]; the
//! store side of the GC argument in [`crate::lsm::ReadView`].
//!
//! ```ignore
//! let v = db.get(b"k").await?;                    // no transaction at all
//! let rows = db.scan(b"a".to_vec()..b"m".to_vec()).await?;
//! let mut r = db.begin_read_only();               // several reads, one snapshot
//! let (x, y) = (r.get(b"x").await?, r.get(b"y").await?);
//! r.commit().await?;                              // Err(Aborted): retry (tracked only)
//! ```
//!
//! ## Invariants
//! - An untracked read at read point `at` reads a [`crate::lsm::ReadView`] captured
//!   *after* `at` was taken (so every commit at or below `at` is in it) whose GC floor
//!   is at most `at` (so no version at or below `at` that the read needs was
//!   collected). When a compaction overtook `at` in between, the read pins the
//!   watermark and reads again; the view of a pinned read always satisfies both
//!   (checked, a violation is a bug).
//! - A safe [`ReadTxn`] holds a pin until it ends; a tracked one is an ordinary
//!   [`Txn`] that cannot write, committed without waiting for room in the store.

use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Db, Error, Inner, Result, State, Txn};
use crate::lsm::{ReadView, Rows};
use crate::mvcc::{Key, KeyRange, Prepared, ReadOnlyStart, StoreError, Timestamp, TxnId, Value};

#[cfg(test)]
mod tests;

/// Simulated world: sometimes let time pass between taking a read point and capturing
/// the store, so a compaction can overtake the read point (the window
/// [`ReadStats::repinned`] counts). The real world reaches it only by preemption.
async fn widen_race_window() {
    if cfg!(madsim) && sim_runtime::buggify!(0.5) {
        // Long enough, sometimes, for a flush and a compaction to run in between.
        let ms = rand::Rng::gen_range(&mut sim_runtime::rng::stream("db.read_race"), 1..=20);
        sim_runtime::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Counters of the untracked read path ([`super::DbStats::reads`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Untracked reads whose read point a compaction overtook before the store was
    /// captured: they pinned the watermark and read again.
    pub repinned: u64,
    /// Read-only transactions ([`Db::begin_read_only`], and [`Db::scan`] when the
    /// watermark was not a safe snapshot) that had to run tracked.
    pub tracked_read_only: u64,
}

/// The counters, in [`Inner`]. Only the rare paths count: the common one touches no
/// shared cache line.
#[derive(Debug, Default)]
pub(super) struct ReadCounters {
    repinned: AtomicU64,
    tracked_read_only: AtomicU64,
}

impl ReadCounters {
    pub(super) fn stats(&self) -> ReadStats {
        ReadStats {
            repinned: self.repinned.load(Ordering::Relaxed),
            tracked_read_only: self.tracked_read_only.load(Ordering::Relaxed),
        }
    }
}

/// A pin of the watermark, released on drop.
struct Pin<'a> {
    db: &'a Inner,
    id: TxnId,
    snapshot: Timestamp,
}

impl Pin<'_> {
    fn new(db: &Inner) -> Result<Pin<'_>> {
        let (id, snapshot) = db.core.pin()?;
        Ok(Pin { db, id, snapshot })
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        // Fails only on a poisoned core, which pins nothing any more.
        let _ = self.db.core.unpin(self.id);
    }
}

impl Inner {
    /// `Err` if the database was closed or a failure poisoned it.
    fn check_usable(&self) -> Result<()> {
        self.check_closed()?;
        self.lsm.check_open()?;
        Ok(())
    }

    /// `Err` if the database was closed. (A read that captures a store view learns
    /// of a poisoned store there, without a second trip through the store's lock.)
    fn check_closed(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// A view for reads at `snapshot`, which a pin or a registered transaction holds.
    fn pinned_view(&self, snapshot: Timestamp) -> Result<ReadView> {
        let view = self.lsm.read_view()?;
        // Every compaction took its horizon at or below the watermark of its start, and
        // at or below `snapshot` once it was held: the view has what `snapshot` needs.
        assert!(
            view.gc_floor() <= snapshot,
            "GC floor {} above the held snapshot {snapshot}",
            view.gc_floor()
        );
        Ok(view)
    }
}

impl Db {
    /// The value of `key` in the newest acknowledged state, read without a transaction:
    /// nothing is registered in the SSI graph, no lock of the transaction core is
    /// taken. Serializable because a read of *one* key at a snapshot can only close a
    /// cycle the writers of that key already form (see [`crate::mvcc::readonly`]);
    /// every commit acknowledged before the call is seen (linearizable).
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        self.inner.check_closed()?;
        let at = self.inner.core.read_point()?;
        widen_race_window().await;
        self.get_from(key.as_ref(), at).await
    }

    /// [`Db::get`] from a read point already taken (tests put a compaction between).
    pub(crate) async fn get_from(&self, key: &[u8], at: Timestamp) -> Result<Option<Value>> {
        let view = self.inner.lsm.read_view()?;
        if view.gc_floor() <= at {
            return Ok(view.get(key, at).await?.and_then(|v| v.value));
        }
        // A compaction that started after `at` was taken collected above it. Pin the
        // watermark (at or above that horizon) and read there: still a read of one key
        // between the call and its return.
        sim_runtime::cover!("db.point_read_overtaken_by_compaction_repins");
        self.inner.reads.repinned.fetch_add(1, Ordering::Relaxed);
        let pin = Pin::new(&self.inner)?;
        let view = self.inner.pinned_view(pin.snapshot)?;
        Ok(view.get(key, pin.snapshot).await?.and_then(|v| v.value))
    }

    /// The live rows of `range` in the newest acknowledged state, as a read-only
    /// transaction of one scan: untracked when the watermark is a safe snapshot (no
    /// transaction that may still write predates it), else tracked and committed. Only
    /// then can it fail with an `Aborted` [`Error::Txn`] (Fekete's read-only anomaly):
    /// retry.
    pub async fn scan(&self, range: impl RangeBounds<Key>) -> Result<Vec<(Key, Value)>> {
        Ok(self.scan_rows(range).await?.into_pairs())
    }

    /// [`Db::scan`] into one buffer ([`Rows`]: keys and values back to back), two
    /// allocations however many rows — for callers that iterate the rows rather than
    /// keep them.
    pub async fn scan_rows(&self, range: impl RangeBounds<Key>) -> Result<Rows> {
        self.inner.check_closed()?;
        let range = KeyRange::new(range)?;
        let safe = self.inner.core.safe_read_point()?;
        widen_race_window().await;
        self.scan_from(range, safe).await
    }

    /// [`Db::scan`], handing each live row to `visit` in key order — borrowed from the
    /// engine's blocks and memtables, nothing copied — as the peers' iterators lend
    /// theirs. Same snapshot and serializability as [`Db::scan`]; `visit` sees rows only
    /// of a scan that cannot abort any more (a tracked scan is committed first), so an
    /// an `Aborted` [`Error::Txn`] comes before any row.
    pub async fn scan_each(
        &self,
        range: impl RangeBounds<Key>,
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        self.inner.check_closed()?;
        let range = KeyRange::new(range)?;
        let safe = self.inner.core.safe_read_point()?;
        widen_race_window().await;
        if range.is_empty() {
            return Ok(());
        }
        if let Some((view, at)) = self.untracked_view(safe)? {
            return Ok(view.scan_each(&range, at, visit).await?);
        }
        for (key, value) in self.scan_tracked(range).await?.iter() {
            visit(key, value);
        }
        Ok(())
    }

    /// [`Db::scan_rows`] from a safe read point already taken, if any.
    pub(crate) async fn scan_from(&self, range: KeyRange, safe: Option<Timestamp>) -> Result<Rows> {
        if range.is_empty() {
            return Ok(Rows::default());
        }
        match self.untracked_view(safe)? {
            Some((view, at)) => Ok(view.scan_rows(&range, at).await?),
            None => self.scan_tracked(range).await,
        }
    }

    /// The view to read the safe read point `safe` from, untracked: `None` when there is
    /// none, or when a compaction has collected versions it needs since it was taken
    /// (counted as a repin: the caller reads through a read-only transaction instead).
    fn untracked_view(
        &self,
        safe: Option<Timestamp>,
    ) -> Result<Option<(crate::lsm::ReadView, Timestamp)>> {
        let Some(at) = safe else { return Ok(None) };
        let view = self.inner.lsm.read_view()?;
        if view.gc_floor() <= at {
            return Ok(Some((view, at)));
        }
        sim_runtime::cover!("db.read_only_view_overtaken_by_compaction");
        self.inner.reads.repinned.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// `range` through a read-only transaction of one scan, committed.
    async fn scan_tracked(&self, range: KeyRange) -> Result<Rows> {
        let mut t = self.begin_read_only();
        let rows = t.scan_range(range).await?;
        t.commit().await?;
        Ok(rows)
    }

    /// Begins a read-only transaction at the newest acknowledged state: untracked (one
    /// pin, no read sets) when that is a safe snapshot, else tracked. Either way its
    /// reads are serializable once [`ReadTxn::commit`] returns `Ok`.
    pub fn begin_read_only(&self) -> ReadTxn {
        let begun = self
            .inner
            .check_usable()
            .and_then(|()| Ok(self.inner.core.begin_read_only()?));
        let mode = match begun {
            Ok(ReadOnlyStart::Safe { pin, snapshot }) => Mode::Safe { pin, snapshot },
            Ok(ReadOnlyStart::Tracked { id, snapshot }) => {
                self.inner
                    .reads
                    .tracked_read_only
                    .fetch_add(1, Ordering::Relaxed);
                Mode::Tracked(Txn {
                    db: self.inner.clone(),
                    id,
                    snapshot,
                    state: State::Open,
                })
            }
            Err(e) => Mode::Dead(e),
        };
        ReadTxn {
            db: self.inner.clone(),
            mode,
        }
    }
}

enum Mode {
    /// Untracked at a safe, pinned snapshot.
    Safe {
        pin: TxnId,
        snapshot: Timestamp,
    },
    /// An ordinary transaction the core refuses writes from.
    Tracked(Txn),
    /// Committed or rolled back (the pin's or the transaction's id).
    Finished(TxnId),
    Dead(Error),
}

/// A read-only transaction ([`Db::begin_read_only`]): gets and scans at one snapshot,
/// no writes. Dropping it without committing ends it too, but only a successful
/// [`ReadTxn::commit`] promises that what it read is serializable (a tracked one can
/// still be caught in Fekete's read-only anomaly at a read; a safe one never is).
pub struct ReadTxn {
    db: Arc<Inner>,
    mode: Mode,
}

impl std::fmt::Debug for ReadTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.mode {
            Mode::Safe { .. } => "safe",
            Mode::Tracked(_) => "tracked",
            Mode::Finished(_) => "finished",
            Mode::Dead(_) => "dead",
        };
        f.debug_struct("ReadTxn")
            .field("mode", &mode)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl ReadTxn {
    /// The commit ts of the newest transaction it sees.
    pub fn snapshot(&self) -> Timestamp {
        match &self.mode {
            Mode::Safe { snapshot, .. } => *snapshot,
            Mode::Tracked(t) => t.snapshot(),
            Mode::Finished(_) | Mode::Dead(_) => Timestamp::ZERO,
        }
    }

    /// Whether it runs tracked (its snapshot was not safe when it began).
    pub fn is_tracked(&self) -> bool {
        matches!(self.mode, Mode::Tracked(_))
    }

    /// The pin's id (safe) or the transaction's (tracked).
    pub fn id(&self) -> Option<TxnId> {
        match &self.mode {
            Mode::Safe { pin, .. } => Some(*pin),
            Mode::Tracked(t) => Some(t.id()),
            Mode::Finished(id) => Some(*id),
            Mode::Dead(_) => None,
        }
    }

    /// A safe transaction's snapshot, after checking the database is usable; `None`
    /// for a tracked one.
    fn safe_snapshot(&self) -> Result<Option<Timestamp>> {
        match &self.mode {
            Mode::Safe { snapshot, .. } => {
                self.db.check_usable()?;
                // A poisoned core fails every call (fail-stop), untracked ones too.
                self.db.core.read_point()?;
                Ok(Some(*snapshot))
            }
            Mode::Tracked(_) => Ok(None),
            Mode::Finished(id) => Err(Error::Txn(crate::mvcc::Error::NotActive(*id))),
            Mode::Dead(e) => Err(e.clone()),
        }
    }

    /// The value of `key` in the snapshot.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        match (&self.mode, self.safe_snapshot()?) {
            (Mode::Tracked(t), _) => t.get(key).await,
            (_, Some(at)) => {
                let view = self.db.pinned_view(at)?;
                Ok(view.get(key.as_ref(), at).await?.and_then(|v| v.value))
            }
            (_, None) => unreachable!("safe_snapshot returns a snapshot unless tracked"),
        }
    }

    /// The live rows of `range` (`a..b`, `a..`, `..`) in the snapshot, in key order.
    pub async fn scan(&self, range: impl RangeBounds<Key>) -> Result<Vec<(Key, Value)>> {
        let range = KeyRange::new(range)?;
        match (&self.mode, self.safe_snapshot()?) {
            (Mode::Tracked(t), _) => t.scan(range).await,
            (_, Some(at)) => Ok(self.db.pinned_view(at)?.scan(&range, at).await?),
            (_, None) => unreachable!("safe_snapshot returns a snapshot unless tracked"),
        }
    }

    /// [`ReadTxn::scan`] into one buffer ([`Rows`]).
    pub async fn scan_rows(&self, range: impl RangeBounds<Key>) -> Result<Rows> {
        self.scan_range(KeyRange::new(range)?).await
    }

    async fn scan_range(&self, range: KeyRange) -> Result<Rows> {
        match (&self.mode, self.safe_snapshot()?) {
            (Mode::Tracked(t), _) => Ok(t.scan(range).await?.into_iter().collect()),
            (_, Some(at)) => Ok(self.db.pinned_view(at)?.scan_rows(&range, at).await?),
            (_, None) => unreachable!("safe_snapshot returns a snapshot unless tracked"),
        }
    }

    /// Ends it. `Ok` means every value it read belongs to one serializable history; a
    /// tracked transaction the engine aborted at a read reports an `Aborted` [`Error::Txn`]
    /// again here (retry it). A read-only commit logs nothing and waits for nothing.
    pub async fn commit(&mut self) -> Result<()> {
        let id = self.id().unwrap_or(TxnId(0));
        match std::mem::replace(&mut self.mode, Mode::Finished(id)) {
            Mode::Safe { pin, .. } => Ok(self.db.core.unpin(pin)?),
            Mode::Tracked(mut t) => {
                t.live()?;
                t.state = State::Finished;
                // Read-only: validation always passes unless a read doomed it, and
                // `apply` is never called (it has nothing to log).
                let prepared = self.db.core.prepare_commit(t.id, |ts, _| {
                    Err::<(), _>(StoreError::new(format!(
                        "read-only transaction at {ts} has writes"
                    )))
                })?;
                match prepared {
                    Prepared::Committed { .. } => Ok(()),
                    Prepared::Aborted(c) => Err(Error::Txn(crate::mvcc::Error::Aborted(c))),
                }
            }
            Mode::Finished(id) => Err(Error::Txn(crate::mvcc::Error::NotActive(id))),
            Mode::Dead(e) => Err(e),
        }
    }

    /// Ends it without the promise of [`ReadTxn::commit`].
    pub async fn rollback(&mut self) -> Result<()> {
        let id = self.id().unwrap_or(TxnId(0));
        match std::mem::replace(&mut self.mode, Mode::Finished(id)) {
            Mode::Safe { pin, .. } => Ok(self.db.core.unpin(pin)?),
            Mode::Tracked(mut t) => t.rollback().await,
            Mode::Finished(id) => Err(Error::Txn(crate::mvcc::Error::NotActive(id))),
            Mode::Dead(e) => Err(e),
        }
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        if let Mode::Safe { pin, .. } = self.mode {
            let _ = self.db.core.unpin(pin);
        }
        // A tracked one rolls back in its own drop.
    }
}
