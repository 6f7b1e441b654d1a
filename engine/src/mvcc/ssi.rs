//! The SSI conflict graph: per-transaction read sets, write sets and rw-antidependency
//! edges, the dangerous-structure test, victim choice, and garbage collection of
//! committed transactions' records. Pure bookkeeping: no storage access, no locking.
//! See the module doc of [`super`] for the protocol this implements.
//!
//! Specified by `specs/SSI.tla` (actions Begin, Read, ScanRange, Write, Commit, Abort,
//! Publish; `Ssi::on_read` is its `AfterRead`, `Ssi::validate_commit` its `CommitFails`
//! and `CommitReaders`, `dangerous` its `Dangerous`, `Ssi::gc` its `SsiGc`, and each
//! `SsiCanary` a member of its `Canaries` constant); checked by `specs/check`, which runs
//! one negative-control config per canary and expects TLC to find a non-serializable
//! history in each.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{Conflict, TxnId};
use crate::kv::{Key, KeyRange, Timestamp, WriteSet};

/// A deliberately injectable SSI bug (the canaries: `engine/src/canary.rs`). Each one removes one
/// check; the exhaustive and property tests assert that every one of them lets a
/// non-serializable history through, so those tests are known to have teeth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SsiCanary {
    /// The classic bug: a reader does not look for concurrent writers that committed
    /// *before* it read (no reader-side edge detection).
    SkipReaderSideCheck,
    /// A committing writer does not look at the read sets of concurrent readers.
    SkipWriterSideCheck,
    /// Scans record no ranges: phantoms go unnoticed.
    SkipRangeTracking,
    /// No first-committer-wins: concurrent writes to one key both commit.
    SkipFirstCommitterWins,
    /// A transaction that read while read-only, then wrote, is not re-checked at commit.
    SkipDeferredReadOnlyCheck,
    /// Every read-only transaction is given a safe (untracked) snapshot, even while a
    /// read-write transaction that can still commit a pivot is active (Fekete's
    /// read-only anomaly goes unnoticed).
    SkipSafeSnapshotCheck,
}

/// Everything SSI remembers about one transaction.
#[derive(Debug, Clone)]
pub(crate) struct TxnRecord {
    pub id: TxnId,
    /// The commit ts of the last transaction this one sees.
    pub snapshot: Timestamp,
    /// `None` while active.
    pub commit_ts: Option<Timestamp>,
    /// Keys read from the snapshot (point reads).
    pub reads: BTreeSet<Key>,
    /// Ranges read from the snapshot (scans), for phantom detection.
    pub ranges: Vec<KeyRange>,
    /// Buffered writes (active) or the applied write set (committed).
    pub writes: WriteSet,
    /// Transactions `r` with `r →rw self` (they read what `self` wrote, without seeing it).
    pub in_edges: BTreeSet<TxnId>,
    /// Transactions `w` with `self →rw w`, and `w`'s commit ts. Targets are always
    /// committed: an edge is known only once its writer commits.
    pub out_edges: BTreeMap<TxnId, Timestamp>,
    /// The earliest-committed out-edge target whose record was garbage-collected
    /// (its commit ts and id), folded here so the structure test still sees it.
    pub out_gc_min: Option<(Timestamp, TxnId)>,
    /// Begun as read-only ([`super::TxnCore::begin_read_only`] when its snapshot was
    /// not safe): it can never write, so it can never be the pivot of a structure,
    /// and a safe snapshot need not wait for it.
    pub read_only: bool,
}

impl TxnRecord {
    pub fn new(id: TxnId, snapshot: Timestamp) -> TxnRecord {
        TxnRecord {
            id,
            snapshot,
            commit_ts: None,
            reads: BTreeSet::new(),
            ranges: Vec::new(),
            writes: WriteSet::new(),
            in_edges: BTreeSet::new(),
            out_edges: BTreeMap::new(),
            out_gc_min: None,
            read_only: false,
        }
    }

