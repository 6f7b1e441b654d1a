//! The cluster harness: `n` replicas on simulated nodes (each with its own simulated
//! disk, restarted by a supervisor loop after a fail-stop error), clients on a separate
//! node running register-style transactions, and a fault driver drawing crashes
//! (power loss with torn writes), symmetric and one-way partitions, message
//! drop/duplication/reordering/delay and clock skew from the seed. After the faults heal,
//! the clients finish, a final read takes the whole state, and the checks run: the Raft
//! safety checker over every node's transitions, and the history checker: the replay
//! of the claimed serial order ([`checkers::serial`]; each committed transaction claims
//! its Raft log index, each read-only one its snapshot index).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::raft::NodeId;
use engine::replicated::client::MIN_CLIENT_ID;
use engine::replicated::{
    run_node, ClientConfig, ClientError, NodeConfig, ReplicatedClient, ReplicatedTxn, SafetyWatch,
    TxnOutcome,
};
use rand::seq::SliceRandom;
use rand::Rng;
use sim_net::NetFaultConfig;
use sim_runtime::node::{self, Node};
use sim_runtime::sync::Signal;
use sim_runtime::time::{elapsed, sleep};

use checkers::serial::{self, Outcome as TxnResult, Scan, State as Kv, Txn as TxnRecord};

const PORT: u16 = 7000;
const KEYS: usize = 6;

/// One seed's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub nodes: usize,
    pub clients: usize,
    /// Length of the fault phase.
    pub chaos: Duration,
    /// A canary bug to switch on (needs the `canary` feature).
    #[cfg_attr(not(feature = "canary"), allow(dead_code))]
    pub canary: Option<engine::canary::Canary>,
    /// Probability that an fsync fails (the replica stops and its supervisor restarts it).
    pub sync_eio: f64,
}

/// What a seed did, and what its checks found.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub violations: Vec<String>,
    pub committed: u64,
    pub read_only: u64,
    pub aborted: u64,
    pub failed: u64,
    pub crashes: u64,
    pub snapshots_installed: u64,
    /// Replica restarts by the supervisor after a fail-stop error.
    pub fail_stops: u64,
    /// The first few fail-stop errors.
    pub fail_stop_errors: Vec<String>,
    /// Crashes that hit a replica with an unsynced write in its Raft log.
    pub crashes_mid_write: u64,
    pub faults: BTreeMap<String, u64>,
    pub virtual_ms: u128,
}

pub use sim_runtime::sync::lock;

/// The errors that stopped replicas (each followed by a restart from disk).
pub type FailStops = Arc<Mutex<Vec<String>>>;

/// Every node's transitions go to one [`SafetyWatch`]; the first few violations are kept.
pub struct Watch {
    pub safety: Arc<SafetyWatch>,
    pub violations: Arc<Mutex<Vec<String>>>,
}

impl Default for Watch {
    fn default() -> Watch {
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = violations.clone();
        let safety = Arc::new(SafetyWatch::new(move |v| {
            let mut vs = lock(&kept);
            if vs.len() < 3 {
                vs.push(format!("raft safety: {v}"));
            }
        }));
        Watch { safety, violations }
    }
}

pub fn server_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8))
}

pub fn client_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))
}

pub fn servers(n: usize) -> BTreeMap<NodeId, SocketAddr> {
    (1..=n)
        .map(|i| (i as NodeId, SocketAddr::new(server_ip(i), PORT)))
        .collect()
}

fn node_config(i: usize, n: usize, watch: Arc<Watch>) -> NodeConfig {
    let mut cfg = NodeConfig::new(
        i as NodeId,
        SocketAddr::new(server_ip(i), PORT),
        servers(n),
        "/data",
    );
    // Small snapshots thresholds, so compaction and InstallSnapshot happen in a short run.
    cfg.snapshot_threshold = 40;
    cfg.snapshot_keep = 10;
    cfg.txn_lease = Duration::from_secs(2);
    cfg.db_options = engine::Options {
        memtable_bytes: 32 << 10,
        ..engine::Options::tiny()
    };
    cfg.observer = Some(watch.safety.clone());
    cfg
}

