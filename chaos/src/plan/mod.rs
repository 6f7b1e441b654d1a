//! Fault plans as data (D14, D85).
//!
//! Before a run starts, its faults are drawn from the seed into an explicit
//! [`FaultPlan`]: the disk and network fault rates that hold for the whole run, and a
//! list of timed [`Step`]s (crash node 2 at t=1.3 s, partition {1} | {2,3} for 2 s…).
//! A runner executes the list; a plan read back from a file ([`FaultPlan::from_json`])
//! replays; shrinking ([`crate::shrink`]) removes steps and lowers rates and the
//! operation budget. A plan also carries the system's own per-seed settings, opaque
//! here ([`Settings`]: `()` for none; the bundled database's engine and Raft tuning).
//!
//! Swarm testing (Groce et al., ISSTA 2012): each seed first draws *which* fault kinds
//! are on (from those the scenario allows), then their rates and times, so some seeds
//! hammer one kind and others mix them — a fixed mix of everything tends to hide bugs
//! that need one fault kind to act alone for a while.

use serde::{Deserialize, Serialize};
use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use std::fmt;
use std::time::Duration;

/// The system's own settings drawn per seed and carried in its plans (sizes, timeouts:
/// what decides which rare states a run can reach). Opaque to the plan: it prints them,
/// writes them to the plan file (left out when default) and reads them back. `()` is
/// "no settings".
pub trait Settings:
    Clone + PartialEq + fmt::Debug + Default + Serialize + serde::de::DeserializeOwned
{
    /// Whether these are the defaults (then a plan file leaves them out).
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
    /// One line for a printed plan.
    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

impl Settings for () {}

/// A node of the scenario's topology, numbered from 1 ([`LEADER`] in a cluster's plan:
/// whichever replica leads when the fault fires).
pub type NodeNo = u32;

/// How long a [`Fault::CrashAtIo`] waits for its node to reach the operation count.
pub const IO_CRASH_WAIT_MS: u64 = 1_000;

/// In a timed fault, "the current leader": resolved when the fault fires, so a nemesis
/// can aim at the one replica whose loss matters most (no known leader: a no-op).
pub const LEADER: NodeNo = 0;

/// One timed fault. Fields: `node`, `side`, `from`, `to` name nodes; `down_ms` is how
/// long a node stays down, `for_ms` how long a fault lasts.
#[allow(missing_docs)] // the variants' and the type's docs say what the fields mean
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Power loss: unsynced writes are lost, torn or kept (sim-fs's crash model); the
    /// node restarts after `down_ms` and recovers from its disk.
    Crash { node: NodeNo, down_ms: u64 },
    /// Process death: the page cache survives; restarts after `down_ms`.
    Kill { node: NodeNo, down_ms: u64 },
    /// Power loss timed by the node's file operations, not the clock: the node runs
    /// `after_ops` more file operations, is frozen before the next one, and loses power
    /// there (sim-fs's op barrier); it restarts after `down_ms`. A node that does not
    /// reach the count within [`IO_CRASH_WAIT_MS`] is left alone. Crashes timed by the
    /// clock mostly land while a node waits on the network; these land between two
    /// steps of a multi-step write — a truncate and its append, a table and its
    /// manifest edit, a recovery's repairs (D88).
    CrashAtIo {
        node: NodeNo,
        after_ops: u64,
        down_ms: u64,
    },
    /// The node stops being scheduled for `for_ms` (a long GC pause, a stalled VM).
    Pause { node: NodeNo, for_ms: u64 },
    /// `side` cannot exchange messages with the other nodes for `for_ms`.
    Partition { side: Vec<NodeNo>, for_ms: u64 },
    /// Messages from `from` to `to` are dropped for `for_ms`; the other way works.
    PartitionOneWay {
        from: Vec<NodeNo>,
        to: Vec<NodeNo>,
        for_ms: u64,
    },
    /// Messages from `from` to `to` are held (a stalled link) for `for_ms`.
    Clog {
        from: NodeNo,
        to: NodeNo,
        for_ms: u64,
    },
    /// The node's clock jumps by `offset_ms` and drifts by `drift_ppm` from now on.
    ClockSkew {
        node: NodeNo,
        offset_ms: i64,
        drift_ppm: i64,
    },
    /// The leader churn: the node leading now is cut off from the other nodes (clients
    /// still reach it); then each node that wins leadership after it is cut off too,
    /// `after_ms` after it is first seen leading — `rounds` leaders in all, each for
    /// `for_ms`. A leader that begins no later than `rounds * for_ms` after the step is
    /// the last one taken, so the fault has healed by [`Fault::duration`]. Deposed
    /// leaders keep the writes they took alone, so the healed nodes meet holding tails
    /// of different terms (D88). The runner must know how to find the leader.
    LeaderChurn {
        rounds: u32,
        for_ms: u64,
        after_ms: u64,
    },
}

impl Fault {
    /// The node numbers this fault names.
    pub fn nodes(&self) -> Vec<NodeNo> {
        match self {
            Fault::Crash { node, .. }
            | Fault::Kill { node, .. }
            | Fault::CrashAtIo { node, .. }
            | Fault::Pause { node, .. }
            | Fault::ClockSkew { node, .. } => vec![*node],
            Fault::Partition { side, .. } => side.clone(),
            Fault::PartitionOneWay { from, to, .. } => from.iter().chain(to).copied().collect(),
            Fault::Clog { from, to, .. } => vec![*from, *to],
            Fault::LeaderChurn { .. } => vec![LEADER],
        }
    }

    /// How long the fault lasts once started (zero for instantaneous ones).
    pub fn duration(&self) -> Duration {
        let ms = match self {
            Fault::Crash { down_ms, .. } | Fault::Kill { down_ms, .. } => *down_ms,
            Fault::Pause { for_ms, .. }
            | Fault::Partition { for_ms, .. }
            | Fault::PartitionOneWay { for_ms, .. }
            | Fault::Clog { for_ms, .. } => *for_ms,
            Fault::ClockSkew { .. } => 0,
            Fault::CrashAtIo { down_ms, .. } => IO_CRASH_WAIT_MS.saturating_add(*down_ms),
            Fault::LeaderChurn { rounds, for_ms, .. } => {
                for_ms.saturating_mul(u64::from(*rounds).saturating_add(1))
            }
        };
        Duration::from_millis(ms)
    }

    /// The fault kind's name as counted in a run's report (`node.crash`, `net.partition`…).
    pub fn counter(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "node.crash",
            Fault::Kill { .. } => "node.kill",
            Fault::CrashAtIo { .. } => "node.crash_at_io",
            Fault::Pause { .. } => "node.pause",
            Fault::Partition { .. } => "net.partition",
            Fault::PartitionOneWay { .. } => "net.partition_one_way",
            Fault::Clog { .. } => "net.clog_link",
            Fault::ClockSkew { .. } => "node.clock_skew",
            Fault::LeaderChurn { .. } => "net.leader_churn",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &[NodeNo]| {
            let v: Vec<String> = s.iter().map(|n| node_name(*n)).collect();
            format!("{{{}}}", v.join(","))
        };
        match self {
            Fault::Crash { node, down_ms } => {
                let node = node_name(*node);
                write!(f, "power loss on node {node}, down {down_ms} ms")
            }
            Fault::Kill { node, down_ms } => {
                write!(f, "kill node {}, down {down_ms} ms", node_name(*node))
            }
            Fault::CrashAtIo {
                node,
                after_ops,
                down_ms,
            } => write!(
                f,
                "power loss on node {} after {after_ops} more file operations, down {down_ms} ms",
                node_name(*node)
            ),
            Fault::Pause { node, for_ms } => {
                write!(f, "pause node {} for {for_ms} ms", node_name(*node))
            }
            Fault::Partition { side, for_ms } => {
                write!(f, "partition {} | rest for {for_ms} ms", set(side))
            }
            Fault::PartitionOneWay { from, to, for_ms } => {
                write!(f, "drop {} -> {} for {for_ms} ms", set(from), set(to))
            }
            Fault::Clog { from, to, for_ms } => write!(f, "clog {from} -> {to} for {for_ms} ms"),
            Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            } => {
                let node = node_name(*node);
                write!(
                    f,
                    "clock of node {node} {offset_ms:+} ms, drift {drift_ppm:+} ppm"
                )
            }
            Fault::LeaderChurn {
                rounds,
                for_ms,
                after_ms,
            } => write!(
                f,
                "leader churn: {rounds} leaders in turn, each cut off {after_ms} ms after \
                 it leads, for {for_ms} ms"
            ),
        }
    }
}