    /// Whether this transaction read anything `writes` wrote: a key it read, or a key
    /// inside a range it scanned.
    fn read_any_of(&self, writes: &WriteSet, ranges_tracked: bool) -> bool {
        writes.keys().any(|k| {
            self.reads.contains(k) || (ranges_tracked && self.ranges.iter().any(|r| r.contains(k)))
        })
    }

    /// The out-edge targets `self →rw t3` with `t3` committed before `before`.
    fn out_edges_before(&self, before: Timestamp) -> impl Iterator<Item = (TxnId, Timestamp)> + '_ {
        let live = self.out_edges.iter().map(|(t, c)| (*t, *c));
        let gone = self.out_gc_min.map(|(c, t)| (t, c));
        live.chain(gone).filter(move |(_, c)| *c < before)
    }
}

/// Whether `t1 →rw t2 →rw t3`, with `t2` and `t3` committed (or `t2` committing now) and
/// `t3` committed before `t2`, can be part of a cycle, given what is known of `t1`.
///
/// Ports & Grittner (VLDB 2012, after Fekete et al. 2005): every cycle in an SI history
/// contains such a structure where `t3` commits first of the three; and if `t1` is
/// read-only, `t3` also committed before `t1` took its snapshot.
/// - `t1 == t3`: write skew, dangerous.
/// - `t1` read-only (no writes, active or committed): dangerous iff `t3` is in `t1`'s
///   snapshot. An *active* `t1` that writes later is re-checked at its commit.
/// - `t1` active (or committing) with writes: `t3` necessarily committed first.
/// - `t1` committed with writes: dangerous iff `t3` committed before `t1`.
fn dangerous(t1: &TxnRecord, t3: TxnId, t3_commit: Timestamp) -> bool {
    if t1.id == t3 {
        return true;
    }
    if t1.writes.is_empty() {
        return t3_commit <= t1.snapshot;
    }
    match t1.commit_ts {
        None => true,
        Some(c1) => t3_commit < c1,
    }
}

/// The SSI graph of all transactions that can still take part in a conflict.
#[derive(Debug, Default)]
pub(crate) struct Ssi {
    pub active: BTreeMap<TxnId, TxnRecord>,
    /// Committed transactions concurrent with at least one active transaction.
    pub committed: BTreeMap<TxnId, TxnRecord>,
    /// Transactions the engine aborted whose handle has not yet been told.
    pub doomed: BTreeMap<TxnId, Conflict>,
    pub canaries: BTreeSet<SsiCanary>,
}

impl Ssi {
    pub fn canary(&self, c: SsiCanary) -> bool {
        !self.canaries.is_empty() && self.canaries.contains(&c)
    }

    pub fn record(&self, id: TxnId) -> Option<&TxnRecord> {
        self.active.get(&id).or_else(|| self.committed.get(&id))
    }

    /// Reader side. `reader` (active) just read from its snapshot: the keys or range for
    /// which `touched` is true. Every committed transaction `w` that wrote into what was
    /// read *after* the reader's snapshot is a concurrent writer the reader skipped:
    /// `reader →rw w`. If `w` already has an out-edge to a `t3` that committed first and
    /// the structure is dangerous, the reader is the only possible victim (pivot `w` and
    /// `t3` are committed). Returns the conflict, adding no edge, in that case.
    pub fn on_read(
        &mut self,
        reader: TxnId,
        touched: impl Fn(&Key) -> bool,
    ) -> Result<(), Conflict> {
        if self.canary(SsiCanary::SkipReaderSideCheck) {
            return Ok(());
        }
        let r = self.active.get(&reader).expect("on_read: reader is active");
        let writers: Vec<(TxnId, Timestamp)> = self
            .committed
            .values()
            .filter(|w| w.commit_ts.is_some_and(|c| c > r.snapshot))
            .filter(|w| w.writes.keys().any(&touched))
            .map(|w| (w.id, w.commit_ts.expect("committed")))
            .collect();
        for &(w, w_commit) in &writers {
            if let Some((t3, _)) = self.committed[&w]
                .out_edges_before(w_commit)
                .find(|&(t3, c3)| dangerous(r, t3, c3))
            {
                sim_runtime::cover!("mvcc.ssi_reader_aborted_as_t1_of_committed_pivot");
                return Err(Conflict::Serialization {
                    t1: reader,
                    pivot: w,
                    t3,
                });
            }
        }
        sim_runtime::cover!(
            "mvcc.ssi_rw_edge_from_read_of_newer_write",
            !writers.is_empty()
        );
        for (w, w_commit) in writers {
            self.add_edge(reader, w, w_commit);
        }
        Ok(())
    }