pub fn start_server(i: usize, n: usize, watch: Arc<Watch>, fail_stops: FailStops) -> Node {
    let cfg = node_config(i, n, watch);
    node::build(format!("replica{i}"))
        .ip(server_ip(i))
        .init(move || {
            let cfg = cfg.clone();
            let fail_stops = fail_stops.clone();
            async move {
                // The supervisor: a fail-stop error restarts the replica from disk.
                loop {
                    match run_node(cfg.clone(), Arc::new(Signal::default())).await {
                        Ok(()) => return,
                        Err(e) => {
                            lock(&fail_stops).push(format!("replica {}: {e}", cfg.id));
                            tracing::warn!(node = cfg.id, error = %e, "replica stopped; restarting");
                            sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        })
        .create()
}

fn key(k: usize) -> Vec<u8> {
    format!("k{k}").into_bytes()
}

/// One transaction of client `c`, number `n`: reads, scans and writes drawn from
/// `rng`; every written value is unique (`c<c>.<n>.<key>`).
async fn one_txn(client: &ReplicatedClient, c: usize, n: u64, rng: &mut impl Rng) -> TxnRecord {
    let mut rec = TxnRecord::new(format!("c{c}#{n}"), elapsed());
    let mut txn = match client.begin().await {
        Ok(t) => t,
        Err(e) => {
            rec.outcome = TxnResult::Failed(e.to_string());
            rec.complete = elapsed();
            return rec;
        }
    };
    let result = body(&mut txn, &mut rec, c, n, rng).await;
    // A transaction that wrote nothing is read-only: its index is its snapshot's.
    rec.outcome = match result {
        Ok(TxnOutcome::Committed { index }) => TxnResult::Committed(index),
        Ok(TxnOutcome::Aborted { .. }) => TxnResult::Aborted,
        Err(ClientError::UnknownOutcome { why, .. }) => TxnResult::Unknown(why),
        Err(e) => TxnResult::Failed(e.to_string()),
    };
    rec.complete = elapsed();
    rec
}

async fn body(
    txn: &mut ReplicatedTxn,
    rec: &mut TxnRecord,
    c: usize,
    n: u64,
    rng: &mut impl Rng,
) -> Result<TxnOutcome, ClientError> {
    let mut keys: Vec<usize> = (0..KEYS).collect();
    keys.shuffle(rng);
    let kind = rng.gen_range(0..100);
    // Padded, so a batch of log entries spans several 512-byte sectors (torn writes).
    let value = |k: usize| format!("c{c}.{n}.k{k}.{:300}", "").into_bytes();
    if kind < 35 {
        // Read-modify-write, plus sometimes a blind write of another key.
        let reads = rng.gen_range(1..=2);
        for &k in &keys[..reads] {
            let v = txn.get(key(k)).await?;
            rec.reads.push((key(k), v));
        }
        let writes = rng.gen_range(1..=reads);
        for &k in &keys[..writes] {
            txn.put(key(k), value(k)).await?;
            rec.writes.insert(key(k), Some(value(k)));
        }
        if rng.gen_bool(0.5) {
            let k = keys[reads];
            txn.put(key(k), value(k)).await?;
            rec.writes.insert(key(k), Some(value(k)));
        }
    } else if kind < 60 {
        // Blind writes (and, rarely, a delete).
        for &k in &keys[..rng.gen_range(1..=2)] {
            let v = (!rng.gen_bool(0.1)).then(|| value(k));
            match &v {
                Some(v) => txn.put(key(k), v.clone()).await?,
                None => txn.delete(key(k)).await?,
            }
            rec.writes.insert(key(k), v);
        }
    } else if kind < 85 {
        // Read-only.
        for &k in &keys[..rng.gen_range(2..=3)] {
            let v = txn.get(key(k)).await?;
            rec.reads.push((key(k), v));
        }
    } else {
        // A range read, then a write inside or outside it (phantoms).
        let a = rng.gen_range(0..KEYS - 1);
        let b = rng.gen_range(a + 1..=KEYS);
        let (start, end) = (key(a), key(b));
        let rows = txn.scan(start.clone()..end.clone()).await?;
        rec.scans.push(Scan { start, end, rows });
        let k = keys[0];
        txn.put(key(k), value(k)).await?;
        rec.writes.insert(key(k), Some(value(k)));
    }
    txn.commit().await
}

pub fn client_config(c: usize, n: usize, port: u16) -> ClientConfig {
    let mut cfg = ClientConfig::new(
        MIN_CLIENT_ID + c as u64,
        SocketAddr::new(client_ip(), port),
        servers(n),
    );
    cfg.request_timeout = Duration::from_millis(300);
    cfg.begin_deadline = Duration::from_secs(3);
    // Clients keep retrying a commit until it is definite: after the heal every
    // outcome must become known (a liveness check).
    cfg.commit_deadline = Duration::from_secs(120);
    cfg
}

async fn client_loop(c: usize, n: usize, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<TxnRecord>>>) {
    let client = match ReplicatedClient::connect(client_config(c, n, 9000 + c as u16)).await {
        Ok(cl) => cl,
        Err(e) => panic!("client {c}: {e}"),
    };
    let mut rng = sim_runtime::rng::stream(format!("test.client.{c}"));
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let rec = one_txn(&client, c, i, &mut rng).await;
        let failed = matches!(rec.outcome, TxnResult::Failed(_));
        lock(&log).push(rec);
        if failed {
            sleep(Duration::from_millis(rng.gen_range(10..60))).await;
        }
    }
}

/// Reads the whole state through a fresh client (retrying until the cluster serves).
async fn final_read(n: usize) -> Result<Kv, String> {
    let client = ReplicatedClient::connect(client_config(99, n, 9099))
        .await
        .map_err(|e| e.to_string())?;
    let mut last = String::new();
    for _ in 0..40 {
        match client.begin().await {
            Ok(mut t) => match t.scan(..).await {
                Ok(rows) => return Ok(rows.into_iter().collect()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "liveness: the final read never succeeded after the heal: {last}"
    ))
}

/// The fault driver: until `chaos` has passed, draw one fault after another.
async fn drive_faults(nodes: &[Node], chaos: Duration, out: &mut Outcome) {
    let mut rng = sim_runtime::rng::stream("test.faults");
    let ips: Vec<IpAddr> = (1..=nodes.len()).map(server_ip).collect();
    let mut net = NetFaultConfig::none();
    if rng.gen_bool(0.7) {
        net.drop_rate = rng.gen_range(0.0..0.05);
        net.dup_rate = rng.gen_range(0.0..0.05);
        net.reorder_rate = rng.gen_range(0.0..0.1);
        net.delay_rate = rng.gen_range(0.0..0.2);
        net.delay_min = Duration::from_millis(1);
        net.delay_max = Duration::from_millis(rng.gen_range(2..200));
    }
    sim_net::faults::set_config(net);
    for node in nodes {
        if rng.gen_bool(0.3) {
            let offset = rng.gen_range(-2_000_000_000i64..2_000_000_000);
            let drift = rng.gen_range(-50_000i64..50_000);
            node.set_clock(offset, drift);
        }
    }
    let end = elapsed() + chaos;
    while elapsed() < end {
        sleep(Duration::from_millis(rng.gen_range(100..600))).await;
        match rng.gen_range(0..4) {
            0 | 1 => {
                // Power loss of one replica (for five, sometimes two at once), or a
                // process death (page cache kept); restarted a little later.
                let count = if nodes.len() >= 5 {
                    rng.gen_range(1..=2)
                } else {
                    1
                };
                let down: Vec<&Node> = nodes.choose_multiple(&mut rng, count).collect();
                let kill = rng.gen_bool(0.2);
                if !kill && rng.gen_bool(0.5) {
                    // Land the power loss on an unsynced write of the Raft log (torn
                    // and lost writes), waiting for one a little while.
                    let log = std::path::Path::new("/data/raft/log");
                    for _ in 0..400 {
                        if sim_fs::sim::pending_data_ops(down[0].number(), log).unwrap_or(0) > 0 {
                            out.crashes_mid_write += 1;
                            break;
                        }
                        sleep(Duration::from_micros(50)).await;
                    }
                }
                for node in &down {
                    if kill {
                        node.kill();
                    } else {
                        node.crash();
                    }
                    out.crashes += 1;
                }
                sleep(Duration::from_millis(rng.gen_range(50..800))).await;
                for node in down {
                    node.restart();
                }
            }
            2 => {
                let mut shuffled = ips.clone();
                shuffled.shuffle(&mut rng);
                let cut = rng.gen_range(1..ips.len());
                let (a, b) = shuffled.split_at(cut);
                if rng.gen_bool(0.5) {
                    sim_net::faults::partition(a, b);
                } else {
                    sim_net::faults::partition_one_way(a, b);
                }
                sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
                sim_net::faults::heal();
            }
            _ => {
                // Isolate the clients from one replica (often the leader's peers).
                let ip = *ips.choose(&mut rng).expect("ips");
                sim_net::faults::partition(&[ip], &[client_ip()]);
                sleep(Duration::from_millis(rng.gen_range(200..1000))).await;
                sim_net::faults::heal();
            }
        }
    }
    sim_net::faults::heal();
    sim_net::faults::set_config(NetFaultConfig::none());
    let mut fs = sim_fs::sim::fault_config(1);
    fs.sync_eio = 0.0;
    sim_fs::sim::set_fault_config(fs);
}

pub fn sim(seed: u64) -> sim_runtime::sim::Sim {
    sim_runtime::sim::Sim::new(seed)
        .plugin::<sim_fs::SimFs>()
        .time_limit(Duration::from_secs(600))
}

/// Runs one seed and checks it.
pub fn run_seed(seed: u64, plan: Plan) -> Outcome {
    let report = sim(seed).run(move || run_body(plan));
    let mut out = match report.output {
        Ok(o) => o,
        Err(panic) => Outcome {
            violations: vec![format!("the run panicked: {panic}")],
            ..Outcome::default()
        },
    };
    out.faults = report.faults;
    out.virtual_ms = report.virtual_time.as_millis();
    out
}

/// Runs one seed twice and compares the traces event by event.
pub fn check_determinism(seed: u64, plan: Plan) -> sim_runtime::sim::Determinism {
    sim_runtime::sim::check_determinism(&sim(seed), move || run_body(plan.clone()))
}

async fn run_body(plan: Plan) -> Outcome {
    #[cfg(feature = "canary")]
    if let Some(c) = plan.canary {
        engine::canary::enable(c);
    }
    sim_fs::sim::set_fault_config(sim_fs::FaultConfig {
        latency: sim_fs::LatencyConfig {
            probability: 1.0,
            min_us: 20,
            max_us: 1000,
        },
        sync_eio: plan.sync_eio,
        ..sim_fs::FaultConfig::none()
    });
    let watch = Arc::new(Watch::default());
    let fail_stops = FailStops::default();
    let nodes: Vec<Node> = (1..=plan.nodes)
        .map(|i| start_server(i, plan.nodes, watch.clone(), fail_stops.clone()))
        .collect();
    let client_node = node::build("clients").ip(client_ip()).create();
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..plan.clients)
        .map(|c| client_node.spawn(client_loop(c, plan.nodes, stop.clone(), log.clone())))
        .collect();
    let mut out = Outcome::default();
    drive_faults(&nodes, plan.chaos, &mut out).await;
    out.fail_stop_errors = lock(&fail_stops).clone();
    out.fail_stops = out.fail_stop_errors.len() as u64;
    stop.store(true, Ordering::Relaxed);
    for (c, h) in clients.into_iter().enumerate() {
        match sim_runtime::time::timeout(Duration::from_secs(150), h).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => out.violations.push(format!("client {c} panicked: {e}")),
            Err(_) => out.violations.push(format!(
                "liveness: client {c} did not finish after the heal"
            )),
        }
    }
    let final_state = client_node.spawn(final_read(plan.nodes)).await;
    let history = std::mem::take(&mut *lock(&log));
    let judged = match final_state {
        Ok(Ok(state)) => serial::check(&history, Some(&state)),
        Ok(Err(e)) => {
            out.violations.push(e);
            serial::check(&history, None)
        }
        Err(e) => {
            out.violations.push(format!("final read panicked: {e}"));
            Vec::new()
        }
    };
    out.violations
        .extend(judged.iter().take(10).map(|v| v.to_string()));
    out.violations
        .extend(lock(&watch.violations).iter().cloned());
    out.snapshots_installed = watch.safety.snapshots_installed();
    for t in &history {
        match (t.place(), &t.outcome) {
            (Some((_, true)), _) => out.read_only += 1,
            (Some(_), _) => out.committed += 1,
            (None, TxnResult::Aborted) => out.aborted += 1,
            (None, _) => out.failed += 1,
        }
    }
    out
}

/// Debugging aid: the trace events of `seed` whose detail contains any of `needles`.
pub fn trace_of(seed: u64, plan: Plan, needles: &[&str]) -> Vec<String> {
    let report = sim(seed)
        .keep_events(usize::MAX)
        .run(move || run_body(plan));
    report
        .trace
        .events
        .iter()
        .filter(|e| needles.iter().any(|n| e.detail.contains(n)))
        .map(|e| {
            format!(
                "{:>12} n{} {:?} {}",
                e.time_ns / 1000,
                e.node,
                e.kind,
                e.detail
            )
        })
        .collect()
}
