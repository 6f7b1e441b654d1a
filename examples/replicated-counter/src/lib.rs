//! # replicated-counter — an example Seedbank user
//!
//! A replicated grow-only counter (a G-Counter CRDT) written the way an outside user
//! of Seedbank would write a service: time, tasks and randomness through
//! `sim-runtime`, files through `sim-fs`, messages through `sim-net`, and nothing else.
//! Its tests (`tests/`) run it under the `seedbank` harness with crashes, partitions
//! and disk and network faults.
//!
//! ## Protocol
//! - `n` nodes (ids `1..=n`); node `i` owns slot `i` of the counter. Clients (ids
//!   above [`CLIENT_ID_BASE`]) send [`Msg::Incr`] to any node, which applies it to its
//!   own slot.
//! - **Durability** ([`store`]): a node appends the increments it received as records
//!   of its log, fsyncs, and only then updates its state and answers
//!   [`Msg::IncrOk`] (group commit: one fsync for all the increments that arrived
//!   together). A failed write or fsync stops the node (fail-stop); the next start
//!   recovers and compacts the log.
//! - **Exactly once**: every operation carries `(client, seq)`, clients number their
//!   operations from 1 and send one at a time, and a node applies an operation only if
//!   `seq` is above the last it applied for that client (kept in the log), so network
//!   duplicates are harmless.
//! - **Replication**: every [`Options::gossip_every`] a node sends its view of all
//!   slots to its peers ([`Msg::Gossip`]); a receiver keeps the maximum of each slot
//!   except its own, which only its log decides. Views converge once the network heals.
//! - **Reads** ([`Msg::Read`]) answer the node's view of every slot; the counter's
//!   value is their sum. [`Msg::Applied`] answers the last operation the node applied
//!   per client (what its log says it has): the chaos test reads it after recovery.
//!
//! ## The planted bug
//! With `--features ack-before-fsync` (or [`Options::ack_before_fsync`]) a node
//! answers `IncrOk` as soon as the records are written to the page cache and leaves the
//! fsync to a flush every [`Options::flush_every`]. A power loss inside that window
//! loses acknowledged increments. `tests/chaos.rs` finds it; README.md shows how fast.
//!
//! ## Chaos scenario and commands
//! [`chaos_scenario`] (simulated world) is the counter on `seedbank::chaos`'s runner;
//! the `counter-chaos` binary offers it, with and without the planted bug, to the chaos
//! commands (`sweep`, `run`, `shrink`, `check-determinism`; D90).

#[cfg(madsim)]
pub mod chaos_scenario;
pub mod client;
pub mod node;
pub mod store;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Cluster id in every handshake.
pub const CLUSTER_ID: u64 = 0xC0_0A7E;
/// Node ids above this are clients.
pub const CLIENT_ID_BASE: u64 = 100;

/// What nodes and clients say to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Client → node: add one to the counter (operation `seq` of `client`).
    Incr { seq: u64 },
    /// Node → client: operation `seq` is durable.
    IncrOk { seq: u64 },
    /// Client → node: the node's view of every slot, please.
    Read { req: u64 },
    /// Node → client: slot `i` of the counter at index `i - 1`.
    ReadOk { req: u64, slots: Vec<u64> },
    /// Node → node: the sender's view of every slot.
    Gossip { slots: Vec<u64> },
    /// Client → node: the last operation the node applied for each client, please.
    Applied { req: u64 },
    /// Node → client: `(client, seq)` of the last operation applied per client.
    AppliedOk { req: u64, last: Vec<(u64, u64)> },
}

/// How to run one node.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's id, `1..=peers.len()`.
    pub id: u64,
    /// Every node's address, index `i - 1` for node `i` (this node's included).
    pub peers: Vec<SocketAddr>,
    /// The directory the node keeps its files in (`counter-<id>.log`). It must exist,
    /// durably, before the node starts; nodes may share it.
    pub dir: PathBuf,
    /// Interval between two gossip rounds.
    pub gossip_every: Duration,
    /// THE PLANTED BUG: acknowledge before the fsync (default: on with the
    /// `ack-before-fsync` feature).
    pub ack_before_fsync: bool,
    /// With `ack_before_fsync`: interval between background fsyncs.
    pub flush_every: Duration,
}

impl Options {
    /// Node `id` of the cluster at `peers`, storing in `dir`.
    pub fn new(id: u64, peers: Vec<SocketAddr>, dir: PathBuf) -> Self {
        assert!(
            id >= 1 && id as usize <= peers.len(),
            "node id {id} outside 1..={}",
            peers.len()
        );
        Options {
            id,
            peers,
            dir,
            gossip_every: Duration::from_millis(20),
            ack_before_fsync: cfg!(feature = "ack-before-fsync"),
            flush_every: Duration::from_millis(100),
        }
    }

    /// This node's listen address.
    pub fn listen(&self) -> SocketAddr {
        self.peers[(self.id - 1) as usize]
    }
}
