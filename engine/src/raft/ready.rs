//! The Ready/advance hand-off: what the caller must persist, send and apply, and its
//! acknowledgement that it did (the order is in the module doc of `raft`).

use super::{Entry, Error, HardState, RawNode, Ready, Storage};

impl<S: Storage> RawNode<S> {
    /// The state to persist.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        }
    }

    /// Whether [`RawNode::ready`] would return something to do.
    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.read_states.is_empty()
            || self.hard_state() != self.prev_hard_state
            || !self.log.unstable_entries().is_empty()
            || self.log.unstable_snapshot().is_some()
            || self.log.commit > self.log.applying
    }

    /// Takes what must be persisted, sent and applied. Follow the order in the module
    /// doc, then call [`RawNode::advance`] before the next `ready`.
    pub fn ready(&mut self) -> Result<Ready, Error> {
        if self.ready_pending {
            return Err(Error::ReadyPending);
        }
        let hs = self.hard_state();
        let snapshot = self.log.unstable_snapshot().cloned();
        let snap_index = snapshot.as_ref().map_or(0, |s| s.meta.index);
        let from = self.log.applying.max(snap_index) + 1;
        let committed_entries: Vec<Entry> = if self.log.commit >= from {
            self.log.entries(from, self.log.commit + 1)?
        } else {
            Vec::new()
        };
        let rd = Ready {
            hard_state: (hs != self.prev_hard_state).then_some(hs),
            snapshot,
            entries: self.log.unstable_entries().to_vec(),
            committed_entries,
            messages: std::mem::take(&mut self.msgs),
            read_states: std::mem::take(&mut self.read_states),
        };
        // Committed entries are handed out once each, in order, through the commit index.
        debug_assert!(rd
            .committed_entries
            .first()
            .map_or(true, |e| e.index == from));
        debug_assert!(rd
            .committed_entries
            .last()
            .map_or(true, |e| e.index == self.log.commit));
        // Everything through the commit index is now handed out (a snapshot's index is
        // its commit index).
        self.log.applying = self.log.commit;
        self.prev_hard_state = hs;
        self.ready_pending = true;
        Ok(rd)
    }

    /// The caller has durably persisted `ready`'s snapshot, entries and hard state:
    /// move them into [`Storage`]. Its messages may be sent from now on.
    pub fn advance(&mut self, ready: &Ready) -> Result<(), Error> {
        if !self.ready_pending {
            return Err(Error::NoReadyPending);
        }
        if let Some(s) = &ready.snapshot {
            self.log.storage.apply_snapshot(s.clone())?;
            self.log.stable_snapshot_to(s.meta.index);
        }
        if let Some(last) = ready.entries.last() {
            self.log.storage.append(&ready.entries)?;
            // Storage (the caller's, perhaps) now holds them through `last`.
            debug_assert_eq!(self.log.storage.term(last.index), Ok(last.term));
            self.log.stable_to(last.index, last.term);
        }
        if let Some(hs) = ready.hard_state {
            self.log.storage.set_hard_state(hs);
        }
        let snap = ready.snapshot.as_ref().map_or(0, |s| s.meta.index);
        let last_applied = ready.committed_entries.last().map_or(0, |e| e.index);
        self.log.applied = self.log.applied.max(snap).max(last_applied);
        self.ready_pending = false;
        self.debug_check();
        Ok(())
    }
}
