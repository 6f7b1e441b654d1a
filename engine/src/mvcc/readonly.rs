//! # Reads that register nothing in the SSI graph
//!
//! A tracked read costs a begin, a `read_start`, a `record_read` (read set, reader-side
//! check) and a rollback or commit: four acquisitions of the core's lock and a few
//! allocations, on a path that is otherwise a memtable probe and a cached block. Two
//! kinds of read skip all of it, because they cannot take part in a cycle:
//!
//! - A **point read** of one key at the watermark ([`TxnCore::read_point`], a lock-free
//!   load; `Db::get`). Any snapshot will do.
//! - A **safe read-only transaction** ([`TxnCore::begin_read_only`] when the watermark
//!   is a *safe snapshot*; `Db::begin_read_only`, `Db::scan`): any number of gets and
//!   scans at one snapshot. Otherwise `begin_read_only` falls back to a tracked
//!   transaction that cannot write (PostgreSQL's `SERIALIZABLE READ ONLY DEFERRABLE`,
//!   without the waiting).
//!
//! ## Why they are serializable
//! Give every committed transaction a *time*: its commit ts if it wrote, its snapshot
//! if it did not (placed just after the commits at that snapshot). In the dependency
//! graph (Adya) a `wr` edge `Ti → Tj` (Tj read Ti's version: ts(Ti) ≤ snap(Tj)) and a
//! `ww` edge (version order is commit order) never go back in time, nor does an `rw`
//! edge out of a reader that did not write (`Ti →rw Tj`: Tj committed after snap(Ti)).
//! The only edges that go back in time are `A →rw B` with A a writer that began
//! before B committed and committed after it: `snap(A) < ts(B) < ts(A)`.
//!
//! - *Point read* `R` of key `k` at `s`: its only in-edge is `W →wr R` from the writer
//!   of the version it saw (none if it saw none), its out-edges are `R →rw T` to
//!   writers of `k` with `ts(T) > s ≥ ts(W)`, so `W →ww T` exists already. A cycle
//!   through `R` therefore shortcuts to a cycle without it, among transactions SSI
//!   tracks and keeps acyclic. (Two keys break this: Fekete's read-only anomaly.)
//! - *Safe snapshot* `s`, established at the moment `t0` the watermark was `s`: no
//!   transaction that may write and is active, or prepared but not yet visible (ts
//!   above `s`), had a snapshot older than `s` (`Inner::snapshot_is_safe`). A cycle
//!   through a
//!   reader `R` at `s` leaves it by `R →rw T2` (time > s) and returns by `W →wr R`
//!   (time ≤ s), so on the way back some edge first crosses from after `s` to at or
//!   before it: a backward edge `A →rw B`, `snap(A) < ts(B) ≤ s < ts(A)`, A a writer.
//!   A began before the watermark reached `s` (its snapshot is older), so at `t0` it
//!   was either active or prepared with a ts above `s`, with a snapshot older than
//!   `s` — excluded. No cycle passes through `R`. The property is *stable*: once
//!   true of `s` it stays true (later snapshots are ≥ `s`), so the flag can be read
//!   without the lock ([`TxnCore::safe_read_point`]).
//!
//! Point reads shortcut out of any cycle, safe readers are on none, so every cycle of
//! the whole history is a cycle of tracked transactions, which SSI prevents.
//! `specs/SSI.tla` checks this (actions `PointRead`, `BeginReadOnly`), and its
//! `SSI_nosafecheck` config shows that without the safe-snapshot test a reader can
//! close a cycle (canary [`super::SsiCanary::SkipSafeSnapshotCheck`]).
//!
//! ## Why they read what their snapshot holds
//! Garbage collection keeps, per key, every version above the horizon and the newest
//! at or below it ([`TxnCore::gc_horizon`]). A safe read-only transaction *pins* its
//! snapshot (one lock acquisition at begin, one at the end; no read set): the horizon
//! stays at or below it. A point read pins nothing; the store checks instead that no
//! version it might need was collected (`crate::lsm`'s GC floor, `crate::Db::get`),
//! and only if one was does it pin ([`TxnCore::pin`]) and read again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::core::{Inner, TxnCore};
use super::ssi::{SsiCanary, TxnRecord};
use super::types::{Error, TxnId};
use crate::kv::Timestamp;

/// Lock-free copies of what untracked reads need from the core. Written only under
/// the core's lock, after every operation ([`ReadPoints::sync`]).
#[derive(Debug)]
pub(crate) struct ReadPoints {
    /// `Inner::visible`.
    visible: AtomicU64,
    /// The newest watermark known to be a safe snapshot (monotone).
    safe: AtomicU64,
    /// Set once the core is poisoned (then readers take the lock to learn why).
    poisoned: AtomicBool,
}

