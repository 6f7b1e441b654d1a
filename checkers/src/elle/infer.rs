//! Inference for the Elle checker: who appended what, the reads, the version order of
//! each key, element faults, and the dependency graph with the prose for each edge.

use std::collections::{BTreeMap, BTreeSet};

use super::{Anomaly, AnomalyKind};
use crate::graph::{Edge, EdgeKind, Graph, TxnId};
use crate::history::{Key, MicroOp, Outcome, ReadValue, Txn};

/// Who appended an element.
struct Appender {
    txn: TxnId,
    outcome: Outcome,
    /// Whether it was the transaction's last append to the key.
    last: bool,
}

/// A read by an `ok` transaction.
struct Read<'a> {
    txn: TxnId,
    key: &'a Key,
    list: &'a [i64],
    /// How many leading elements were written by others (the rest are the reader's own
    /// appends, made earlier in the same transaction).
    observed: usize,
}

/// What is wrong with the elements of a list, by position.
#[derive(Default)]
struct Faults {
    /// Positions of elements that repeat an earlier one.
    dups: Vec<usize>,
    /// Positions of elements nobody appended.
    garbage: Vec<usize>,
    /// Positions of elements appended by failed transactions.
    failed: Vec<usize>,
}

/// `[1, 2, 3]`, or `[1, 2, 3, 4, …, 98, 99] (99 elements)` for a long list.
fn show(list: &[i64]) -> String {
    const HEAD: usize = 6;
    if list.len() <= HEAD + 3 {
        return format!("{list:?}");
    }
    let head: Vec<String> = list[..HEAD].iter().map(i64::to_string).collect();
    let tail: Vec<String> = list[list.len() - 2..].iter().map(i64::to_string).collect();
    format!(
        "[{}, …, {}] ({} elements)",
        head.join(", "),
        tail.join(", "),
        list.len()
    )
}

#[derive(Default)]
pub(super) struct Checker<'a> {
    /// key → element → who appended it.
    appenders: BTreeMap<&'a str, BTreeMap<i64, Appender>>,
    reads: Vec<Read<'a>>,
    /// key → its version order (its longest read).
    orders: BTreeMap<&'a Key, &'a [i64]>,
    /// Keys whose order is unusable (incompatible reads, duplicates).
    incompatible: BTreeSet<&'a Key>,
    /// Transactions one of whose appends some read saw.
    observed: BTreeSet<TxnId>,
    pub(super) graph: Graph,
    /// Prose for each edge: (from, to, edge) → why.
    pub(super) why: BTreeMap<(TxnId, TxnId, Edge), String>,
    pub(super) anomalies: Vec<Anomaly>,
}

impl<'a> Checker<'a> {
    fn report(&mut self, kind: AnomalyKind, explanation: String) {
        self.anomalies.push(Anomaly {
            kind,
            cycle: Vec::new(),
            explanation,
        });
    }

    fn appender(&self, k: &str, v: i64) -> Option<&Appender> {
        self.appenders.get(k)?.get(&v)
    }

