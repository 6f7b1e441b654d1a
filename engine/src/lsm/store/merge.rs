//! Compaction's streaming merge and garbage collection, in bounded memory.
//!
//! ## Model
//! A compaction's inputs form *runs*: sequences of tables whose entries follow each
//! other in strict internal order — each level-0 table alone (they overlap), and all the
//! tables taken from one sorted level (they do not). [`Merge`] is a k-way merge over
//! one [`TableStream`] per run, yielding every version once, in strict internal order;
//! [`Gc`] decides per version, as they stream by, whether it is kept.
//!
//! ## Memory
//! One stream per run (a read buffer of at most `READ_AHEAD_BYTES` plus a decoded
//! block) and one head entry per run in a binary heap: O(runs × read-ahead), never the
//! inputs' size. The caller writes outputs as they fill (one table builder at a time).
//!
//! ## Invariants
//! - The merge yields strict internal order; two runs holding one version (the same
//!   key and ts) is [`MergeError::Duplicate`], never silently merged.
//! - Every version the merge yields is kept or counted as dropped ([`Gc::finish`]).
//!
//! ## Fault model
//! A read or checksum failure of any input is [`MergeError::Read`]: the caller abandons
//! the compaction. Non-goal: read-ahead across tables, prefetch in the background.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use crate::kv::Timestamp;
use crate::lsm::codec::{cmp_internal, Entry};
use crate::lsm::error::LsmError;
use crate::lsm::sstable::{Table, TableStream};

/// Why a merge stopped.
#[derive(Debug)]
pub(crate) enum MergeError {
    /// Reading an input failed (I/O or corruption).
    Read(LsmError),
    /// Two runs hold the same version.
    Duplicate,
}

/// One run: tables in key order whose entries follow each other, streamed one table at
/// a time.
#[derive(Debug)]
struct Run {
    current: Option<TableStream>,
    rest: VecDeque<Arc<Table>>,
}

impl Run {
    fn new(tables: Vec<Arc<Table>>) -> Run {
        // A sorted level's tables, as `TableSet::check` keeps them: each ends before the
        // next begins.
        debug_assert!(tables
            .windows(2)
            .all(|w| w[0].meta().largest < w[1].meta().smallest));
        Run {
            current: None,
            rest: tables.into(),
        }
    }

    async fn next(&mut self) -> Result<Option<Entry>, LsmError> {
        loop {
            if let Some(s) = &mut self.current {
                if let Some(e) = s.next().await? {
                    return Ok(Some(e));
                }
                // The table is done: its stream (buffer and block) is freed here.
                self.current = None;
            }
            match self.rest.pop_front() {
                Some(t) => self.current = Some(TableStream::new(t)),
                None => return Ok(None),
            }
        }
    }
}

/// A run's next entry, ordered for a min-heap: smallest internal key first, ties (a
/// duplicate version) by run number, so the order is total and deterministic.
#[derive(Debug)]
struct Head {
    entry: Entry,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_internal(
            &other.entry.key,
            other.entry.ts,
            &self.entry.key,
            self.entry.ts,
        )
        .then(other.run.cmp(&self.run))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// The k-way merge of runs (see the module doc).
#[derive(Debug)]
pub(crate) struct Merge {
    runs: Vec<Run>,
    heap: BinaryHeap<Head>,
    started: bool,
}

impl Merge {
    /// A merge over `runs`, each a list of tables in key order that do not overlap.
    pub(crate) fn new(runs: Vec<Vec<Arc<Table>>>) -> Merge {
        Merge {
            heap: BinaryHeap::with_capacity(runs.len()),
            runs: runs.into_iter().map(Run::new).collect(),
            started: false,
        }
    }

    async fn refill(&mut self, run: usize) -> Result<(), MergeError> {
        if let Some(entry) = self.runs[run].next().await.map_err(MergeError::Read)? {
            self.heap.push(Head { entry, run });
        }
        Ok(())
    }

