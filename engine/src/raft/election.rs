//! Leader election (§5.2) with pre-vote (thesis §9.6), the election restriction
//! (§5.4.1) and leader stickiness (thesis §4.2.3).

use std::collections::BTreeMap;

use tracing::{debug, error, info};

use super::node::{LeaderState, RoleState};
use super::read_index::ReadQueue;
use super::replication::{Progress, ProgressState};
use super::{Body, Index, NodeId, RawNode, Storage, Term};

impl<S: Storage> RawNode<S> {
    /// Starts an election now (as if the election timeout had fired): a pre-vote round
    /// if configured, else a real one. A leader ignores it.
    pub fn campaign(&mut self) {
        if matches!(self.role, RoleState::Leader(_)) {
            debug!(node = self.cfg.id, "raft: campaign ignored, already leader");
            return;
        }
        self.start_election();
        self.debug_check();
    }

    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_timeout {
            // §5.2: no word from a leader (or candidate we voted for) for a whole
            // randomized timeout: start an election.
            self.start_election();
        }
    }

    fn start_election(&mut self) {
        if self.term == Term::MAX {
            // Reachable only through ~2^32 forged term jumps (D52); refusing keeps
            // `term + 1` from wrapping.
            error!(
                node = self.cfg.id,
                term = self.term,
                "raft: term at the maximum; not campaigning"
            );
            self.election_elapsed = 0;
            return;
        }
        if self.cfg.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    /// Whether a live leader is known (thesis §4.2.3): contact within the (base)
    /// election timeout. Only with check-quorum, which guarantees a leader that lost
    /// its quorum steps down, so stickiness cannot keep a dead leader alive.
    pub(crate) fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.cfg.election_timeout_ticks
    }

    fn last(&self) -> (Index, Term) {
        (self.log.last_index(), self.log.last_term())
    }

    /// Thesis §9.6: ask whether we *could* win the next term without changing any
    /// term, so a node that cannot win (partitioned, or behind) disrupts no one.
    fn become_pre_candidate(&mut self) {
        debug_assert!(!matches!(self.role, RoleState::Leader(_)));
        info!(
            node = self.cfg.id,
            term = self.term,
            "raft: starting pre-vote"
        );
        self.role = RoleState::PreCandidate {
            votes: BTreeMap::from([(self.cfg.id, true)]),
        };
        self.leader = None;
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        if self.tally() == Some(true) {
            self.become_candidate();
            return;
        }
        let (last_index, last_term) = self.last();
        let Some(next_term) = self.term.checked_add(1) else {
            return;
        };
        for p in self.peers() {
            self.send_with_term(
                p,
                next_term,
                Body::PreVote {
                    last_index,
                    last_term,
                },
            );
        }
    }

    /// §5.2: increment the term, vote for ourselves, request votes.
    fn become_candidate(&mut self) {
        debug_assert!(!matches!(self.role, RoleState::Leader(_)));
        let Some(next_term) = self.term.checked_add(1) else {
            error!(
                node = self.cfg.id,
                term = self.term,
                "raft: term at the maximum; not campaigning"
            );
            return;
        };
        self.term = next_term;
        self.vote = Some(self.cfg.id);
        info!(
            node = self.cfg.id,
            term = self.term,
            "raft: starting election"
        );
        self.role = RoleState::Candidate {
            votes: BTreeMap::from([(self.cfg.id, true)]),
        };
        self.leader = None;
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        if self.tally() == Some(true) {
            self.become_leader();
            return;
        }
        let (last_index, last_term) = self.last();
        for p in self.peers() {
            self.send(
                p,
                Body::Vote {
                    last_index,
                    last_term,
                },
            );
        }
    }

    /// Won the election: initialise progress (§5.3: nextIndex = last + 1), append the
    /// term's no-op (§8) and announce ourselves.
    fn become_leader(&mut self) {
        // Only a candidate that a quorum voted for, in its own term.
        assert!(
            matches!(self.role, RoleState::Candidate { .. }) && self.tally() == Some(true),
            "leader without a quorum of votes"
        );
        debug_assert_eq!(self.vote, Some(self.cfg.id));
        info!(
            node = self.cfg.id,
            term = self.term,
            last = self.log.last_index(),
            commit = self.log.commit,
            "raft: became leader"
        );
        // Entries past the commit index are all of older terms here: the new leader
        // may commit them only through an entry of its own term (§5.4.2, Figure 8).
        sim_runtime::cover!(
            "raft.leader_elected_with_uncommitted_older_term",
            self.log.commit < self.log.last_index()
        );
        let last_plus_one = self.log.last_index() + 1;
        // Entries through the commit index are still in the log or the snapshot (only
        // applied, so committed, entries are compacted): a probe from there can be
        // answered with entries or a snapshot.
        let next = if self.cfg.probe_from_commit {
            self.log.commit + 1
        } else {
            last_plus_one
        };
        debug_assert!(next >= 1 && next <= last_plus_one);
        let progress = self
            .cfg
            .voters
            .iter()
            .map(|&id| {
                let pr = Progress {
                    match_index: 0,
                    next_index: if id == self.cfg.id {
                        last_plus_one
                    } else {
                        next
                    },
                    state: ProgressState::Probe { sent: false },
                    recent_active: id == self.cfg.id,
                };
                (id, pr)
            })
            .collect();
        self.role = RoleState::Leader(Box::new(LeaderState {
            progress,
            term_start: last_plus_one,
            heartbeat_elapsed: 0,
            reads: ReadQueue::default(),
        }));
        self.leader = Some(self.cfg.id);
        self.election_elapsed = 0;
        // The no-op lets the leader commit entries of earlier terms (§5.4.2) and learn
        // its commit index for reads (thesis §6.4).
        self.leader_append(None);
        self.maybe_commit();
        self.bcast_append();
    }

    /// `Some(true)` once a quorum granted, `Some(false)` once a quorum refused.
    fn tally(&self) -> Option<bool> {
        let votes = match &self.role {
            RoleState::PreCandidate { votes } | RoleState::Candidate { votes } => votes,
            _ => return None,
        };
        // `step` takes votes from voters only: a quorum is counted over them.
        debug_assert!(votes.keys().all(|v| self.cfg.voters.contains(v)));
        let granted = votes.values().filter(|&&g| g).count();
        let refused = votes.len() - granted;
        let q = self.cfg.quorum();
        if granted >= q {
            Some(true)
        } else if refused >= q {
            Some(false)
        } else {
            None
        }
    }

    /// A (pre-)vote request in a term ≥ ours (higher terms were already adopted,
    /// except for pre-votes, which carry the candidate's proposed term).
    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        last_index: Index,
        last_term: Term,
    ) {
        // One vote per term (§5.2): only for the candidate we already voted for, or,
        // with no vote and no known leader, anyone. A pre-vote for a later term binds
        // nothing, so it only needs the log check.
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && term > self.term);
        // §5.4.1 election restriction: the candidate's log must be at least as
        // up-to-date as ours (compare last terms, then lengths).
        let up_to_date = (last_term, last_index) >= (self.log.last_term(), self.log.last_index());
        let granted = can_vote && up_to_date;
        sim_runtime::cover!(
            "raft.vote_refused_stale_log",
            can_vote && !up_to_date && !pre
        );
        sim_runtime::cover!(
            "raft.prevote_refused_stale_log",
            can_vote && !up_to_date && pre
        );
        // The restriction's first key is the last term: a longer log that ends in an
        // older term loses (its tail may be a deposed leader's, never committed).
        sim_runtime::cover!(
            "raft.vote_refused_longer_log_of_older_term",
            can_vote && !up_to_date && last_index > self.log.last_index()
        );
        sim_runtime::cover!("raft.vote_refused_already_voted", !can_vote && !pre);
        debug!(
            node = self.cfg.id,
            from, term, pre, granted, "raft: vote request"
        );
        if pre {
            // A granted pre-vote answers in the proposed term; a refusal in ours.
            let reply_term = if granted { term } else { self.term };
            self.send_with_term(from, reply_term, Body::PreVoteResponse { granted });
        } else {
            if granted {
                // A vote binds our own term only (`step` adopted the request's term).
                debug_assert_eq!(term, self.term);
                // Persisted (through the Ready contract) before the answer is sent.
                self.vote = Some(from);
                self.election_elapsed = 0;
            }
            self.send(from, Body::VoteResponse { granted });
        }
    }

    pub(crate) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        granted: bool,
    ) {
        let current = self.term;
        let counted = match &mut self.role {
            RoleState::PreCandidate { votes }
                if pre
                    && (granted && Some(term) == current.checked_add(1)
                        || !granted && term == current) =>
            {
                votes.insert(from, granted);
                true
            }
            RoleState::Candidate { votes } if !pre && term == current => {
                votes.insert(from, granted);
                true
            }
            // A pre-vote granted for the term we now campaign in, arriving after the
            // quorum that made us a candidate: it binds no one (the voter may vote for a
            // rival in this term), so counting it could elect two leaders in one term.
            // Reached in most elections of three or more voters; a guard that let it
            // through makes this mark unreachable (a must-reach promise catches that).
            RoleState::Candidate { .. } if pre => {
                sim_runtime::cover!("raft.candidate_ignores_late_prevote_grant", granted);
                false
            }
            _ => false,
        };
        if !counted {
            debug!(
                node = self.cfg.id,
                from, term, pre, "raft: vote response not for a current election"
            );
            return;
        }
        match self.tally() {
            Some(true) if pre => self.become_candidate(),
            Some(true) => self.become_leader(),
            Some(false) => {
                sim_runtime::cover!("raft.election_lost");
                self.become_follower(self.term, None)
            }
            None => {}
        }
    }
}