/// A node number as a plan prints it (`leader` for [`LEADER`]).
pub fn node_name(node: NodeNo) -> String {
    if node == LEADER {
        "leader".to_string()
    } else {
        node.to_string()
    }
}

/// A fault at a virtual time after the workload started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When it fires (ms after the workload started).
    pub at_ms: u64,
    /// What fires.
    pub fault: Fault,
}

/// Every fault of one run, decided before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Settings", deserialize = "T: Settings"))]
pub struct FaultPlan<T = ()> {
    /// sim-fs faults for every node, for the whole run (torn writes, EIO, …).
    pub disk: FaultConfig,
    /// sim-net probabilistic faults for the whole run (drop, dup, reorder, …).
    pub net: NetFaultConfig,
    /// Timed faults, sorted by `at_ms`.
    pub steps: Vec<Step>,
    /// Client operations the workload performs (shrinking lowers it).
    pub ops: u64,
    /// The system's settings drawn per seed ([`Settings`]); absent in a plan file =
    /// the defaults. (Named `tuning` in plan files, after the bundled database's.)
    #[serde(default, skip_serializing_if = "Settings::is_default")]
    pub tuning: T,
    /// Points where the run branches off its seed's own run
    /// ([`sim_runtime::rng::branch_at`]): targeted exploration's forks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<Branch>,
}

