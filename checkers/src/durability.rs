//! The durability oracle: what clients were told about their writes, checked against
//! the state a database shows after each recovery.
//!
//! ## Model
//! Each transaction writes some keys (`Some(value)`, or `None` to delete) and ends
//! *acknowledged* (committed), *rejected* (a definite abort: it has no effect) or
//! *indeterminate* (a timeout, a crash before the reply: it may or may not have
//! taken effect, all or nothing). The store starts empty (record an initial load as an
//! acknowledged transaction). Values are unique per key, so every value seen names the
//! one transaction that wrote it; [`Oracle::begin`] refuses a repeat.
//!
//! Time is the oracle's own event counter: [`begin`](Oracle::begin) is called before
//! the commit request is sent and [`acknowledge`](Oracle::acknowledge) (or another
//! outcome) after the reply arrives, so the commit happened in between. The store is
//! assumed to commit in an order that respects real time (strict serializability, or a
//! single node): if X ended before T began, T's write of a key comes after X's. Then,
//! for a transaction T known to have taken effect (acknowledged, or observed), and each
//! key T wrote, the observed state must show T's write or the write of a transaction
//! that may follow T (one that did not end before T began, and is not rejected):
//! - a value of T's → fine; another transaction's value → it must possibly follow T;
//! - the key absent → T deleted it, or a possibly-following transaction deleted it.
//!
//! Violations: a lost acknowledged write; a rejected write visible; an indeterminate
//! transaction half applied (one write visible, another contradicted); an observed
//! indeterminate transaction later gone (once seen, it is promoted and must stay); an
//! indeterminate transaction shown absent, then visible; a value nobody wrote; a
//! deleted key back with an older value.
//!
//! A transaction still in flight when the state is read may commit at any time, so it
//! is never "before" anything; [`Oracle::crash`] ends every in-flight transaction as
//! indeterminate (its client is gone; call it when the node dies, before recovery).
//! After a clean check, every indeterminate transaction that the state proves did not
//! take effect is resolved as absent, and must stay absent.
//!
//! ## Invariants
//! - Sound under the model: every violation is a state no allowed history produces.
//! - Deterministic: ordered maps only.
//!
//! ## Non-goals
//! - Completeness across keys for acknowledged transactions: two overlapping
//!   acknowledged transactions that both wrote keys a and b may each be seen last on
//!   one key. That is an isolation question, for the Elle checker.
//! - Values read during the workload are checked by [`Oracle::check_read`] but do not
//!   promote a transaction (a read may see a commit that is not durable yet).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug};

/// A transaction, numbered from 0 in `begin` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// What the client was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Begun, no reply yet: it may commit at any time.
    InFlight,
    /// Committed: its writes must be present after every recovery.
    Acknowledged,
    /// A definite abort: its writes must never be visible.
    Rejected,
    /// Unknown (a timeout, a crash): all of it took effect, or none, for good.
    Indeterminate,
}

/// What recoveries showed about a transaction that was not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Nothing yet: no recovery has shown it applied or proven it absent.
    None,
    /// Seen applied by check number `n` (1-based); it must stay.
    Applied(u64),
    /// Proven not applied by check number `n`; it must stay absent.
    Absent(u64),
}

/// What a durability violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    /// An acknowledged (or once observed) write is gone.
    LostWrite,
    /// A rejected transaction's write is visible.
    RejectedVisible,
    /// An indeterminate transaction is visible on one key and contradicted on another.
    HalfApplied,
    /// An indeterminate transaction seen applied by an earlier check is gone.
    Vanished,
    /// An indeterminate transaction proven absent by an earlier check is visible.
    Reappeared,
    /// A value no transaction wrote.
    Garbage,
    /// A deleted key is back with a value older than the delete.
    ResurrectedDelete,
    /// A transaction a check saw applied was later reported rejected.
    AppliedThenRejected,
}

/// One durability violation and its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation<K, V> {
    /// What it breaks.
    pub kind: ViolationKind,
    /// The key whose state shows it.
    pub key: K,
    /// The transaction whose write is at stake.
    pub txn: Option<TxnId>,
    /// What the state showed for `key` (`None`: absent).
    pub observed: Option<V>,
    /// The evidence in words (transactions, values, check numbers).
    pub explanation: String,
}

/// A value as a report shows it: its `Debug` form, cut to [`BRIEF_CHARS`] characters
/// with the full length said, so a padded kilobyte value does not bury the report.
pub fn brief<V: Debug + ?Sized>(value: &V) -> String {
    let full = format!("{value:?}");
    let chars = full.chars().count();
    if chars <= BRIEF_CHARS {
        return full;
    }
    let head: String = full.chars().take(BRIEF_CHARS).collect();
    format!("{head}… ({chars} chars)")
}

