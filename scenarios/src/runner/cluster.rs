//! The cluster topology: `n` replicas of the replicated database (Raft over the
//! embedded engine), each on its own simulated node with its own disk, and the
//! scenario's clients on one more node, so a replica's crash does not take them down.
//!
//! The runner executes the plan's timed faults against the replicas (power loss and
//! process death with restarts, pauses, clock skew, symmetric and one-way partitions
//! between replicas, clogged links; overlapping network faults each heal on their own
//! schedule) and sets the plan's disk and message fault rates for the run. A replica
//! whose node fails (a failed fsync or write) stops and is restarted from its disk by
//! its supervisor loop; a replica that finds its disk corrupt is a violation.
//!
//! Checks: Raft safety over every replica's transitions ([`SafetyWatch`]); the workload's invariant and the
//! durability oracle over the state a fresh client reads once the clients are done,
//! and again after every replica loses power at once and the cluster recovers; the
//! history checker the workload names; liveness: once the last timed fault heals
//! (and with it the plan's message and EIO faults stop) the cluster never goes the
//! scenario's bound without deciding an operation (acknowledging it or refusing it
//! definitely; a timeout is no decision) until the budget is done (D84), and decides
//! at least one started after the heal.

use super::cluster_faults::{aimed, apply, crash_at_io, NetFaults};
use super::impostor::{ClusterAuth, ImpostorWatch};
use super::plan::{FaultPlan, NodeNo, Tuning};
use super::store::Store;
use super::world::{lock, Shared};
use crate::workload::{KeyChooser, State};
use engine::raft::NodeId;
use engine::replicated::client::MIN_CLIENT_ID;
use engine::replicated::{
    run_node, ClientConfig, NodeConfig, NodeError, Observer, ReplicatedClient, SafetyWatch,
};
use sim_net::NetFaultConfig;
use sim_runtime::node::{self, Node};
use sim_runtime::sync::Signal;
use sim_runtime::time::{self, sleep, Duration};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const PORT: u16 = 7000;
const DATA: &str = "/data";

pub(super) fn replica_ip(i: NodeNo) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(i).unwrap_or(u8::MAX)))
}

fn client_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))
}

fn servers(n: NodeNo) -> BTreeMap<NodeId, SocketAddr> {
    (1..=n)
        .map(|i| (NodeId::from(i), SocketAddr::new(replica_ip(i), PORT)))
        .collect()
}

fn node_config(
    i: NodeNo,
    n: NodeNo,
    watch: Arc<dyn Observer>,
    tuning: &Tuning,
    auth: &ClusterAuth,
) -> NodeConfig {
    let mut cfg = NodeConfig::new(
        NodeId::from(i),
        SocketAddr::new(replica_ip(i), PORT),
        servers(n),
        DATA,
    );
    // Small thresholds, so log compaction and InstallSnapshot happen within a run.
    (cfg.snapshot_threshold, cfg.snapshot_keep) = tuning.snapshot(40, 10);
    (cfg.election_ticks, cfg.heartbeat_ticks) =
        tuning.raft_ticks(cfg.election_ticks, cfg.heartbeat_ticks);
    cfg.max_entries_per_message = tuning.max_entries(cfg.max_entries_per_message);
    cfg.probe_from_commit = tuning.probe_from_commit.unwrap_or(false);
    cfg.pre_vote = tuning.pre_vote.unwrap_or(true);
    cfg.txn_lease = Duration::from_secs(2);
    cfg.db_options = tuning.engine_options(engine::Options {
        memtable_bytes: 32 << 10,
        ..engine::Options::tiny()
    });
    cfg.observer = Some(watch);
    cfg.auth = auth.node(NodeId::from(i));
    cfg
}

/// Whether a replica that stopped with `e` may be restarted from its disk (the node
/// failed: fail-stop), or the disk holds what recovery must never produce.
fn restartable(e: &NodeError) -> bool {
    match e {
        NodeError::Io { .. } | NodeError::Net(_) => true,
        NodeError::Db(e) => !e.is_corruption(),
        NodeError::Corrupt { .. } | NodeError::Raft(_) | NodeError::Config(_) => false,
    }
}