/// From `at_ns` (virtual time since the run started) the run's random streams are
/// salted with `salt`: the same run up to there, another after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// Where the run branches off (ns of virtual time).
    pub at_ns: u64,
    /// The salt of the random streams from there.
    pub salt: u64,
}

impl<T: Settings> FaultPlan<T> {
    /// A plan with no faults at all.
    pub fn quiet(ops: u64) -> FaultPlan<T> {
        FaultPlan {
            disk: FaultConfig::default(),
            net: NetFaultConfig::none(),
            steps: Vec::new(),
            ops,
            tuning: T::default(),
            branches: Vec::new(),
        }
    }

    /// When the last timed fault has healed.
    pub fn healed_at(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| Duration::from_millis(s.at_ms) + s.fault.duration())
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// How many faults the plan holds: timed steps plus each probabilistic fault kind
    /// switched on (what shrinking minimises). I/O latency is timing, not a fault, and
    /// is not counted.
    pub fn size(&self) -> usize {
        let d = &self.disk;
        let n = &self.net;
        let rates = [
            d.read_eio,
            d.write_eio,
            d.sync_eio,
            d.crash_bitflip,
            n.drop_rate,
            n.dup_rate,
            n.reorder_rate,
            n.delay_rate,
            n.reset_rate,
        ];
        self.steps.len()
            + rates.iter().filter(|r| **r > 0.0).count()
            + usize::from(d.capacity_bytes.is_some())
    }

    /// The plan as pretty JSON (what `--plan FILE` reads back).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Reads a plan written by [`FaultPlan::to_json`], with a clear error.
    pub fn from_json(text: &str) -> Result<FaultPlan<T>, String> {
        let plan: FaultPlan<T> =
            serde_json::from_str(text).map_err(|e| format!("not a fault plan: {e}"))?;
        plan.disk
            .validate()
            .map_err(|e| format!("bad disk faults: {e}"))?;
        let mut last = 0;
        for s in &plan.steps {
            if s.at_ms < last {
                return Err(format!(
                    "steps are not sorted by at_ms ({} after {last})",
                    s.at_ms
                ));
            }
            last = s.at_ms;
        }
        Ok(plan)
    }
}

impl<T: Settings> fmt::Display for FaultPlan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} client operations", self.ops)?;
        let d = &self.disk;
        let c = &d.crash;
        writeln!(
            f,
            "disk: read EIO {:.4}, write EIO {:.4}, fsync EIO {:.4}, bit flip at power loss {:.3}, capacity {}, unsynced write at power loss: whole {:.2} / torn {:.2} / lost {:.2}, reordered {}",
            d.read_eio, d.write_eio, d.sync_eio, d.crash_bitflip,
            d.capacity_bytes.map_or("unlimited".to_string(), |b| format!("{} KiB", b / 1024)),
            c.write_whole, c.write_torn, (1.0 - c.write_whole - c.write_torn).max(0.0), c.reorder
        )?;
        let n = &self.net;
        writeln!(
            f,
            "net: drop {:.3}, dup {:.3}, reorder {:.3}, delay {:.3}, reset {:.4}",
            n.drop_rate, n.dup_rate, n.reorder_rate, n.delay_rate, n.reset_rate
        )?;
        if !self.tuning.is_default() {
            writeln!(f, "tuning: {}", self.tuning.describe())?;
        }
        for b in &self.branches {
            writeln!(
                f,
                "branch: at t={:.6}s the random streams are salted with {}",
                b.at_ns as f64 / 1e9,
                b.salt
            )?;
        }
        if self.steps.is_empty() {
            writeln!(f, "no timed faults")?;
        }
        for s in &self.steps {
            writeln!(f, "t={:>6.3}s  {}", s.at_ms as f64 / 1000.0, s.fault)?;
        }
        Ok(())
    }
}

mod draw;
pub use draw::{generate, generate_with, generate_with_late, FaultSpace, Horizon};

#[cfg(test)]
mod tests;
