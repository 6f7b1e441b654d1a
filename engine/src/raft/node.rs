//! [`RawNode`]: the state, the message dispatch (§5.1 term rules) and ticks. The
//! Ready/advance hand-off (`ready.rs`), elections, replication, reads and snapshots
//! live in their own modules as further `impl` blocks.

use std::collections::BTreeMap;

use rand::{Rng, RngCore};
use tracing::{debug, error, info, warn};

use super::log::RaftLog;
use super::read_index::ReadQueue;
use super::replication::Progress;
use super::{
    Body, Config, Entry, Error, HardState, Index, Message, NodeId, ReadState, Storage, Term,
};

/// A node's role (§5.1, plus the pre-candidate of thesis §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Polling for pre-votes; has not changed its term.
    PreCandidate,
    /// Asking for votes in its new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Role-specific state: what only a leader or a candidate has.
pub(crate) enum RoleState {
    Follower,
    PreCandidate { votes: BTreeMap<NodeId, bool> },
    Candidate { votes: BTreeMap<NodeId, bool> },
    Leader(Box<LeaderState>),
}

pub(crate) struct LeaderState {
    /// Replication progress per voter, this node included (its match = last index).
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Index of the no-op this leader appended on election (§8).
    pub(crate) term_start: Index,
    pub(crate) heartbeat_elapsed: u64,
    pub(crate) reads: ReadQueue,
}

/// A snapshot of a node's externally interesting state, for tests and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// Vote in the current term.
    pub vote: Option<NodeId>,
    /// Known leader of the current term.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: Index,
    /// Applied index (as reported through `advance`).
    pub applied: Index,
    /// First index with an entry.
    pub first_index: Index,
    /// Last index.
    pub last_index: Index,
    /// Term of the last entry.
    pub last_term: Term,
    /// Index of the latest persisted snapshot.
    pub snapshot_index: Index,
    /// Leader only: `(match, next)` per voter.
    pub progress: BTreeMap<NodeId, (Index, Index)>,
}

/// One Raft node: a synchronous state machine with no I/O. See the module doc for the
/// calling contract.
pub struct RawNode<S: Storage> {
    pub(crate) cfg: Config,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: RaftLog<S>,
    pub(crate) role: RoleState,
    /// Leader of the current term, if known (`Some(id)` when leading).
    pub(crate) leader: Option<NodeId>,
    /// Ticks since the last contact from the leader (or election start / vote grant);
    /// for a leader, ticks since the last check-quorum.
    pub(crate) election_elapsed: u64,
    pub(crate) randomized_timeout: u64,
    rng: Box<dyn RngCore + Send>,
    pub(crate) msgs: Vec<(NodeId, Message)>,
    pub(crate) read_states: Vec<ReadState>,
    /// The hard state last handed out in a Ready (or loaded from storage).
    pub(crate) prev_hard_state: HardState,
    pub(crate) ready_pending: bool,
}

impl<S: Storage> RawNode<S> {
    /// A node over `storage` (empty, or what the caller persisted before a crash),
    /// drawing election timeouts from `rng` (in the simulator:
    /// `Box::new(sim_runtime::rng::stream(format!("raft.election.{id}")))`).
    pub fn new(config: Config, storage: S, rng: Box<dyn RngCore + Send>) -> Result<Self, Error> {
        config.validate()?;
        let hs = storage.hard_state();
        if hs.vote.is_some_and(|v| !config.voters.contains(&v)) {
            return Err(Error::Corrupt(format!(
                "persisted vote for unknown node {:?}",
                hs.vote
            )));
        }
        let log = RaftLog::new(storage, config.applied)?;
        if log.last_term() > hs.term {
            return Err(Error::Corrupt(format!(
                "last log term {} beyond persisted term {}",
                log.last_term(),
                hs.term
            )));
        }
        let mut node = RawNode {
            term: hs.term,
            vote: hs.vote,
            log,
            role: RoleState::Follower,
            leader: None,
            election_elapsed: 0,
            randomized_timeout: config.election_timeout_ticks,
            cfg: config,
            rng,
            msgs: Vec::new(),
            read_states: Vec::new(),
            prev_hard_state: hs,
            ready_pending: false,
        };
        node.reset_randomized_timeout();
        node.debug_check();
        Ok(node)
    }

