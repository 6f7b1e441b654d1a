//! The run's notebook, shared by the user's client tasks and the runner: the client
//! history (invoke, then ok / fail / info), the durability oracle fed from the
//! history's register writes, the operation budget, and what the checks found. It
//! lives outside every simulated node, so it survives their crashes.

use checkers::durability::{Oracle, TxnId};
use checkers::history::{Handle, History, MicroOp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A failed check: which, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The check's name (`durability`, `linearizability`, `elle`, `invariant`,
    /// `liveness`, `history`, `panic`, `runner`).
    pub check: String,
    /// What it saw.
    pub message: String,
}

/// One operation in flight, from [`Recorder::invoke`].
#[derive(Debug)]
#[must_use = "complete it with ok, fail or info"]
pub struct Op {
    handle: Option<Handle>,
    txn: Option<TxnId>,
}

#[derive(Debug, Default)]
struct Inner {
    history: History,
    oracle: Oracle<String, i64>,
    budget: u64,
    taken: u64,
    completed: u64,
    healed: bool,
    decided_after_heal: u64,
    violations: Vec<Violation>,
    stop: bool,
}

/// Records a workload's operations; cheap to clone (one shared notebook per run).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

impl Recorder {
    /// A notebook for a run of at most `budget` operations.
    pub fn new(budget: u64) -> Recorder {
        let r = Recorder::default();
        r.lock().budget = budget;
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        sim_runtime::sync::lock(&self.inner)
    }

    /// Takes one operation from the plan's budget; false when it is spent or the run
    /// stops (a check failed). A client loops `while recorder.take_op()`.
    pub fn take_op(&self) -> bool {
        let mut w = self.lock();
        if w.stop || w.taken >= w.budget {
            return false;
        }
        w.taken += 1;
        true
    }

    /// A client invokes `ops` as `process` (one open operation per process at a time).
    /// Register writes (`MicroOp::Write`) are also begun in the durability oracle.
    pub fn invoke(&self, process: u64, ops: Vec<MicroOp>) -> Op {
        let mut w = self.lock();
        stamp(&mut w);
        let writes: BTreeMap<String, Option<i64>> = ops
            .iter()
            .filter_map(|m| match m {
                MicroOp::Write(k, v) => Some((k.clone(), Some(*v))),
                _ => None,
            })
            .collect();
        let handle = match w.history.invoke(process, ops) {
            Ok(h) => Some(h),
            Err(e) => {
                violation(&mut w, "history", format!("the workload's history: {e}"));
                None
            }
        };
        let txn = if writes.is_empty() {
            None
        } else {
            match w.oracle.begin(writes) {
                Ok(t) => Some(t),
                Err(e) => {
                    violation(&mut w, "durability", e.to_string());
                    None
                }
            }
        };
        Op { handle, txn }
    }

    /// The operation happened; `ops` are what it read (the invoked ops with values).
    pub fn ok(&self, op: Op, ops: Vec<MicroOp>) {
        self.complete(op, Some(ops), true);
    }

    /// The operation definitely did not happen.
    pub fn fail(&self, op: Op) {
        self.complete(op, None, true);
    }

    /// Unknown outcome: it may have happened, or may still happen. The oracle keeps
    /// its writes in flight until the runner's recovery check decides them.
    pub fn info(&self, op: Op) {
        self.complete(op, None, false);
    }

    fn complete(&self, op: Op, read: Option<Vec<MicroOp>>, decided: bool) {
        let mut w = self.lock();
        stamp(&mut w);
        w.completed += 1;
        if decided && w.healed {
            w.decided_after_heal += 1;
        }
        let acked = read.is_some();
        if let Some(h) = op.handle {
            let done = match (read, decided) {
                (Some(ops), _) => w.history.ok(h, ops),
                (None, true) => w.history.fail(h),
                (None, false) => w.history.info(h),
            };
            if let Err(e) = done {
                violation(&mut w, "history", format!("the workload's history: {e}"));
            }
        }
        if let (Some(t), true) = (op.txn, decided) {
            let ended = if acked {
                w.oracle.acknowledge(t)
            } else {
                w.oracle.reject(t)
            };
            if let Err(e) = ended {
                violation(&mut w, "durability", e.to_string());
            }
        }
    }

    /// Records a failed check (the first few); the run stops.
    pub fn violation(&self, check: &str, message: impl Into<String>) {
        violation(&mut self.lock(), check, message.into());
    }

    /// Whether a check failed (clients may stop early).
    pub fn stopped(&self) -> bool {
        self.lock().stop
    }

    pub(crate) fn heal(&self) {
        self.lock().healed = true;
    }

    pub(crate) fn decided_after_heal(&self) -> u64 {
        self.lock().decided_after_heal
    }

    pub(crate) fn progress(&self) -> (u64, u64) {
        let w = self.lock();
        (w.completed, w.taken)
    }

    /// The durability check over a state read after recovery: every write still in
    /// flight is decided first (the runner calls this once nothing can apply it).
    pub(crate) fn check_durable(&self, state: &BTreeMap<String, i64>) {
        let mut w = self.lock();
        w.oracle.crash();
        if let Err(e) = w.oracle.check(state) {
            violation(&mut w, "durability", e.to_string());
        }
    }

    pub(crate) fn history(&self) -> History {
        self.lock().history.clone()
    }

    pub(crate) fn first_violation(&self) -> Option<Violation> {
        self.lock().violations.first().cloned()
    }
}

fn violation(w: &mut Inner, check: &str, message: String) {
    if w.violations.len() < 8 {
        w.violations.push(Violation {
            check: check.to_string(),
            message,
        });
    }
    w.stop = true;
}

/// Stamps history events with the virtual time.
fn stamp(w: &mut Inner) {
    let ns = u64::try_from(sim_runtime::time::elapsed().as_nanos()).unwrap_or(u64::MAX);
    w.history.set_time(Some(ns));
}
