//! # lease-register — a second example Seedbank user
//!
//! A replicated key/value register service: one leader, elected by a majority, serves
//! reads from its own memory while it holds a time **lease**, and commits every write
//! to a majority. Written the way an outside team would write a service on Seedbank:
//! time, tasks and randomness through `sim-runtime`, files through `sim-fs`, messages
//! through `sim-net`, nothing else. Its test (`tests/chaos_plan.rs`) drives it with
//! `seedbank::chaos` and judges the clients' history with the linearizability checker.
//!
//! ## Model
//! - `n` nodes (ids `1..=n`, a majority is `n / 2 + 1`); clients have ids above
//!   [`CLIENT_ID_BASE`] and send [`Msg::Read`] / [`Msg::Write`] to any node; a node
//!   that cannot serve answers [`Msg::NotLeader`] (the operation did not happen).
//! - **Epochs.** A node becomes leader of epoch `e` when a majority *grants* it `e`
//!   ([`Msg::Grant`]): a node grants at most one candidate per epoch, only an epoch
//!   above every one it granted, and never while its promise to another node is live.
//!   Grants are durable (fsynced) before they are answered and carry the granter's
//!   registers, so a new leader learns every committed write (quorums intersect).
//! - **Registers** are `key → (epoch, version, value)`, ordered by `(epoch, version)`;
//!   a node keeps the larger. A new leader first writes the merged state back to a
//!   majority ([`Msg::Accept`]), then serves. A write gets the next version in the
//!   leader's epoch and is acknowledged once a majority (the leader included) has
//!   fsynced it; a node refuses an `Accept` of an epoch below one it granted. Writes
//!   carry `(client, seq)`; a committed one is never applied twice (duplicates).
//! - **Leases.** Every [`Options::renew_every`] the leader sends [`Msg::Lease`]; a
//!   node that granted this leader's epoch promises, for [`Options::lease`] from the
//!   moment it *receives* it, to grant nobody else. The leader serves reads while a
//!   round it *started* less than `lease - margin` ago was answered by a majority.
//!   A restarted node grants nothing for one `lease` (it may have forgotten a promise).
//!
//! ## Invariants
//! - Every acknowledged write is on a majority's disks, and every later leader's state
//!   is at least as new (quorum intersection + epoch fencing).
//! - At most one node serves reads at any instant: a leader's lease ends before the
//!   promises that make it up (see *Fault model* for the clock assumption).
//! - Reads return the leader's *committed* state only, never an unacknowledged write.
//!
//! ## Fault model
//! Crashes and power loss (only fsynced records count; a torn tail is cut at recovery),
//! fsync / read / write EIO (the node stops: fail-stop, and is restarted), pauses,
//! partitions, and lost, duplicated, reordered and delayed messages. Clocks: leases are
//! measured with **timers** (`sim_runtime::time::sleep`), never by comparing clock
//! readings, so a clock *jump* does not move them; their *rate* may drift by at most
//! `margin / lease` relative to each other (5 % with the defaults, the fault plan's
//! bound), which the margin absorbs.
//!
//! ## Non-goals
//! A log, membership changes, compaction beyond rewrite-at-start, read-your-writes
//! across leaders for clients that time out, performance.
//!
//! ## The planted bug
//! With `--features stale-reads` (or [`Options::stale_reads`]) the leader checks only
//! that it is the leader before serving a read, not that its lease is live: cut off
//! from the others, it keeps answering reads while a new leader accepts newer writes.
//! The linearizability checker sees a read of a value older than one already read or
//! acknowledged; README.md shows how fast it is found and shrunk.
//!
//! A second, subtler one, `--features lease-by-clock` ([`Options::lease_by_clock`]):
//! the leader measures its lease by comparing clock readings, so a clock stepped back
//! stretches it past the promises behind it. Random plans rarely line a clock step up
//! with a partition of the leader (no failure in seeds 0..1000); a hand-written plan
//! in `tests/chaos_plan.rs` does.

pub mod client;
pub mod node;
pub mod store;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Cluster id in every handshake.
pub const CLUSTER_ID: u64 = 0x1EA5E;
/// Node ids above this are clients.
pub const CLIENT_ID_BASE: u64 = 100;

/// A register's value with the order it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    /// The epoch of the leader that assigned `version`.
    pub epoch: u64,
    /// The version within that epoch.
    pub version: u64,
    /// The value.
    pub value: i64,
}

impl Versioned {
    /// The order registers are merged in.
    pub fn order(&self) -> (u64, u64) {
        (self.epoch, self.version)
    }
}