    /// Advances logical time by one tick: election timeouts for followers and
    /// candidates; heartbeats and check-quorum for the leader.
    pub fn tick(&mut self) {
        if matches!(self.role, RoleState::Leader(_)) {
            self.tick_leader();
        } else {
            self.tick_election();
        }
        self.debug_check();
    }

    /// Feeds a message from `from`. Messages from unknown ids, from this node itself,
    /// from stale terms, or malformed, are dropped (with a warning) — never an error or
    /// a panic.
    pub fn step(&mut self, from: NodeId, msg: Message) -> Result<(), Error> {
        if from == self.cfg.id || !self.cfg.voters.contains(&from) {
            warn!(node = self.cfg.id, from, msg = %msg, "raft: dropping message from unknown node");
            return Ok(());
        }
        if let Err(why) = msg.validate(self.term) {
            sim_runtime::cover!("raft.invalid_message_dropped");
            warn!(node = self.cfg.id, from, msg = %msg, why, "raft: dropping invalid message");
            return Ok(());
        }
        self.step_inner(from, msg);
        self.debug_check();
        Ok(())
    }

    fn step_inner(&mut self, from: NodeId, msg: Message) {
        if msg.term > self.term {
            match &msg.body {
                // Leader stickiness (thesis §4.2.3): while a live leader is known, a
                // vote request is a disruption, not news; do not even adopt its term.
                Body::PreVote { .. } | Body::Vote { .. } if self.in_lease() => {
                    sim_runtime::cover!("raft.vote_request_ignored_leader_live");
                    debug!(node = self.cfg.id, from, msg = %msg, "raft: ignoring vote request, leader is live");
                    return;
                }
                // Pre-votes and granted pre-vote answers carry a proposed term; they
                // change no one's term (thesis §9.6).
                Body::PreVote { .. } | Body::PreVoteResponse { granted: true } => {}
                body => {
                    // §5.1: a higher term makes us a follower of it.
                    let leader = body.from_leader().then_some(from);
                    self.become_follower(msg.term, leader);
                }
            }
        } else if msg.term < self.term {
            self.step_stale(from, msg);
            return;
        }
        let term = msg.term;
        match msg.body {
            Body::PreVote {
                last_index,
                last_term,
            } => self.handle_vote_request(from, term, true, last_index, last_term),
            Body::Vote {
                last_index,
                last_term,
            } => self.handle_vote_request(from, term, false, last_index, last_term),
            Body::PreVoteResponse { granted } => {
                self.handle_vote_response(from, term, true, granted)
            }
            Body::VoteResponse { granted } => self.handle_vote_response(from, term, false, granted),
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                if self.accept_leader(from) {
                    self.handle_append(from, prev_index, prev_term, entries, commit);
                }
            }
            Body::Heartbeat { commit, read_seq } => {
                if self.accept_leader(from) {
                    self.handle_heartbeat(from, commit, read_seq);
                }
            }
            Body::InstallSnapshot { snapshot } => {
                if self.accept_leader(from) {
                    self.handle_install_snapshot(from, snapshot);
                }
            }
            Body::AppendResponse { index, reject } => {
                self.handle_append_response(from, index, reject)
            }
            Body::HeartbeatResponse { read_seq } => self.handle_heartbeat_response(from, read_seq),
            Body::ReadIndex { ctx } => self.handle_read_index(from, ctx),
            Body::ReadIndexResponse { ctx, index } => {
                self.read_states.push(ReadState { ctx, index })
            }
        }
    }

    /// A message from an older term (§5.1: "if a server receives a request with a stale
    /// term number, it rejects the request"). Requests are answered with our term so a
    /// deposed leader or an out-of-date candidate learns it; responses are dropped.
    fn step_stale(&mut self, from: NodeId, msg: Message) {
        warn!(node = self.cfg.id, term = self.term, from, msg = %msg, "raft: stale-term message");
        sim_runtime::cover!("raft.stale_leader_told_newer_term", msg.body.from_leader());
        match msg.body {
            body if body.from_leader() => self.send(
                from,
                Body::AppendResponse {
                    index: 0,
                    reject: None,
                },
            ),
            Body::PreVote { .. } => self.send(from, Body::PreVoteResponse { granted: false }),
            Body::Vote { .. } => self.send(from, Body::VoteResponse { granted: false }),
            _ => {}
        }
    }

    /// A leader's message in our term: follow `from`. False if the message must be
    /// dropped (a second leader in one term would be a safety bug elsewhere).
    fn accept_leader(&mut self, from: NodeId) -> bool {
        match &self.role {
            RoleState::Leader(_) => {
                error!(
                    node = self.cfg.id,
                    term = self.term,
                    from,
                    "raft: another leader in my term; dropping"
                );
                return false;
            }
            RoleState::Follower if self.leader.is_some_and(|l| l != from) => {
                error!(node = self.cfg.id, term = self.term, from, leader = ?self.leader, "raft: second leader in one term; dropping");
                return false;
            }
            RoleState::Follower => self.leader = Some(from),
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => {
                sim_runtime::cover!("raft.candidate_yields_to_leader_of_its_term");
                self.become_follower(self.term, Some(from))
            }
        }
        self.election_elapsed = 0;
        true
    }

    /// Becomes a follower of `term` (adopting it if higher, which clears the vote).
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(
            term >= self.term,
            "term {term} would go back from {}",
            self.term
        );
        // A role or term change is a point on the run's timeline (the scenario runner
        // draws each replica's role and term from these INFO lines and the election's).
        if term > self.term || !matches!(self.role, RoleState::Follower) {
            info!(
                node = self.cfg.id,
                term,
                last = self.log.last_index(),
                commit = self.log.commit,
                "raft: became follower"
            );
        }
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        let old = std::mem::replace(&mut self.role, RoleState::Follower);
        if let RoleState::Leader(ld) = old {
            debug!(node = self.cfg.id, term, "raft: leader stepping down");
            sim_runtime::cover!("raft.leader_stepped_down");
            self.abort_reads(ld.reads);
        }
        self.leader = leader;
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
    }

    pub(crate) fn reset_randomized_timeout(&mut self) {
        let t = self.cfg.election_timeout_ticks;
        self.randomized_timeout = t + self.rng.gen_range(0..t);
    }

    pub(crate) fn send(&mut self, to: NodeId, body: Body) {
        let term = self.term;
        self.send_with_term(to, term, body);
    }

    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: Body) {
        // Messages carry our own term; only pre-vote traffic carries the proposed one.
        debug_assert!(
            term == self.term
                || (term > self.term
                    && matches!(
                        body,
                        Body::PreVote { .. } | Body::PreVoteResponse { granted: true }
                    )),
            "message in term {term} from a node in term {}",
            self.term
        );
        debug_assert!(to != self.cfg.id && self.cfg.voters.contains(&to));
        let msg = Message { term, body };
        // The pair of `step`'s check at the receiver: we send nothing it must drop.
        debug_assert_eq!(
            msg.validate(self.term),
            Ok(()),
            "a receiver would drop this message"
        );
        self.msgs.push((to, msg));
    }

    /// The log is about to lose its entries from `from` on (a conflicting append or a
    /// snapshot install). Messages not yet handed out in a Ready that speak for those
    /// entries — an acknowledgement, a deposed leader's append, a (pre-)vote request
    /// advertising the old last entry — would be sent after a Ready that no longer
    /// contains (and so never persists) them: drop them. Without this, a node that
    /// steps several messages between Readies could acknowledge an entry it no longer
    /// holds, and a stale leader could count it toward a quorum.
    pub(crate) fn discard_stale_msgs(&mut self, from: Index) {
        // Only entries past the commit index are ever truncated.
        debug_assert!(from > self.log.commit);
        let before = self.msgs.len();
        self.msgs.retain(|(_, m)| match &m.body {
            Body::AppendResponse {
                index,
                reject: None,
            } => *index < from,
            Body::Append {
                prev_index,
                entries,
                ..
            } => prev_index + (entries.len() as Index) < from,
            Body::Vote { last_index, .. } | Body::PreVote { last_index, .. } => *last_index < from,
            _ => true,
        });
        if self.msgs.len() < before {
            sim_runtime::cover!("raft.unsent_messages_about_truncated_entries_dropped");
            debug!(
                node = self.cfg.id,
                from,
                dropped = before - self.msgs.len(),
                "raft: dropped messages about truncated entries"
            );
        }
    }

    /// The other voters.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.cfg
            .voters
            .iter()
            .copied()
            .filter(|&p| p != self.cfg.id)
            .collect()
    }

    pub(crate) fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role {
            RoleState::Leader(ld) => Some(ld),
            _ => None,
        }
    }

    pub(crate) fn leader_state_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leader(ld) => Some(ld),
            _ => None,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Current role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// The leader this node knows of in its term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Commit index.
    pub fn commit(&self) -> Index {
        self.log.commit
    }

    /// The persisted storage (what survives a crash).
    pub fn storage(&self) -> &S {
        &self.log.storage
    }

    /// Consumes the node, returning its persisted storage.
    pub fn into_storage(self) -> S {
        self.log.storage
    }

    /// The compaction point `(index, term)`: the log holds the entries after it.
    pub fn log_start(&self) -> (Index, Term) {
        let i = self.log.first_index() - 1;
        (i, self.log.term(i).unwrap_or(0))
    }

    /// Every entry the node holds (persisted or not), after the compaction point.
    pub fn log_entries(&self) -> Result<Vec<Entry>, Error> {
        Ok(self
            .log
            .entries(self.log.first_index(), self.log.last_index() + 1)?)
    }

    /// A status summary.
    pub fn status(&self) -> Status {
        let progress = self
            .leader_state()
            .map(|ld| {
                ld.progress
                    .iter()
                    .map(|(&id, p)| (id, (p.match_index, p.next_index)))
                    .collect()
            })
            .unwrap_or_default();
        Status {
            id: self.cfg.id,
            role: self.role(),
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.commit,
            applied: self.log.applied,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            snapshot_index: self.log.storage.snapshot().meta.index,
            progress,
        }
    }

    /// Checks the node's invariants (see the module doc).
    pub fn verify_invariants(&self) -> Result<(), String> {
        self.log.verify(self.term)?;
        let id = self.cfg.id;
        match &self.role {
            RoleState::Leader(ld) => {
                if self.leader != Some(id) || self.vote != Some(id) {
                    return Err(format!(
                        "leader {id} with leader {:?} vote {:?}",
                        self.leader, self.vote
                    ));
                }
                if !ld.progress.keys().eq(self.cfg.voters.iter()) {
                    return Err("leader progress does not cover exactly the voters".into());
                }
                let own = ld.progress.get(&id).map(|p| p.match_index);
                if own != Some(self.log.last_index()) {
                    return Err(format!(
                        "leader's own match {own:?} ≠ last index {}",
                        self.log.last_index()
                    ));
                }
                if ld.term_start > self.log.last_index()
                    || self.log.term(ld.term_start).is_ok_and(|t| t != self.term)
                {
                    return Err(format!(
                        "leader's term start {} is not of its term",
                        ld.term_start
                    ));
                }
                for (p, pr) in &ld.progress {
                    if pr.match_index >= pr.next_index || pr.next_index > self.log.last_index() + 1
                    {
                        return Err(format!(
                            "progress of {p}: match {} next {}",
                            pr.match_index, pr.next_index
                        ));
                    }
                }
            }
            RoleState::Candidate { votes }
                if self.vote != Some(id)
                    || votes.get(&id) != Some(&true)
                    || self.leader.is_some() =>
            {
                return Err("candidate did not vote for itself, or knows a leader".into());
            }
            RoleState::PreCandidate { .. } if self.leader.is_some() => {
                return Err("pre-candidate knows a leader".into());
            }
            RoleState::Follower if self.leader == Some(id) => {
                return Err("follower names itself leader".into());
            }
            _ => {}
        }
        if self.prev_hard_state.term > self.term {
            return Err("term went backwards".into());
        }
        Ok(())
    }

    /// Panics on a broken invariant in debug builds (a broken invariant is a bug).
    pub(crate) fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(e) = self.verify_invariants() {
            panic!("raft invariant broken on node {}: {e}", self.cfg.id);
        }
    }
}
