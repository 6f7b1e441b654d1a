//! The state of one run that outlives node crashes: the client history, the durability
//! oracle, the operation budget and what the checks found. It lives outside every
//! simulated node (the observer's notebook), behind a mutex shared by the supervisor
//! and the nodes' tasks.

use crate::check::durability::{DurabilityError, Oracle, TxnId, ViolationKind};
use crate::check::history::{History, MicroOp};
use crate::workload::{State, Workload};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A failed check: which, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub check: String,
    pub message: String,
    /// What it points at (the timeline highlights these operations).
    pub involved: Involved,
}

/// The keys and client operations a failed check names, for the timeline (the
/// framework's type: the timeline draws it).
pub use chaos::report::timeline::Involved;

/// What a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Down,
    Recovering,
    Running,
}

/// One client operation in flight.
#[derive(Debug)]
struct Open {
    /// None until the invocation is recorded (a deferred-invoke workload records it
    /// only when it commits).
    handle: Option<crate::check::history::Handle>,
    oracle: Option<crate::check::durability::TxnId>,
}

/// Everything a run records.
pub struct World {
    pub workload: Arc<dyn Workload>,
    pub history: History,
    pub oracle: Option<Oracle<String, String>>,
    open: BTreeMap<u64, Open>,
    next_process: u64,
    pub ops_budget: u64,
    pub ops_invoked: u64,
    pub ops_completed: u64,
    pub acknowledged: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    pub recoveries: u64,
    pub boots: u64,
    pub phase: Phase,
    /// A database call fail-stopped: the supervisor restarts the node.
    pub poisoned: bool,
    pub db: Option<engine::Db>,
    /// An unknown outcome may still take effect later (a cluster: the command may sit
    /// in a replica's log and commit under the next leader), so the oracle keeps such
    /// a transaction in flight instead of ending it indeterminate.
    pub unknown_may_apply_later: bool,
    /// The plan's last timed fault has healed (set by the topology's runner).
    pub healed: bool,
    /// Operations acknowledged after `healed` was set.
    pub acknowledged_after_heal: u64,
    /// Operations the database *decided* after `healed` was set: acknowledged, or
    /// refused with a definite answer (a conflict abort). Evidence that it serves.
    pub decided_after_heal: u64,
    /// Operations taken from the budget when `healed` was set (None: not healed yet).
    pub invoked_at_heal: Option<u64>,
    pub violations: Vec<Violation>,
    /// The durability oracle's transaction → its invocation's history index, so a
    /// durability violation can name the operation (see [`Involved`]).
    oracle_ops: BTreeMap<u64, u64>,
    pub stop: bool,
    /// The workload's initial rows were loaded by an acknowledged transaction: from
    /// now on a state without any of them lost them.
    pub initial_loaded: bool,
    /// The run's per-seed settings (from its plan), read by each node as it boots.
    pub tuning: crate::runner::tuning::Tuning,
    /// The plan may rot synced bits (`FaultSpace::bitflips`): a typed corruption
    /// error after a bit flip is then the engine's correct answer, not a failure.
    pub media_faults: bool,
    /// The engine refused damaged bytes (after an injected bit flip): the run ended
    /// there, every check so far having held.
    pub corruption_refused: Option<String>,
    /// `fs.bitflip_tail` as of the last state check: a loss is excused only by a flip
    /// in the newest synced bytes since then (D73).
    tail_flips_seen: u64,
    /// History events recorded when the node last went down.
    history_at_last_crash: usize,
    /// A bit flipped in the newest synced bytes at the crash that ended the history's
    /// first this many events (which a log may cut as a torn tail, losing acknowledged
    /// writes): the history checkers judge only those.
    pub history_judged: Option<usize>,
}

pub type Shared = Arc<Mutex<World>>;

pub use sim_runtime::sync::lock;

