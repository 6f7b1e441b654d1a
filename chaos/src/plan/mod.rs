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

use rand::Rng;
use serde::{Deserialize, Serialize};
use sim_fs::{CrashConfig, FaultConfig, LatencyConfig};
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
}

impl Fault {
    /// The node numbers this fault names.
    pub fn nodes(&self) -> Vec<NodeNo> {
        match self {
            Fault::Crash { node, .. }
            | Fault::Kill { node, .. }
            | Fault::Pause { node, .. }
            | Fault::ClockSkew { node, .. } => vec![*node],
            Fault::Partition { side, .. } => side.clone(),
            Fault::PartitionOneWay { from, to, .. } => from.iter().chain(to).copied().collect(),
            Fault::Clog { from, to, .. } => vec![*from, *to],
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
        };
        Duration::from_millis(ms)
    }

    /// The fault kind's name as counted in a run's report (`node.crash`, `net.partition`…).
    pub fn counter(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "node.crash",
            Fault::Kill { .. } => "node.kill",
            Fault::Pause { .. } => "node.pause",
            Fault::Partition { .. } => "net.partition",
            Fault::PartitionOneWay { .. } => "net.partition_one_way",
            Fault::Clog { .. } => "net.clog_link",
            Fault::ClockSkew { .. } => "node.clock_skew",
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

/// The fault kinds a scenario allows; the generator picks a subset per seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultSpace {
    /// Power loss.
    pub crash: bool,
    /// Process death.
    pub kill: bool,
    /// Pauses.
    pub pause: bool,
    /// Symmetric partitions.
    pub partition: bool,
    /// One-way partitions.
    pub one_way: bool,
    /// Clogged links.
    pub clog: bool,
    /// Clock jumps and drift.
    pub clock_skew: bool,
    /// Torn and lost unsynced writes at power loss (needs `crash`).
    pub torn_writes: bool,
    /// fsync EIO (fail-stop, reopen).
    pub fsync_eio: bool,
    /// read/write EIO.
    pub io_eio: bool,
    /// Bit flips in durable sectors at power loss.
    pub bitflips: bool,
    /// Message drop, duplication, reordering, delay, connection reset.
    pub messages: bool,
}

impl FaultSpace {
    /// No faults.
    pub const NONE: FaultSpace = FaultSpace {
        crash: false,
        kill: false,
        pause: false,
        partition: false,
        one_way: false,
        clog: false,
        clock_skew: false,
        torn_writes: false,
        fsync_eio: false,
        io_eio: false,
        bitflips: false,
        messages: false,
    };
    /// Everything a single embedded node can suffer.
    pub const EMBEDDED: FaultSpace = FaultSpace {
        crash: true,
        kill: true,
        pause: true,
        clock_skew: true,
        torn_writes: true,
        fsync_eio: true,
        io_eio: true,
        bitflips: false,
        ..FaultSpace::NONE
    };
    /// Everything a cluster can suffer.
    pub const CLUSTER: FaultSpace = FaultSpace {
        partition: true,
        one_way: true,
        clog: true,
        messages: true,
        ..FaultSpace::EMBEDDED
    };
}

/// How the timed part of a plan is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    /// Nodes in the topology (1 for embedded).
    pub nodes: NodeNo,
    /// With more than one node, aim about a third of the single-node faults at
    /// [`LEADER`] (the runner must then know how to find the leader).
    pub aim_at_leader: bool,
    /// Faults start within this window (ms after the workload starts).
    pub window_ms: u64,
    /// Client operations.
    pub ops: u64,
}

/// Draws a plan with no settings ([`generate_with`] with `()`).
pub fn generate<R: Rng>(space: FaultSpace, horizon: Horizon, rng: &mut R) -> FaultPlan {
    generate_with(space, horizon, rng, |_| ())
}

