//! The replay of a claimed serial order: for a system that reports where each commit
//! landed in its total order (a Raft log index, a sequencer number, a commit timestamp).
//!
//! ## Model
//! Keys and values are bytes; the store starts empty. Each [`Txn`] records what one
//! client transaction read (point reads, and range scans with the rows they returned),
//! what it wrote (`Some(value)`, or `None` to delete; the last write per key), when it
//! was invoked and when it completed (any clock that is monotone for the observer:
//! simulated time, a test's elapsed time), and its [`Outcome`]:
//! - `Committed(point)`: it took effect at `point` of the system's claimed order. A
//!   transaction that wrote something (read-write) owns its point; one that wrote
//!   nothing (read-only) sits at a snapshot point, after the writes at that point, and
//!   may share it with other read-only transactions.
//! - `Aborted` or `Failed`: it definitely had no effect.
//! - `Unknown`: the client never learned the outcome.
//!
//! Reads are taken from the state before the transaction's own writes (record a read
//! of its own write, if the client does one, nowhere).
//!
//! The checker sorts the committed transactions by `(point, read-write before
//! read-only)`, replays their writes on an ordered map, and demands:
//! - **Serializability of the claim**: every read and scan of every committed
//!   transaction returns exactly what the replay holds at its point. An aborted,
//!   failed, lost or doubly applied write, a stale read or a wrong point all show up as
//!   a read the replay does not explain.
//! - **Distinct points**: no two read-write transactions claim one point.
//! - **Real time** (strictness): if A completed before B was invoked, A comes before B
//!   in the claimed order (read-only transactions at one point may be in either order).
//! - **Durability**: the final state, read after the system recovered and healed,
//!   equals the replay of every committed transaction (nothing acknowledged lost,
//!   nothing unacknowledged present).
//! - **Definite outcomes**: no transaction ends `Unknown` (the clients retry until they
//!   know; after the heal every outcome must be decided).
//!
//! The points come from the system, but they are only trusted as far as the replay
//! confirms them: a wrong point makes some read (or the final state) disagree. A clean
//! report proves the history strictly serializable, with the claimed order as witness.
//!
//! ## Invariants
//! - Deterministic: ordered maps only; the same history gives the same violations in
//!   the same order.
//! - Total: any input gives a report (an empty or reversed scan range reads nothing).
//! - `O(n log n + reads + scanned rows)`: real time is checked against the latest
//!   point completed so far, not pairwise.
//!
//! ## Non-goals
//! - Histories with indeterminate outcomes: a transaction that may or may not have
//!   taken effect has no point to replay at. Use [`crate::elle`] or
//!   [`crate::durability`] for those.
//! - Finding *some* serial order: the checker judges the claimed one only. An
//!   unclaimed order is [`crate::elle`]'s job (for list-append histories).
//! - Reads of a transaction's own writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// A key or a value.
pub type Bytes = Vec<u8>;

/// A state of the store: every key that holds a value.
pub type State = BTreeMap<Bytes, Bytes>;

/// A range read: its start, its end (exclusive), and the rows it returned in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// First key of the range.
    pub start: Bytes,
    /// End of the range (exclusive).
    pub end: Bytes,
    /// The rows it returned, in key order.
    pub rows: Vec<(Bytes, Bytes)>,
}

/// How a transaction ended, as its client learned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at this point of the system's order.
    Committed(u64),
    /// A definite abort (a conflict): no effect.
    Aborted,
    /// Nothing was proposed (the begin or a read failed), or a definite error: no
    /// effect. The reason is for the report.
    Failed(String),
    /// The client never learned the outcome (the reason is for the report).
    Unknown(String),
}

