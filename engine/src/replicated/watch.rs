//! [`SafetyWatch`]: the [`Observer`] that feeds every replica's transitions to one
//! [`SafetyChecker`] — what a simulation attaches to each node of a group so Raft's
//! safety properties are checked on every step, not only on the final state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::raft::safety::{EntryId, Event, NodeView, SafetyChecker, Violation};
use crate::raft::{Entry, NodeId, SnapshotMeta};
use crate::replicated::Observer;

/// One checker for a whole group; each violation, with the checker's recent events, is
/// handed to `on_violation`.
pub struct SafetyWatch {
    checker: Mutex<SafetyChecker>,
    on_violation: Box<dyn Fn(String) + Send + Sync>,
    snapshots: AtomicU64,
    /// The newest leader seen (term, node), until it restarts or reports otherwise:
    /// what a nemesis that targets "the leader" aims at.
    leader: Mutex<Option<(u64, NodeId)>>,
}

impl SafetyWatch {
    pub fn new(on_violation: impl Fn(String) + Send + Sync + 'static) -> SafetyWatch {
        SafetyWatch {
            checker: Mutex::new(SafetyChecker::default()),
            on_violation: Box::new(on_violation),
            snapshots: AtomicU64::new(0),
            leader: Mutex::new(None),
        }
    }

    /// The replica that most recently reported leading the newest term seen, if it has
    /// not restarted or stepped down since.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader_slot().map(|(_, node)| node)
    }

    /// The newest leader seen; a poisoned lock still holds a valid value.
    fn leader_slot(&self) -> std::sync::MutexGuard<'_, Option<(u64, NodeId)>> {
        sim_runtime::sync::lock(&self.leader)
    }

    fn note_role(&self, node: NodeId, view: &NodeView) {
        let mut leader = self.leader_slot();
        if view.leader {
            if leader.map_or(true, |(term, _)| view.term >= term) {
                *leader = Some((view.term, node));
            }
        } else if leader.is_some_and(|(_, l)| l == node) {
            *leader = None;
        }
    }

    /// Snapshots installed into state machines so far, over every replica.
    pub fn snapshots_installed(&self) -> u64 {
        self.snapshots.load(Ordering::SeqCst)
    }

    fn check(&self, step: impl FnOnce(&mut SafetyChecker) -> Result<(), Violation>) {
        let mut checker = sim_runtime::sync::lock(&self.checker);
        if let Err(v) = step(&mut checker) {
            let recent = checker.recent_events().join("\n    ");
            drop(checker);
            (self.on_violation)(format!("{v}\n  recent events:\n    {recent}"));
        }
    }
}

impl Observer for SafetyWatch {
    fn restarted(&self, node: NodeId) {
        {
            let mut leader = self.leader_slot();
            if leader.is_some_and(|(_, l)| l == node) {
                *leader = None;
            }
        }
        self.check(|c| c.record(Event::Restart { node }));
    }
    fn raft_state(&self, node: NodeId, view: NodeView) {
        self.note_role(node, &view);
        self.check(|c| c.observe(node, view));
    }
    fn applied(&self, node: NodeId, entry: &Entry) {
        let entry = EntryId::of(entry);
        self.check(|c| c.record(Event::Apply { node, entry }));
    }
    fn snapshot_installed(&self, node: NodeId, meta: SnapshotMeta) {
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        let (index, term) = (meta.index, meta.term);
        self.check(|c| c.record(Event::ApplySnapshot { node, index, term }));
    }
}