impl World {
    pub fn new(workload: Arc<dyn Workload>, ops_budget: u64) -> World {
        let oracle = workload.unique_writes().then(Oracle::new);
        World {
            workload,
            history: History::new(),
            oracle,
            open: BTreeMap::new(),
            next_process: 0,
            ops_budget,
            ops_invoked: 0,
            ops_completed: 0,
            acknowledged: 0,
            rejected: 0,
            indeterminate: 0,
            recoveries: 0,
            boots: 0,
            phase: Phase::Down,
            poisoned: false,
            db: None,
            unknown_may_apply_later: false,
            healed: false,
            acknowledged_after_heal: 0,
            decided_after_heal: 0,
            invoked_at_heal: None,
            violations: Vec::new(),
            oracle_ops: BTreeMap::new(),
            stop: false,
            initial_loaded: false,
            media_faults: false,
            corruption_refused: None,
            tail_flips_seen: 0,
            history_at_last_crash: 0,
            history_judged: None,
            tuning: Default::default(),
        }
    }

    /// Records a failed check (the first few; the run stops at the first).
    /// The engine reported damaged bytes (`what`). After an injected flip of a synced
    /// bit, in a run whose plan may rot bits, refusing the damage is the promised
    /// behaviour (an embedded node has no replica to repair from; an operator restores
    /// a backup): the run stops there and passes on the checks made so far. Returns
    /// false — the caller then reports a violation — when no bit was flipped (then the
    /// "corruption" is the engine misreading its own bytes, e.g. a torn tail it should
    /// have cut) or the plan does not rot bits.
    pub fn corruption_refused(&mut self, what: &str) -> bool {
        let flipped = sim_runtime::faults::get("fs.bitflip") > 0;
        sim_runtime::cover!(
            "scenario.media_corruption_refused",
            self.media_faults && flipped
        );
        if !(self.media_faults && flipped) {
            return false;
        }
        if self.corruption_refused.is_none() {
            self.corruption_refused = Some(what.to_string());
        }
        self.stop = true;
        true
    }

    pub fn violation(&mut self, check: &str, message: impl Into<String>) {
        self.violation_involving(check, message, Involved::default());
    }

    /// [`violation`](World::violation) naming the keys and operations involved.
    pub fn violation_involving(
        &mut self,
        check: &str,
        message: impl Into<String>,
        involved: Involved,
    ) {
        if self.violations.len() < 8 {
            self.violations.push(Violation {
                check: check.into(),
                message: message.into(),
                involved,
            });
        }
        self.stop = true;
    }

    /// A durability violation: its message, and the keys and operations it names.
    fn durability(&mut self, when: Option<&str>, e: &DurabilityError<String, String>) {
        let mut involved = Involved::default();
        let mut name = |key: &String, txn: Option<u64>| {
            involved.keys.push(key.clone());
            if let Some((t, op)) = txn.and_then(|t| Some((t, self.oracle_ops.get(&t)?))) {
                involved.ops.push(*op);
                involved
                    .aliases
                    .insert(*op, format!("the oracle's {}", TxnId(t)));
            }
        };
        match e {
            DurabilityError::Violations(vs) => {
                for v in vs {
                    name(&v.key, v.txn.map(|t| t.0));
                }
            }
            DurabilityError::DuplicateValue { key, first, .. } => name(key, Some(first.0)),
            DurabilityError::UnknownTxn(_) | DurabilityError::AlreadyEnded { .. } => {}
        }
        involved.keys.dedup();
        let message = match when {
            Some(w) => format!("{w}: {e}"),
            None => e.to_string(),
        };
        self.violation_involving("durability", message, involved);
    }

    /// A fresh process id (Jepsen: a process whose operation is indeterminate is never
    /// reused, since it may still be in flight).
    pub fn new_process(&mut self) -> u64 {
        self.next_process += 1;
        self.next_process
    }

    /// Takes one operation from the budget for `process`; false when it is spent or
    /// the run stops.
    pub fn take_op(&mut self, process: u64) -> bool {
        if self.stop || self.ops_invoked >= self.ops_budget {
            return false;
        }
        self.ops_invoked += 1;
        self.open.insert(
            process,
            Open {
                handle: None,
                oracle: None,
            },
        );
        true
    }