    /// Commit-time validation of `w` (active) as if it committed at `ts`; returns the
    /// readers that gain an edge `r →rw w`, or the conflict that aborts `w`. Does not
    /// change the graph. The victim is always `w`, the committing transaction: a
    /// structure completed here has `w` as its pivot (new in-edges meet its out-edges),
    /// or `w` as the `t1` of a structure whose pivot and `t3` are already committed.
    pub fn validate_commit(&self, w: TxnId, ts: Timestamp) -> Result<Vec<TxnId>, Conflict> {
        let wr = self.active.get(&w).expect("validate_commit: txn is active");
        if wr.writes.is_empty() {
            // Read-only: no one can gain an edge to it, and every structure with it as t1
            // was checked when its edges were added. It always commits.
            return Ok(Vec::new());
        }
        // w as t1: it read while read-only (check deferred), then wrote.
        if !self.canary(SsiCanary::SkipDeferredReadOnlyCheck) {
            for (&t2, &c2) in &wr.out_edges {
                let pivot = self
                    .committed
                    .get(&t2)
                    .expect("out-edge target retained while w is active");
                if let Some((t3, _)) = pivot
                    .out_edges_before(c2)
                    .find(|&(t3, c3)| dangerous(wr, t3, c3))
                {
                    sim_runtime::cover!("mvcc.ssi_deferred_read_only_check_aborts_writer");
                    return Err(Conflict::Serialization {
                        t1: w,
                        pivot: t2,
                        t3,
                    });
                }
            }
        }
        // Writer side: concurrent readers that read what w writes.
        let mut readers = Vec::new();
        if !self.canary(SsiCanary::SkipWriterSideCheck) {
            let ranges_tracked = !self.canary(SsiCanary::SkipRangeTracking);
            let concurrent = self.active.values().filter(|r| r.id != w).chain(
                // A committed reader is concurrent iff it committed after w's snapshot.
                self.committed
                    .values()
                    .filter(|r| r.commit_ts.is_some_and(|c| c > wr.snapshot)),
            );
            for r in concurrent {
                if r.read_any_of(&wr.writes, ranges_tracked) {
                    readers.push(r.id);
                }
            }
        }
        // w as pivot: r →rw w →rw t3, where every out-edge target committed before ts.
        for &r in &readers {
            let rr = self.record(r).expect("reader is known");
            if let Some((t3, _)) = wr
                .out_edges_before(ts)
                .find(|&(t3, c3)| dangerous(rr, t3, c3))
            {
                sim_runtime::cover!("mvcc.ssi_pivot_aborted_at_commit");
                sim_runtime::cover!("mvcc.ssi_write_skew_aborted", rr.id == t3);
                return Err(Conflict::Serialization {
                    t1: r,
                    pivot: w,
                    t3,
                });
            }
        }
        Ok(readers)
    }

