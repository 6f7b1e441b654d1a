//! # The replicated database: the transaction API over a Raft group
//!
//! Every node of a group runs [`run_node`]: one task that owns a [`crate::raft::RawNode`],
//! persists its log ([`logfile`]), applies committed commands to an embedded
//! [`crate::Db`] (the state machine, [`state`]), and serves clients over a
//! `sim_net::Endpoint<`[`Wire`]`>`. A [`ReplicatedClient`] finds the leader, runs
//! interactive transactions ([`ReplicatedTxn`]) and commits them through the log.
//!
//! ```text
//!  client ── Begin ──► leader: ReadIndex (thesis §6.4) → wait applied ≥ read index
//!         ◄─ Begun{token, snapshot A} ─ opens a local Db txn at A (txn table, leased)
//!         ── Get/Scan{token} ──► served from that local txn (linearizable: A ≥ read index)
//!         ── Commit{cmd} ──► propose(cmd) → committed (§5.3) → applied on every replica
//!         ◄─ Committed{index} | Aborted{key} ─ (answer from the leader once applied)
//! ```
//!
//! ## Model
//! - **Commands** ([`command::Command`]) carry a whole transaction: the client's id and
//!   sequence number, the snapshot index `A` its reads saw, the keys and ranges it
//!   read, and its buffered writes. Every replica applies them in log order, each as
//!   one engine transaction that also updates bookkeeping under the reserved `\0`
//!   prefix: `\0sys/applied` (index and term), per user key the index of its last write
//!   (`\0lw/<key>`, kept on delete), per client its last `(seq, outcome)`
//!   (`\0client/<id>`).
//! - **Validation** is backward optimistic concurrency control, decided from the state
//!   alone so every replica decides alike: a command aborts iff a key it read, or any
//!   key in a range it read, was written at an index `> A`. Otherwise its writes apply
//!   at its own index `i`, and the transaction is equivalent to running alone at `i`
//!   (nothing it read changed in `(A, i)`). Committed transactions are thus serialized
//!   in log order; read-only ones at their snapshot `A`. Since `A` is at least a read
//!   index obtained after the transaction began, and a commit is answered only once
//!   applied, the order respects real time: **strict serializability**.
//! - **Exactly-once commits**: a client has at most one commit in flight and retries
//!   an unknown outcome with the same `(client, seq)`, to any leader. The first
//!   application records its outcome; a later copy is not applied and is answered with
//!   the recorded outcome.
//! - **Snapshots** (§7): the state machine's snapshot is a dump of every engine row
//!   (bookkeeping included) at an applied index; a lagging follower installs it in one
//!   engine transaction (delete everything, put every row).
//!
//! ## Invariants
//! - The Raft contract (see [`crate::raft`]): snapshot, entries, then hard state are
//!   durable before `advance`, messages go out only after, and committed entries are
//!   applied only after.
//! - The engine's `\0sys/applied` equals the index of the last entry applied to it;
//!   every engine commit of an apply is durable before the next entry is applied, so a
//!   restart resumes from it ([`crate::raft::Config::applied`]) and never applies an
//!   entry twice or skips one.
//! - The log's compaction point is never beyond the engine's applied index.
//! - Reserved keys (first byte `\0`) are never readable or writable by clients.
//!
//! ## Fault model
//! Everything [`crate::raft`] tolerates (loss, duplication, reordering and delay of
//! messages, symmetric and one-way partitions, crashes and restarts, clock skew — no
//! correctness argument depends on clocks), plus power loss with torn and lost
//! unsynced writes (sim-fs's crash model). A failed fsync or write stops the node
//! (fail-stop: [`run_node`] returns the error; the supervisor restarts it and it
//! recovers from disk). Bad input — undecodable commands in the log, Raft messages
//! from unknown nodes or clients, commits under another client's id, unknown
//! transaction tokens — is logged and answered or skipped, never a panic. Who may
//! connect at all is sim-net's business ([`NodeConfig::auth`], [`ClientConfig::auth`]:
//! mutual TLS, simulated credentials, or insecure).
//!
//! ## Non-goals
//! - Membership changes, leader leases, follower reads.
//! - Snapshots larger than one engine transaction or one network frame (16 MiB).
//! - A restart after a *failed* fsync in the same process (the page cache may hold
//!   data the disk dropped; the same known gap as the WAL's, see `specs/README.md`).

pub mod client;
pub mod command;
pub mod logfile;
mod node;
mod server;
pub mod state;
#[cfg(test)]
mod tests;
mod txn;
mod watch;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use client::{ClientConfig, ClientError, ReplicatedClient, ReplicatedTxn, TxnOutcome};
pub use command::{Command, CommitCmd, KeySpan, Outcome};
pub use node::run_node;
pub use watch::SafetyWatch;
pub use wire::{NodeStatus, Request, Response, TxnToken, Wire};

use crate::raft::safety::NodeView;
use crate::raft::{Entry, NodeId, SnapshotMeta};

/// The default cluster id of the `seedbank node` command and its shell.
pub const DEFAULT_CLUSTER_ID: u64 = 0x5eed_ba4c;