fn start_replica(
    i: NodeNo,
    n: NodeNo,
    world: Shared,
    watch: Arc<dyn Observer>,
    auth: &ClusterAuth,
) -> Node {
    let tuning = lock(&world).tuning.clone();
    let cfg = node_config(i, n, watch, &tuning, auth);
    let provisioned = Arc::new(AtomicBool::new(false));
    node::build(format!("replica{i}"))
        .ip(replica_ip(i))
        .init(move || {
            let (cfg, world, provisioned) = (cfg.clone(), world.clone(), provisioned.clone());
            async move {
                if !provisioned.load(Ordering::SeqCst) {
                    // The replica's directories are provisioned too: D16's limitation
                    // (an entry whose parent sync failed cannot be made durable again
                    // from inside) applies to the directories a node creates (D21).
                    let dirs = [format!("{DATA}/raft"), format!("{DATA}/db")];
                    let mut made = chaos::runner::provision(DATA).await;
                    for dir in &dirs {
                        if made.is_ok() {
                            made = chaos::runner::provision(dir).await;
                        }
                    }
                    if let Err(e) = made {
                        lock(&world).violation("runner", format!("provisioning {DATA}: {e}"));
                        return;
                    }
                    provisioned.store(true, Ordering::SeqCst);
                } else {
                    lock(&world).recoveries += 1;
                }
                // The supervisor: a fail-stop error restarts the replica from disk.
                loop {
                    match run_node(cfg.clone(), Arc::new(Signal::default())).await {
                        Ok(()) => return,
                        Err(e) if restartable(&e) => {
                            sleep(Duration::from_millis(50)).await;
                            lock(&world).recoveries += 1;
                        }
                        Err(e) => {
                            lock(&world).violation("recovery", format!("replica {i}: {e}"));
                            return;
                        }
                    }
                }
            }
        })
        .create()
}

fn client_config(
    id: u64,
    port: u16,
    n: NodeNo,
    tuning: &Tuning,
    auth: &ClusterAuth,
) -> ClientConfig {
    let mut cfg = ClientConfig::new(
        MIN_CLIENT_ID + id,
        SocketAddr::new(client_ip(), port),
        servers(n),
    );
    cfg.request_timeout = tuning.request_timeout(Duration::from_millis(300));
    cfg.begin_deadline = Duration::from_secs(3);
    cfg.commit_deadline = tuning.commit_deadline(Duration::from_secs(10));
    cfg.auth = auth.client();
    cfg
}

