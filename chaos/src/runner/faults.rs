//! Executing a plan's timed faults against the user's nodes: power loss and process
//! death with a restart after the downtime, pauses, clock skew (sim-runtime), and
//! symmetric and one-way partitions and clogged links between the server nodes
//! (sim-net). Overlapping network faults each heal on their own schedule: healing one
//! re-imposes the others. A fault aimed at [`LEADER`] goes to the node the system
//! names as its leader when it fires (none: the fault is skipped).

use crate::plan::{Fault, NodeNo, LEADER};
use sim_runtime::node::Node;
use sim_runtime::time::{sleep, Duration};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The server nodes, as the fault executor and the supervisor see them.
pub(crate) struct Nodes {
    pub nodes: Vec<Node>,
    pub ips: Vec<IpAddr>,
    /// Node `i - 1` is down on purpose (a planned crash or kill, until its restart):
    /// the supervisor leaves it alone.
    pub held: Vec<AtomicBool>,
    net: Mutex<NetFaults>,
}

/// The network faults in force.
#[derive(Default)]
struct NetFaults {
    active: BTreeMap<u64, Fault>,
    next: u64,
}

impl Nodes {
    pub fn new(nodes: Vec<Node>, ips: Vec<IpAddr>) -> Nodes {
        let held = nodes.iter().map(|_| AtomicBool::new(false)).collect();
        Nodes {
            nodes,
            ips,
            held,
            net: Mutex::new(NetFaults::default()),
        }
    }

    fn get(&self, i: NodeNo) -> Option<(usize, &Node)> {
        let idx = usize::try_from(i).ok()?.checked_sub(1)?;
        Some((idx, self.nodes.get(idx)?))
    }

    /// Imposes one network fault; the server nodes not named are the other side.
    fn impose(&self, fault: &Fault) {
        let ips = |ns: &[NodeNo]| -> Vec<IpAddr> {
            ns.iter()
                .filter_map(|&i| self.get(i).map(|(idx, _)| self.ips[idx]))
                .collect()
        };
        let n = NodeNo::try_from(self.nodes.len()).unwrap_or(NodeNo::MAX);
        match fault {
            Fault::Partition { side, .. } => {
                let rest: Vec<NodeNo> = (1..=n).filter(|i| !side.contains(i)).collect();
                sim_net::faults::partition(&ips(side), &ips(&rest));
            }
            Fault::PartitionOneWay { from, to, .. } => {
                sim_net::faults::partition_one_way(&ips(from), &ips(to));
            }
            Fault::Clog { from, to, .. } => sim_net::faults::clog(&ips(&[*from]), &ips(&[*to])),
            _ => {}
        }
    }

    fn net(&self) -> std::sync::MutexGuard<'_, NetFaults> {
        sim_runtime::sync::lock(&self.net)
    }

    fn start_net(&self, fault: &Fault) -> u64 {
        let mut net = self.net();
        net.next += 1;
        let id = net.next;
        net.active.insert(id, fault.clone());
        drop(net);
        self.impose(fault);
        id
    }

    fn end_net(&self, id: u64) {
        let active: Vec<Fault> = {
            let mut net = self.net();
            net.active.remove(&id);
            net.active.values().cloned().collect()
        };
        sim_net::faults::heal();
        for f in &active {
            self.impose(f);
        }
    }

    /// Forgets every network fault (the heal at the end of the run).
    pub fn clear_net(&self) {
        self.net().active.clear();
        sim_net::faults::reset();
    }
}

/// The fault with [`LEADER`] resolved by `leader` (None: no leader to aim at).
pub(crate) fn aimed(fault: &Fault, leader: &dyn Fn() -> Option<NodeNo>) -> Option<Fault> {
    let resolve = |n: NodeNo| if n == LEADER { leader() } else { Some(n) };
    let mut fault = fault.clone();
    match &mut fault {
        Fault::Crash { node, .. }
        | Fault::Kill { node, .. }
        | Fault::CrashAtIo { node, .. }
        | Fault::Pause { node, .. }
        | Fault::ClockSkew { node, .. } => *node = resolve(*node)?,
        Fault::Partition { side, .. } => {
            for node in side.iter_mut() {
                *node = resolve(*node)?;
            }
        }
        // The churn finds each leader itself, as it goes.
        Fault::PartitionOneWay { .. } | Fault::Clog { .. } | Fault::LeaderChurn { .. } => {}
    }
    Some(fault)
}