    /// Stamps history events with the current virtual time.
    fn stamp(&mut self) {
        let ns = u64::try_from(sim_runtime::time::elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.history.set_time(Some(ns));
    }

    pub fn invoke(&mut self, process: u64, ops: Vec<MicroOp>) {
        self.stamp();
        match self.history.invoke(process, ops) {
            Ok(handle) => {
                self.open.insert(
                    process,
                    Open {
                        handle: Some(handle),
                        oracle: None,
                    },
                );
            }
            Err(e) => self.violation("runner", format!("history: {e}")),
        }
    }

    /// Ends `process`'s operation; None if it never reached the history (a deferred
    /// invocation that did not get to commit: it had no effect).
    fn finish(&mut self, process: u64) -> Option<Open> {
        let open = self.open.remove(&process)?;
        self.stamp();
        self.ops_completed += 1;
        if open.handle.is_none() {
            self.rejected += 1;
            return None;
        }
        Some(open)
    }

    /// The transaction of `process` is about to commit these writes.
    pub fn committing(&mut self, process: u64, writes: &BTreeMap<String, Option<String>>) {
        if let (Some(oracle), Some(open)) = (self.oracle.as_mut(), self.open.get_mut(&process)) {
            match oracle.begin(writes.clone()) {
                Ok(id) => {
                    open.oracle = Some(id);
                    if let Some(index) = open.handle.as_ref().and_then(|h| self.history.index_of(h))
                    {
                        self.oracle_ops.insert(id.0, index);
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    self.violation("runner", format!("durability oracle: {e}"));
                }
            }
        }
    }

    /// The operation of `process` was acknowledged with these results.
    pub fn ok(&mut self, process: u64, done: Vec<MicroOp>) {
        if let Err(e) = self.workload.check_read(&done) {
            self.violation("invariant", e);
        }
        let Some(open) = self.finish(process) else {
            return;
        };
        let Some(handle) = open.handle else { return };
        if let (Some(oracle), Some(id)) = (self.oracle.as_mut(), open.oracle) {
            if let Err(e) = oracle.acknowledge(id) {
                self.durability(None, &e);
            }
        }
        if let Err(e) = self.history.ok(handle, done) {
            self.violation("runner", format!("history: {e}"));
        }
        self.acknowledged += 1;
        if self.healed {
            self.acknowledged_after_heal += 1;
            self.decided_after_heal += 1;
        }
    }

    /// The plan's last timed fault healed now: operations started from here on are
    /// the work liveness judges.
    pub fn heal(&mut self) {
        if !self.healed {
            self.healed = true;
            self.invoked_at_heal = Some(self.ops_invoked);
        }
    }

    /// Operations started after the heal (none if it has not happened).
    pub fn started_after_heal(&self) -> u64 {
        self.invoked_at_heal
            .map_or(0, |at| self.ops_invoked.saturating_sub(at))
    }

    /// The operation of `process` was refused with a definite answer (a conflict):
    /// it did not take effect, and the database answered.
    pub fn refused(&mut self, process: u64) {
        if self.healed && self.open.contains_key(&process) {
            self.decided_after_heal += 1;
        }
        self.fail(process);
    }

    /// The operation of `process` definitely did not take effect.
    pub fn fail(&mut self, process: u64) {
        let Some(open) = self.finish(process) else {
            return;
        };
        let Some(handle) = open.handle else { return };
        if let (Some(oracle), Some(id)) = (self.oracle.as_mut(), open.oracle) {
            if let Err(e) = oracle.reject(id) {
                self.durability(None, &e);
            }
        }
        if let Err(e) = self.history.fail(handle) {
            self.violation("runner", format!("history: {e}"));
        }
        self.rejected += 1;
    }

    /// The outcome of `process`'s operation is unknown.
    pub fn info(&mut self, process: u64) {
        let Some(open) = self.finish(process) else {
            return;
        };
        let Some(handle) = open.handle else { return };
        let oracle = self
            .oracle
            .as_mut()
            .filter(|_| !self.unknown_may_apply_later);
        if let (Some(oracle), Some(id)) = (oracle, open.oracle) {
            if let Err(e) = oracle.indeterminate(id) {
                self.durability(None, &e);
            }
        }
        if let Err(e) = self.history.info(handle) {
            self.violation("runner", format!("history: {e}"));
        }
        self.indeterminate += 1;
    }

    /// The node died: every operation in flight has an unknown outcome.
    pub fn crashed(&mut self) {
        let processes: Vec<u64> = self.open.keys().copied().collect();
        for p in processes {
            self.info(p);
        }
        self.history_at_last_crash = self.history.ops().len();
        if let Some(oracle) = self.oracle.as_mut() {
            oracle.crash();
        }
        self.db = None;
        self.phase = Phase::Down;
        self.poisoned = false;
    }

    /// Checks a full state of the database (after a recovery, or at the end): the
    /// workload's invariant and the durability oracle.
    pub fn check_state(&mut self, state: &State, when: &str) {
        let initial = self.workload.initial();
        if self.initial_loaded
            && !initial.is_empty()
            && initial.iter().all(|(k, _)| !state.contains_key(k))
        {
            self.violation(
                "durability",
                format!("{when}: every initial row is gone, though their load was acknowledged"),
            );
        }
        if let Err(e) = self.workload.check_state(state) {
            self.violation("invariant", format!("{when}: {e}"));
        }
        // A flip in the newest synced bytes of a file since the last check: only that
        // reads like a torn tail (`fs.bitflip_tail`, counted by sim-fs).
        let tail_flips = sim_runtime::faults::get("fs.bitflip_tail");
        let new_tail_flip = tail_flips > self.tail_flips_seen;
        self.tail_flips_seen = tail_flips;
        // What clients saw after such a flip may lack acknowledged writes the recovery
        // cut with the "torn" tail: the history checkers judge only what came before
        // the crash that flipped it (the state checks go on).
        if self.media_faults && new_tail_flip && self.history_judged.is_none() {
            self.history_judged = Some(self.history_at_last_crash);
        }
        if let Some(oracle) = self.oracle.as_mut() {
            if let Err(e) = oracle.check(state) {
                // A flipped bit in the WAL's last group of records reads exactly like a
                // torn, unsynced tail, which recovery cuts (`lsm::wal`, "Recovery"):
                // acknowledged writes lost — and nothing else wrong — are then the
                // damage refused, not a bug. Only a flip in the newest synced write of
                // a file can look so (D73): a flip further back, followed by valid
                // records, must be refused as corruption, so a loss after it fails, as
                // do garbage, a rejected write visible, a write that reappeared or
                // vanished.
                let only_lost = matches!(&e, DurabilityError::Violations(vs)
                    if vs.iter().all(|v| v.kind == ViolationKind::LostWrite));
                let refused = only_lost
                    && new_tail_flip
                    && self.corruption_refused(&format!(
                        "a bit flipped in the newest synced bytes cost acknowledged writes (a log cuts a damaged last record as a torn tail): {when}: {e}"
                    ));
                if !refused {
                    self.durability(Some(when), &e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::bank::Bank;

    fn world(budget: u64) -> World {
        World::new(Arc::new(Bank), budget)
    }

    /// Runs `f` where the world can read the clock: inside a simulated run in the
    /// madsim build.
    fn in_run(f: fn()) {
        #[cfg(madsim)]
        sim_runtime::sim::Sim::new(1)
            .run(move || async move { f() })
            .output
            .expect("the body passes");
        #[cfg(not(madsim))]
        f();
    }

    /// After bit rot, acknowledged writes lost are the refused damage (the run ends
    /// as passed); garbage — a value nobody wrote — is wrong data and fails.
    #[test]
    fn after_bit_rot_lost_writes_end_the_run_but_garbage_fails() {
        in_run(lost_writes_and_garbage_after_bit_rot);
    }

    fn lost_writes_and_garbage_after_bit_rot() {
        let acked_write = |w: &mut World| {
            let mut oracle = Oracle::new();
            let t = oracle
                .begin(BTreeMap::from([("k".to_string(), Some("v1".to_string()))]))
                .expect("unique");
            oracle.acknowledge(t).expect("in flight");
            w.oracle = Some(oracle);
        };
        // No flip yet: a lost acknowledged write is a failure, media faults or not.
        let mut w = world(1);
        w.media_faults = true;
        acked_write(&mut w);
        w.check_state(&BTreeMap::new(), "after recovery 1");
        assert_eq!(w.violations.len(), 1, "{:?}", w.violations);
        // A flip further back than the newest synced write: a log must refuse it as
        // corruption, not cut there, so the same loss still fails (D73).
        sim_runtime::faults::count("fs.bitflip");
        let mut w = world(1);
        w.media_faults = true;
        acked_write(&mut w);
        w.check_state(&BTreeMap::new(), "after recovery 1");
        assert_eq!(w.violations.len(), 1, "{:?}", w.violations);
        // After a flip in the newest synced bytes: the same loss ends the run, passed,
        // saying why.
        sim_runtime::faults::count("fs.bitflip_tail");
        let mut w = world(1);
        w.media_faults = true;
        acked_write(&mut w);
        w.check_state(&BTreeMap::new(), "after recovery 1");
        assert!(w.violations.is_empty(), "{:?}", w.violations);
        assert!(w.stop);
        let why = w.corruption_refused.clone().unwrap_or_default();
        assert!(why.contains("LostWrite"), "{why}");
        // The history checkers then judge only what clients saw before that crash.
        assert_eq!(w.history_judged, Some(w.history_at_last_crash));
        // Without media faults in the plan, no flip cuts the judged history.
        let mut w = world(1);
        w.check_state(&BTreeMap::new(), "after recovery 1");
        assert_eq!(w.history_judged, None);
        // A tail flip excuses only the check right after it: one already seen by an
        // earlier check (a clean one here) excuses no later loss.
        let mut w = world(1);
        w.media_faults = true;
        w.check_state(&BTreeMap::new(), "after recovery 1");
        acked_write(&mut w);
        w.check_state(&BTreeMap::new(), "after recovery 2");
        assert_eq!(w.violations.len(), 1, "{:?}", w.violations);
        // But a value no transaction wrote is wrong data: a failure even after a flip.
        let mut w = world(1);
        w.media_faults = true;
        acked_write(&mut w);
        w.check_state(
            &BTreeMap::from([("k".to_string(), "garbage".to_string())]),
            "after recovery 1",
        );
        assert_eq!(w.violations.len(), 1, "{:?}", w.violations);
        assert!(w.corruption_refused.is_none());
    }

    #[test]
    fn work_finished_before_the_heal_is_not_judged_after_it() {
        in_run(work_finished_before_the_heal);
    }

    fn work_finished_before_the_heal() {
        let mut w = world(2);
        for _ in 0..2 {
            let p = w.new_process();
            assert!(w.take_op(p));
            w.refused(p); // a deferred invocation that conflicted: no history entry
        }
        w.heal();
        assert_eq!(w.started_after_heal(), 0);
        assert_eq!(w.decided_after_heal, 0);
        assert_eq!(w.ops_completed, 2);
    }

    #[test]
    fn a_conflict_after_the_heal_is_a_decision_even_without_a_history_entry() {
        in_run(a_conflict_after_the_heal);
    }

    fn a_conflict_after_the_heal() {
        let mut w = world(3);
        let before = w.new_process();
        assert!(w.take_op(before)); // in flight across the heal
        w.heal();
        let after = w.new_process();
        assert!(w.take_op(after));
        assert_eq!(w.started_after_heal(), 1);
        w.refused(after);
        assert_eq!(w.decided_after_heal, 1, "a definite refusal is an answer");
        w.fail(before);
        assert_eq!(w.decided_after_heal, 1, "a failure to answer is not");
    }
}
