//! An Elle-style serializability checker for list-append histories.
//!
//! ## Model
//! Every key holds a list; transactions append unique integers to keys and read whole
//! lists. Because a read returns the whole list, it reveals the *version order* of its
//! key: the longest read of a key is the order, and every other read must be a prefix
//! of it. The order comes only from what clients read, never from the engine's
//! timestamps, so a checker bug and an engine bug cannot cancel out.
//!
//! From the orders the checker builds the dependency graph (Adya) over the committed
//! transactions: `ok` ones, and `info` ones one of whose appends some `ok` transaction
//! read (an indeterminate transaction that was observed committed):
//! - `T -ww(k)-> U`: U appended the element right after T's in k's order;
//! - `T -wr(k)-> U`: U read k, and the last element (not counting U's own appends) was
//!   appended by T;
//! - `T -rw(k)-> U`: T read k, and U appended the element that comes next.
//!
//! An `ok` append that no read ever saw follows every observed element of its key (had
//! it come before, the longest read would contain it), so the appender of the last
//! observed element has a ww edge to it and every read of the whole order an rw edge.
//!
//! A cycle is an anomaly, named after the edges it needs: only ww → G0; ww and wr →
//! G1c; exactly one rw → G-single; more → G2. Cycles are searched per strongly
//! connected component (Tarjan), through a candidate edge of the class (wr for G1c, rw
//! for G-single and G2) closed by a breadth-first shortest path, and each component
//! reports the shortest cycle found for each class. Non-cycle anomalies: G1a (a read
//! saw an element appended by a failed transaction), G1b (a read ended on an element
//! that its appender later followed with another append to the same key), duplicate
//! elements, garbage (an element nobody appended), incompatible orders (two reads that
//! are not prefixes of one another), internal (a transaction's read misses its own
//! earlier appends), malformed (register micro-ops, an element appended twice).
//!
//! Only `ok` transactions' reads count (an `info` or `fail` completion has no read
//! results). Element faults are found once per key, on its order, and reported for
//! every read whose prefix holds them, so the cost is one pass over each read plus the
//! graph, not one lookup per element of every read.
//!
//! ## Invariants
//! - Deterministic: ordered maps only; the same history gives the same report.
//! - Sound: every reported cycle is made of edges the history proves (given unique
//!   appended elements, which the checker verifies).
//!
//! ## Non-goals
//! - Strict serializability (real-time edges), predicates, and Elle's finer names for
//!   some anomalies (a lost update shows up as the G-single it is; no separate
//!   "lost-update" or "dirty-update" kinds). A key with incompatible reads or
//!   duplicate elements is reported and left out of the ww/rw edges.
//! - Exhaustiveness in huge components: at most [`MAX_CANDIDATES`] candidate edges are
//!   tried per component and class, so a G-single hiding among more rw edges than that
//!   may be reported as G2 instead.

use std::collections::BTreeSet;
use std::fmt;

mod infer;

use super::graph::show_cycle;
pub use super::graph::{Edge, EdgeKind, Step, TxnId};
use super::history::History;
use infer::Checker;

/// Candidate edges tried per component and anomaly class.
pub const MAX_CANDIDATES: usize = 256;

/// The anomalies the checker names (Adya's, plus the history faults it finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// Write cycle: a cycle of ww edges only (dirty write).
    G0,
    /// Aborted read: a read saw an element appended by a failed transaction.
    G1a,
    /// Intermediate read: a read ended on an element its appender later followed.
    G1b,
    /// Circular information flow: a cycle of ww and wr edges.
    G1c,
    /// Read skew: a cycle with exactly one rw edge.
    GSingle,
    /// Anti-dependency cycle: a cycle with more than one rw edge (write skew).
    G2,
    /// Two reads of a key, neither a prefix of the other.
    IncompatibleOrder,
    /// An element appears twice in one read.
    DuplicateElements,
    /// A read holds an element nobody appended.
    GarbageRead,
    /// A transaction's read misses its own earlier appends.
    Internal,
    /// Not a list-append history (register micro-ops, an element appended twice).
    Malformed,
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnomalyKind::G0 => "G0",
            AnomalyKind::G1a => "G1a",
            AnomalyKind::G1b => "G1b",
            AnomalyKind::G1c => "G1c",
            AnomalyKind::GSingle => "G-single",
            AnomalyKind::G2 => "G2",
            AnomalyKind::IncompatibleOrder => "incompatible-order",
            AnomalyKind::DuplicateElements => "duplicate-elements",
            AnomalyKind::GarbageRead => "garbage-read",
            AnomalyKind::Internal => "internal",
            AnomalyKind::Malformed => "malformed",
        })
    }
}

