//! # Raft: a synchronous, I/O-free consensus state machine
//!
//! [`RawNode`] is one member of a Raft group (Ongaro & Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", USENIX ATC 2014 — "§N" below — and Ongaro's
//! thesis, "Consensus: Bridging Theory and Practice", 2014 — "thesis §N"). It never
//! touches a clock, a disk, a socket or the OS's randomness: the caller feeds it
//! [`RawNode::tick`]s, incoming messages ([`RawNode::step`]), proposals and read
//! requests, and drains the consequences as a [`Ready`]. Tests and the simulator decide
//! what is delivered, dropped, duplicated, reordered or lost in a crash.
//!
//! ```text
//!   tick / step(from, msg) / propose / read_index / campaign
//!                 │
//!                 ▼
//!   RawNode ── role: Follower | PreCandidate | Candidate | Leader{progress, reads}
//!     │         RaftLog = Storage (persisted) + unstable tail/snapshot (not yet)
//!     ▼
//!   ready() ──► Ready { hard_state, snapshot, entries, committed_entries,
//!                       messages, read_states }
//!                 │ 1. persist snapshot, entries, then hard state (durably)
//!                 │ 2. advance(&ready)     — moves them into Storage
//!                 │ 3. send messages       — only now
//!                 │ 4. apply committed entries / serve read states
//! ```
//!
//! ## The persist-then-send contract (the caller's one obligation)
//! Everything in a [`Ready`] that must be durable — `snapshot`, `entries`,
//! `hard_state` (term, vote, commit) — must be durable *before* any of its `messages` is
//! sent and before any of its `committed_entries` is applied. This is what makes a vote
//! (§5.2: at most one per term) and an acknowledgement (§5.3) survive a crash. Persist
//! in the order snapshot, entries, hard state, so a crash between them never leaves a
//! commit index beyond the stored log. Then call [`RawNode::advance`], which moves the
//! Ready's contents into [`Storage`], and only then send. The leader counts its own
//! not-yet-persisted entries toward a quorum: sound only because of this contract (no
//! follower can acknowledge an entry before the leader's Ready that carried it was
//! persisted, and a single-node group's commits leave the node only after persisting).
//! [`safety::check_send_durable`] states the contract as a check; the test harness
//! runs it on every message.
//!
//! Details of the contract:
//! - At most one Ready is outstanding: `ready` again before `advance` is an error.
//! - The caller may `step`/`tick`/`propose` any number of times between `ready`
//!   calls (e.g. while an fsync is in flight). If a step truncates the log, pending
//!   messages that speak for the truncated entries (acknowledgements, a deposed
//!   leader's appends, vote requests advertising the old last entry) are discarded,
//!   since no Ready will ever persist what they claim.
//! - A persisted Ready's messages may be sent late, even after later Readies: that is
//!   indistinguishable from network delay. They must never be sent early.
//! - A crash loses everything not advanced; restarting is [`RawNode::new`] over the
//!   persisted [`Storage`] (with [`Config::applied`] if the state machine is durable
//!   beyond the storage's snapshot).
//!
//! ## Model
//! - Roles (§5.1): follower, pre-candidate (thesis §9.6), candidate, leader. Terms only
//!   grow; a message from a higher term makes the receiver a follower of that term,
//!   except pre-vote traffic, which never changes anyone's term.
//! - Election (§5.2, §5.4.1): randomized timeouts in `[election_timeout_ticks,
//!   2·election_timeout_ticks)` ticks drawn from the caller's RNG; pre-vote first
//!   (thesis §9.6), so a partitioned node does not inflate terms; a vote only for a
//!   candidate whose log is at least as up-to-date (the election restriction); leader
//!   stickiness (thesis §4.2.3): while a node has heard from a live leader within the
//!   election timeout it ignores vote and pre-vote requests.
//! - Check-quorum (thesis §6.2): every election timeout, a leader that heard from
//!   less than a quorum (itself included) during that window steps down — so an
//!   isolated leader is gone within two election timeouts.
//! - Replication (§5.3): one append stream per follower, probing then pipelining, with
//!   fast conflict backtracking (the follower names the conflicting term and the first
//!   index it holds of that term). A leader appends a no-op when elected (§8).
//! - Commitment (§5.4.2, Figure 8): only an entry of the leader's current term is
//!   committed by counting replicas; earlier entries are committed with it.
//! - Snapshots (§7): the application snapshots its state at an applied index
//!   ([`RawNode::snapshot`]) and compacts the log ([`RawNode::compact`]); a follower
//!   whose next entry is compacted away gets InstallSnapshot, and its `Ready` carries the
//!   snapshot to persist and install.
//! - Linearizable reads (thesis §6.4, ReadIndex): the leader records its commit index,
//!   waits until an entry of its own term is committed, confirms it is still leader
//!   with a heartbeat round acknowledged by a quorum, then releases the read at that
//!   index. Followers forward read requests to the leader.
//!
//! ## Invariants ([`RawNode::verify_invariants`], checked after every mutation in
//! debug builds)
//! - `applied ≤ commit ≤ last index`; the snapshot index ≤ commit.
//! - Log indices are contiguous and terms non-decreasing, and no term exceeds the
//!   node's term.
//! - A leader voted for itself, tracks exactly the voters, and its own match index is
//!   its last index. A candidate voted for itself.
//!
//! The cluster-wide properties (election safety, log matching, leader completeness,
//! state-machine safety) are checked from outside by [`safety::SafetyChecker`].
//!
//! ## Fault model
//! Messages may be lost, duplicated, reordered and delayed; nodes may crash (losing
//! whatever was not advanced) and restart; partitions may be symmetric or one-way.
//! Stale-term messages, messages from unknown node ids and malformed messages are
//! dropped with a `tracing::warn!` (or answered with a rejection carrying the current
//! term, as §5.1 prescribes), never a panic. Messages no honest peer sends are dropped
//! before they touch any state ([`Message::validate`], D52): a term more than
//! [`MAX_TERM_JUMP`] above the receiver's, an index above [`MAX_INDEX`], entries that do
//! not follow their previous index, a carried term above the message's own. Indexes
//! are thereby kept from wrapping; terms are moved by checked arithmetic, and a node at
//! `u64::MAX` stops campaigning rather than wrap. Byzantine
//! behaviour beyond that (a peer lying within the bounds) is out of scope: keeping
//! impostors out is the transport's handshake's job.
//!
//! ## Non-goals
//! - Membership changes: the voter set is fixed at construction.
//! - Leadership transfer, learners, leases (reads always take a heartbeat round).
//! - I/O of any kind: the replicated database layer owns persistence and transport.