/// How much of a value [`brief`] shows.
pub const BRIEF_CHARS: usize = 48;

impl<K, V> fmt::Display for Violation<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.explanation)
    }
}

/// A misuse of the oracle, or the violations a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurabilityError<K, V> {
    /// No transaction has this id.
    UnknownTxn(TxnId),
    /// The transaction already has an outcome.
    AlreadyEnded {
        /// The transaction.
        txn: TxnId,
        /// The outcome it already has.
        outcome: Outcome,
    },
    /// `value` was already written to `key` by `first`.
    DuplicateValue {
        /// The key.
        key: K,
        /// The repeated value.
        value: V,
        /// The transaction that wrote it first.
        first: TxnId,
    },
    /// A check found these violations (at least one).
    Violations(Vec<Violation<K, V>>),
}

impl<K: Debug, V: Debug> fmt::Display for DurabilityError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurabilityError::UnknownTxn(t) => write!(f, "no transaction {t}"),
            DurabilityError::AlreadyEnded { txn, outcome } => {
                write!(f, "{txn} already ended {outcome:?}")
            }
            DurabilityError::DuplicateValue { key, value, first } => write!(
                f,
                "value {value:?} of key {key:?} was already written by {first}; values must be unique per key"
            ),
            DurabilityError::Violations(vs) => {
                write!(f, "{} durability violations", vs.len())?;
                for v in vs {
                    write!(f, "\n  {v}")?;
                }
                Ok(())
            }
        }
    }
}

impl<K: Debug, V: Debug> std::error::Error for DurabilityError<K, V> {}

#[derive(Debug, Clone)]
struct Txn<K, V> {
    writes: BTreeMap<K, Option<V>>,
    begin: u64,
    /// When the client learnt the outcome; `None` while in flight.
    end: Option<u64>,
    outcome: Outcome,
    evidence: Evidence,
}

impl<K, V> Txn<K, V> {
    /// Whether this transaction can commit after `other` began (it did not end first).
    fn may_follow(&self, other: &Txn<K, V>) -> bool {
        match self.end {
            None => true,
            Some(end) => end >= other.begin,
        }
    }

    /// Known to have taken effect.
    fn applied(&self) -> bool {
        self.outcome == Outcome::Acknowledged || matches!(self.evidence, Evidence::Applied(_))
    }

    /// Known to have had no effect.
    fn void(&self) -> bool {
        self.outcome == Outcome::Rejected || matches!(self.evidence, Evidence::Absent(_))
    }
}

/// The durability oracle over keys `K` and values `V`. Not thread-safe by itself: a
/// concurrent workload keeps it behind a mutex, and calls it in real-time order.
#[derive(Debug, Clone)]
pub struct Oracle<K, V> {
    txns: Vec<Txn<K, V>>,
    clock: u64,
    checks: u64,
    /// key → value → its writer.
    writer: BTreeMap<K, BTreeMap<V, TxnId>>,
    /// key → transactions that deleted it.
    deleters: BTreeMap<K, Vec<TxnId>>,
}

impl<K: Ord + Clone + Debug, V: Ord + Clone + Debug> Default for Oracle<K, V> {
    fn default() -> Self {
        Oracle::new()
    }
}

