//! The dependency graph of the Elle checker: transactions as nodes, labelled edges
//! (ww, wr, rw per key), Tarjan's strongly connected components and a breadth-first
//! search for a short cycle through a chosen edge.
//!
//! ## Invariants
//! - Ordered maps only, so components, cycles and their order are the same every run.
//! - Iterative: a history of a million transactions cannot overflow the stack.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::history::Key;

/// A transaction's name: its invocation's history index.
pub type TxnId = u64;

/// A dependency between two transactions, Adya's notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Write-write: the target appended the next version after the source's.
    Ww,
    /// Write-read: the target read the version the source wrote.
    Wr,
    /// Read-write (anti-dependency): the source read a version the target overwrote.
    Rw,
}

/// A labelled edge: the kind and the key it was inferred from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The dependency.
    pub kind: EdgeKind,
    /// The key it was inferred from.
    pub key: Key,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
        };
        write!(f, "{kind}({})", self.key)
    }
}

/// One step of a cycle: `from -edge-> to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The source transaction.
    pub from: TxnId,
    /// The dependency.
    pub edge: Edge,
    /// The target transaction.
    pub to: TxnId,
}

#[derive(Debug, Default)]
pub struct Graph {
    adj: BTreeMap<TxnId, BTreeMap<TxnId, BTreeSet<Edge>>>,
}

impl Graph {
    /// Adds `from -edge-> to`; self-loops are dropped (a transaction is not its own
    /// dependency).
    pub fn add(&mut self, from: TxnId, to: TxnId, edge: Edge) {
        if from != to {
            self.adj
                .entry(from)
                .or_default()
                .entry(to)
                .or_default()
                .insert(edge);
        }
    }

    /// The out-edges of `node`: (target, labels).
    pub fn out(&self, node: TxnId) -> impl Iterator<Item = (TxnId, &BTreeSet<Edge>)> {
        self.adj
            .get(&node)
            .into_iter()
            .flatten()
            .map(|(&b, labels)| (b, labels))
    }

    fn successors<'a>(
        &'a self,
        node: TxnId,
        allow: &'a dyn Fn(EdgeKind) -> bool,
    ) -> impl Iterator<Item = TxnId> + 'a {
        self.out(node)
            .filter(move |(_, labels)| labels.iter().any(|e| allow(e.kind)))
            .map(|(b, _)| b)
    }

    /// The strongly connected components with more than one node, over the edges whose
    /// kind passes `allow` (Tarjan's algorithm, iterative).
    pub fn sccs(&self, allow: &dyn Fn(EdgeKind) -> bool) -> Vec<BTreeSet<TxnId>> {
        let mut index: BTreeMap<TxnId, (usize, usize)> = BTreeMap::new(); // (index, lowlink)
        let mut on_stack: BTreeSet<TxnId> = BTreeSet::new();
        let mut stack: Vec<TxnId> = Vec::new();
        let mut out = Vec::new();
        let mut next = 0usize;
        for &root in self.adj.keys() {
            if index.contains_key(&root) {
                continue;
            }
            // (node, its successors still to visit)
            let mut work: Vec<(TxnId, Vec<TxnId>)> = Vec::new();
            let visit = |n: TxnId,
                         index: &mut BTreeMap<TxnId, (usize, usize)>,
                         next: &mut usize,
                         stack: &mut Vec<TxnId>,
                         on_stack: &mut BTreeSet<TxnId>| {
                index.insert(n, (*next, *next));
                *next += 1;
                stack.push(n);
                on_stack.insert(n);
                let mut succ: Vec<TxnId> = self.successors(n, allow).collect();
                succ.reverse();
                (n, succ)
            };
            work.push(visit(
                root,
                &mut index,
                &mut next,
                &mut stack,
                &mut on_stack,
            ));
            while let Some((node, succ)) = work.last_mut() {
                let node = *node;
                if let Some(s) = succ.pop() {
                    match index.get(&s) {
                        None => {
                            work.push(visit(s, &mut index, &mut next, &mut stack, &mut on_stack))
                        }
                        Some(&(si, _)) if on_stack.contains(&s) => {
                            let entry = index.get_mut(&node).expect("visited");
                            entry.1 = entry.1.min(si);
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                work.pop();
                let (ni, nl) = index[&node];
                if let Some((parent, _)) = work.last() {
                    let entry = index.get_mut(parent).expect("visited");
                    entry.1 = entry.1.min(nl);
                }
                if ni == nl {
                    let mut scc = BTreeSet::new();
                    while let Some(m) = stack.pop() {
                        on_stack.remove(&m);
                        scc.insert(m);
                        if m == node {
                            break;
                        }
                    }
                    if scc.len() > 1 {
                        out.push(scc);
                    }
                }
            }
        }
        out
    }

    /// The shortest path `from → … → to` inside `within`, over edges whose kind passes
    /// `allow`; each step is labelled with its smallest allowed edge (ww before wr
    /// before rw), so a cycle is classified by the weakest dependencies that prove it.
    pub fn shortest_path(
        &self,
        from: TxnId,
        to: TxnId,
        within: &BTreeSet<TxnId>,
        allow: &dyn Fn(EdgeKind) -> bool,
    ) -> Option<Vec<Step>> {
        let mut parent: BTreeMap<TxnId, TxnId> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut path = Vec::new();
                let mut cur = to;
                while cur != from {
                    let p = parent[&cur];
                    path.push(self.step(p, cur, allow)?);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for s in self.successors(n, allow) {
                if within.contains(&s) && seen.insert(s) {
                    parent.insert(s, n);
                    queue.push_back(s);
                }
            }
        }
        None
    }

    /// `from -e-> to` with the smallest label `e` that passes `allow`.
    pub fn step(&self, from: TxnId, to: TxnId, allow: &dyn Fn(EdgeKind) -> bool) -> Option<Step> {
        let edge = self
            .adj
            .get(&from)?
            .get(&to)?
            .iter()
            .find(|e| allow(e.kind))?
            .clone();
        Some(Step { from, edge, to })
    }
}

/// `T1 -ww(x)-> T2 -rw(y)-> T1`.
pub fn show_cycle(cycle: &[Step]) -> String {
    let mut s = String::new();
    for (i, step) in cycle.iter().enumerate() {
        if i == 0 {
            s.push_str(&format!("T{}", step.from));
        }
        s.push_str(&format!(" -{}-> T{}", step.edge, step.to));
    }
    s
}
