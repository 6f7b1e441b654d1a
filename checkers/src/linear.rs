//! A per-key linearizability checker for read/write/compare-and-set registers.
//!
//! ## Model
//! Each key is an independent register, initially `nil` (`None`). An operation is the
//! micro-ops of one history operation on one key (an operation touching two keys is
//! checked as two operations, one per key: per-key linearizability, not transactions),
//! applied atomically at one instant between its invocation and its completion. Time
//! is the history's index order: an operation spans from its invocation's index to its
//! completion's.
//! - `ok`: it took effect, and its reads returned what the history says (a `null`
//!   read means the register was never written); an ok `cas` succeeded.
//! - `fail`: it did not take effect, so it is left out.
//! - `info` (or never completed): it may take effect at any instant after its
//!   invocation, or never; its return is at infinity. Its reads carry no result, so
//!   an `info` operation that only reads is left out.
//!
//! The search is Wing & Gong's, with Lowe's just-in-time linearization and
//! Porcupine/Knossos-style memoization: events (calls and returns) sit in a linked
//! list sorted by time; the search linearizes any pending call whose effect is legal
//! in the current state, backtracks when it reaches the return of an operation not yet
//! linearized, and never revisits a (set of linearized operations, register state)
//! pair. It succeeds once every `ok` operation is linearized (left-over `info`
//! operations simply never happened). An `info` operation whose final value no
//! operation ever reads or expects is dropped before the search (its taking effect
//! could never help), which keeps timed-out writes from multiplying the states.
//!
//! ## Invariants
//! - Deterministic: ordered collections only; the same history gives the same report.
//! - Bounded: each key gets at most `step_budget` search steps, then it is `Unknown`.
//!
//! ## Non-goals
//! - Models other than a register (queues, sets), and P-compositionality beyond keys.
//! - Real-time clocks: the history's order is the only time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::history::{History, Key, MicroOp, Outcome, ReadValue};

/// How hard the search may try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Search steps per key before giving up with [`Verdict::Unknown`].
    pub step_budget: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            step_budget: 1_000_000,
        }
    }
}

/// A register micro-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegOp {
    /// A read that returned this (`None`: never written).
    Read(Option<i64>),
    /// A write of this value.
    Write(i64),
    /// Compare-and-set `old` → `new`; it succeeded (a failed cas is a `fail` op).
    Cas(i64, i64),
    /// A delete: the register is `nil` again.
    Delete,
}

/// One operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOp {
    /// The invocation's index (`T<id>`).
    pub id: u64,
    /// The client process.
    pub process: u64,
    /// The invocation's index (the earliest instant it may take effect).
    pub invoke: u64,
    /// The completion's index for `ok`; `None` for an `info` operation.
    pub complete: Option<u64>,
    /// Its micro-ops on this key, in order.
    pub ops: Vec<RegOp>,
}

impl RegisterOp {
    /// The register after this operation, if it can take effect on `state`.
    pub fn apply(&self, mut state: Option<i64>) -> Option<Option<i64>> {
        for op in &self.ops {
            match *op {
                RegOp::Read(v) if v != state => return None,
                RegOp::Read(_) => {}
                RegOp::Write(v) => state = Some(v),
                RegOp::Delete => state = None,
                RegOp::Cas(old, new) if state == Some(old) => state = Some(new),
                RegOp::Cas(..) => return None,
            }
        }
        Some(state)
    }
}

fn show_state(s: Option<i64>) -> String {
    s.map_or_else(|| "nil".to_owned(), |v| v.to_string())
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{} (process {}", self.id, self.process)?;
        match self.complete {
            Some(c) => write!(f, ", invoked at {}, returned at {c}):", self.invoke)?,
            None => write!(f, ", info, invoked at {}, never returned):", self.invoke)?,
        }
        for op in &self.ops {
            match op {
                RegOp::Read(v) => write!(f, " r {}", show_state(*v))?,
                RegOp::Write(v) => write!(f, " w {v}")?,
                RegOp::Delete => write!(f, " w nil")?,
                RegOp::Cas(a, b) => write!(f, " cas {a}->{b}")?,
            }
        }
        Ok(())
    }
}

/// How many operations of the prefix a [`Failure`] prints (the last ones).
const SHOWN: usize = 12;

/// Why a key is not linearizable: the longest linearizable prefix the search found,
/// and the operation whose return came before it could be placed after that prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The key.
    pub key: Key,
    /// The longest linearizable prefix found, in its order.
    pub linearized: Vec<RegisterOp>,
    /// The register after `linearized`.
    pub state: Option<i64>,
    /// The operation that returned before it could be placed.
    pub blocked: RegisterOp,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {}: not linearizable; longest linearizable prefix ({} ops):",
            self.key,
            self.linearized.len()
        )?;
        let skip = self.linearized.len().saturating_sub(SHOWN);
        if skip > 0 {
            writeln!(f, "    … {skip} earlier ops")?;
        }
        for op in &self.linearized[skip..] {
            writeln!(f, "    {op}")?;
        }
        write!(
            f,
            "  then the register is {}, and {} cannot be placed before it returns",
            show_state(self.state),
            self.blocked
        )
    }
}

