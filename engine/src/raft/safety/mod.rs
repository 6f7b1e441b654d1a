//! A checker of Raft's safety properties (Figure 3 of the Raft paper) over the
//! transitions of *all* nodes of a group, for tests and simulated scenarios.
//!
//! Feed it every transition as an [`Event`] — or let [`SafetyChecker::observe`] derive
//! them by comparing a node's [`NodeView`] with the last one seen — and it checks, at
//! every event:
//! - **Election safety**: at most one leader per term.
//! - **Log matching**: an entry is identified by (index, term); every appearance of one
//!   in any log, ever, has the same content and the same previous term (so, by
//!   induction, the same prefix). Logs are contiguous with non-decreasing terms.
//! - **Leader completeness**: an entry committed in term T (the term of the node that
//!   first reports it committed) is in the log of every leader of a term after T
//!   (checked when a leader is elected, and when an entry becomes committed, against
//!   every leader already elected in a later term). Not "after the entry's own term":
//!   Figure 8's old-term entries are committed only later, by a later leader.
//! - **State-machine safety**: no two nodes commit or apply different entries at one
//!   index; a node applies in order and only what is committed.
//! - A node's commit index and term never go back (except across a restart, which
//!   loses volatile state); no node truncates a committed entry; a snapshot covers only
//!   committed entries.
//!
//! The checker knows nothing of the implementation: it sees only logs, terms,
//! leadership and commit/apply indices, so a bug cannot hide by agreeing with itself.

use std::fmt;

use super::{Body, Entry, Index, Message, NodeId, RawNode, Role, Storage, Term};

mod checker;

pub use checker::SafetyChecker;

/// An entry's identity: position, term and a digest of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    /// Log index.
    pub index: Index,
    /// Term.
    pub term: Term,
    /// Stable hash of the entry's data (no-ops have their own digest).
    pub digest: u64,
}

impl EntryId {
    /// The identity of `entry`.
    pub fn of(entry: &Entry) -> EntryId {
        let digest = match &entry.data {
            None => sim_runtime::rng::stable_hash(b"raft-noop"),
            Some(d) => sim_runtime::rng::stable_hash(d) ^ 0x5bd1_e995,
        };
        EntryId {
            index: entry.index,
            term: entry.term,
            digest,
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}#{:04x}",
            self.index,
            self.term,
            self.digest & 0xffff
        )
    }
}

/// One transition of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The node's current term is now `term`.
    Term { node: NodeId, term: Term },
    /// The node became leader of `term` (its log as last reported is the log it was
    /// elected with).
    BecameLeader { node: NodeId, term: Term },
    /// The node's whole log is now: compaction point `start` (index, term), then
    /// `entries` (indices `start.0 + 1 ..`). Appends, truncations, snapshot installs
    /// and compactions are all reported this way.
    Log {
        node: NodeId,
        start: (Index, Term),
        entries: Vec<EntryId>,
    },
    /// The node's commit index is now `index`.
    Commit { node: NodeId, index: Index },
    /// The node applied `entry` to its state machine.
    Apply { node: NodeId, entry: EntryId },
    /// The node installed a snapshot at `(index, term)` into its state machine.
    ApplySnapshot {
        node: NodeId,
        index: Index,
        term: Term,
    },
    /// The node crashed and restarted: volatile state is gone, and the following events
    /// report what it recovered.
    Restart { node: NodeId },
}