/// One client transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// How violations name it (e.g. `c1#4`: client 1's fourth transaction).
    pub name: String,
    /// When the client began it.
    pub invoke: Duration,
    /// When the client learned the outcome.
    pub complete: Duration,
    /// Point reads in the order made: the key and the value read (`None`: absent).
    pub reads: Vec<(Bytes, Option<Bytes>)>,
    /// Range reads.
    pub scans: Vec<Scan>,
    /// The last write per key: `Some(value)`, or `None` for a delete.
    pub writes: BTreeMap<Bytes, Option<Bytes>>,
    /// How it ended.
    pub outcome: Outcome,
}

impl Txn {
    /// A transaction with no reads, writes or outcome yet (`Failed("")`).
    pub fn new(name: impl Into<String>, invoke: Duration) -> Txn {
        Txn {
            name: name.into(),
            invoke,
            complete: invoke,
            reads: Vec::new(),
            scans: Vec::new(),
            writes: BTreeMap::new(),
            outcome: Outcome::Failed(String::new()),
        }
    }

    /// Its place in the claimed order, if it committed: `(point, read-only)`, so that
    /// at one point the read-write transaction sorts before the read-only ones.
    pub fn place(&self) -> Option<(u64, bool)> {
        match self.outcome {
            Outcome::Committed(point) => Some((point, self.writes.is_empty())),
            _ => None,
        }
    }
}

/// What a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A transaction ended with an unknown outcome.
    Indefinite,
    /// Two read-write transactions claim one point.
    DuplicatePoint,
    /// A read or scan disagrees with the replay of the claimed order.
    Read,
    /// A transaction completed before another began, yet comes after it in the order.
    RealTime,
    /// The final state differs from the replay of every committed transaction.
    Durability,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Indefinite => "liveness",
            Kind::DuplicatePoint => "distinct points",
            Kind::Read => "serializability",
            Kind::RealTime => "real time",
            Kind::Durability => "durability",
        })
    }
}

/// One violation, with its evidence in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What it breaks.
    pub kind: Kind,
    /// The transactions involved (by [`Txn::name`]); empty for the final state.
    pub txns: Vec<String>,
    /// The evidence in words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// A value for a message: UTF-8 where it is, trailing padding trimmed, `nil` for none.
pub fn show(v: Option<&[u8]>) -> String {
    v.map_or("nil".into(), |v| {
        String::from_utf8_lossy(v).trim_end().to_string()
    })
}

/// Checks `history` and, if the caller could read it, the final state. Returns every
/// violation (empty: the history is strictly serializable in its claimed order).
pub fn check(history: &[Txn], final_state: Option<&State>) -> Vec<Violation> {
    let mut bad = Vec::new();
    for t in history {
        if let Outcome::Unknown(why) = &t.outcome {
            bad.push(Violation {
                kind: Kind::Indefinite,
                txns: vec![t.name.clone()],
                message: format!("{} ended with an unknown outcome: {why}", t.name),
            });
        }
    }
    let mut committed: Vec<&Txn> = history.iter().filter(|t| t.place().is_some()).collect();
    // Stable: at one place, history order.
    committed.sort_by_key(|t| t.place());
    distinct_points(&committed, &mut bad);
    let state = replay(&committed, &mut bad);
    real_time(&committed, &mut bad);
    if let Some(fin) = final_state {
        durability(&state, fin, &mut bad);
    }
    bad
}

fn distinct_points(committed: &[&Txn], bad: &mut Vec<Violation>) {
    let mut owner: BTreeMap<u64, &Txn> = BTreeMap::new();
    for t in committed {
        let Some((point, false)) = t.place() else {
            continue;
        };
        if let Some(other) = owner.insert(point, t) {
            bad.push(Violation {
                kind: Kind::DuplicatePoint,
                txns: vec![other.name.clone(), t.name.clone()],
                message: format!(
                    "{} and {} both committed writes at point {point}",
                    other.name, t.name
                ),
            });
        }
    }
}