impl<K: Ord + Clone + Debug, V: Ord + Clone + Debug> Oracle<K, V> {
    /// An oracle over an empty store, with no transactions.
    pub fn new() -> Oracle<K, V> {
        Oracle {
            txns: Vec::new(),
            clock: 0,
            checks: 0,
            writer: BTreeMap::new(),
            deleters: BTreeMap::new(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn txn(&self, id: TxnId) -> Result<&Txn<K, V>, DurabilityError<K, V>> {
        self.txns
            .get(usize::try_from(id.0).unwrap_or(usize::MAX))
            .ok_or(DurabilityError::UnknownTxn(id))
    }

    fn get(&self, id: TxnId) -> &Txn<K, V> {
        &self.txns[usize::try_from(id.0).expect("ids come from begin")]
    }

    /// Starts a transaction that writes `writes`; call it before its commit is sent.
    pub fn begin(
        &mut self,
        writes: BTreeMap<K, Option<V>>,
    ) -> Result<TxnId, DurabilityError<K, V>> {
        let id = TxnId(self.txns.len() as u64);
        for (k, v) in &writes {
            if let Some(v) = v {
                if let Some(&first) = self.writer.get(k).and_then(|m| m.get(v)) {
                    return Err(DurabilityError::DuplicateValue {
                        key: k.clone(),
                        value: v.clone(),
                        first,
                    });
                }
            }
        }
        for (k, v) in &writes {
            match v {
                Some(v) => {
                    self.writer
                        .entry(k.clone())
                        .or_default()
                        .insert(v.clone(), id);
                }
                None => self.deleters.entry(k.clone()).or_default().push(id),
            }
        }
        let begin = self.tick();
        self.txns.push(Txn {
            writes,
            begin,
            end: None,
            outcome: Outcome::InFlight,
            evidence: Evidence::None,
        });
        Ok(id)
    }

    fn end(&mut self, id: TxnId, outcome: Outcome) -> Result<(), DurabilityError<K, V>> {
        let t = self.txn(id)?;
        if t.outcome != Outcome::InFlight {
            return Err(DurabilityError::AlreadyEnded {
                txn: id,
                outcome: t.outcome,
            });
        }
        let now = self.tick();
        let t = &mut self.txns[usize::try_from(id.0).expect("checked above")];
        t.outcome = outcome;
        t.end = Some(now);
        Ok(())
    }

    /// The commit was acknowledged.
    pub fn acknowledge(&mut self, id: TxnId) -> Result<(), DurabilityError<K, V>> {
        self.end(id, Outcome::Acknowledged)
    }

    /// The transaction definitely had no effect. A violation if a recovery saw it.
    pub fn reject(&mut self, id: TxnId) -> Result<(), DurabilityError<K, V>> {
        self.end(id, Outcome::Rejected)?;
        if let Evidence::Applied(n) = self.get(id).evidence {
            let (key, observed) = self
                .get(id)
                .writes
                .iter()
                .find(|(_, v)| v.is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .expect("a transaction seen applied wrote a value");
            return Err(DurabilityError::Violations(vec![Violation {
                kind: ViolationKind::AppliedThenRejected,
                key,
                txn: Some(id),
                observed,
                explanation: format!("{id} was rejected, but check {n} had seen it applied"),
            }]));
        }
        Ok(())
    }

    /// The outcome is unknown, and the transaction can no longer take effect (its node
    /// crashed, or the store returned an error). A request that may still be applied
    /// later (a timeout against a live cluster) should stay in flight instead.
    pub fn indeterminate(&mut self, id: TxnId) -> Result<(), DurabilityError<K, V>> {
        self.end(id, Outcome::Indeterminate)
    }

    /// The node crashed: every in-flight transaction is now indeterminate.
    pub fn crash(&mut self) {
        let now = self.tick();
        for t in &mut self.txns {
            if t.outcome == Outcome::InFlight {
                t.outcome = Outcome::Indeterminate;
                t.end = Some(now);
            }
        }
    }

    /// What the client of `id` was told (`None`: no such transaction).
    pub fn outcome(&self, id: TxnId) -> Option<Outcome> {
        self.txn(id).ok().map(|t| t.outcome)
    }

    /// What recoveries showed about `id` (`None`: no such transaction).
    pub fn evidence(&self, id: TxnId) -> Option<Evidence> {
        self.txn(id).ok().map(|t| t.evidence)
    }

    /// Checks a value read during the workload: some transaction not known to have had
    /// no effect wrote it under this key.
    pub fn check_read(&self, key: &K, value: &V) -> Result<(), Violation<K, V>> {
        self.attribute(key, value).map(|_| ())
    }

    /// The writer of `key = value`, if it may be visible.
    fn attribute(&self, key: &K, value: &V) -> Result<TxnId, Violation<K, V>> {
        let violation = |kind, txn, explanation| Violation {
            kind,
            key: key.clone(),
            txn,
            observed: Some(value.clone()),
            explanation,
        };
        let Some(&id) = self.writer.get(key).and_then(|m| m.get(value)) else {
            return Err(violation(
                ViolationKind::Garbage,
                None,
                format!(
                    "{key:?} = {}, a value no transaction wrote to it",
                    brief(value)
                ),
            ));
        };
        let t = self.get(id);
        match (t.outcome, t.evidence) {
            (Outcome::Rejected, _) => Err(violation(
                ViolationKind::RejectedVisible,
                Some(id),
                format!(
                    "{key:?} = {}, written by {id}, which was rejected",
                    brief(value)
                ),
            )),
            (_, Evidence::Absent(n)) => Err(violation(
                ViolationKind::Reappeared,
                Some(id),
                format!(
                    "{key:?} = {}, written by {id}, which check {n} proved never applied",
                    brief(value)
                ),
            )),
            _ => Ok(id),
        }
    }

    /// Whether, if `t` took effect, `observed` can show this for `key` (`w` is `t`'s
    /// write of it): `t`'s write, or one by a transaction that may follow `t`.
    fn survives(
        &self,
        t: &Txn<K, V>,
        key: &K,
        w: &Option<V>,
        observed: &BTreeMap<K, V>,
    ) -> Result<(), String> {
        match observed.get(key) {
            Some(v) if w.as_ref() == Some(v) => Ok(()),
            // A writer known to have had no effect is reported on its own; the order
            // question is the same.
            Some(v) => match self.writer.get(key).and_then(|m| m.get(v)) {
                None => Err(format!(
                    "{key:?} shows {}, which no transaction wrote",
                    brief(v)
                )),
                Some(&x) if self.get(x).may_follow(t) => Ok(()),
                Some(&x) => Err(format!(
                    "{key:?} shows {} by {x}, which ended before it began",
                    brief(v)
                )),
            },
            None if w.is_none() => Ok(()),
            None => {
                let deleted = self
                    .deleters
                    .get(key)
                    .into_iter()
                    .flatten()
                    .map(|&d| self.get(d))
                    .any(|d| !d.void() && d.may_follow(t));
                if deleted {
                    Ok(())
                } else {
                    Err(format!(
                        "{key:?} is absent, and no transaction that may follow it deleted it"
                    ))
                }
            }
        }
    }

    /// Checks the state seen after a recovery (every key of the store), then learns
    /// from it: observed transactions must stay, disproven ones stay absent.
    pub fn check(&mut self, observed: &BTreeMap<K, V>) -> Result<(), DurabilityError<K, V>> {
        self.checks += 1;
        let n = self.checks;
        let mut violations = Vec::new();
        let mut seen = BTreeSet::new();
        for (k, v) in observed {
            match self.attribute(k, v) {
                Ok(id) => {
                    seen.insert(id);
                }
                Err(e) => violations.push(e),
            }
        }
        for (i, t) in self.txns.iter().enumerate() {
            let id = TxnId(i as u64);
            let newly = seen.contains(&id) && !t.applied();
            if !(t.applied() || newly) {
                continue;
            }
            for (k, w) in &t.writes {
                let Err(why) = self.survives(t, k, w, observed) else {
                    continue;
                };
                let write = match w {
                    Some(v) => format!("{k:?} = {}", brief(v)),
                    None => format!("the delete of {k:?}"),
                };
                let (kind, what) = match (w, t.outcome, t.evidence) {
                    _ if newly => (
                        ViolationKind::HalfApplied,
                        format!("{id} is visible on another key, so applied, and wrote {write}"),
                    ),
                    (None, _, _) => (
                        ViolationKind::ResurrectedDelete,
                        format!("{id} deleted {k:?}"),
                    ),
                    (_, Outcome::Acknowledged, _) => (
                        ViolationKind::LostWrite,
                        format!("acknowledged {id} wrote {write}"),
                    ),
                    (_, _, Evidence::Applied(m)) => (
                        ViolationKind::Vanished,
                        format!("{id}, seen applied by check {m}, wrote {write}"),
                    ),
                    _ => unreachable!("only acknowledged or observed transactions are checked"),
                };
                violations.push(Violation {
                    kind,
                    key: k.clone(),
                    txn: Some(id),
                    observed: observed.get(k).cloned(),
                    explanation: format!("check {n}: {what}; {why}"),
                });
            }
        }
        if !violations.is_empty() {
            return Err(DurabilityError::Violations(violations));
        }
        self.learn(n, &seen, observed);
        Ok(())
    }

    fn learn(&mut self, n: u64, seen: &BTreeSet<TxnId>, observed: &BTreeMap<K, V>) {
        let mut absent = Vec::new();
        for (i, t) in self.txns.iter().enumerate() {
            let id = TxnId(i as u64);
            if t.outcome != Outcome::Indeterminate
                || t.evidence != Evidence::None
                || seen.contains(&id)
            {
                continue;
            }
            if t.writes
                .iter()
                .any(|(k, w)| self.survives(t, k, w, observed).is_err())
            {
                absent.push(i);
            }
        }
        for i in absent {
            self.txns[i].evidence = Evidence::Absent(n);
        }
        for id in seen {
            let t = &mut self.txns[usize::try_from(id.0).expect("ids come from begin")];
            if t.outcome != Outcome::Acknowledged && t.evidence == Evidence::None {
                t.evidence = Evidence::Applied(n);
            }
        }
    }
}
