//! Executing a cluster plan's timed faults against the replicas: power loss, process
//! death and pauses with their undoing, clock skew, partitions and clogs that each
//! heal on their own schedule, the leader churn and power losses timed by file
//! operations (the shared executors in `chaos::runner`). A fault aimed at
//! [`LEADER`] goes to the replica the safety watch names as leader when it fires.

use super::cluster::replica_ip;
use super::plan::{Fault, NodeNo, LEADER};
use engine::replicated::SafetyWatch;
use sim_runtime::node::Node;
use sim_runtime::time::{sleep, Duration};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The network faults in force: each heals on its own schedule, so healing one
/// re-applies the others.
#[derive(Default)]
pub(super) struct NetFaults {
    active: BTreeMap<u64, Fault>,
    next: u64,
}

impl NetFaults {
    fn start(&mut self, fault: &Fault, n: NodeNo) -> u64 {
        self.next += 1;
        self.active.insert(self.next, fault.clone());
        impose(fault, n);
        self.next
    }

    fn end(&mut self, id: u64, n: NodeNo) {
        self.active.remove(&id);
        sim_net::faults::heal();
        for fault in self.active.values() {
            impose(fault, n);
        }
    }
}

/// Imposes one network fault; the replicas not named are the other side.
fn impose(fault: &Fault, n: NodeNo) {
    let ips = |nodes: &[NodeNo]| nodes.iter().map(|&i| replica_ip(i)).collect::<Vec<_>>();
    let rest = |side: &[NodeNo]| {
        (1..=n)
            .filter(|i| !side.contains(i))
            .map(replica_ip)
            .collect::<Vec<_>>()
    };
    match fault {
        Fault::Partition { side, .. } => sim_net::faults::partition(&ips(side), &rest(side)),
        Fault::PartitionOneWay { from, to, .. } => {
            sim_net::faults::partition_one_way(&ips(from), &ips(to));
        }
        Fault::Clog { from, to, .. } => sim_net::faults::clog(&ips(&[*from]), &ips(&[*to])),
        _ => {}
    }
}

/// A plan's node number as a replica number: [`LEADER`] is the replica leading now.
fn resolve(node: NodeNo, watch: &SafetyWatch) -> Option<NodeNo> {
    if node != LEADER {
        return Some(node);
    }
    let leader = watch.leader().and_then(|id| NodeNo::try_from(id).ok());
    sim_runtime::cover!("scenario.nemesis_hits_the_leader", leader.is_some());
    leader
}

/// The fault with [`LEADER`] resolved to a replica (None: no leader to aim at).
pub(super) fn aimed(fault: &Fault, watch: &SafetyWatch) -> Option<Fault> {
    let mut fault = fault.clone();
    match &mut fault {
        Fault::Crash { node, .. }
        | Fault::Kill { node, .. }
        | Fault::CrashAtIo { node, .. }
        | Fault::Pause { node, .. }
        | Fault::ClockSkew { node, .. } => *node = resolve(*node, watch)?,
        Fault::Partition { side, .. } => {
            for node in side.iter_mut() {
                *node = resolve(*node, watch)?;
            }
        }
        // The churn finds each leader itself, as it goes.
        Fault::PartitionOneWay { .. } | Fault::Clog { .. } | Fault::LeaderChurn { .. } => {}
    }
    Some(fault)
}