/// Draws a plan from `rng` (the run's plan stream): swarm choice of kinds, then rates,
/// then timed steps, then the system's settings (`settings`), then which faults aim at
/// the leader. The order is fixed: seeds drawn before a kind of draw existed keep
/// their faults.
pub fn generate_with<T: Settings, R: Rng>(
    space: FaultSpace,
    horizon: Horizon,
    rng: &mut R,
    settings: impl FnOnce(&mut R) -> T,
) -> FaultPlan<T> {
    let mut on = |allowed: bool| allowed && rng.gen_bool(0.5);
    let kinds = [
        on(space.crash),
        on(space.kill),
        on(space.pause),
        on(space.partition),
        on(space.one_way),
        on(space.clog),
        on(space.clock_skew),
    ];
    let torn = on(space.torn_writes);
    let fsync = on(space.fsync_eio);
    let io = on(space.io_eio);
    let flips = on(space.bitflips);
    let msgs = on(space.messages);

    let crash = if torn {
        let write_whole = rng.gen_range(0.2..0.6);
        CrashConfig {
            write_whole,
            write_torn: rng.gen_range(0.0..(1.0 - write_whole)),
            torn_garbage: rng.gen_range(0.0..=1.0),
            set_len_lost: rng.gen_range(0.0..=1.0),
            dir_op_lost: rng.gen_range(0.0..0.9),
            reorder: rng.gen_bool(0.8),
        }
    } else {
        // Power loss still loses every unsynced write; it just never tears one.
        CrashConfig {
            write_whole: 0.0,
            write_torn: 0.0,
            ..CrashConfig::default()
        }
    };
    let disk = FaultConfig {
        read_eio: if io {
            rng.gen_range(0.0005..0.005)
        } else {
            0.0
        },
        write_eio: if io {
            rng.gen_range(0.0005..0.005)
        } else {
            0.0
        },
        sync_eio: if fsync {
            rng.gen_range(0.002..0.03)
        } else {
            0.0
        },
        capacity_bytes: None,
        latency: LatencyConfig {
            probability: 1.0,
            min_us: 20,
            max_us: rng.gen_range(100..2_000),
        },
        crash_bitflip: if flips { rng.gen_range(0.01..0.2) } else { 0.0 },
        crash,
    };
    let net = if msgs {
        NetFaultConfig::random(rng)
    } else {
        NetFaultConfig::none()
    };

    let mut steps = Vec::new();
    let enabled: Vec<usize> = (0..kinds.len()).filter(|i| kinds[*i]).collect();
    if !enabled.is_empty() {
        let count = rng.gen_range(1..=6);
        for _ in 0..count {
            let kind = enabled[rng.gen_range(0..enabled.len())];
            let at_ms = rng.gen_range(0..horizon.window_ms.max(1));
            let node = rng.gen_range(1..=horizon.nodes);
            let for_ms = rng.gen_range(50..1_500);
            let fault = match kind {
                0 => Fault::Crash {
                    node,
                    down_ms: rng.gen_range(1..500),
                },
                1 => Fault::Kill {
                    node,
                    down_ms: rng.gen_range(1..500),
                },
                2 => Fault::Pause { node, for_ms },
                3..=5 if horizon.nodes < 2 => continue,
                3 => Fault::Partition {
                    side: random_side(rng, horizon.nodes),
                    for_ms,
                },
                4 => {
                    let from = random_side(rng, horizon.nodes);
                    let to = (1..=horizon.nodes).filter(|n| !from.contains(n)).collect();
                    Fault::PartitionOneWay { from, to, for_ms }
                }
                5 => {
                    let to = 1 + (node % horizon.nodes);
                    Fault::Clog {
                        from: node,
                        to,
                        for_ms,
                    }
                }
                _ => Fault::ClockSkew {
                    node,
                    offset_ms: rng.gen_range(-500..500),
                    drift_ppm: rng.gen_range(-50_000..50_000),
                },
            };
            steps.push(Step { at_ms, fault });
        }
    }
    steps.sort_by_key(|s| s.at_ms);
    // Drawn last, so the faults of a seed are those it drew before these existed.
    let tuning = settings(rng);
    if horizon.nodes > 1 && horizon.aim_at_leader {
        aim_some_at_the_leader(&mut steps, rng);
    }
    FaultPlan {
        disk,
        net,
        steps,
        ops: horizon.ops,
        tuning,
        branches: Vec::new(),
    }
}

/// A cluster nemesis that targets the leader (Jepsen's "kill the primary"): each
/// single-node fault is retargeted at whichever replica leads when it fires with
/// probability 1/3, and so is a partition that isolates one node.
fn aim_some_at_the_leader(steps: &mut [Step], rng: &mut impl Rng) {
    for step in steps {
        let aim = rng.gen_bool(1.0 / 3.0);
        if !aim {
            continue;
        }
        match &mut step.fault {
            Fault::Crash { node, .. }
            | Fault::Kill { node, .. }
            | Fault::Pause { node, .. }
            | Fault::ClockSkew { node, .. } => *node = LEADER,
            Fault::Partition { side, .. } if side.len() == 1 => *side = vec![LEADER],
            _ => {}
        }
    }
}

/// A nonempty proper subset of `1..=nodes`, as a minority side where possible.
fn random_side(rng: &mut impl Rng, nodes: NodeNo) -> Vec<NodeNo> {
    let size = rng.gen_range(1..=(nodes / 2).max(1));
    let mut all: Vec<NodeNo> = (1..=nodes).collect();
    let mut side = Vec::new();
    for _ in 0..size {
        let i = rng.gen_range(0..all.len());
        side.push(all.remove(i));
    }
    side.sort_unstable();
    side
}

#[cfg(test)]
mod tests;