/// Errors that stop a node (fail-stop) or refuse to start it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A file operation failed (including a failed fsync: never retried).
    #[error("i/o error during {op} on {path}: {message}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Bytes on disk are damaged beyond a torn tail, or disagree with each other.
    #[error("corrupt state in {path}: {detail}")]
    Corrupt {
        /// The damaged file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The state machine's engine failed.
    #[error("state machine: {0}")]
    Db(#[from] crate::Error),
    /// The Raft core refused a call (a broken invariant of this layer).
    #[error("raft: {0}")]
    Raft(#[from] crate::raft::Error),
    /// The node's configuration cannot work.
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// The network endpoint could not be opened.
    #[error("network: {0}")]
    Net(String),
}

impl NodeError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, e: std::io::Error) -> NodeError {
        NodeError::Io {
            op,
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, detail: impl Into<String>) -> NodeError {
        NodeError::Corrupt {
            path: path.display().to_string(),
            detail: detail.into(),
        }
    }
}

/// Hooks for tests and simulations to watch a node (e.g. to feed
/// [`crate::raft::safety::SafetyChecker`]). Called from the node's task.
pub trait Observer: Send + Sync {
    /// The node (re)started: its volatile state is gone; what follows is recovered.
    fn restarted(&self, _node: NodeId) {}
    /// The node's Raft state after a Ready was handled (or after recovery).
    fn raft_state(&self, _node: NodeId, _view: NodeView) {}
    /// The node applied `entry` to its state machine.
    fn applied(&self, _node: NodeId, _entry: &Entry) {}
    /// The node installed a snapshot into its state machine.
    fn snapshot_installed(&self, _node: NodeId, _meta: SnapshotMeta) {}
}

/// Configuration of one replica node.
#[derive(Clone)]
pub struct NodeConfig {
    /// This node's id (≥ 1; one of `peers`).
    pub id: NodeId,
    /// Address the node listens on (peers and clients).
    pub listen: SocketAddr,
    /// Every voter of the group, this node included: id → address.
    pub peers: std::collections::BTreeMap<NodeId, SocketAddr>,
    /// Data directory: `raft/` (log and hard state) and `db/` (the state machine).
    pub data_dir: PathBuf,
    /// Cluster id checked in every network handshake.
    pub cluster_id: u64,
    /// Optional shared secret of the cluster's handshakes.
    pub token: Option<String>,
    /// Length of one Raft tick.
    pub tick: Duration,
    /// Base election timeout in ticks (each node waits `[t, 2t)`).
    pub election_ticks: u64,
    /// Leader heartbeat interval in ticks.
    pub heartbeat_ticks: u64,
    /// Take a snapshot and compact once the log holds this many applied entries.
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot (for slightly lagging followers).
    pub snapshot_keep: u64,
    /// At most this many entries in one append message (Raft's batching).
    pub max_entries_per_message: usize,
    /// A new leader probes followers from its commit index
    /// ([`crate::raft::Config::probe_from_commit`]); off by default.
    pub probe_from_commit: bool,
    /// Run a pre-vote round before each election ([`crate::raft::Config::pre_vote`]);
    /// on by default. Off, a replica cut off from the others raises its term with every
    /// election it starts and, once healed, deposes the leader (thesis §9.6).
    pub pre_vote: bool,
    /// An interactive transaction idle this long is dropped by the leader.
    pub txn_lease: Duration,
    /// Options of the state machine's engine.
    pub db_options: crate::Options,
    /// Optional observer (tests, simulations).
    pub observer: Option<Arc<dyn Observer>>,
    /// How the node's connections authenticate (mutual TLS, simulated credentials, or
    /// insecure: the default of [`NodeConfig::new`]).
    pub auth: sim_net::Auth,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("id", &self.id)
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("data_dir", &self.data_dir)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// A configuration with defaults: 10 ms ticks, election timeout 10–20 ticks,
    /// heartbeat every 3, snapshot every 1000 applied entries keeping 100, 10 s
    /// transaction leases, default engine options, no token, no observer.
    pub fn new(
        id: NodeId,
        listen: SocketAddr,
        peers: std::collections::BTreeMap<NodeId, SocketAddr>,
        data_dir: impl Into<PathBuf>,
    ) -> NodeConfig {
        NodeConfig {
            id,
            listen,
            peers,
            data_dir: data_dir.into(),
            cluster_id: DEFAULT_CLUSTER_ID,
            token: None,
            tick: Duration::from_millis(10),
            election_ticks: 10,
            heartbeat_ticks: 3,
            snapshot_threshold: 1000,
            snapshot_keep: 100,
            max_entries_per_message: 64,
            probe_from_commit: false,
            pre_vote: true,
            txn_lease: Duration::from_secs(10),
            db_options: crate::Options::default(),
            observer: None,
            auth: sim_net::Auth::Insecure,
        }
    }

    /// Checks the configuration can work.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |why: &str| Err(NodeError::Config(why.to_string()));
        if self.id == 0 || !self.peers.contains_key(&self.id) {
            return bad("the node's id must be ≥ 1 and one of the peers");
        }
        if self.peers.keys().any(|&p| p >= client::MIN_CLIENT_ID) {
            return bad("node ids must be below 2^32 (larger ids are clients')");
        }
        if self.tick.is_zero() {
            return bad("the tick must be positive");
        }
        if self.snapshot_threshold == 0 || self.snapshot_keep >= self.snapshot_threshold {
            return bad("need 0 ≤ snapshot_keep < snapshot_threshold");
        }
        Ok(())
    }
}
