//! One run inside the simulation: start the nodes and clients, execute the plan,
//! supervise, judge liveness after the heal, then the final power loss, the state
//! read and the checks (the order the module docs of `runner` give).

use super::faults::{self, Nodes};
use super::leadership::Claims;
use super::{
    client_ip, server_ip, Check, ClientCtx, NodeCtx, ReadCtx, Scenario, System, DATA_DIR,
    FAIL_STOP_RESTART, FINAL_POWER_LOSS,
};
use crate::plan::{FaultPlan, NodeNo};
use crate::recorder::Recorder;
use sim_runtime::node;
use sim_runtime::time::{self, sleep, Duration};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Provisions a data directory the way an operator does before a first start: created
/// and durable, with no disk faults injected on this node meanwhile. (A failed sync of
/// its *parent* while the system creates it could not be recovered from inside the
/// system — the entry may be dropped while the page cache still shows it — so it is
/// made here, outside the fault model: DECISIONS.md D16.) The bundled database's
/// scenarios use it too.
pub async fn provision(dir: &str) -> std::io::Result<()> {
    let node = sim_runtime::task::current_node_id();
    sim_fs::sim::set_node_fault_config(node, sim_fs::FaultConfig::default());
    let made = async {
        sim_fs::create_dir_all(dir).await?;
        let parent = Path::new(dir).parent().unwrap_or(Path::new("/"));
        sim_fs::sync_dir(parent).await
    }
    .await;
    sim_fs::sim::clear_node_fault_config(node);
    made
}

fn start_node(
    scenario: &Scenario,
    system: &System,
    rec: &Recorder,
    claims: &Claims,
    i: NodeNo,
) -> node::Node {
    let ctx = NodeCtx {
        id: i,
        addr: scenario.node_addr(i),
        peers: scenario.node_addrs(),
        dir: PathBuf::from(DATA_DIR),
        leadership: claims.handle(i),
    };
    let (init, rec, claims) = (system.node.clone(), rec.clone(), claims.clone());
    let provisioned = Arc::new(AtomicBool::new(false));
    node::build(format!("node{i}"))
        .ip(server_ip(i))
        .init(move || {
            let (ctx, init, rec, provisioned) =
                (ctx.clone(), init.clone(), rec.clone(), provisioned.clone());
            // A (re)start leads nothing until it says so.
            claims.clear(i);
            async move {
                if !provisioned.load(Ordering::SeqCst) {
                    if let Err(e) = provision(DATA_DIR).await {
                        rec.violation("runner", format!("provisioning {DATA_DIR}: {e}"));
                        return;
                    }
                    provisioned.store(true, Ordering::SeqCst);
                }
                init(ctx).await;
            }
        })
        .create()
}

/// The heal: the plan's probabilistic faults stop; I/O latency and the crash model of
/// unsynced writes stay.
fn quiet(plan: &FaultPlan) {
    sim_fs::sim::set_fault_config(sim_fs::FaultConfig {
        crash: plan.disk.crash.clone(),
        latency: plan.disk.latency.clone(),
        ..sim_fs::FaultConfig::default()
    });
    sim_net::faults::set_config(sim_net::NetFaultConfig::none());
}

