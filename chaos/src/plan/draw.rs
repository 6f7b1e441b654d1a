//! Drawing a plan from the seed: swarm choice of fault kinds, then rates, then timed
//! steps, then the system's settings, then the leader-aimed nemeses.

use super::{Fault, FaultPlan, NodeNo, Settings, Step, LEADER};
use rand::Rng;
use sim_fs::{CrashConfig, FaultConfig, LatencyConfig};
use sim_net::NetFaultConfig;

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
    /// With three or more nodes, partitions allowed and a leader to aim at, add the
    /// leader churn to a third of the plans (see [`generate_with_late`]).
    pub leader_churn: bool,
    /// With power loss allowed, a quarter of the plans follow each crash or kill with
    /// a power loss of the same node while it recovers (see [`generate_with_late`]).
    pub recovery_crashes: bool,
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
/// the leader, then the leader churn. The order is fixed: seeds drawn before a kind of
/// draw existed keep their faults.
pub fn generate_with<T: Settings, R: Rng>(
    space: FaultSpace,
    horizon: Horizon,
    rng: &mut R,
    settings: impl FnOnce(&mut R) -> T,
) -> FaultPlan<T> {
    generate_with_late(space, horizon, rng, settings, |_, _| {})
}

/// [`generate_with`], with `late` drawing more of the system's settings after the
/// leader-aimed retargeting and before the leader churn: a system that adds settings
/// draws them there, so every earlier draw of a seed stays what it was.
///
/// The leader churn ([`Horizon::leader_churn`], [`Fault::LeaderChurn`]) is drawn next,
/// and the power losses during recovery ([`Horizon::recovery_crashes`]) last.
pub fn generate_with_late<T: Settings, R: Rng>(
    space: FaultSpace,
    horizon: Horizon,
    rng: &mut R,
    settings: impl FnOnce(&mut R) -> T,
    late: impl FnOnce(&mut R, &mut T),
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
    let mut tuning = settings(rng);
    if horizon.nodes > 1 && horizon.aim_at_leader {
        aim_some_at_the_leader(&mut steps, rng);
    }
    late(rng, &mut tuning);
    if space.partition && horizon.nodes > 2 && horizon.aim_at_leader && horizon.leader_churn {
        draw_leader_churn(&mut steps, horizon, rng);
    }
    if space.crash && horizon.recovery_crashes {
        draw_recovery_crashes(&mut steps, rng);
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

/// The leader churn ([`Fault::LeaderChurn`]), added to a third of the cluster plans
/// that allow partitions.
///
/// Independent random faults almost never build what Raft's subtle rules exist for
/// (the paper's Figures 7 and 8): nodes holding tails of *different* deposed leaders.
/// Isolations timed by the clock miss the moment too — elections take from tens of
/// milliseconds to seconds — so the churn follows the elections themselves: it cuts
/// off each new leader as it wins. An isolated leader keeps the client writes it took
/// alone until it is deposed, so the healed nodes meet with stale tails of different
/// terms and lengths, and the election restriction (a longer log of an older term
/// loses), conflict truncation and Figure 2's rule 5 (commit only through the last
/// entry an append vouched for) decide the run. Drawn after everything else, so a
/// seed's other faults and settings are those it drew before this nemesis (D88).
fn draw_leader_churn(steps: &mut Vec<Step>, horizon: Horizon, rng: &mut impl Rng) {
    if !rng.gen_bool(1.0 / 3.0) {
        return;
    }
    let fault = Fault::LeaderChurn {
        rounds: rng.gen_range(2..=4),
        // Long enough for the others to elect a leader and commit past the tail.
        for_ms: rng.gen_range(300..1_500),
        // At once, the successor has replicated little more than its own first entry;
        // later, a stretch of its term.
        after_ms: [0, 0, 10, 40, 120][rng.gen_range(0..5)],
    };
    let at_ms = rng.gen_range(0..horizon.window_ms.max(1));
    steps.push(Step { at_ms, fault });
    steps.sort_by_key(|s| s.at_ms);
}

/// Power loss during recovery, for a quarter of the plans (D88): after each crash or
/// kill, another power loss of the same node 0–30 ms after it restarts — while it
/// replays its log, cuts a torn tail, deletes orphans or rewrites what it replayed —
/// and down again for up to 200 ms. A recovery is itself a sequence of writes and
/// renames whose crash states must recover too, and power losses timed blind rarely
/// land inside one: recovery takes milliseconds of a run of seconds.
fn draw_recovery_crashes(steps: &mut Vec<Step>, rng: &mut impl Rng) {
    if !rng.gen_bool(0.25) {
        return;
    }
    let mut again = Vec::new();
    for step in steps.iter() {
        if let Fault::Crash { node, down_ms } | Fault::Kill { node, down_ms } = step.fault {
            let restarted = step.at_ms.saturating_add(down_ms);
            again.push(Step {
                at_ms: restarted.saturating_add(rng.gen_range(0..30)),
                fault: Fault::Crash {
                    node,
                    down_ms: rng.gen_range(1..200),
                },
            });
        }
    }
    steps.extend(again);
    steps.sort_by_key(|s| s.at_ms);
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
