//! The checker proper: per-node tracks, the leaders' logs at election, the committed
//! and applied entries of the whole group, and every entry identity ever seen.

use std::collections::{BTreeMap, VecDeque};

use super::{EntryId, Event, NodeView, Violation};
use crate::raft::{Index, NodeId, Term};

#[derive(Debug, Clone, Default)]
struct Track {
    term: Term,
    leader_of: Option<Term>,
    start: (Index, Term),
    log: Vec<EntryId>,
    commit: Index,
    applied: Index,
}

impl Track {
    fn last_index(&self) -> Index {
        self.start.0 + self.log.len() as Index
    }

    fn entry(&self, index: Index) -> Option<EntryId> {
        let k = index.checked_sub(self.start.0 + 1)?;
        self.log.get(k as usize).copied()
    }
}

#[derive(Debug, Clone)]
struct LeaderRecord {
    node: NodeId,
    start: (Index, Term),
    log: Vec<EntryId>,
}

impl LeaderRecord {
    /// Whether the leader's log (at election) holds `id` or covers it by its snapshot.
    fn holds(&self, id: &EntryId) -> bool {
        if id.index < self.start.0 {
            return true;
        }
        if id.index == self.start.0 {
            return id.term == self.start.1;
        }
        let k = (id.index - self.start.0 - 1) as usize;
        self.log.get(k) == Some(id)
    }
}

/// Checks the safety properties over a stream of events from every node.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    nodes: BTreeMap<NodeId, Track>,
    leaders: BTreeMap<Term, LeaderRecord>,
    /// Committed entries, with the term they were first seen committed in.
    committed: BTreeMap<Index, (EntryId, Term)>,
    applied: BTreeMap<Index, (NodeId, EntryId)>,
    /// Every entry identity ever seen → (digest, previous entry's term).
    ids: BTreeMap<(Index, Term), (u64, Term)>,
    events: u64,
    recent: VecDeque<String>,
}

const RECENT: usize = 40;

impl SafetyChecker {
    /// A checker that has seen nothing.
    pub fn new() -> SafetyChecker {
        SafetyChecker::default()
    }

    /// Number of events checked.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Number of distinct committed indices seen.
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    /// The last events, oldest first, for a failure report.
    pub fn recent_events(&self) -> Vec<String> {
        self.recent.iter().cloned().collect()
    }

    /// Compares `view` with what was last seen of `node` and records the differences
    /// as events (term, log, leadership, commit — in that order).
    pub fn observe(&mut self, node: NodeId, view: NodeView) -> Result<(), Violation> {
        let t = self.nodes.get(&node).cloned().unwrap_or_default();
        if view.term != t.term {
            self.record(Event::Term {
                node,
                term: view.term,
            })?;
        }
        if view.start != t.start || view.entries != t.log {
            self.record(Event::Log {
                node,
                start: view.start,
                entries: view.entries,
            })?;
        }
        if view.leader && t.leader_of != Some(view.term) {
            self.record(Event::BecameLeader {
                node,
                term: view.term,
            })?;
        }
        if view.commit != t.commit {
            self.record(Event::Commit {
                node,
                index: view.commit,
            })?;
        }
        Ok(())
    }

    /// Checks one event and folds it into the history.
    pub fn record(&mut self, event: Event) -> Result<(), Violation> {
        self.events += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(describe(&event));
        let n = self.events;
        match event {
            Event::Term { node, term } => {
                let t = self.nodes.entry(node).or_default();
                if term < t.term {
                    return Err(Violation::TermRegressed {
                        event: n,
                        node,
                        from: t.term,
                        to: term,
                    });
                }
                t.term = term;
                if t.leader_of != Some(term) {
                    t.leader_of = None;
                }
                Ok(())
            }
            Event::BecameLeader { node, term } => self.became_leader(node, term),
            Event::Log {
                node,
                start,
                entries,
            } => self.log(node, start, entries),
            Event::Commit { node, index } => self.commit(node, index),
            Event::Apply { node, entry } => self.apply(node, entry),
            Event::ApplySnapshot { node, index, term } => {
                let t = self.nodes.entry(node).or_default();
                if index < t.applied {
                    let detail =
                        format!("snapshot at {index} installed after applying {}", t.applied);
                    return Err(Violation::Impossible {
                        event: n,
                        node,
                        detail,
                    });
                }
                t.applied = index;
                self.check_committed_at(node, index, term)
            }
            Event::Restart { node } => {
                self.nodes.insert(node, Track::default());
                Ok(())
            }
        }
    }