pub(super) async fn drive(scenario: &Scenario, system: &System, plan: &FaultPlan, rec: &Recorder) {
    sim_fs::sim::set_fault_config(plan.disk.clone());
    sim_net::faults::set_config(plan.net.clone());
    let claims = Claims::default();
    let nodes = Arc::new(Nodes::new(
        (1..=scenario.nodes)
            .map(|i| start_node(scenario, system, rec, &claims, i))
            .collect(),
        (1..=scenario.nodes).map(server_ip).collect(),
    ));
    let mut clients = Vec::new();
    let finished = Arc::new(AtomicU32::new(0));
    if let Some(client) = &system.client {
        for k in 1..=scenario.clients {
            let ctx = ClientCtx {
                id: k,
                addr: SocketAddr::new(client_ip(k), 9000),
                peers: scenario.node_addrs(),
                recorder: rec.clone(),
            };
            let host = node::build(format!("client{k}")).ip(client_ip(k)).create();
            let (work, finished) = (client(ctx), finished.clone());
            clients.push(host.spawn(async move {
                work.await;
                finished.fetch_add(1, Ordering::SeqCst);
            }));
        }
    }
    // The plan's clock starts with the clients.
    let start = time::now();
    let executed = Arc::new(AtomicBool::new(false));
    let supervising = Arc::new(AtomicBool::new(true));
    let leader: Arc<dyn Fn() -> Option<NodeNo> + Send + Sync> = match &system.leader {
        Some(l) => l.clone(),
        None if system.leader_by_claims => {
            let (nodes, claims) = (nodes.clone(), claims.clone());
            Arc::new(move || {
                let up = |n: NodeNo| {
                    let idx = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
                    idx.and_then(|i| nodes.nodes.get(i))
                        .is_some_and(|node| !node.is_down())
                };
                claims.leader(up)
            })
        }
        None => Arc::new(|| None),
    };
    let (steps, exec_nodes, done) = (plan.steps.clone(), nodes.clone(), executed.clone());
    sim_runtime::task::spawn_named("chaos.plan", async move {
        let mut waiting = Vec::new();
        for step in steps {
            time::sleep_until(start + Duration::from_millis(step.at_ms)).await;
            if let Some(fault) = faults::aimed(&step.fault, leader.as_ref()) {
                waiting.extend(faults::crash_at_io(&exec_nodes, &fault, &leader));
                faults::apply(&exec_nodes, &fault, &leader);
            }
        }
        for crash in waiting {
            let _finished = crash.await;
        }
        done.store(true, Ordering::SeqCst);
    });
    let (sup_nodes, sup_on) = (nodes.clone(), supervising.clone());
    sim_runtime::task::spawn_named("chaos.supervisor", async move {
        while sup_on.load(Ordering::SeqCst) {
            sleep(Duration::from_millis(50)).await;
            if sup_on.load(Ordering::SeqCst) {
                faults::restart_stopped(&sup_nodes);
            }
        }
    });

    // Liveness bounds a stall after the heal, not the whole budget's duration (D84).
    let healed_at = start + plan.healed_at();
    let (mut decided, mut last_decision, mut healed) = (0u64, healed_at, false);
    loop {
        sleep(Duration::from_millis(5)).await;
        if rec.stopped() {
            supervising.store(false, Ordering::SeqCst);
            return;
        }
        if !healed && time::now() >= healed_at {
            healed = true;
            rec.heal();
            quiet(plan);
        }
        let now_decided = rec.decided_after_heal();
        if now_decided > decided {
            decided = now_decided;
            last_decision = time::now();
        }
        let clients_done = finished.load(Ordering::SeqCst) as usize == clients.len();
        // Past the heal, every planned restart, resume and heal has run too.
        let settled = time::now() >= healed_at + Duration::from_millis(10);
        if clients_done && executed.load(Ordering::SeqCst) && settled {
            break;
        }
        let (completed, taken) = rec.progress();
        if healed && !clients_done && time::now() > last_decision + scenario.liveness {
            rec.violation(
                "liveness",
                format!(
                    "{completed} of {taken} operations completed; the system decided none in \
                     the {:?} after {}",
                    scenario.liveness,
                    if decided == 0 {
                        "the last fault healed".to_string()
                    } else {
                        format!("its last decision ({decided} decided since the heal)")
                    }
                ),
            );
            supervising.store(false, Ordering::SeqCst);
            return;
        }
    }
    for c in clients {
        if let Err(e) = c.await {
            rec.violation("panic", format!("a client task: {e}"));
        }
    }
    final_checks(scenario, system, plan, rec, &nodes, &supervising).await;
}

/// Heals everything, cuts power to every node at once (if the scenario says so),
/// restarts them, reads the state and runs the checks.
async fn final_checks(
    scenario: &Scenario,
    system: &System,
    plan: &FaultPlan,
    rec: &Recorder,
    nodes: &Arc<Nodes>,
    supervising: &AtomicBool,
) {
    nodes.clear_net();
    quiet(plan);
    // The supervisor's rounds run without awaiting: stopped here, it restarts nothing
    // from now on.
    supervising.store(false, Ordering::SeqCst);
    for node in &nodes.nodes {
        if scenario.final_power_loss && !node.is_down() {
            node.crash_counted_as(FINAL_POWER_LOSS);
        } else if node.is_down() {
            // It stopped by itself: kill it to release its sockets, as the OS would.
            node.kill_counted_as(FAIL_STOP_RESTART);
        } else {
            continue;
        }
        node.restart();
    }
    let observed = match &system.read {
        // Nothing read: no durability check (an empty state would "lose" every write).
        None => None,
        Some(read) => {
            let ctx = ReadCtx {
                addr: SocketAddr::new(client_ip(u32::MAX >> 8), 9000),
                peers: scenario.node_addrs(),
                within: scenario.liveness,
            };
            let host = node::build("reader").ip(client_ip(u32::MAX >> 8)).create();
            match host.spawn(read(ctx)).await {
                Ok(Ok(o)) => Some(o),
                Ok(Err(e)) => {
                    let msg = format!("the state could not be read after recovery: {e}");
                    rec.violation("liveness", msg);
                    return;
                }
                Err(e) => {
                    rec.violation("panic", format!("the state reader: {e}"));
                    return;
                }
            }
        }
    };
    if let Some(o) = &observed {
        rec.check_durable(&o.registers);
        if rec.stopped() {
            return;
        }
    }
    let observed = observed.unwrap_or_default();
    let history = rec.history();
    for check in &scenario.checks {
        match check {
            Check::Linearizable => {
                match checkers::linear::check(&history, &checkers::linear::Options::default()) {
                    Ok(r) if r.valid() == Some(false) => {
                        rec.violation("linearizability", r.to_string());
                    }
                    Ok(_) => {}
                    Err(e) => rec.violation("history", e.to_string()),
                }
            }
            Check::Elle => {
                let r = checkers::elle::check(&history);
                if !r.valid {
                    rec.violation("elle", r.to_string());
                }
            }
        }
        if rec.stopped() {
            return;
        }
    }
    if let Some(inv) = &system.invariant {
        if let Err(e) = inv(&history, &observed) {
            rec.violation("invariant", e);
        }
    }
}