/// Registers and, per client, the highest write sequence number applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `key → value`.
    pub regs: BTreeMap<String, Versioned>,
    /// `client → seq` of its latest write applied.
    pub seen: BTreeMap<u64, u64>,
}

impl State {
    /// Keeps the newer of each register and the higher of each client's seq; true if
    /// anything changed.
    pub fn merge(&mut self, other: &State) -> bool {
        let mut changed = false;
        for (k, v) in &other.regs {
            let newer = self
                .regs
                .get(k)
                .map_or(true, |mine| v.order() > mine.order());
            if newer {
                self.regs.insert(k.clone(), *v);
                changed = true;
            }
        }
        for (c, s) in &other.seen {
            let e = self.seen.entry(*c).or_insert(0);
            if *s > *e {
                *e = *s;
                changed = true;
            }
        }
        changed
    }
}

/// What nodes and clients say to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Client → node: the value of `key`, please.
    Read { req: u64, key: String },
    /// Node → client: `key` holds `value` (`None`: never written).
    ReadOk { req: u64, value: Option<i64> },
    /// Client → node: set `key` to `value` (the client's write `seq`).
    Write {
        req: u64,
        seq: u64,
        key: String,
        value: i64,
    },
    /// Node → client: the write is committed.
    WriteOk { req: u64 },
    /// Node → client: not served here (nothing happened); try `hint`.
    NotLeader { req: u64, hint: Option<u64> },
    /// Candidate → node: grant me `epoch`.
    Grant { epoch: u64 },
    /// Node → candidate: granted (durably), with the granter's state.
    GrantOk { epoch: u64, state: State },
    /// Node → anyone: refused; the highest epoch I granted is `granted`.
    Refused { granted: u64 },
    /// Leader → node: take these registers (batch `id` of `epoch`).
    Accept { epoch: u64, id: u64, state: State },
    /// Node → leader: batch `id` is durable here.
    AcceptOk { epoch: u64, id: u64 },
    /// Leader → node: renew your promise to me (round `round` of `epoch`).
    Lease { epoch: u64, round: u64 },
    /// Node → leader: renewed.
    LeaseOk { epoch: u64, round: u64 },
}

/// How to run one node.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's id, `1..=peers.len()`.
    pub id: u64,
    /// Every node's address, index `i - 1` for node `i` (this node's included).
    pub peers: Vec<SocketAddr>,
    /// The directory of the node's log (`lease-<id>.log`); it must exist, durably.
    pub dir: PathBuf,
    /// How long a node's promise to a leader lasts from its receipt.
    pub lease: Duration,
    /// How much earlier than `lease` after a round's start the leader stops serving.
    pub margin: Duration,
    /// Interval between lease rounds (and retransmissions).
    pub renew_every: Duration,
    /// How long a candidate waits for a majority.
    pub candidacy: Duration,
    /// THE PLANTED BUG: serve reads without a live lease (default: on with the
    /// `stale-reads` feature).
    pub stale_reads: bool,
    /// A SECOND PLANTED BUG: measure the lease by comparing clock readings
    /// (`time::now()`) instead of with a timer, so a clock step back stretches it
    /// (default: on with the `lease-by-clock` feature).
    pub lease_by_clock: bool,
    /// Told when this node starts leading an epoch (`Some(epoch)`) and stops (`None`).
    pub on_lead: Option<LeadHook>,
}

/// A callback for [`Options::on_lead`] (a test aims its faults at the leader with it).
#[derive(Clone)]
pub struct LeadHook(pub Arc<dyn Fn(Option<u64>) + Send + Sync>);

impl std::fmt::Debug for LeadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeadHook")
    }
}

impl Options {
    /// Node `id` of the cluster at `peers`, storing in `dir`. Panics on an id outside
    /// `1..=peers.len()` (a configuration error, not an input).
    pub fn new(id: u64, peers: Vec<SocketAddr>, dir: PathBuf) -> Options {
        assert!(
            id >= 1 && id as usize <= peers.len(),
            "node id {id} outside 1..={}",
            peers.len()
        );
        Options {
            id,
            peers,
            dir,
            lease: Duration::from_millis(300),
            margin: Duration::from_millis(100),
            renew_every: Duration::from_millis(50),
            candidacy: Duration::from_millis(150),
            stale_reads: cfg!(feature = "stale-reads"),
            lease_by_clock: cfg!(feature = "lease-by-clock"),
            on_lead: None,
        }
    }

    /// This node's listen address.
    pub fn listen(&self) -> SocketAddr {
        self.peers[(self.id - 1) as usize]
    }

    /// Nodes needed for a majority.
    pub fn majority(&self) -> usize {
        self.peers.len() / 2 + 1
    }
}