    /// Moves `w` from active to committed at `ts`, adding the edges `validate_commit`
    /// found.
    pub fn commit(&mut self, w: TxnId, ts: Timestamp, readers: Vec<TxnId>) {
        let mut rec = self.active.remove(&w).expect("commit: txn is active");
        assert!(
            ts > rec.snapshot,
            "commit ts {ts} not after snapshot {}",
            rec.snapshot
        );
        rec.commit_ts = Some(ts);
        self.committed.insert(w, rec);
        for r in readers {
            self.add_edge(r, w, ts);
        }
    }

    fn add_edge(&mut self, reader: TxnId, writer: TxnId, writer_commit: Timestamp) {
        let r = match self.active.get_mut(&reader) {
            Some(r) => r,
            None => self
                .committed
                .get_mut(&reader)
                .expect("edge source is known"),
        };
        r.out_edges.insert(writer, writer_commit);
        let w = self
            .committed
            .get_mut(&writer)
            .expect("edge target is committed");
        w.in_edges.insert(reader);
    }

    /// Removes an active transaction (rollback or engine abort). It has no in-edges (only
    /// committed transactions do), so only its out-edges need unlinking.
    pub fn remove_active(&mut self, id: TxnId) -> TxnRecord {
        let rec = self
            .active
            .remove(&id)
            .expect("remove_active: txn is active");
        debug_assert!(rec.in_edges.is_empty());
        for w in rec.out_edges.keys() {
            if let Some(w) = self.committed.get_mut(w) {
                w.in_edges.remove(&id);
            }
        }
        rec
    }

    /// The oldest snapshot still in use, if any transaction is active.
    pub fn oldest_active_snapshot(&self) -> Option<Timestamp> {
        self.active.values().map(|r| r.snapshot).min()
    }

    /// The commit ts at or below which no transaction, active or yet to begin, is
    /// concurrent: the oldest active snapshot, or the visibility watermark `visible`
    /// (every later transaction's snapshot is at least that).
    pub fn retention_horizon(&self, visible: Timestamp) -> Timestamp {
        self.oldest_active_snapshot().unwrap_or(visible)
    }

    /// Drops committed records that no transaction is or will be concurrent with
    /// (commit ts at or below [`Ssi::retention_horizon`]). No future edge can touch
    /// them: every new edge has an active or committing endpoint, which saw them.
    /// Commits not yet visible (ts above `visible`) are kept: transactions that begin
    /// before they become visible are concurrent with them. Out-edges pointing at
    /// collected records are folded into `out_gc_min`.
    pub fn gc(&mut self, visible: Timestamp) {
        let horizon = self.retention_horizon(visible);
        let gone: Vec<TxnId> = self
            .committed
            .values()
            .filter(|r| r.commit_ts.is_some_and(|c| c <= horizon))
            .map(|r| r.id)
            .collect();
        for id in &gone {
            self.committed.remove(id);
        }
        if gone.is_empty() {
            return;
        }
        for rec in self.active.values_mut().chain(self.committed.values_mut()) {
            for id in &gone {
                rec.in_edges.remove(id);
                if let Some(c) = rec.out_edges.remove(id) {
                    sim_runtime::cover!("mvcc.ssi_gc_folds_edge_to_collected_txn");
                    if rec.out_gc_min.map_or(true, |(m, _)| c < m) {
                        rec.out_gc_min = Some((c, *id));
                    }
                }
            }
        }
    }

