//! What replicas and clients say to each other over `sim_net`.
//!
//! One message type, [`Wire`], carries Raft traffic between replicas and
//! request/response pairs between clients and replicas. A response echoes its
//! request's `id`; the transport is best effort, so clients time out and retry.
//!
//! ## Invariants
//! - Every answer is definite about what happened except [`Response::Retry`] after a
//!   commit (unknown outcome: retry with the same sequence number) and silence.
//! - [`Response::TxnAborted`] and [`Response::NotLeader`] promise that the request was
//!   not proposed.
//!
//! ## Fault model
//! Frames are checksummed, handshakes carry the cluster id and token, and with
//! credentials every sender is authenticated as the node or client it claims to be
//! (sim-net's `auth`); messages may still be lost, duplicated, reordered or come from a
//! hostile (authenticated) client, which the replica handles: Raft only from voters
//! (`node.rs`), commits only under the sender's own client id (`server.rs`).
//!
//! ## Non-goals
//! - Streaming large scans; compression.

use serde::{Deserialize, Serialize};

use crate::raft::{Index, Message, NodeId, Term};
use crate::replicated::command::{CommitCmd, KeySpan, Outcome};
use crate::{Key, Value};

/// Every message of the replicated database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// Raft traffic between replicas.
    Raft(Message),
    /// A client's request.
    Request {
        /// Chosen by the client; echoed in the response.
        id: u64,
        /// What it asks.
        req: Request,
    },
    /// A replica's answer.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        resp: Response,
    },
}

/// Names an interactive transaction on the leader that began it: the leader's term
/// and a counter, so a token never names another transaction, even across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnToken {
    /// Term of the leader that issued it.
    pub term: Term,
    /// Its number within that term.
    pub n: u64,
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Begin an interactive transaction (leader only).
    Begin,
    /// Read a key in a transaction's snapshot.
    Get {
        /// The transaction.
        token: TxnToken,
        /// The key.
        key: Key,
    },
    /// Read a range in a transaction's snapshot.
    Scan {
        /// The transaction.
        token: TxnToken,
        /// The range.
        span: KeySpan,
    },
    /// Commit a transaction (its whole read and write set), releasing `token`.
    Commit {
        /// The transaction to release, if any.
        token: Option<TxnToken>,
        /// The command to propose.
        cmd: CommitCmd,
    },
    /// Forget a transaction.
    Rollback {
        /// The transaction.
        token: TxnToken,
    },
    /// The replica's Raft status (any replica answers).
    Status,
}

/// A replica's status, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its id.
    pub id: NodeId,
    /// `"leader"`, `"follower"`, `"candidate"` or `"pre-candidate"`.
    pub role: String,
    /// Current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: Index,
    /// Applied index.
    pub applied: Index,
    /// Last log index.
    pub last_index: Index,
    /// Compaction point.
    pub log_start: Index,
}

/// A replica's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A transaction began at applied index `snapshot`.
    Begun {
        /// Its token.
        token: TxnToken,
        /// The applied index its reads see.
        snapshot: Index,
    },
    /// A get's value.
    Value(Option<Value>),
    /// A scan's rows.
    Rows(Vec<(Key, Value)>),
    /// A commit's outcome (definite).
    Outcome(Outcome),
    /// Done (rollback).
    Done,
    /// The replica's status.
    Status(NodeStatus),
    /// This replica does not lead; `leader` is its hint (with the address it knows).
    NotLeader {
        /// The leader it knows of.
        leader: Option<NodeId>,
        /// That leader's address, as configured on this replica.
        addr: Option<String>,
    },
    /// The transaction is gone (leader changed, lease expired, unknown token): nothing
    /// of it was proposed; retry the whole transaction.
    TxnAborted {
        /// Why.
        reason: String,
    },
    /// Try again (e.g. leadership was lost while a commit was in flight: its outcome
    /// is unknown; retry it with the same sequence number).
    Retry {
        /// Why.
        reason: String,
    },
    /// A malformed request.
    Error(String),
}