/// One key's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of its operations fits the register and real time.
    Linearizable,
    /// None does: the evidence.
    NotLinearizable(Box<Failure>),
    /// The step budget ran out after this many steps.
    Unknown {
        /// Search steps taken.
        steps: u64,
    },
}

/// The verdict on a history, per key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Each key's verdict.
    pub keys: BTreeMap<Key, Verdict>,
}

impl Report {
    /// `Some(false)` if a key is not linearizable, `None` if none is proven wrong but
    /// some search ran out of budget, `Some(true)` otherwise.
    pub fn valid(&self) -> Option<bool> {
        if self.failures().next().is_some() {
            Some(false)
        } else if self
            .keys
            .values()
            .any(|v| matches!(v, Verdict::Unknown { .. }))
        {
            None
        } else {
            Some(true)
        }
    }

    /// The keys proven not linearizable, with their evidence.
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.keys.values().filter_map(|v| match v {
            Verdict::NotLinearizable(f) => Some(&**f),
            _ => None,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unknown: Vec<&str> = self
            .keys
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Unknown { .. }))
            .map(|(k, _)| k.as_str())
            .collect();
        match self.valid() {
            Some(true) => write!(f, "linearizable: {} keys", self.keys.len())?,
            Some(false) => write!(f, "NOT linearizable")?,
            None => write!(f, "unknown")?,
        }
        if !unknown.is_empty() {
            write!(f, "; search budget exhausted on keys {unknown:?}")?;
        }
        for fail in self.failures() {
            write!(f, "\n{fail}")?;
        }
        Ok(())
    }
}

/// A history this checker cannot read (list-append micro-ops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearError {
    /// The operation's index.
    pub txn: u64,
    /// What this checker cannot read in it.
    pub message: String,
}

impl fmt::Display for LinearError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}: {}", self.txn, self.message)
    }
}

impl std::error::Error for LinearError {}

/// Splits a register history into per-key operations (see the module docs for what
/// each outcome contributes).
pub fn partition(history: &History) -> Result<BTreeMap<Key, Vec<RegisterOp>>, LinearError> {
    let mut keys: BTreeMap<Key, Vec<RegisterOp>> = BTreeMap::new();
    for t in history.txns() {
        let complete = match t.outcome {
            Outcome::Fail => continue,
            Outcome::Ok => t.complete,
            Outcome::Info => None,
        };
        let mut per_key: BTreeMap<&str, Vec<RegOp>> = BTreeMap::new();
        for op in t.ops {
            let reg = match op {
                MicroOp::Write(_, v) => RegOp::Write(*v),
                MicroOp::Delete(_) => RegOp::Delete,
                MicroOp::Cas(_, a, b) => RegOp::Cas(*a, *b),
                MicroOp::Read(_, _) if t.outcome == Outcome::Info => continue,
                MicroOp::Read(_, None) => RegOp::Read(None),
                MicroOp::Read(_, Some(ReadValue::Int(v))) => RegOp::Read(Some(*v)),
                other => {
                    return Err(LinearError {
                        txn: t.id,
                        message: format!("{} is not a register op", super::history::json(other)),
                    })
                }
            };
            per_key.entry(op.key()).or_default().push(reg);
        }
        for (k, ops) in per_key {
            keys.entry(k.to_owned()).or_default().push(RegisterOp {
                id: t.id,
                process: t.process,
                invoke: t.id,
                complete,
                ops,
            });
        }
    }
    Ok(keys)
}

/// Checks every key of a register history.
pub fn check(history: &History, options: &Options) -> Result<Report, LinearError> {
    let keys = partition(history)?;
    Ok(Report {
        keys: keys
            .iter()
            .map(|(k, ops)| (k.clone(), check_key(k, ops, options)))
            .collect(),
    })
}

/// Drops the `info` operations whose final value nobody ever reads or compares
/// against: taking effect could only make later reads harder to place (until the next
/// write, the register would hold a value no one saw), so never taking effect is as
/// good, and the search no longer branches on them.
fn prune(ops: &[RegisterOp]) -> Vec<RegisterOp> {
    // Register states (`None`: nil, after a delete) that some operation needs to see.
    let mut expected: BTreeSet<Option<i64>> = BTreeSet::new();
    for op in ops {
        for m in &op.ops {
            match *m {
                RegOp::Read(v) if op.complete.is_some() => {
                    expected.insert(v);
                }
                RegOp::Cas(old, _) => {
                    expected.insert(Some(old));
                }
                _ => {}
            }
        }
    }
    let last_write = |op: &RegisterOp| {
        op.ops.iter().rev().find_map(|m| match *m {
            RegOp::Write(v) | RegOp::Cas(_, v) => Some(Some(v)),
            RegOp::Delete => Some(None),
            RegOp::Read(_) => None,
        })
    };
    ops.iter()
        .filter(|op| op.complete.is_some() || last_write(op).is_some_and(|v| expected.contains(&v)))
        .cloned()
        .collect()
}