    fn became_leader(&mut self, node: NodeId, term: Term) -> Result<(), Violation> {
        let n = self.events;
        let t = self.nodes.entry(node).or_default().clone();
        if t.term != term {
            let detail = format!("became leader of term {term} while at term {}", t.term);
            return Err(Violation::Impossible {
                event: n,
                node,
                detail,
            });
        }
        if let Some(other) = self.leaders.get(&term) {
            if other.node != node {
                return Err(Violation::ElectionSafety {
                    event: n,
                    term,
                    first: other.node,
                    second: node,
                });
            }
        }
        let record = LeaderRecord {
            node,
            start: t.start,
            log: t.log.clone(),
        };
        for (id, _) in self
            .committed
            .values()
            .filter(|(_, in_term)| *in_term < term)
        {
            if !record.holds(id) {
                return Err(Violation::LeaderCompleteness {
                    event: n,
                    leader: node,
                    term,
                    missing: *id,
                });
            }
        }
        self.leaders.insert(term, record);
        if let Some(t) = self.nodes.get_mut(&node) {
            t.leader_of = Some(term);
        }
        Ok(())
    }

    fn log(
        &mut self,
        node: NodeId,
        start: (Index, Term),
        entries: Vec<EntryId>,
    ) -> Result<(), Violation> {
        let n = self.events;
        let old = self.nodes.entry(node).or_default().clone();
        let matching = |detail: String| Violation::LogMatching {
            event: n,
            node,
            detail,
        };
        // Shape: contiguous, terms non-decreasing from the compaction point's term,
        // none beyond the node's term.
        let mut prev = start;
        for e in &entries {
            if e.index != prev.0 + 1 || e.term < prev.1 || e.term > old.term {
                return Err(matching(format!(
                    "entry {e} after {}@{} (node term {})",
                    prev.0, prev.1, old.term
                )));
            }
            prev = (e.index, e.term);
        }
        // The compaction point / snapshot must be a committed entry.
        if start.0 > 0 && start != old.start {
            self.check_committed_at(node, start.0, start.1)?;
        }
        // Removed entries: anything the old log held after the new compaction point
        // that the new log no longer holds.
        let new_entry = |i: Index| -> Option<EntryId> {
            let k = i.checked_sub(start.0 + 1)?;
            entries.get(k as usize).copied()
        };
        for e in old.log.iter().filter(|e| e.index > start.0) {
            if new_entry(e.index) == Some(*e) {
                continue;
            }
            if e.index <= old.commit || self.committed.get(&e.index).is_some_and(|(c, _)| c == e) {
                return Err(Violation::CommittedEntryTruncated {
                    event: n,
                    node,
                    entry: *e,
                });
            }
        }
        // Log matching over every identity ever seen.
        let mut prev_term = start.1;
        for e in &entries {
            let known = self
                .ids
                .entry((e.index, e.term))
                .or_insert((e.digest, prev_term));
            if *known != (e.digest, prev_term) {
                return Err(matching(format!(
                    "entry {e} (after term {prev_term}) differs from an earlier {}@{} with digest {:04x} after term {}",
                    e.index,
                    e.term,
                    known.0 & 0xffff,
                    known.1
                )));
            }
            prev_term = e.term;
        }
        let t = self.nodes.entry(node).or_default();
        t.start = start;
        t.log = entries;
        Ok(())
    }