/// One anomaly and its proof: the cycle (empty for non-cycle anomalies) and prose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// What it is.
    pub kind: AnomalyKind,
    /// The cycle that proves it (empty for a non-cycle anomaly).
    pub cycle: Vec<Step>,
    /// The evidence in words.
    pub explanation: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cycle.is_empty() {
            write!(f, "{}: {}", self.kind, self.explanation)
        } else {
            write!(
                f,
                "{}: {}\n    {}",
                self.kind,
                show_cycle(&self.cycle),
                self.explanation
            )
        }
    }
}

/// The verdict on a history: valid, or the anomalies found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// No anomaly was found.
    pub valid: bool,
    /// Every anomaly found, in a deterministic order.
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// The anomalies of one kind.
    pub fn of(&self, kind: AnomalyKind) -> impl Iterator<Item = &Anomaly> {
        self.anomalies.iter().filter(move |a| a.kind == kind)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.valid {
            return f.write_str("valid: no anomalies");
        }
        write!(f, "invalid: {} anomalies", self.anomalies.len())?;
        for a in &self.anomalies {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

/// Checks a list-append history.
pub fn check(history: &History) -> Report {
    let txns = history.txns();
    let mut c = Checker::default();
    c.index_appends(&txns);
    c.collect_reads(&txns);
    c.infer_orders();
    c.build_graph(&txns);
    c.find_cycles();
    Report {
        valid: c.anomalies.is_empty(),
        anomalies: c.anomalies,
    }
}

impl Checker<'_> {
    fn find_cycles(&mut self) {
        let ww = |k: EdgeKind| k == EdgeKind::Ww;
        let wwr = |k: EdgeKind| k != EdgeKind::Rw;
        let all = |_: EdgeKind| true;
        for scc in self.graph.sccs(&ww) {
            let start = |l: &BTreeSet<Edge>| l.iter().any(|e| e.kind == EdgeKind::Ww);
            self.search(&scc, AnomalyKind::G0, &start, &ww, &ww);
        }
        for scc in self.graph.sccs(&wwr) {
            // Start on a pair that can only be wr (one with ww is a G0 candidate).
            let start = |l: &BTreeSet<Edge>| {
                l.iter().any(|e| e.kind == EdgeKind::Wr)
                    && !l.iter().any(|e| e.kind == EdgeKind::Ww)
            };
            self.search(&scc, AnomalyKind::G1c, &start, &wwr, &|k| k == EdgeKind::Wr);
        }
        for scc in self.graph.sccs(&all) {
            let start = |l: &BTreeSet<Edge>| l.iter().all(|e| e.kind == EdgeKind::Rw);
            if !self.search(&scc, AnomalyKind::GSingle, &start, &wwr, &|k| {
                k == EdgeKind::Rw
            }) {
                self.search(&scc, AnomalyKind::G2, &start, &all, &|k| k == EdgeKind::Rw);
            }
        }
    }

    /// Looks in `scc` for the shortest cycle of class `kind`: a start pair whose labels
    /// pass `start` (labelled with its edge of kind `first`), closed by a shortest path
    /// over `path` edges. Reports it and returns true if found.
    fn search(
        &mut self,
        scc: &BTreeSet<TxnId>,
        kind: AnomalyKind,
        start: &dyn Fn(&BTreeSet<Edge>) -> bool,
        path: &dyn Fn(EdgeKind) -> bool,
        first: &dyn Fn(EdgeKind) -> bool,
    ) -> bool {
        let candidates: Vec<(TxnId, TxnId)> = scc
            .iter()
            .flat_map(|&a| {
                self.graph
                    .out(a)
                    .filter(|(b, l)| scc.contains(b) && start(l))
                    .map(move |(b, _)| (a, b))
            })
            .take(MAX_CANDIDATES)
            .collect();
        let mut best: Option<Vec<Step>> = None;
        for (a, b) in candidates {
            let Some(head) = self.graph.step(a, b, first) else {
                continue;
            };
            let Some(rest) = self.graph.shortest_path(b, a, scc, path) else {
                continue;
            };
            let shorter = match &best {
                Some(c) => rest.len() + 1 < c.len(),
                None => true,
            };
            if shorter {
                let mut cycle = vec![head];
                cycle.extend(rest);
                best = Some(cycle);
            }
        }
        let Some(cycle) = best else { return false };
        let rw = cycle.iter().filter(|s| s.edge.kind == EdgeKind::Rw).count();
        let kind = if kind == AnomalyKind::G2 && rw == 1 {
            AnomalyKind::GSingle
        } else {
            kind
        };
        let explanation = cycle
            .iter()
            .map(|s| self.why[&(s.from, s.to, s.edge.clone())].clone())
            .collect::<Vec<_>>()
            .join("; ");
        self.anomalies.push(Anomaly {
            kind,
            cycle,
            explanation,
        });
        true
    }
}
