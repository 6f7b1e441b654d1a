//! Log replication (§5.3), commitment (§5.4.2), heartbeats and check-quorum (thesis
//! §6.2).
//!
//! Per follower the leader keeps a [`Progress`]: `match_index` (known to be stored),
//! `next_index` (next to send) and a state. *Probe*: one append in flight at a time,
//! until the follower's log position is found. *Replicate*: pipelined, `next_index`
//! advanced optimistically on send. *Snapshot*: an InstallSnapshot is in flight. A lost
//! message is recovered on the next heartbeat answer (which unpauses a probe and
//! re-sends from `next_index`) or by the follower rejecting a gap.

use tracing::{debug, error, info, warn};

use crate::canary::{self, Canary};

use super::node::RoleState;
use super::{Body, Entry, Error, Index, NodeId, RawNode, RejectHint, Storage, StorageError, Term};

/// Where a follower's replication stands, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Looking for the match point; `sent` pauses until an answer or a heartbeat.
    Probe { sent: bool },
    /// Streaming entries.
    Replicate,
    /// An InstallSnapshot at `index` is in flight.
    Snapshot { index: Index },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) match_index: Index,
    pub(crate) next_index: Index,
    pub(crate) state: ProgressState,
    /// Heard from within the current check-quorum window.
    pub(crate) recent_active: bool,
}

