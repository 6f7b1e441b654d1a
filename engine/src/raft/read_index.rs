//! Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
//!
//! 1. The leader waits until an entry of its own term is committed (its no-op), so its
//!    commit index is at least that of every earlier leader.
//! 2. It records its commit index as the read index.
//! 3. It confirms it is still the leader: a heartbeat round numbered `read_seq`; the
//!    read is released once a quorum (itself included) answered that round or a later
//!    one, all in its term.
//! 4. The application serves the read once it has applied through the read index.
//!
//! A follower forwards the request to the leader it knows and hands the answer back as
//! a [`ReadState`]. A leader that steps down refuses every pending read (`index: None`).

use std::collections::{BTreeSet, VecDeque};

use tracing::debug;

use super::node::RoleState;
use super::{Body, Error, Index, NodeId, RawNode, ReadState, Storage};

/// The leader's outstanding read requests.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    /// Number of the latest heartbeat round started for reads.
    pub(crate) seq: u64,
    /// Requests waiting for the leader's first commit in its term (step 1).
    waiting: Vec<(NodeId, Vec<u8>)>,
    /// Requests waiting for a quorum of heartbeat answers (step 3), in `seq` order.
    pending: VecDeque<PendingRead>,
}

#[derive(Debug)]
struct PendingRead {
    seq: u64,
    index: Index,
    requester: NodeId,
    ctx: Vec<u8>,
    acks: BTreeSet<NodeId>,
}

impl<S: Storage> RawNode<S> {
    /// Requests a linearizable read identified by `ctx`. The answer arrives as a
    /// [`ReadState`] in a later Ready (serve it once applied through its index). A
    /// follower forwards to the leader; with no known leader this fails with
    /// [`Error::NotLeader`]. A forwarded request may be lost with its message: time out
    /// and retry.
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<(), Error> {
        let r = match (&self.role, self.leader) {
            (RoleState::Leader(_), _) => {
                self.leader_read(self.cfg.id, ctx);
                Ok(())
            }
            (_, Some(leader)) => {
                self.send(leader, Body::ReadIndex { ctx });
                Ok(())
            }
            (_, None) => Err(Error::NotLeader { leader: None }),
        };
        self.debug_check();
        r
    }

    pub(crate) fn handle_read_index(&mut self, from: NodeId, ctx: Vec<u8>) {
        if matches!(self.role, RoleState::Leader(_)) {
            self.leader_read(from, ctx);
        } else {
            debug!(
                node = self.cfg.id,
                from, "raft: read index request while not leader"
            );
            self.send(from, Body::ReadIndexResponse { ctx, index: None });
        }
    }

    fn committed_in_term(&self) -> bool {
        self.log.term(self.log.commit) == Ok(self.term)
    }

    fn leader_read(&mut self, requester: NodeId, ctx: Vec<u8>) {
        if self.committed_in_term() {
            self.start_read_round(vec![(requester, ctx)]);
        } else if let Some(ld) = self.leader_state_mut() {
            sim_runtime::cover!("raft.read_waits_for_commit_in_new_term");
            ld.reads.waiting.push((requester, ctx));
        }
    }

    /// Called when the leader's commit index advances: step 1 may now be satisfied.
    pub(crate) fn release_waiting_reads(&mut self) {
        if !self.committed_in_term() {
            return;
        }
        let waiting = match self.leader_state_mut() {
            Some(ld) if !ld.reads.waiting.is_empty() => std::mem::take(&mut ld.reads.waiting),
            _ => return,
        };
        self.start_read_round(waiting);
    }

    fn start_read_round(&mut self, requests: Vec<(NodeId, Vec<u8>)>) {
        // Step 1 of the read index (thesis §6.4): the leader's commit index is
        // current only once an entry of its own term committed.
        debug_assert!(self.committed_in_term());
        let index = self.log.commit;
        if self.cfg.quorum() == 1 {
            for (requester, ctx) in requests {
                self.complete_read(requester, ctx, Some(index));
            }
            return;
        }
        let id = self.cfg.id;
        let Some(ld) = self.leader_state_mut() else {
            return;
        };
        ld.reads.seq += 1;
        let seq = ld.reads.seq;
        for (requester, ctx) in requests {
            let acks = BTreeSet::from([id]);
            ld.reads.pending.push_back(PendingRead {
                seq,
                index,
                requester,
                ctx,
                acks,
            });
        }
        self.bcast_heartbeat();
    }

    /// `from` answered heartbeat round `read_seq` in our term.
    pub(crate) fn ack_read(&mut self, from: NodeId, read_seq: u64) {
        let quorum = self.cfg.quorum();
        let Some(ld) = self.leader_state_mut() else {
            return;
        };
        // An answer to an earlier heartbeat round says nothing of leadership *after*
        // a later read arrived: it must not confirm that read (the round numbers are
        // what tell them apart).
        sim_runtime::cover!(
            "raft.read_not_confirmed_by_earlier_round",
            ld.reads.pending.front().is_some_and(|p| p.seq > read_seq)
        );
        for p in ld
            .reads
            .pending
            .iter_mut()
            .take_while(|p| p.seq <= read_seq)
        {
            p.acks.insert(from);
        }
        let mut done = Vec::new();
        while ld
            .reads
            .pending
            .front()
            .is_some_and(|p| p.acks.len() >= quorum)
        {
            if let Some(p) = ld.reads.pending.pop_front() {
                done.push(p);
            }
        }
        for p in done {
            self.complete_read(p.requester, p.ctx, Some(p.index));
        }
    }

    fn complete_read(&mut self, requester: NodeId, ctx: Vec<u8>, index: Option<Index>) {
        // A read index is a commit index this leader reached.
        debug_assert!(index.map_or(true, |i| i <= self.log.commit));
        if requester == self.cfg.id {
            self.read_states.push(ReadState { ctx, index });
        } else {
            self.send(requester, Body::ReadIndexResponse { ctx, index });
        }
    }

    /// Leadership lost: refuse every outstanding read.
    pub(crate) fn abort_reads(&mut self, reads: ReadQueue) {
        sim_runtime::cover!(
            "raft.reads_refused_on_step_down",
            !reads.waiting.is_empty() || !reads.pending.is_empty()
        );
        let waiting = reads.waiting.into_iter();
        let pending = reads.pending.into_iter().map(|p| (p.requester, p.ctx));
        for (requester, ctx) in waiting.chain(pending) {
            self.complete_read(requester, ctx, None);
        }
    }
}