/// A broken property. `event` is the 1-based number of the event that broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Two leaders in one term.
    #[error("election safety (event {event}): nodes {first} and {second} both led term {term}")]
    ElectionSafety {
        event: u64,
        term: Term,
        first: NodeId,
        second: NodeId,
    },
    /// Two different entries with the same index and term, or a malformed log.
    #[error("log matching (event {event}) on node {node}: {detail}")]
    LogMatching {
        event: u64,
        node: NodeId,
        detail: String,
    },
    /// A leader lacks an entry committed in an earlier term.
    #[error("leader completeness (event {event}): leader {leader} of term {term} lacks committed entry {missing}")]
    LeaderCompleteness {
        event: u64,
        leader: NodeId,
        term: Term,
        missing: EntryId,
    },
    /// Two different entries committed or applied at one index.
    #[error("state-machine safety (event {event}): node {node} {what} {ours}, but {theirs} is {what} at that index")]
    StateMachineSafety {
        event: u64,
        node: NodeId,
        what: &'static str,
        ours: EntryId,
        theirs: EntryId,
    },
    /// A node's commit index went down.
    #[error("commit regressed (event {event}) on node {node}: {from} → {to}")]
    CommitRegressed {
        event: u64,
        node: NodeId,
        from: Index,
        to: Index,
    },
    /// A node's term went down.
    #[error("term regressed (event {event}) on node {node}: {from} → {to}")]
    TermRegressed {
        event: u64,
        node: NodeId,
        from: Term,
        to: Term,
    },
    /// A node removed a committed entry from its log.
    #[error("committed entry truncated (event {event}) on node {node}: {entry}")]
    CommittedEntryTruncated {
        event: u64,
        node: NodeId,
        entry: EntryId,
    },
    /// An event that cannot happen in any correct execution (applying out of order,
    /// committing beyond the log, a snapshot of an uncommitted index…).
    #[error("impossible transition (event {event}) on node {node}: {detail}")]
    Impossible {
        event: u64,
        node: NodeId,
        detail: String,
    },
}

/// What [`SafetyChecker::observe`] looks at on a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    /// Current term.
    pub term: Term,
    /// Whether it is the leader of `term`.
    pub leader: bool,
    /// Compaction point.
    pub start: (Index, Term),
    /// The entries after it.
    pub entries: Vec<EntryId>,
    /// Commit index.
    pub commit: Index,
}

impl NodeView {
    /// The view of `node` (its whole in-memory log, persisted or not).
    pub fn of<S: Storage>(node: &RawNode<S>) -> NodeView {
        NodeView {
            term: node.term(),
            leader: node.role() == Role::Leader,
            start: node.log_start(),
            entries: node
                .log_entries()
                .map(|es| es.iter().map(EntryId::of).collect())
                .unwrap_or_default(),
            commit: node.commit(),
        }
    }
}

/// The persist-then-send contract as a check: may a node whose *persisted* storage is
/// `persisted` send `msg` to `to`? Errs with the reason if the message depends on
/// state not yet durable (a vote, a term, an acknowledged or replicated entry).
pub fn check_send_durable<S: Storage>(
    persisted: &S,
    to: NodeId,
    msg: &Message,
) -> Result<(), String> {
    let hs = persisted.hard_state();
    let allowed = match msg.body {
        // A pre-vote request carries the proposed term, one above the sender's.
        Body::PreVote { .. } => hs.term + 1,
        // A granted pre-vote echoes the candidate's proposed term and binds nothing.
        Body::PreVoteResponse { granted: true } => msg.term,
        _ => hs.term,
    };
    if msg.term > allowed {
        return Err(format!(
            "{msg}: term {} not persisted (persisted term {})",
            msg.term, hs.term
        ));
    }
    let last = persisted.last_index();
    match &msg.body {
        // A vote is durable once recorded in its term, or once a later term is (the
        // node can then never vote in the vote's term again).
        Body::VoteResponse { granted: true }
            if !(hs.term > msg.term || hs.term == msg.term && hs.vote == Some(to)) =>
        {
            Err(format!(
                "{msg}: vote for {to} in term {} not persisted (persisted {:?} in {})",
                msg.term, hs.vote, hs.term
            ))
        }
        Body::AppendResponse {
            index,
            reject: None,
        } if *index > last => Err(format!(
            "{msg}: acknowledges {index} but only {last} is persisted"
        )),
        Body::Append {
            prev_index,
            entries,
            ..
        } if prev_index + entries.len() as Index > last => Err(format!(
            "{msg}: replicates entries the leader has not persisted (persisted {last})"
        )),
        _ => Ok(()),
    }
}