/// The whole state, read by a fresh client once the cluster serves again.
async fn read_state(
    id: u64,
    port: u16,
    n: NodeNo,
    within: Duration,
    auth: ClusterAuth,
) -> Result<State, String> {
    // The checker's own reader keeps the default timeout, whatever the seed drew.
    let cfg = client_config(id, port, n, &Tuning::default(), &auth);
    let client = ReplicatedClient::connect(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let until = time::now() + within;
    let mut last = String::from("no attempt");
    while time::now() < until {
        match client.begin().await {
            Ok(mut t) => match t.scan(..).await {
                Ok(rows) => return Ok(crate::workload::state_of(rows)),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

/// Runs the scenario's clients against an `n`-replica cluster under `plan`.
pub async fn run(
    world: Shared,
    plan: &FaultPlan,
    n: NodeNo,
    keys: KeyChooser,
    clients: usize,
    liveness: Duration,
) {
    run_with(world, plan, n, keys, clients, liveness, None).await;
}

/// [`run`], with an impostor beside the cluster when `impostor` is `Some(authenticated)`
/// (module `impostor`): the cluster authenticates with simulated credentials when
/// `authenticated`, and the `impostor` check runs.
pub async fn run_with(
    world: Shared,
    plan: &FaultPlan,
    n: NodeNo,
    keys: KeyChooser,
    clients: usize,
    liveness: Duration,
    impostor: Option<bool>,
) {
    let auth = match impostor {
        Some(true) => ClusterAuth::simulated(),
        _ => ClusterAuth::insecure(),
    };
    let effects = super::super::impostor::SharedEffects::default();
    lock(&world).unknown_may_apply_later = true;
    lock(&world).phase = super::world::Phase::Running;
    sim_fs::sim::set_fault_config(plan.disk.clone());
    sim_net::faults::set_config(plan.net.clone());
    let violated = world.clone();
    let watch = Arc::new(SafetyWatch::new(move |v| {
        lock(&violated).violation("raft-safety", v);
    }));
    let watched = Arc::new(ImpostorWatch::new(
        watch.clone(),
        world.clone(),
        effects.clone(),
    ));
    let observer: Arc<dyn Observer> = match impostor {
        Some(_) => watched.clone(),
        None => watch.clone(),
    };
    let nodes: Arc<Vec<Node>> = Arc::new(
        (1..=n)
            .map(|i| start_replica(i, n, world.clone(), observer.clone(), &auth))
            .collect(),
    );
    if impostor.is_some() {
        super::impostor::start(world.clone(), &auth, servers(n), watched, effects.clone());
    }
    let client_node = node::build("clients").ip(client_ip()).create();
    // The workload's opening rows, before any client starts (and before the timed
    // faults: the plan's clock starts below).
    let loader = ReplicatedClient::connect(client_config(999, 8999, n, &Tuning::default(), &auth));
    let load_world = world.clone();
    let loaded = client_node
        .spawn(async move {
            match loader.await {
                Ok(client) => {
                    super::client::load_initial(load_world, Store::Cluster(client), liveness).await;
                }
                Err(e) => lock(&load_world).violation("runner", format!("loader: {e}")),
            }
        })
        .await;
    if let Err(e) = loaded {
        lock(&world).violation("panic", format!("loading the initial rows: {e}"));
    }
    if lock(&world).stop {
        return;
    }
    for c in 0..clients {
        let (world, keys) = (world.clone(), keys.clone());
        let id = u64::try_from(c).unwrap_or(u64::MAX);
        let port = 9000 + u16::try_from(c).unwrap_or(0);
        let cfg = client_config(id, port, n, &plan.tuning, &auth);
        client_node.spawn(async move {
            match ReplicatedClient::connect(cfg).await {
                Ok(client) => {
                    let stream = format!("scenario.client{c}");
                    super::client::run(world, Store::Cluster(client), keys, stream).await;
                }
                Err(e) => lock(&world).violation("runner", format!("client {c}: {e}")),
            }
        });
    }

    let start = time::now();
    let steps = plan.steps.clone();
    let executed = Arc::new(AtomicBool::new(false));
    let (exec_nodes, exec_done, exec_watch) = (nodes.clone(), executed.clone(), watch.clone());
    sim_runtime::task::spawn_named("fault-plan", async move {
        let net = Arc::new(Mutex::new(NetFaults::default()));
        let mut waiting = Vec::new();
        for step in steps {
            time::sleep_until(start + Duration::from_millis(step.at_ms)).await;
            if let Some(fault) = aimed(&step.fault, &exec_watch) {
                waiting.extend(crash_at_io(&exec_nodes, &net, &fault, &exec_watch));
                apply(&exec_nodes, &net, &fault, &exec_watch);
            }
        }
        for crash in waiting {
            let _finished = crash.await;
        }
        exec_done.store(true, Ordering::SeqCst);
    });
    let healed_at = start + plan.healed_at();
    // Liveness is a bound on a stall, not on the whole budget's duration (D84): the
    // cluster must decide an operation (acknowledge it, or refuse it definitely) within
    // `liveness` of the heal and of each decision after it. A fixed bound from the heal
    // judged throughput instead: 1,000 operations under a small snapshot threshold
    // take longer than 30 s on a cluster that keeps serving. Timeouts are no progress.
    let (mut decided, mut last_decision) = (0u64, healed_at);
    loop {
        sleep(Duration::from_millis(2)).await;
        let mut w = lock(&world);
        if w.stop {
            return;
        }
        if !w.healed && time::now() >= healed_at {
            w.heal();
            quiet(plan);
        }
        if w.decided_after_heal > decided {
            decided = w.decided_after_heal;
            last_decision = time::now();
        }
        if w.ops_completed >= w.ops_budget && executed.load(Ordering::SeqCst) {
            break;
        }
        if time::now() > last_decision + liveness {
            let since = if decided == 0 {
                "the last fault healed".to_string()
            } else {
                format!("its last decision ({decided} decided since the heal)")
            };
            let msg = format!(
                "{} of {} operations completed; the cluster decided none in the {liveness:?} \
                 after {since}",
                w.ops_completed, w.ops_budget
            );
            w.violation("liveness", msg);
            return;
        }
    }
    {
        let mut w = lock(&world);
        // Only work started after the faults healed is judged: an operation that began
        // during a fault may fail by its own deadline just after the heal, and one that
        // finished before says nothing about the healed cluster. (The deadline above
        // still bounds every operation in flight at the heal.)
        let started = w.started_after_heal();
        if started > 0 && w.decided_after_heal == 0 && !plan.steps.is_empty() {
            let msg = format!(
                "{started} operations started after the last fault healed, and the cluster \
                 decided none of them (no acknowledgement, no definite refusal)"
            );
            w.violation("liveness", msg);
            return;
        }
    }
    final_checks(&world, plan, &nodes, &client_node, n, liveness, &auth).await;
    if impostor.is_some() {
        super::impostor::check_answers(&world, &effects);
    }
}

/// The heal: the plan's probabilistic faults stop (message faults, EIO), as its timed
/// ones have; I/O latency and the crash model of unsynced writes stay. Liveness is
/// judged from here: a cluster whose disks keep failing fsyncs may never settle.
fn quiet(plan: &FaultPlan) {
    sim_fs::sim::set_fault_config(sim_fs::FaultConfig {
        crash: plan.disk.crash.clone(),
        latency: plan.disk.latency.clone(),
        ..sim_fs::FaultConfig::default()
    });
    sim_net::faults::set_config(NetFaultConfig::none());
}

/// Reads the final state, then cuts power to every replica at once, recovers the
/// cluster and reads it again: both states must pass the invariant and the oracle.
async fn final_checks(
    world: &Shared,
    plan: &FaultPlan,
    nodes: &Arc<Vec<Node>>,
    client_node: &Node,
    n: NodeNo,
    liveness: Duration,
    auth: &ClusterAuth,
) {
    sim_net::faults::reset();
    quiet(plan);
    for (round, when) in ["at the end", "after every replica lost power at once"]
        .into_iter()
        .enumerate()
    {
        let id = 1_000 + round as u64;
        let port = 9_900 + round as u16;
        let read = client_node
            .spawn(read_state(id, port, n, liveness, auth.clone()))
            .await;
        let state = match read {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => {
                let msg =
                    format!("the cluster did not serve a read {when} within {liveness:?}: {e}");
                lock(world).violation("liveness", msg);
                return;
            }
            Err(e) => {
                lock(world).violation("panic", format!("the final read {when}: {e}"));
                return;
            }
        };
        {
            let mut w = lock(world);
            // The read went through a leader that committed an entry of its own term:
            // a commit whose outcome the client never learned is decided by now.
            if let Some(oracle) = w.oracle.as_mut() {
                oracle.crash();
            }
            w.check_state(&state, when);
            if w.stop {
                return;
            }
        }
        if round == 0 {
            for node in nodes.iter().filter(|node| !node.is_down()) {
                node.crash_counted_as(super::FINAL_POWER_LOSS);
            }
            sleep(Duration::from_millis(50)).await;
            for node in nodes.iter() {
                node.restart();
            }
        }
    }
    lock(world).stop = true;
}