/// Executes one timed fault.
pub(super) fn apply(
    nodes: &Arc<Vec<Node>>,
    net: &Arc<Mutex<NetFaults>>,
    fault: &Fault,
    watch: &Arc<SafetyWatch>,
) {
    let n = NodeNo::try_from(nodes.len()).unwrap_or(NodeNo::MAX);
    let node_of = |i: NodeNo| {
        let idx = usize::try_from(i).ok()?.checked_sub(1)?;
        nodes.get(idx).filter(|node| !node.is_down())
    };
    let later = |after: Duration, name: &'static str, f: Box<dyn FnOnce() + Send>| {
        sim_runtime::task::spawn_named(name, async move {
            sleep(after).await;
            f();
        });
    };
    match fault {
        Fault::Crash { node, down_ms } | Fault::Kill { node, down_ms } => {
            let Some(target) = node_of(*node) else { return };
            if matches!(fault, Fault::Crash { .. }) {
                target.crash();
            } else {
                target.kill();
            }
            let (nodes, idx) = (nodes.clone(), *node as usize - 1);
            let restart = Box::new(move || nodes[idx].restart());
            later(
                Duration::from_millis(*down_ms),
                "fault-plan.restart",
                restart,
            );
        }
        // Waited on by the plan's task: see `crash_at_io`.
        Fault::CrashAtIo { .. } => {}
        Fault::Pause { node, for_ms } => {
            let Some(target) = node_of(*node) else { return };
            target.pause();
            let (nodes, idx) = (nodes.clone(), *node as usize - 1);
            let resume = Box::new(move || nodes[idx].resume());
            later(Duration::from_millis(*for_ms), "fault-plan.resume", resume);
        }
        Fault::ClockSkew {
            node,
            offset_ms,
            drift_ppm,
        } => {
            if let Some(target) = node_of(*node) {
                target.set_clock(offset_ms.saturating_mul(1_000_000), *drift_ppm);
            }
        }
        Fault::Partition { for_ms, .. }
        | Fault::PartitionOneWay { for_ms, .. }
        | Fault::Clog { for_ms, .. } => {
            let id = lock_net(net).start(fault, n);
            let net = net.clone();
            let heal = Box::new(move || lock_net(&net).end(id, n));
            later(Duration::from_millis(*for_ms), "fault-plan.heal", heal);
        }
        Fault::LeaderChurn {
            rounds,
            for_ms,
            after_ms,
        } => {
            let (nodes, net, watch) = (nodes.clone(), net.clone(), watch.clone());
            let (rounds, for_ms, after_ms) = (*rounds, *for_ms, *after_ms);
            sim_runtime::task::spawn_named("fault-plan.leader-churn", async move {
                let isolate = |node: NodeNo, ms: u64| {
                    let side = Fault::Partition {
                        side: vec![node],
                        for_ms: ms,
                    };
                    apply(&nodes, &net, &side, &watch);
                };
                // Asked every few ms: not through `resolve`, whose coverage mark counts
                // a planned fault aimed at the leader.
                let leader = || watch.leader().and_then(|id| NodeNo::try_from(id).ok());
                chaos::runner::churn::leader_churn(rounds, for_ms, after_ms, leader, isolate).await;
            });
        }
    }
}

/// Starts a [`Fault::CrashAtIo`]: a task that waits for the replica to reach its file
/// operation and cuts its power there. The plan's task awaits it before the run moves
/// on to its final checks (a replica frozen at the barrier must not meet them).
pub(super) fn crash_at_io(
    nodes: &Arc<Vec<Node>>,
    net: &Arc<Mutex<NetFaults>>,
    fault: &Fault,
    watch: &Arc<SafetyWatch>,
) -> Option<sim_runtime::task::JoinHandle<()>> {
    let Fault::CrashAtIo {
        node,
        after_ops,
        down_ms,
    } = *fault
    else {
        return None;
    };
    let idx = usize::try_from(node).ok()?.checked_sub(1)?;
    let target = nodes.get(idx).filter(|n| !n.is_down())?;
    let (nodes, net, watch, id) = (nodes.clone(), net.clone(), watch.clone(), target.id());
    let crash = Fault::Crash { node, down_ms };
    Some(chaos::runner::io_crash::spawn(id, after_ops, move || {
        apply(&nodes, &net, &crash, &watch)
    }))
}

fn lock_net(net: &Mutex<NetFaults>) -> std::sync::MutexGuard<'_, NetFaults> {
    sim_runtime::sync::lock(net)
}