    /// The next version in internal order, or `None` when every run is done.
    pub(crate) async fn next(&mut self) -> Result<Option<Entry>, MergeError> {
        if !self.started {
            self.started = true;
            for run in 0..self.runs.len() {
                self.refill(run).await?;
            }
        }
        let Some(Head { entry, run }) = self.heap.pop() else {
            return Ok(None);
        };
        self.refill(run).await?;
        if let Some(next) = self.heap.peek() {
            let order = cmp_internal(&entry.key, entry.ts, &next.entry.key, next.entry.ts);
            if order == Ordering::Equal {
                return Err(MergeError::Duplicate);
            }
            // The heap's minimum is what comes next: the merge emits strict order
            // (each run does, by `Table::check_block` and the level invariant).
            debug_assert_eq!(order, Ordering::Less, "merge out of order");
        }
        Ok(Some(entry))
    }
}

/// Garbage collection of a merged stream (internal order): per key, keeps every
/// version newer than the horizon and the newest at or below it, which is dropped too
/// if it is a tombstone and no deeper level may hold the key.
#[derive(Debug)]
pub(crate) struct Gc {
    horizon: Timestamp,
    /// The key of the versions seen last.
    key: Vec<u8>,
    /// Whether that key's newest version at or below the horizon (its base) was seen.
    base_seen: bool,
    /// Whether a version of that key was kept.
    kept_any: bool,
    seen: u64,
    kept: u64,
    dropped: u64,
    tombstones: u64,
}

impl Gc {
    pub(crate) fn new(horizon: Timestamp) -> Gc {
        Gc {
            horizon,
            key: Vec::new(),
            base_seen: false,
            kept_any: false,
            seen: 0,
            kept: 0,
            dropped: 0,
            tombstones: 0,
        }
    }

    /// Whether `e`, the next version of the merged stream, is kept; `below_may_hold(key)`
    /// says whether a deeper level may hold a version of the key.
    pub(crate) fn keep(&mut self, e: &Entry, below_may_hold: impl Fn(&[u8]) -> bool) -> bool {
        self.seen += 1;
        if self.seen == 1 || self.key != e.key {
            self.key.clear();
            self.key.extend_from_slice(&e.key);
            self.base_seen = false;
            self.kept_any = false;
        }
        let keep = self.decide(e, below_may_hold);
        if keep {
            self.kept += 1;
        } else {
            self.dropped += 1;
        }
        keep
    }

    fn decide(&mut self, e: &Entry, below_may_hold: impl Fn(&[u8]) -> bool) -> bool {
        if e.ts > self.horizon {
            self.kept_any = true;
            return true;
        }
        if self.base_seen {
            sim_runtime::cover!("lsm.gc_drops_shadowed_version");
            return false; // shadowed for every reader at or above the horizon
        }
        self.base_seen = true;
        if (e.value.is_none() && !below_may_hold(&e.key)) || sabotaged() {
            sim_runtime::cover!("lsm.gc_drops_bottom_tombstone");
            self.tombstones += 1;
            return false;
        }
        sim_runtime::cover!("lsm.gc_keeps_tombstone_over_lower_level", e.value.is_none());
        // A newer version sits above the horizon: this older one survives only for a
        // reader (an open snapshot) at or below the horizon.
        sim_runtime::cover!("lsm.gc_keeps_old_version_for_open_snapshot", self.kept_any);
        self.kept_any = true;
        true
    }

    /// The versions dropped, and how many of those were bottom tombstones.
    pub(crate) fn finish(&self) -> (u64, u64) {
        // Every version is kept or counted as dropped (the stats report the drops).
        debug_assert_eq!(self.kept + self.dropped, self.seen);
        (self.dropped, self.tombstones)
    }
}

/// The runs of a compaction's inputs: each level-0 input alone, a sorted level's inputs
/// as one run, and the overlapping tables of the next level as one.
pub(crate) fn runs(plan: &crate::lsm::table_set::Plan) -> Vec<Vec<Arc<Table>>> {
    let mut runs: Vec<Vec<Arc<Table>>> = if plan.level == 0 {
        plan.inputs.iter().map(|t| vec![t.clone()]).collect()
    } else {
        vec![plan.inputs.clone()]
    };
    if !plan.next.is_empty() {
        runs.push(plan.next.clone());
    }
    runs
}

#[cfg(test)]
thread_local! {
    static SABOTAGE_GC_BASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test-only defect: garbage collection also drops the newest version at or below the
/// horizon (which readers at the horizon still need). Proves the model test has teeth.
#[cfg(all(test, not(madsim)))]
pub(crate) fn sabotage_gc_base(on: bool) {
    SABOTAGE_GC_BASE.with(|c| c.set(on));
}

#[cfg(test)]
fn sabotaged() -> bool {
    SABOTAGE_GC_BASE.with(|c| c.get())
}

#[cfg(not(test))]
fn sabotaged() -> bool {
    false
}