/// Replays `committed` (sorted by place), checking every read; returns the final state.
fn replay(committed: &[&Txn], bad: &mut Vec<Violation>) -> State {
    let mut state = State::new();
    for t in committed {
        let (point, read_only) = t.place().unwrap_or_default();
        let at = format!(
            "{} (at {point}{})",
            t.name,
            if read_only { ", read-only" } else { "" }
        );
        for (k, v) in &t.reads {
            let want = state.get(k);
            if v.as_ref() != want {
                bad.push(Violation {
                    kind: Kind::Read,
                    txns: vec![t.name.clone()],
                    message: format!(
                        "{at} read {}={} but the claimed order holds {}",
                        show(Some(k)),
                        show(v.as_deref()),
                        show(want.map(|w| &w[..]))
                    ),
                });
            }
        }
        for s in &t.scans {
            let want: Vec<(&Bytes, &Bytes)> = if s.start < s.end {
                state.range(s.start.clone()..s.end.clone()).collect()
            } else {
                Vec::new()
            };
            let same = want.len() == s.rows.len()
                && want
                    .iter()
                    .zip(&s.rows)
                    .all(|((k, v), (rk, rv))| *k == rk && *v == rv);
            if !same {
                bad.push(Violation {
                    kind: Kind::Read,
                    txns: vec![t.name.clone()],
                    message: format!(
                        "{at} scanned {}..{} = {} rows but the claimed order holds {}",
                        show(Some(&s.start)),
                        show(Some(&s.end)),
                        s.rows.len(),
                        want.len()
                    ),
                });
            }
        }
        for (k, v) in &t.writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
    state
}

/// Completed-before-invoked implies earlier in the order. Walks the transactions by
/// invocation, keeping the latest place among those completed before it.
fn real_time(committed: &[&Txn], bad: &mut Vec<Violation>) {
    let mut by_complete: Vec<&Txn> = committed.to_vec();
    by_complete.sort_by_key(|t| t.complete);
    let mut by_invoke: Vec<&Txn> = committed.to_vec();
    by_invoke.sort_by_key(|t| t.invoke);
    // The latest place completed so far. For any b, the places that may not complete
    // before b begins are those at or after b's (bar read-only ones sharing b's point
    // with a read-only b): a set closed upwards, so the latest place is a witness if
    // any transaction is.
    let mut latest: Option<(u64, bool, &Txn)> = None;
    let mut done = by_complete.iter().peekable();
    for b in by_invoke {
        while let Some(a) = done.next_if(|a| a.complete < b.invoke) {
            let (p, ro) = a.place().unwrap_or_default();
            let later = latest.map_or(true, |(lp, lro, _)| (p, ro) > (lp, lro));
            if later {
                latest = Some((p, ro, a));
            }
        }
        let Some((pa, ra, a)) = latest else {
            continue;
        };
        let (pb, rb) = b.place().unwrap_or_default();
        // a must sort before b: (pa, ra) < (pb, rb), or both read-only at one point.
        let ok = (pa, ra) < (pb, rb) || (pa == pb && ra && rb);
        if !ok {
            bad.push(Violation {
                kind: Kind::RealTime,
                txns: vec![a.name.clone(), b.name.clone()],
                message: format!(
                    "{} completed at {:?} (point {pa}) before {} began at {:?} (point {pb})",
                    a.name, a.complete, b.name, b.invoke
                ),
            });
        }
    }
}

fn durability(want: &State, found: &State, bad: &mut Vec<Violation>) {
    if want == found {
        return;
    }
    let keys: BTreeSet<&Bytes> = want.keys().chain(found.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| want.get(*k) != found.get(*k))
        .map(|k| {
            format!(
                "{}: expected {} found {}",
                show(Some(k)),
                show(want.get(k).map(|v| &v[..])),
                show(found.get(k).map(|v| &v[..]))
            )
        })
        .collect();
    bad.push(Violation {
        kind: Kind::Durability,
        txns: Vec::new(),
        message: format!(
            "the final state differs from the replay: {}",
            diff.join("; ")
        ),
    });
}