    fn commit(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        let n = self.events;
        let t = self.nodes.entry(node).or_default().clone();
        if index < t.commit {
            return Err(Violation::CommitRegressed {
                event: n,
                node,
                from: t.commit,
                to: index,
            });
        }
        if index > t.last_index() {
            let detail = format!("commit {index} beyond last index {}", t.last_index());
            return Err(Violation::Impossible {
                event: n,
                node,
                detail,
            });
        }
        for i in (t.commit + 1)..=index {
            if i < t.start.0 {
                continue;
            }
            if i == t.start.0 {
                self.check_committed_at(node, i, t.start.1)?;
                continue;
            }
            if let Some(id) = t.entry(i) {
                self.commit_entry(node, id)?;
            }
        }
        if let Some(t) = self.nodes.get_mut(&node) {
            t.commit = index;
        }
        Ok(())
    }

    /// An entry at `index` with `term` is claimed committed (a snapshot or compaction
    /// point): it must agree with what was committed there.
    fn check_committed_at(&self, node: NodeId, index: Index, term: Term) -> Result<(), Violation> {
        match self.committed.get(&index).map(|(c, _)| c) {
            Some(c) if c.term == term => Ok(()),
            Some(c) => Err(Violation::StateMachineSafety {
                event: self.events,
                node,
                what: "committed",
                ours: EntryId {
                    index,
                    term,
                    digest: 0,
                },
                theirs: *c,
            }),
            None => Err(Violation::Impossible {
                event: self.events,
                node,
                detail: format!("snapshot/compaction at {index}@{term}, never committed"),
            }),
        }
    }

    fn commit_entry(&mut self, node: NodeId, id: EntryId) -> Result<(), Violation> {
        let n = self.events;
        if let Some((c, _)) = self.committed.get(&id.index) {
            if *c != id {
                return Err(Violation::StateMachineSafety {
                    event: n,
                    node,
                    what: "committed",
                    ours: id,
                    theirs: *c,
                });
            }
            return Ok(());
        }
        let in_term = self.nodes.get(&node).map_or(0, |t| t.term);
        self.committed.insert(id.index, (id, in_term));
        for (&term, leader) in self.leaders.range(in_term + 1..) {
            if !leader.holds(&id) {
                return Err(Violation::LeaderCompleteness {
                    event: n,
                    leader: leader.node,
                    term,
                    missing: id,
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, node: NodeId, entry: EntryId) -> Result<(), Violation> {
        let n = self.events;
        let t = self.nodes.entry(node).or_default();
        let impossible = |detail: String| Violation::Impossible {
            event: n,
            node,
            detail,
        };
        if entry.index != t.applied + 1 {
            return Err(impossible(format!("applied {entry} after {}", t.applied)));
        }
        if entry.index > t.commit {
            return Err(impossible(format!(
                "applied {entry} beyond commit {}",
                t.commit
            )));
        }
        t.applied = entry.index;
        match self.committed.get(&entry.index).map(|(c, _)| c) {
            Some(c) if *c != entry => {
                return Err(Violation::StateMachineSafety {
                    event: n,
                    node,
                    what: "applied",
                    ours: entry,
                    theirs: *c,
                })
            }
            Some(_) => {}
            None => return Err(impossible(format!("applied {entry}, never committed"))),
        }
        match self.applied.get(&entry.index) {
            Some((_, other)) if *other != entry => Err(Violation::StateMachineSafety {
                event: n,
                node,
                what: "applied",
                ours: entry,
                theirs: *other,
            }),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(entry.index, (node, entry));
                Ok(())
            }
        }
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::Term { node, term } => format!("n{node} term {term}"),
        Event::BecameLeader { node, term } => format!("n{node} leader of {term}"),
        Event::Log {
            node,
            start,
            entries,
        } => {
            let tail: Vec<String> = entries
                .iter()
                .rev()
                .take(3)
                .rev()
                .map(|e| e.to_string())
                .collect();
            format!(
                "n{node} log start {}@{} len {} …{}",
                start.0,
                start.1,
                entries.len(),
                tail.join(",")
            )
        }
        Event::Commit { node, index } => format!("n{node} commit {index}"),
        Event::Apply { node, entry } => format!("n{node} apply {entry}"),
        Event::ApplySnapshot { node, index, term } => {
            format!("n{node} apply snapshot {index}@{term}")
        }
        Event::Restart { node } => format!("n{node} restart"),
    }
}