    /// Checks the graph's invariants; returns the first violation.
    /// `visible` is the watermark new snapshots read at, `allocated` the newest commit
    /// ts handed out.
    pub fn verify(
        &self,
        visible: Timestamp,
        allocated: Timestamp,
        gc_horizon: Timestamp,
    ) -> Result<(), String> {
        let horizon = self.oldest_active_snapshot();
        let retention = self.retention_horizon(visible);
        for r in self.active.values() {
            check(r.commit_ts.is_none(), || {
                format!("{} active with a commit ts", r.id)
            })?;
            check(r.snapshot <= visible, || {
                format!("{} snapshot {} after visible {visible}", r.id, r.snapshot)
            })?;
            check(r.snapshot >= gc_horizon, || {
                format!(
                    "{} snapshot {} below gc horizon {gc_horizon}",
                    r.id, r.snapshot
                )
            })?;
            check(r.in_edges.is_empty(), || {
                format!("active {} has in-edges", r.id)
            })?;
            check(!self.doomed.contains_key(&r.id), || {
                format!("{} both active and doomed", r.id)
            })?;
        }
        for r in self.committed.values() {
            let c = r
                .commit_ts
                .ok_or_else(|| format!("{} committed without ts", r.id))?;
            check(r.snapshot < c && c <= allocated, || {
                format!(
                    "{} snapshot {} commit {c} allocated {allocated}",
                    r.id, r.snapshot
                )
            })?;
            check(c > retention, || {
                format!("{} committed {c} kept past horizon {retention}", r.id)
            })?;
            check(!self.doomed.contains_key(&r.id), || {
                format!("{} both committed and doomed", r.id)
            })?;
        }
        for r in self.active.values().chain(self.committed.values()) {
            for (&w, &c) in &r.out_edges {
                let wr = self
                    .committed
                    .get(&w)
                    .ok_or_else(|| format!("edge {} → {w}: target unknown", r.id))?;
                check(wr.commit_ts == Some(c), || {
                    format!("edge {} → {w}: stale commit ts {c}", r.id)
                })?;
                check(wr.in_edges.contains(&r.id), || {
                    format!("edge {} → {w}: no matching in-edge", r.id)
                })?;
                check(r.snapshot < c, || {
                    format!("edge {} → {w}: reader saw the writer", r.id)
                })?;
                check(r.commit_ts.map_or(true, |rc| rc > wr.snapshot), || {
                    format!("edge {} → {w}: not concurrent", r.id)
                })?;
                check(r.id != w, || format!("self edge on {w}"))?;
            }
            if let (Some((c, t)), Some(h)) = (r.out_gc_min, horizon) {
                check(c <= h, || {
                    format!("{}: collected target {t} at {c} above horizon {h}", r.id)
                })?;
            }
            for &src in &r.in_edges {
                let s = self
                    .record(src)
                    .ok_or_else(|| format!("in-edge {src} → {}: source unknown", r.id))?;
                check(s.out_edges.contains_key(&r.id), || {
                    format!("in-edge {src} → {}: no out-edge", r.id)
                })?;
            }
        }
        if self.canaries.is_empty() {
            self.verify_no_dangerous_structure()?;
        }
        Ok(())
    }

    /// No committed pivot sits in a structure that had to abort someone: for committed
    /// `t1`, none at all; for active `t1`, none that its later writes cannot change.
    fn verify_no_dangerous_structure(&self) -> Result<(), String> {
        for t2 in self.committed.values() {
            let c2 = t2.commit_ts.expect("committed");
            for &t1 in &t2.in_edges {
                let r = self.record(t1).expect("checked above");
                for (t3, c3) in t2.out_edges_before(c2) {
                    let bad = if r.commit_ts.is_some() {
                        dangerous(r, t3, c3)
                    } else {
                        c3 <= r.snapshot
                    };
                    check(!bad, || {
                        format!("dangerous structure {t1} → {} → {t3} survived", t2.id)
                    })?;
                }
            }
        }
        Ok(())
    }
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(id: u64, snapshot: u64, commit: u64, writes: &[&str]) -> TxnRecord {
        let mut r = TxnRecord::new(TxnId(id), Timestamp(snapshot));
        r.commit_ts = Some(Timestamp(commit));
        r.writes = writes
            .iter()
            .map(|k| (k.as_bytes().to_vec(), Some(b"v".to_vec())))
            .collect();
        r
    }