impl<S: Storage> RawNode<S> {
    /// Proposes `data` for the log; returns the index it was given. Only the leader
    /// accepts proposals; the entry may still be lost if leadership changes before it
    /// commits — the caller learns the outcome by watching what is applied at `index`.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<Index, Error> {
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(Error::NotLeader {
                leader: self.leader,
            });
        }
        let index = self.leader_append(Some(data));
        if self.maybe_commit() {
            debug!(
                node = self.cfg.id,
                index, "raft: committed by a single-node quorum"
            );
        }
        self.bcast_append();
        self.debug_check();
        Ok(index)
    }

    /// Appends one entry of the current term to the leader's log.
    pub(crate) fn leader_append(&mut self, data: Option<Vec<u8>>) -> Index {
        assert!(
            matches!(self.role, RoleState::Leader(_)),
            "only a leader appends entries of its own"
        );
        debug_assert!(self.log.last_term() <= self.term);
        let index = self.log.last_index() + 1;
        let entry = Entry {
            index,
            term: self.term,
            data,
        };
        self.log.append(std::slice::from_ref(&entry));
        let id = self.cfg.id;
        if let Some(pr) = self
            .leader_state_mut()
            .and_then(|ld| ld.progress.get_mut(&id))
        {
            pr.match_index = index;
            pr.next_index = index + 1;
        }
        if canary::enabled(Canary::RaftCommitWithoutQuorum) {
            // DELIBERATE BUG (canary): commit without a quorum.
            self.log.commit_to(index);
        }
        index
    }

    fn progress(&self, peer: NodeId) -> Option<Progress> {
        self.leader_state()
            .and_then(|ld| ld.progress.get(&peer).copied())
    }

    fn progress_mut(&mut self, peer: NodeId) -> Option<&mut Progress> {
        self.leader_state_mut()
            .and_then(|ld| ld.progress.get_mut(&peer))
    }

    pub(crate) fn bcast_append(&mut self) {
        for p in self.peers() {
            self.send_append(p);
        }
    }

    /// Sends `peer` the entries from its `next_index` (or a snapshot if they are
    /// compacted away), unless its stream is paused.
    pub(crate) fn send_append(&mut self, peer: NodeId) {
        let Some(pr) = self.progress(peer) else {
            return;
        };
        if matches!(
            pr.state,
            ProgressState::Snapshot { .. } | ProgressState::Probe { sent: true }
        ) {
            return;
        }
        debug_assert!(pr.match_index < pr.next_index);
        let prev_index = pr.next_index - 1;
        let hi = (self.log.last_index() + 1)
            .min(pr.next_index + self.cfg.max_entries_per_message as Index);
        let fetched = self
            .log
            .term(prev_index)
            .and_then(|t| Ok((t, self.log.entries(pr.next_index, hi)?)));
        let (prev_term, entries) = match fetched {
            Ok(x) => x,
            Err(StorageError::Compacted(_)) => return self.send_snapshot(peer),
            Err(e) => {
                error!(
                    node = self.cfg.id,
                    peer, "raft: cannot read the log to replicate: {e}"
                );
                return;
            }
        };
        let last_sent = prev_index + entries.len() as Index;
        if let Some(pr) = self.progress_mut(peer) {
            match pr.state {
                ProgressState::Replicate => pr.next_index = last_sent + 1,
                ProgressState::Probe { .. } => pr.state = ProgressState::Probe { sent: true },
                ProgressState::Snapshot { .. } => {}
            }
        }
        let commit = self.log.commit;
        self.send(
            peer,
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            },
        );
    }

    pub(crate) fn bcast_heartbeat(&mut self) {
        let Some(ld) = self.leader_state() else {
            return;
        };
        let read_seq = ld.reads.seq;
        let commit = self.log.commit;
        let beats: Vec<(NodeId, Index)> = ld
            .progress
            .iter()
            .filter(|(&p, _)| p != self.cfg.id)
            // A follower may adopt only a commit index it is known to store up to.
            .map(|(&p, pr)| (p, pr.match_index.min(commit)))
            .collect();
        for (p, commit) in beats {
            self.send(p, Body::Heartbeat { commit, read_seq });
        }
    }

    pub(crate) fn tick_leader(&mut self) {
        let (hb, et) = (
            self.cfg.heartbeat_interval_ticks,
            self.cfg.election_timeout_ticks,
        );
        self.election_elapsed += 1;
        if self.election_elapsed >= et {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_active() {
                // Thesis §6.2: a leader that cannot reach a quorum steps down, so
                // clients go elsewhere and followers' stickiness cannot protect it.
                info!(
                    node = self.cfg.id,
                    term = self.term,
                    last = self.log.last_index(),
                    commit = self.log.commit,
                    "raft: check-quorum failed, stepping down"
                );
                sim_runtime::cover!("raft.check_quorum_step_down");
                self.become_follower(self.term, None);
                return;
            }
            let id = self.cfg.id;
            if let Some(ld) = self.leader_state_mut() {
                for (&p, pr) in ld.progress.iter_mut() {
                    pr.recent_active = p == id;
                }
            }
        }
        let beat = match self.leader_state_mut() {
            Some(ld) => {
                ld.heartbeat_elapsed += 1;
                ld.heartbeat_elapsed >= hb
            }
            None => false,
        };
        if beat {
            if let Some(ld) = self.leader_state_mut() {
                ld.heartbeat_elapsed = 0;
            }
            self.bcast_heartbeat();
        }
    }

    fn quorum_active(&self) -> bool {
        self.leader_state().is_some_and(|ld| {
            ld.progress.values().filter(|p| p.recent_active).count() >= self.cfg.quorum()
        })
    }

    /// §5.4.2: advance the commit index to the highest index stored by a quorum, but
    /// only if that entry is of the current term (Figure 8: an older-term entry on a
    /// majority can still be overwritten). Returns whether it advanced.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let Some(ld) = self.leader_state() else {
            return false;
        };
        let mut matched: Vec<Index> = ld.progress.values().map(|p| p.match_index).collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&q) = matched.get(self.cfg.quorum() - 1) else {
            return false;
        };
        // No follower is known to store more than the leader holds.
        debug_assert!(q <= self.log.last_index(), "quorum match {q} past the log");
        if q <= self.log.commit {
            return false;
        }
        if self.log.term(q) != Ok(self.term) {
            // Figure 8: a quorum stores an older term's entry, which may still be
            // overwritten; it is not committed by counting.
            sim_runtime::cover!("raft.quorum_on_older_term_entry_not_committed");
            return false;
        }
        self.log.commit_to(q);
        debug_assert_eq!(self.log.commit, q);
        self.release_waiting_reads();
        true
    }

    /// AppendEntries receiver (§5.3, Figure 2).
    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    ) {
        let mut last = (prev_index, prev_term);
        for e in &entries {
            if Some(e.index) != last.0.checked_add(1) || e.term < last.1 || e.term > self.term {
                warn!(
                    node = self.cfg.id,
                    from,
                    "raft: malformed append (entry {}@{} after {}@{}); dropped",
                    e.index,
                    e.term,
                    last.0,
                    last.1
                );
                return;
            }
            last = (e.index, e.term);
        }
        if prev_index < self.log.commit {
            // A delayed or duplicated append: everything through our commit index
            // matches the leader already (log matching + leader completeness).
            sim_runtime::cover!("raft.append_below_commit_answered_with_commit");
            let index = self.log.commit;
            self.send(
                from,
                Body::AppendResponse {
                    index,
                    reject: None,
                },
            );
            return;
        }
        if !self.log.matches(prev_index, prev_term) {
            sim_runtime::cover!("raft.append_rejected_log_mismatch");
            sim_runtime::cover!(
                "raft.append_rejected_conflicting_term",
                prev_index <= self.log.last_index()
            );
            let reject = Some(self.reject_hint(prev_index));
            self.send(
                from,
                Body::AppendResponse {
                    index: prev_index,
                    reject,
                },
            );
            return;
        }
        // Only a conflicting entry and what follows it is replaced: a reordered older
        // append must not cut off entries a newer one added.
        if let Some(conflict) = self.log.find_conflict(&entries) {
            if conflict <= self.log.commit {
                error!(
                    node = self.cfg.id,
                    from,
                    conflict,
                    commit = self.log.commit,
                    "raft: append conflicts with a committed entry; dropped"
                );
                return;
            }
            if conflict <= self.log.last_index() {
                sim_runtime::cover!("raft.follower_truncates_conflicting_entries");
                self.discard_stale_msgs(conflict);
            }
            // `accept_leader` let this append through, so we are not the leader: a
            // leader never truncates its own log (Leader Append-Only, Figure 3).
            debug_assert!(!matches!(self.role, RoleState::Leader(_)));
            let start = (conflict - prev_index - 1) as usize;
            self.log.append(&entries[start..]);
        }
        // The pair of the leader's consistency check: we now hold its entry at
        // `last_new` with its term (Log Matching).
        debug_assert!(self.log.matches(last.0, last.1));
        // Cannot wrap: validated entries follow prev_index one by one, below MAX_INDEX.
        let last_new = last.0;
        // Figure 2's rule 5: the leader vouched for our log only through `last_new`;
        // what we hold past it may be an older leader's, not yet overwritten.
        sim_runtime::cover!(
            "raft.follower_commit_capped_at_last_new_entry",
            commit > last_new && self.log.last_index() > last_new
        );
        self.log.commit_to(commit.min(last_new));
        self.send(
            from,
            Body::AppendResponse {
                index: last_new,
                reject: None,
            },
        );
    }

    /// The fast-backtracking hint for a rejected append at `prev_index`.
    fn reject_hint(&self, prev_index: Index) -> RejectHint {
        let last = self.log.last_index();
        if prev_index > last {
            return RejectHint {
                term: None,
                index: last + 1,
            };
        }
        let Ok(term) = self.log.term(prev_index) else {
            return RejectHint {
                term: None,
                index: self.log.commit + 1,
            };
        };
        let floor = (self.log.commit + 1).max(self.log.first_index());
        let mut index = prev_index;
        while index > floor && self.log.term(index - 1) == Ok(term) {
            index -= 1;
        }
        RejectHint {
            term: Some(term),
            index,
        }
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: Index, read_seq: u64) {
        self.log.commit_to(commit.min(self.log.last_index()));
        self.send(from, Body::HeartbeatResponse { read_seq });
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        index: Index,
        reject: Option<RejectHint>,
    ) {
        let last = self.log.last_index();
        let Some(pr) = self.progress_mut(from) else {
            debug!(from, "raft: append response while not leader");
            return;
        };
        pr.recent_active = true;
        let Some(hint) = reject else {
            if index > last {
                warn!(
                    from,
                    index, last, "raft: acknowledgement beyond the leader's log; dropped"
                );
                return;
            }
            let advanced = index > pr.match_index;
            pr.match_index = pr.match_index.max(index);
            pr.next_index = pr.next_index.max(index.saturating_add(1));
            // Checked above: a follower acknowledges only what the leader holds.
            debug_assert!(pr.match_index <= last && pr.match_index < pr.next_index);
            match pr.state {
                ProgressState::Probe { .. } => pr.state = ProgressState::Replicate,
                ProgressState::Snapshot { index: s } if pr.match_index >= s => {
                    pr.state = ProgressState::Replicate
                }
                _ => {}
            }
            let more = pr.next_index <= last;
            if advanced && self.maybe_commit() {
                // Tell everyone the new commit index (and send what is pending).
                self.bcast_append();
            } else if more {
                self.send_append(from);
            }
            return;
        };
        let stale = match pr.state {
            ProgressState::Replicate => index <= pr.match_index,
            ProgressState::Probe { .. } => index.checked_add(1) != Some(pr.next_index),
            ProgressState::Snapshot { .. } => true,
        };
        if stale {
            sim_runtime::cover!("raft.stale_rejection_ignored");
            debug!(from, index, "raft: stale rejection ignored");
            return;
        }
        let (match_index, next) = (pr.match_index, self.backtrack(index, hint));
        if let Some(pr) = self.progress_mut(from) {
            // Strictly back, never below what is known to match.
            pr.next_index = next.min(index).max(match_index.saturating_add(1));
            debug_assert!(pr.next_index > pr.match_index);
            pr.state = ProgressState::Probe { sent: false };
        }
        self.send_append(from);
    }

    /// Where to probe next after a rejection at `rejected` with `hint` (§5.3): just
    /// past our last entry of the follower's conflicting term if we have that term,
    /// else the first index the follower holds of it.
    fn backtrack(&self, rejected: Index, hint: RejectHint) -> Index {
        let Some(hint_term) = hint.term else {
            return hint.index;
        };
        let mut i = rejected.min(self.log.last_index());
        loop {
            match self.log.term(i) {
                Ok(t) if t > hint_term && i > 0 => i -= 1,
                Ok(t) if t == hint_term => {
                    sim_runtime::cover!("raft.backtrack_skips_to_hinted_term");
                    return i + 1;
                }
                _ => return hint.index,
            }
        }
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_seq: u64) {
        let last = self.log.last_index();
        let Some(pr) = self.progress_mut(from) else {
            debug!(from, "raft: heartbeat response while not leader");
            return;
        };
        pr.recent_active = true;
        if matches!(
            pr.state,
            ProgressState::Probe { sent: true } | ProgressState::Snapshot { .. }
        ) {
            // The probe or snapshot may have been lost: allow one more.
            pr.state = ProgressState::Probe { sent: false };
        }
        let lagging = pr.match_index < last;
        self.ack_read(from, read_seq);
        if lagging {
            self.send_append(from);
        }
    }
}