const NIL: usize = usize::MAX;

/// The event list: calls and returns sorted by time, doubly linked so an operation can
/// be lifted out and put back (dancing links). Slot `len` is the head sentinel.
struct Events {
    /// (operation, is_call)
    ev: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per operation: (call slot, return slot or NIL).
    slots: Vec<(usize, usize)>,
}

impl Events {
    fn new(ops: &[RegisterOp]) -> Events {
        let mut timed: Vec<(u64, usize, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            timed.push((op.invoke, i, true));
            if let Some(c) = op.complete {
                timed.push((c, i, false));
            }
        }
        timed.sort();
        let n = timed.len();
        let mut slots = vec![(NIL, NIL); ops.len()];
        for (slot, &(_, op, call)) in timed.iter().enumerate() {
            if call {
                slots[op].0 = slot;
            } else {
                slots[op].1 = slot;
            }
        }
        // The head sentinel n, then slots 0..n in time order.
        let (mut next, mut prev) = (vec![NIL; n + 1], vec![NIL; n + 1]);
        let chain = || std::iter::once(n).chain(0..n);
        for (a, b) in chain().zip(chain().skip(1)) {
            next[a] = b;
            prev[b] = a;
        }
        Events {
            ev: timed.into_iter().map(|(_, op, call)| (op, call)).collect(),
            next,
            prev,
            slots,
        }
    }

    fn head(&self) -> usize {
        self.ev.len()
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = i;
        if n != NIL {
            self.prev[n] = i;
        }
    }

    fn lift(&mut self, op: usize) {
        let (call, ret) = self.slots[op];
        self.unlink(call);
        if ret != NIL {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, op: usize) {
        let (call, ret) = self.slots[op];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// Checks one key's operations.
pub fn check_key(key: &str, ops: &[RegisterOp], options: &Options) -> Verdict {
    let ops = &prune(ops);
    let mut events = Events::new(ops);
    let mut remaining = ops.iter().filter(|o| o.complete.is_some()).count();
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: BTreeSet<(Vec<u64>, Option<i64>)> = BTreeSet::new();
    // (operation, state before it)
    let mut stack: Vec<(usize, Option<i64>)> = Vec::new();
    let mut state: Option<i64> = None;
    // The deepest point where a return forced a backtrack: (prefix, state, blocked op).
    let mut deepest: Option<(Vec<usize>, Option<i64>, usize)> = None;
    let mut cur = events.next[events.head()];
    let mut steps = 0u64;
    loop {
        if remaining == 0 {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > options.step_budget {
            return Verdict::Unknown { steps: steps - 1 };
        }
        let event = (cur != NIL).then(|| events.ev[cur]);
        if let Some((op, true)) = event {
            if let Some(next) = ops[op].apply(state) {
                let (w, bit) = (op / 64, 1u64 << (op % 64));
                linearized[w] |= bit;
                if cache.insert((linearized.clone(), next)) {
                    stack.push((op, state));
                    state = next;
                    events.lift(op);
                    remaining -= usize::from(ops[op].complete.is_some());
                    cur = events.next[events.head()];
                    continue;
                }
                linearized[w] &= !bit;
            }
            cur = events.next[cur];
            continue;
        }
        // A return of an operation not linearized yet (or the end of the list): undo
        // the last choice.
        if let Some((blocked, false)) = event {
            let deeper = match &deepest {
                None => true,
                Some((prefix, _, _)) => stack.len() > prefix.len(),
            };
            if deeper {
                deepest = Some((stack.iter().map(|s| s.0).collect(), state, blocked));
            }
        }
        let Some((op, before)) = stack.pop() else {
            let (prefix, state, blocked) = deepest.unwrap_or((Vec::new(), None, 0));
            return Verdict::NotLinearizable(Box::new(Failure {
                key: key.to_owned(),
                linearized: prefix.into_iter().map(|i| ops[i].clone()).collect(),
                state,
                blocked: ops[blocked].clone(),
            }));
        };
        linearized[op / 64] &= !(1u64 << (op % 64));
        state = before;
        events.unlift(op);
        remaining += usize::from(ops[op].complete.is_some());
        cur = events.next[events.slots[op].0];
    }
}