    /// The checker objects to broken graphs (it is not a function that returns Ok).
    #[test]
    fn verify_rejects_broken_graphs() {
        let mut ssi = Ssi::default();
        ssi.active
            .insert(TxnId(9), TxnRecord::new(TxnId(9), Timestamp(1)));
        ssi.committed.insert(TxnId(1), committed(1, 1, 2, &["a"]));
        ssi.committed.insert(TxnId(2), committed(2, 1, 3, &["b"]));
        assert_eq!(
            ssi.verify(Timestamp(3), Timestamp(3), Timestamp::ZERO),
            Ok(())
        );

        // An edge to an unknown transaction.
        let mut bad = Ssi {
            active: ssi.active.clone(),
            committed: ssi.committed.clone(),
            ..Ssi::default()
        };
        bad.active
            .get_mut(&TxnId(9))
            .unwrap()
            .out_edges
            .insert(TxnId(7), Timestamp(2));
        assert!(bad
            .verify(Timestamp(3), Timestamp(3), Timestamp::ZERO)
            .unwrap_err()
            .contains("unknown"));

        // A one-sided edge.
        let mut bad = Ssi {
            active: ssi.active.clone(),
            committed: ssi.committed.clone(),
            ..Ssi::default()
        };
        bad.active
            .get_mut(&TxnId(9))
            .unwrap()
            .out_edges
            .insert(TxnId(1), Timestamp(2));
        assert!(bad
            .verify(Timestamp(3), Timestamp(3), Timestamp::ZERO)
            .unwrap_err()
            .contains("no matching in-edge"));

        // A committed write skew (1 →rw 2 →rw 1, 1 first) that should have aborted 2.
        let mut bad = Ssi {
            active: ssi.active.clone(),
            committed: ssi.committed.clone(),
            ..Ssi::default()
        };
        bad.add_edge(TxnId(1), TxnId(2), Timestamp(3));
        bad.add_edge(TxnId(2), TxnId(1), Timestamp(2));
        bad.committed
            .get_mut(&TxnId(1))
            .unwrap()
            .reads
            .insert(b"b".to_vec());
        assert!(bad
            .verify(Timestamp(3), Timestamp(3), Timestamp::ZERO)
            .unwrap_err()
            .contains("dangerous structure"));

        // A committed record nobody is concurrent with must have been collected.
        let mut bad = Ssi {
            committed: ssi.committed.clone(),
            ..Ssi::default()
        };
        assert!(bad
            .verify(Timestamp(3), Timestamp(3), Timestamp::ZERO)
            .unwrap_err()
            .contains("kept past horizon"));
        bad.gc(Timestamp(3));
        assert_eq!(
            bad.verify(Timestamp(3), Timestamp(3), Timestamp::ZERO),
            Ok(())
        );
    }

    #[test]
    fn gc_folds_edges_to_collected_targets() {
        let mut ssi = Ssi::default();
        // 3 active at snapshot 3; 1 committed at 2 (collectable), 2 committed at 4.
        ssi.active
            .insert(TxnId(3), TxnRecord::new(TxnId(3), Timestamp(3)));
        ssi.committed.insert(TxnId(1), committed(1, 1, 2, &["a"]));
        ssi.committed.insert(TxnId(2), committed(2, 1, 4, &["b"]));
        ssi.add_edge(TxnId(2), TxnId(1), Timestamp(2));
        ssi.gc(Timestamp(4));
        let two = &ssi.committed[&TxnId(2)];
        assert!(two.out_edges.is_empty());
        assert_eq!(two.out_gc_min, Some((Timestamp(2), TxnId(1))));
        assert!(!ssi.committed.contains_key(&TxnId(1)));
        // 3 now reads b, which 2 wrote after 3's snapshot: 3 →rw 2 →rw 1 with 1 committed
        // before 3's snapshot — dangerous even though 1's record is gone.
        let err = ssi.on_read(TxnId(3), |k| k.as_slice() == b"b").unwrap_err();
        assert_eq!(
            err,
            Conflict::Serialization {
                t1: TxnId(3),
                pivot: TxnId(2),
                t3: TxnId(1)
            }
        );
    }
}