/// Executes one timed fault; its undoing (restart, resume, heal) runs as a task after
/// the fault's duration. `leader` names the node leading now (for the leader churn).
pub(crate) fn apply(
    nodes: &Arc<Nodes>,
    fault: &Fault,
    leader: &Arc<dyn Fn() -> Option<NodeNo> + Send + Sync>,
) {
    let later = |after: u64, name: &'static str, f: Box<dyn FnOnce() + Send>| {
        sim_runtime::task::spawn_named(name, async move {
            sleep(Duration::from_millis(after)).await;
            f();
        });
    };
    match fault {
        Fault::Crash { node, down_ms } | Fault::Kill { node, down_ms } => {
            let Some((idx, target)) = nodes.get(*node) else {
                return;
            };
            if target.is_down() {
                return;
            }
            nodes.held[idx].store(true, Ordering::SeqCst);
            if matches!(fault, Fault::Crash { .. }) {
                target.crash();
            } else {
                target.kill();
            }
            let nodes = nodes.clone();
            let restart = Box::new(move || {
                nodes.nodes[idx].restart();
                nodes.held[idx].store(false, Ordering::SeqCst);
            });
            later(*down_ms, "chaos.restart", restart);
        }
        // Waited on by the plan's task: see `crash_at_io`.
        Fault::CrashAtIo { .. } => {}
        Fault::Pause { node, for_ms } => {
            let Some((idx, target)) = nodes.get(*node) else {
                return;
            };
            if target.is_down() {
                return;
            }
            target.pause();
            let nodes = nodes.clone();
            later(
                *for_ms,
                "chaos.resume",
                Box::new(move || nodes.nodes[idx].resume()),
            );
        }
        Fault::ClockSkew {
            node,
            offset_ms,
            drift_ppm,
        } => {
            if let Some((_, target)) = nodes.get(*node) {
                target.set_clock(offset_ms.saturating_mul(1_000_000), *drift_ppm);
            }
        }
        Fault::Partition { for_ms, .. }
        | Fault::PartitionOneWay { for_ms, .. }
        | Fault::Clog { for_ms, .. } => {
            // Node faults count themselves (sim-runtime); network ones are counted here.
            sim_runtime::faults::count(fault.counter());
            let id = nodes.start_net(fault);
            let nodes = nodes.clone();
            later(*for_ms, "chaos.heal", Box::new(move || nodes.end_net(id)));
        }
        Fault::LeaderChurn {
            rounds,
            for_ms,
            after_ms,
        } => {
            sim_runtime::faults::count(fault.counter());
            let (nodes, leader) = (nodes.clone(), leader.clone());
            let (rounds, for_ms, after_ms) = (*rounds, *for_ms, *after_ms);
            sim_runtime::task::spawn_named("chaos.leader_churn", async move {
                let isolate = |node: NodeNo, ms: u64| {
                    let side = Fault::Partition {
                        side: vec![node],
                        for_ms: ms,
                    };
                    apply(&nodes, &side, &leader);
                };
                super::churn::leader_churn(rounds, for_ms, after_ms, || leader(), isolate).await;
            });
        }
    }
}

/// Starts a [`Fault::CrashAtIo`]: a task that waits for the node to reach its file
/// operation and cuts its power there. The plan's task awaits it before the run moves
/// on to its final checks (a node frozen at the barrier must not meet them).
pub(crate) fn crash_at_io(
    nodes: &Arc<Nodes>,
    fault: &Fault,
    leader: &Arc<dyn Fn() -> Option<NodeNo> + Send + Sync>,
) -> Option<sim_runtime::task::JoinHandle<()>> {
    let Fault::CrashAtIo {
        node,
        after_ops,
        down_ms,
    } = *fault
    else {
        return None;
    };
    let (_, target) = nodes.get(node)?;
    if target.is_down() {
        return None;
    }
    sim_runtime::faults::count(fault.counter());
    let (nodes, leader, id) = (nodes.clone(), leader.clone(), target.id());
    let crash = Fault::Crash { node, down_ms };
    Some(super::io_crash::spawn(id, after_ops, move || {
        apply(&nodes, &crash, &leader)
    }))
}

/// The supervisor's round: a node that is down and not held down by a planned fault
/// stopped by itself (fail-stop on an I/O error): kill it — releasing its sockets, as
/// the OS would; the page cache stays — and restart it, which recovers from its disk.
pub(crate) fn restart_stopped(nodes: &Nodes) {
    for (idx, node) in nodes.nodes.iter().enumerate() {
        if node.is_down() && !nodes.held[idx].load(Ordering::SeqCst) {
            node.kill_counted_as(crate::runner::FAIL_STOP_RESTART);
            node.restart();
        }
    }
}