    pub(super) fn index_appends(&mut self, txns: &'a [Txn<'a>]) {
        for t in txns {
            for (i, op) in t.ops.iter().enumerate() {
                match op {
                    MicroOp::Append(k, v) => {
                        let last = !t.ops[i + 1..]
                            .iter()
                            .any(|o| matches!(o, MicroOp::Append(k2, _) if k2 == k));
                        if let Some(first) = self.appender(k, *v) {
                            let first = first.txn;
                            self.report(
                                AnomalyKind::Malformed,
                                format!("T{first} and T{} both append {v} to {k}; list-append needs unique elements", t.id),
                            );
                            continue;
                        }
                        let appender = Appender {
                            txn: t.id,
                            outcome: t.outcome,
                            last,
                        };
                        self.appenders.entry(k).or_default().insert(*v, appender);
                    }
                    MicroOp::Write(..) | MicroOp::Cas(..) | MicroOp::Delete(..) => self.report(
                        AnomalyKind::Malformed,
                        format!(
                            "T{} has the register op {}; this checker needs list-append",
                            t.id,
                            crate::history::json(op)
                        ),
                    ),
                    MicroOp::Read(..) => {}
                }
            }
        }
    }

    /// The reads of `ok` transactions; reports internal and malformed reads.
    pub(super) fn collect_reads(&mut self, txns: &'a [Txn<'a>]) {
        for t in txns.iter().filter(|t| t.outcome == Outcome::Ok) {
            let mut own: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for op in t.ops {
                let (k, list): (&Key, &[i64]) = match op {
                    MicroOp::Append(k, v) => {
                        own.entry(k).or_default().push(*v);
                        continue;
                    }
                    MicroOp::Read(k, None) => (k, &[]),
                    MicroOp::Read(k, Some(ReadValue::List(l))) => (k, l),
                    MicroOp::Read(k, Some(ReadValue::Int(x))) => {
                        self.report(
                            AnomalyKind::Malformed,
                            format!(
                                "T{} read {k} as the integer {x}; list-append reads lists",
                                t.id
                            ),
                        );
                        continue;
                    }
                    MicroOp::Write(..) | MicroOp::Cas(..) | MicroOp::Delete(..) => continue,
                };
                let mine = own.get(k.as_str()).map_or(&[][..], Vec::as_slice);
                let observed = if list.ends_with(mine) {
                    list.len() - mine.len()
                } else {
                    self.report(
                        AnomalyKind::Internal,
                        format!("T{} appended {mine:?} to {k}, then read {k} = {} without them at the end", t.id, show(list)),
                    );
                    list.len()
                };
                self.reads.push(Read {
                    txn: t.id,
                    key: k,
                    list,
                    observed,
                });
            }
        }
    }

    fn faults(&self, k: &str, list: &[i64]) -> Faults {
        let mut f = Faults::default();
        let mut seen = BTreeSet::new();
        for (i, v) in list.iter().enumerate() {
            if !seen.insert(*v) {
                f.dups.push(i);
            }
            match self.appender(k, *v) {
                None => f.garbage.push(i),
                Some(a) if a.outcome == Outcome::Fail => f.failed.push(i),
                Some(_) => {}
            }
        }
        f
    }

    /// Reports the faults among the first `r.list.len()` positions of `faults` (the
    /// faults of `r`'s list, or of a list `r`'s is a prefix of), and G1b.
    fn report_faults(&mut self, r: &Read<'a>, faults: &Faults) {
        let (k, n, list) = (r.key, r.list.len(), show(r.list));
        let within = |ps: &[usize]| -> Vec<i64> {
            ps.iter()
                .take_while(|&&p| p < n)
                .map(|&p| r.list[p])
                .collect()
        };
        let dups = within(&faults.dups);
        if !dups.is_empty() {
            self.report(
                AnomalyKind::DuplicateElements,
                format!(
                    "T{} read {k} = {list}, which holds {dups:?} more than once",
                    r.txn
                ),
            );
        }
        let garbage = within(&faults.garbage);
        if !garbage.is_empty() {
            let vs: Vec<String> = garbage.iter().map(i64::to_string).collect();
            self.report(
                AnomalyKind::GarbageRead,
                format!(
                    "T{} read {k} = {list}, but nobody appended {} to {k}",
                    r.txn,
                    vs.join(", ")
                ),
            );
        }
        let failed = within(&faults.failed);
        if let Some(&v) = failed.first() {
            let w = self.appender(k, v).map_or(0, |a| a.txn);
            let more = match failed.len() {
                1 => String::new(),
                m => format!(" (and {} more elements of failed transactions)", m - 1),
            };
            self.report(
                AnomalyKind::G1a,
                format!(
                    "T{} read {k} = {list}, but {v} was appended by T{w}, which failed{more}",
                    r.txn
                ),
            );
        }
        let Some(last) = r.observed.checked_sub(1).map(|i| r.list[i]) else {
            return;
        };
        if let Some(a) = self.appender(k, last) {
            if a.txn != r.txn && !a.last && a.outcome != Outcome::Fail {
                let w = a.txn;
                self.report(
                    AnomalyKind::G1b,
                    format!("T{} read {k} = {list}, ending on {last}, an intermediate append of T{w}, which appended to {k} again later", r.txn),
                );
            }
        }
    }

    /// The longest read of each key is its order; every read must be a prefix of it.
    /// Element faults are found once per key, on the order, and reported per read.
    pub(super) fn infer_orders(&mut self) {
        let reads = std::mem::take(&mut self.reads);
        let mut longest: BTreeMap<&'a Key, &Read<'a>> = BTreeMap::new();
        for r in &reads {
            let best = longest.entry(r.key).or_insert(r);
            if r.list.len() > best.list.len() {
                *best = r;
            }
        }
        let faults: BTreeMap<&Key, Faults> = longest
            .iter()
            .map(|(&k, r)| (k, self.faults(k, r.list)))
            .collect();
        let mut bad = Vec::new();
        for r in &reads {
            let best = longest[r.key];
            if best.list.starts_with(r.list) {
                self.report_faults(r, &faults[r.key]);
                continue;
            }
            bad.push(format!(
                "T{} read {} = {} and T{} read {}: neither is a prefix of the other",
                r.txn,
                r.key,
                show(r.list),
                best.txn,
                show(best.list)
            ));
            self.incompatible.insert(r.key);
            let own = self.faults(r.key, r.list);
            self.report_faults(r, &own);
            self.observe(r.key, r.list);
        }
        for (&k, r) in &longest {
            if !faults[k].dups.is_empty() {
                self.incompatible.insert(k);
            }
            self.observe(k, r.list);
            self.orders.insert(k, r.list);
        }
        for b in bad {
            self.report(AnomalyKind::IncompatibleOrder, b);
        }
        self.reads = reads;
    }

    /// Notes the appenders of `list`'s elements as observed.
    fn observe(&mut self, k: &str, list: &[i64]) {
        let Some(by_value) = self.appenders.get(k) else {
            return;
        };
        self.observed
            .extend(list.iter().filter_map(|v| by_value.get(v)).map(|a| a.txn));
    }

    fn edge(&mut self, from: TxnId, to: TxnId, kind: EdgeKind, key: &Key, why: String) {
        if from == to {
            return;
        }
        let edge = Edge {
            kind,
            key: key.clone(),
        };
        self.why.entry((from, to, edge.clone())).or_insert(why);
        self.graph.add(from, to, edge);
    }

    /// The committed appender of `k = v`: an ok transaction, or an observed info one.
    fn writer(&self, k: &str, v: i64) -> Option<TxnId> {
        let a = self.appender(k, v)?;
        let committed = a.outcome == Outcome::Ok
            || (a.outcome == Outcome::Info && self.observed.contains(&a.txn));
        committed.then_some(a.txn)
    }

    pub(super) fn build_graph(&mut self, txns: &[Txn<'_>]) {
        let orders = std::mem::take(&mut self.orders);
        for (&k, order) in &orders {
            if self.incompatible.contains(k) {
                continue;
            }
            for w in order.windows(2) {
                if let (Some(a), Some(b)) = (self.writer(k, w[0]), self.writer(k, w[1])) {
                    self.edge(
                        a,
                        b,
                        EdgeKind::Ww,
                        k,
                        format!("T{a} appended {} to {k}, then T{b} appended {}", w[0], w[1]),
                    );
                }
            }
        }
        let reads = std::mem::take(&mut self.reads);
        // Key → the transactions that read all of its order.
        let mut full_readers: BTreeMap<&Key, Vec<TxnId>> = BTreeMap::new();
        for r in &reads {
            let k = r.key;
            let seen = &r.list[..r.observed];
            if let Some(&last) = seen.last() {
                if let Some(w) = self.writer(k, last) {
                    self.edge(
                        w,
                        r.txn,
                        EdgeKind::Wr,
                        k,
                        format!(
                            "T{} read {k} = {}, ending on T{w}'s {last}",
                            r.txn,
                            show(r.list)
                        ),
                    );
                }
            }
            if self.incompatible.contains(k) {
                continue;
            }
            let order = orders.get(k).copied().unwrap_or_default();
            if order.len() == r.list.len() {
                full_readers.entry(k).or_default().push(r.txn);
            }
            let next = order.get(seen.len()).copied();
            if let Some((u, n)) = next.and_then(|n| self.writer(k, n).map(|u| (u, n))) {
                self.edge(
                    r.txn,
                    u,
                    EdgeKind::Rw,
                    k,
                    format!(
                        "T{} read {k} = {}, and T{u} appended the next element {n}",
                        r.txn,
                        show(r.list)
                    ),
                );
            }
        }
        // Ok appends nobody saw: after every observed element of their key.
        let in_order: BTreeMap<&Key, BTreeSet<i64>> = orders
            .iter()
            .map(|(&k, o)| (k, o.iter().copied().collect()))
            .collect();
        for t in txns.iter().filter(|t| t.outcome == Outcome::Ok) {
            for op in t.ops {
                let MicroOp::Append(k, v) = op else { continue };
                let seen = in_order.get(k).is_some_and(|o| o.contains(v));
                if seen || self.incompatible.contains(k) {
                    continue;
                }
                let order = orders.get(k).copied().unwrap_or_default();
                if let Some(&last) = order.last() {
                    if let Some(a) = self.writer(k, last) {
                        self.edge(a, t.id, EdgeKind::Ww, k, format!("T{a} appended {last}, the last element ever read of {k}; T{} appended {v}, which no read saw, so later", t.id));
                    }
                }
                for &r in full_readers.get(k).into_iter().flatten() {
                    self.edge(
                        r,
                        t.id,
                        EdgeKind::Rw,
                        k,
                        format!(
                            "T{r} read {k} = {}, without T{}'s {v}, which no read saw",
                            show(order),
                            t.id
                        ),
                    );
                }
            }
        }
        self.reads = reads;
        self.orders = orders;
    }
}