mod election;
mod log;
mod message;
mod node;
mod read_index;
mod ready;
mod replication;
pub mod safety;
mod snapshot;
mod storage;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use message::{
    Body, Entry, HardState, Message, ReadState, Ready, RejectHint, Snapshot, SnapshotMeta,
};
pub use node::{RawNode, Role, Status};
pub use storage::{MemStorage, Storage, StorageError};

/// A node's identity within its group: the workspace's one node identity,
/// [`sim_runtime::NodeId`]. `0` is not a valid id.
pub use sim_runtime::NodeId;
/// A Raft term (§5.1). Term 0 is the initial state before any election.
pub type Term = u64;
/// A log index. Entries start at 1; index 0 is the empty log.
pub type Index = u64;

/// The largest step a message may move a node's term (D52): a message whose term
/// exceeds the receiver's term plus this is dropped. Honest terms move by one per
/// election, and pre-vote keeps a partitioned node from inflating its own, so no honest
/// peer is 2^32 elections ahead; a forged message can move a term by at most this, so
/// one forgery leaves room for ~2^64 more elections (a bound on a single absolute value
/// could not: a forged term at the bound would leave none). A node never wraps its term:
/// at `u64::MAX` it stops campaigning.
pub const MAX_TERM_JUMP: Term = 1 << 32;
/// The largest log index a message may name (D52); larger ones cannot fit any log (one
/// entry per nanosecond for ~292 years), and bounding them lets `index + 1` and
/// `index + len` never wrap.
pub const MAX_INDEX: Index = u64::MAX / 2;

/// Configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's id; must be one of `voters`.
    pub id: NodeId,
    /// The fixed voter set, this node included.
    pub voters: BTreeSet<NodeId>,
    /// Base election timeout in ticks; each node waits a random `[t, 2t)` (§5.2).
    /// Also the check-quorum window and the leader-stickiness window.
    pub election_timeout_ticks: u64,
    /// Ticks between leader heartbeats; must be less than `election_timeout_ticks`.
    pub heartbeat_interval_ticks: u64,
    /// Run a pre-vote round before a real election (thesis §9.6).
    pub pre_vote: bool,
    /// Leader steps down without a quorum of recent contact (thesis §6.2); followers
    /// ignore vote requests while they hear from a leader (thesis §4.2.3).
    pub check_quorum: bool,
    /// At most this many entries per append message.
    pub max_entries_per_message: usize,
    /// A new leader probes each follower from its own commit index rather than from
    /// the end of its log. Both are correct (`nextIndex` is only a guess, §5.3); from
    /// the commit index the first appends re-send entries a follower may already hold,
    /// so a follower meets appends that vouch for a prefix of its log while the
    /// leader's commit index is past them — the state Figure 2's rule 5 (commit only
    /// through the last new entry) exists for. Simulations turn it on per seed.
    pub probe_from_commit: bool,
    /// The index the application's durable state machine has already applied (0 if it
    /// is restored from the storage's snapshot only). Entries up to it are not handed
    /// out again after a restart.
    pub applied: Index,
}

impl Config {
    /// A configuration with defaults: election timeout 10 ticks, heartbeat 1 tick,
    /// pre-vote and check-quorum on, 64 entries per message.
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Config {
        Config {
            id,
            voters: voters.into_iter().collect(),
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_message: 64,
            probe_from_commit: false,
            applied: 0,
        }
    }

    /// Checks the configuration can work.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::Config(why.to_string()));
        if self.id == 0 || self.voters.contains(&0) {
            return bad("node id 0 is reserved");
        }
        if !self.voters.contains(&self.id) {
            return bad("the node's own id must be one of the voters");
        }
        if self.heartbeat_interval_ticks == 0
            || self.heartbeat_interval_ticks >= self.election_timeout_ticks
        {
            return bad("need 0 < heartbeat_interval_ticks < election_timeout_ticks");
        }
        if self.max_entries_per_message == 0 {
            return bad("max_entries_per_message must be at least 1");
        }
        Ok(())
    }

    /// Votes needed for a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// Errors of the Raft core. Bad messages are not errors (they are dropped and logged);
/// these are answers to the caller's own calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Only the leader accepts proposals (and serves reads itself); `leader` is the
    /// node this one believes leads, if any, for the caller to redirect to.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The known leader, if any.
        leader: Option<NodeId>,
    },
    /// `ready` was called again before `advance` for the previous Ready.
    #[error("the previous Ready has not been advanced")]
    ReadyPending,
    /// `advance` was called without an outstanding Ready.
    #[error("advance without an outstanding Ready")]
    NoReadyPending,
    /// A snapshot or compaction request the log cannot honour.
    #[error("snapshot/compaction request refused: {0}")]
    Snapshot(String),
    /// Persisted state that contradicts itself (e.g. a commit index beyond the log).
    #[error("inconsistent persisted state: {0}")]
    Corrupt(String),
    /// An invalid [`Config`].
    #[error("invalid raft config: {0}")]
    Config(String),
    /// The storage refused an operation.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