impl ReadPoints {
    pub(super) fn new(visible: Timestamp) -> ReadPoints {
        ReadPoints {
            visible: AtomicU64::new(visible.0),
            safe: AtomicU64::new(visible.0),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Publishes `m`'s watermark (Release: a reader that loads it also sees every
    /// store write made before it was published).
    pub(super) fn sync(&self, m: &Inner) {
        if m.poisoned.is_some() {
            self.poisoned.store(true, Ordering::Release);
        }
        self.visible.store(m.visible.0, Ordering::Release);
        if m.snapshot_is_safe() {
            self.safe.fetch_max(m.visible.0, Ordering::Release);
        }
    }

    /// Checks the copies against the state they mirror.
    pub(super) fn verify(&self, m: &Inner) -> Result<(), String> {
        let visible = Timestamp(self.visible.load(Ordering::Acquire));
        let safe = Timestamp(self.safe.load(Ordering::Acquire));
        if m.poisoned.is_none() && visible != m.visible {
            return Err(format!("read point {visible} is not visible {}", m.visible));
        }
        if safe > m.visible {
            return Err(format!("safe point {safe} beyond visible {}", m.visible));
        }
        Ok(())
    }
}

/// How a read-only transaction runs ([`TxnCore::begin_read_only`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyStart {
    /// The snapshot is safe: read the store at it with no `read_start`/`record_*`, then
    /// [`TxnCore::unpin`] the pin (GC keeps the snapshot's versions until then).
    Safe {
        /// The pin to release at the end.
        pin: TxnId,
        /// The snapshot to read at.
        snapshot: Timestamp,
    },
    /// Not safe: an ordinary tracked transaction that cannot write (its reads may be
    /// aborted by the reader-side check); commit or roll it back as usual.
    Tracked {
        /// The transaction.
        id: TxnId,
        /// Its snapshot.
        snapshot: Timestamp,
    },
}

impl ReadOnlyStart {
    /// The snapshot, whichever way it runs.
    pub fn snapshot(&self) -> Timestamp {
        match self {
            ReadOnlyStart::Safe { snapshot, .. } | ReadOnlyStart::Tracked { snapshot, .. } => {
                *snapshot
            }
        }
    }
}

impl TxnCore {
    /// The watermark, without the lock: a snapshot for one point read that registers
    /// nothing (see the module doc). Every commit acknowledged before this call is at or
    /// below it.
    pub fn read_point(&self) -> Result<Timestamp, Error> {
        if self.points.poisoned.load(Ordering::Acquire) {
            // The lock reports why.
            drop(self.lock()?);
        }
        Ok(Timestamp(self.points.visible.load(Ordering::Acquire)))
    }

    /// The watermark if it is a safe snapshot (see the module doc), without the lock;
    /// `None` if it is not known to be (then use [`TxnCore::begin_read_only`]).
    pub fn safe_read_point(&self) -> Result<Option<Timestamp>, Error> {
        // Any order of the two loads works: "`s` is safe" never becomes false.
        let safe = self.points.safe.load(Ordering::Acquire);
        let visible = self.read_point()?;
        Ok((visible.0 == safe).then_some(visible))
    }

    /// Begins a read-only transaction at the watermark: untracked and pinned if the
    /// watermark is a safe snapshot, else tracked (and unable to write).
    pub fn begin_read_only(&self) -> Result<ReadOnlyStart, Error> {
        self.mutate("begin_read_only", |m| {
            let id = m.new_id();
            let snapshot = m.visible;
            if m.snapshot_is_safe() {
                m.pins.insert(id, snapshot);
                return Ok(ReadOnlyStart::Safe { pin: id, snapshot });
            }
            let mut rec = TxnRecord::new(id, snapshot);
            rec.read_only = true;
            m.ssi.active.insert(id, rec);
            Ok(ReadOnlyStart::Tracked { id, snapshot })
        })
    }

    /// Pins the watermark (GC keeps every version a read at it can return) until
    /// [`TxnCore::unpin`]; for one untracked read that must not race a compaction.
    pub fn pin(&self) -> Result<(TxnId, Timestamp), Error> {
        self.mutate("pin", |m| {
            let id = m.new_id();
            m.pins.insert(id, m.visible);
            Ok((id, m.visible))
        })
    }

    /// Releases a pin ([`TxnCore::pin`], or a safe [`ReadOnlyStart`]).
    pub fn unpin(&self, pin: TxnId) -> Result<(), Error> {
        self.mutate("unpin", |m| {
            m.pins.remove(&pin).map(|_| ()).ok_or(Error::NotActive(pin))
        })
    }
}

impl Inner {
    pub(super) fn new_id(&mut self) -> TxnId {
        let id = TxnId(self.next_id);
        self.next_id = self.next_id.checked_add(1).expect("2^64 transaction ids");
        id
    }

    /// The GC horizon of the store: the oldest snapshot in use, tracked or pinned, or
    /// the watermark.
    pub(super) fn store_horizon(&self) -> Timestamp {
        let pinned = self.pins.values().min().copied();
        let active = self.ssi.oldest_active_snapshot();
        [pinned, active]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.visible)
            .min(self.visible)
    }

    /// Whether the watermark is a safe snapshot: every transaction that may write
    /// and can still become visible above it — active, or prepared with a ts above it
    /// (its WAL write in flight) — sees it already. See the module doc for why that
    /// suffices. (Prepared commits are retained: their ts is above every snapshot.)
    pub(super) fn snapshot_is_safe(&self) -> bool {
        if self.poisoned.is_some() {
            return false;
        }
        if self.ssi.canary(SsiCanary::SkipSafeSnapshotCheck) {
            return true;
        }
        let v = self.visible;
        let active_see_it = self
            .ssi
            .active
            .values()
            .all(|r| r.read_only || r.snapshot >= v);
        let pending_see_it = self.ssi.committed.values().all(|c| {
            c.writes.is_empty() || c.commit_ts.is_some_and(|ts| ts <= v) || c.snapshot >= v
        });
        active_see_it && pending_see_it
    }

    /// The read-only bookkeeping's invariants.
    pub(super) fn verify_read_only(&self) -> Result<(), String> {
        for (id, &s) in &self.pins {
            if s > self.visible || s < self.gc_horizon {
                return Err(format!(
                    "{id} pins {s} outside [{}, {}]",
                    self.gc_horizon, self.visible
                ));
            }
            if self.ssi.active.contains_key(id) || id.0 >= self.next_id {
                return Err(format!(
                    "pin {id} is also a transaction, or never handed out"
                ));
            }
        }
        for r in self.ssi.active.values() {
            if r.read_only && !r.writes.is_empty() {
                return Err(format!("read-only {} has writes", r.id));
            }
        }
        Ok(())
    }
}
