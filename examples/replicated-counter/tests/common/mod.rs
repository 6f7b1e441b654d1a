//! What the integration tests share: a cluster that starts in both worlds, the client
//! workload, the nemesis (simulation only) and the checker.
//!
//! The same `scenario` runs in both worlds. Simulated: every node and client is a
//! madsim node with its own IP and disk, and a nemesis crashes, kills, pauses and
//! partitions nodes while the clients work. Real: nodes and clients are tokio tasks on
//! loopback TCP, each node in its own directory under the test's temporary directory,
//! and nothing is injected.

#![allow(dead_code)] // each test file uses its own part of this module

use rand::Rng;
use replicated_counter::client::{Client, IncrOutcome};
use replicated_counter::{node, Options, CLIENT_ID_BASE};
use seedbank::fs::FaultConfig;
use seedbank::time::{self, Duration};
use seedbank::{rng, task, Ctx, Test};
use std::net::SocketAddr;

/// Nodes in the cluster.
pub const NODES: u64 = 3;
/// Concurrent clients.
pub const CLIENTS: u64 = 3;
/// How long a client waits for an answer before the operation's outcome is unknown.
pub const OP_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the nemesis runs (simulation).
pub const CHAOS_FOR: Duration = Duration::from_secs(3);
/// How long the nodes have to converge once every fault is healed.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(20);

/// The faults the counter is built to survive: everything `FaultConfig::random`
/// draws except bit flips in *synced* data. A node keeps one copy of its log, so a
/// flipped bit is detected (every record is checksummed and recovery stops at it) but
/// cannot be repaired; the counter does not claim to survive it, so the chaos tests do
/// not inject it.
pub fn survivable_disk_faults(c: &mut FaultConfig) {
    c.crash_bitflip = 0.0;
}

/// The chaos tests' configuration: random (survivable) disk faults and random network
/// faults, drawn per seed.
pub fn chaos(test: Test) -> Test {
    test.random_fs_faults_with(survivable_disk_faults)
        .random_net_faults()
}

fn peers(ctx: &Ctx) -> Vec<SocketAddr> {
    (1..=NODES).map(|i| ctx.addr(i as u16)).collect()
}

fn options(ctx: &Ctx, id: u64, ack_before_fsync: bool) -> Options {
    let mut opts = Options::new(id, peers(ctx), ctx.data_dir().to_path_buf());
    opts.ack_before_fsync = ack_before_fsync;
    opts
}

async fn serve(opts: Options) {
    let id = opts.id;
    if let Err(e) = node::run(opts).await {
        // Fail-stop: the node is down until its supervisor restarts it.
        tracing::warn!(node = id, error = %e, "node stopped");
    }
}

/// A running cluster.
pub struct Cluster {
    #[cfg(madsim)]
    nodes: Vec<seedbank::runtime::node::Node>,
    #[cfg(not(madsim))]
    tasks: Vec<seedbank::task::JoinHandle<()>>,
}

impl Cluster {
    /// Starts `NODES` nodes.
    pub fn start(ctx: &Ctx, ack_before_fsync: bool) -> Cluster {
        let all: Vec<Options> = (1..=NODES)
            .map(|id| options(ctx, id, ack_before_fsync))
            .collect();
        #[cfg(madsim)]
        {
            let nodes = all
                .into_iter()
                .map(|opts| {
                    seedbank::runtime::node::build(format!("counter{}", opts.id))
                        .ip(opts.listen().ip())
                        .init(move || serve(opts.clone()))
                        .create()
                })
                .collect();
            Cluster { nodes }
        }
        #[cfg(not(madsim))]
        {
            let tasks = all
                .into_iter()
                .map(|opts| task::spawn(serve(opts)))
                .collect();
            Cluster { tasks }
        }
    }

    /// Node `id` (simulation).
    #[cfg(madsim)]
    pub fn node(&self, id: u64) -> &seedbank::runtime::node::Node {
        &self.nodes[(id - 1) as usize]
    }

    /// The supervisor: restarts every node that is down (it stopped on an I/O error,
    /// or was crashed or killed). Nothing to do in the real world.
    ///
    /// A node whose init task returned has exited, but madsim has not released its
    /// sockets (only `kill` resets a node's network), so a plain `restart` would fail
    /// to bind with "address already in use" — the simulator found that on seed 2. A
    /// process that exited is dead: kill it (releasing what the OS would release; the
    /// page cache stays), then restart.
    pub fn restart_stopped(&self) {
        #[cfg(madsim)]
        for node in &self.nodes {
            if node.is_down() {
                node.kill();
                node.restart();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        #[cfg(not(madsim))]
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Increments acknowledged and unknown, per node (index `id - 1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub acked: Vec<u64>,
    pub unknown: Vec<u64>,
}

impl History {
    fn new() -> Self {
        History {
            acked: vec![0; NODES as usize],
            unknown: vec![0; NODES as usize],
        }
    }

    fn merge(&mut self, other: &History) {
        for i in 0..NODES as usize {
            self.acked[i] += other.acked[i];
            self.unknown[i] += other.unknown[i];
        }
    }
}

/// Client `k` (1-based): `ops` increments, each to a node its stream picks.
async fn client(ctx: Ctx, k: u64, ops: u64) -> History {
    let me = CLIENT_ID_BASE + k;
    let mut c = Client::connect(me, ctx.addr(me as u16), &peers(&ctx), OP_TIMEOUT)
        .await
        .expect("the client binds its address");
    let mut history = History::new();
    for _ in 0..ops {
        let node = rng::stream(format!("client{k}")).gen_range(1..=NODES);
        match c.incr(node).await {
            IncrOutcome::Acked => history.acked[(node - 1) as usize] += 1,
            IncrOutcome::Unknown => history.unknown[(node - 1) as usize] += 1,
        }
        let think = rng::stream(format!("client{k}")).gen_range(5..30);
        time::sleep(Duration::from_millis(think)).await;
    }
    history
}

/// Runs `fut` where it can talk to the cluster: in simulation on a fresh node with the
/// address of node `addr_index`, in the real world as a task.
async fn on_own_node<T: Send + 'static>(
    ctx: &Ctx,
    addr_index: u64,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    #[cfg(madsim)]
    let handle = seedbank::runtime::node::build(format!("client{addr_index}"))
        .ip(ctx.addr(addr_index as u16).ip())
        .create()
        .spawn(fut);
    #[cfg(not(madsim))]
    let handle = {
        let _ = (ctx, addr_index);
        task::spawn(fut)
    };
    handle.await.expect("the task finishes")
}

/// The nemesis (simulation): for `CHAOS_FOR`, every 50–400 ms picks a node and
/// crashes it (power loss), kills it (process death), pauses it, or partitions it from
/// the other nodes, then undoes it; it also restarts nodes that stopped on an error.
#[cfg(madsim)]
async fn nemesis(ctx: &Ctx, cluster: &Cluster) {
    let end = time::now() + CHAOS_FOR;
    let pick = |lo: u64, hi: u64| rng::stream("nemesis").gen_range(lo..hi);
    let ips: Vec<_> = (1..=NODES).map(|i| ctx.addr(i as u16).ip()).collect();
    while time::now() < end {
        time::sleep(Duration::from_millis(pick(50, 400))).await;
        cluster.restart_stopped();
        let victim = pick(1, NODES + 1);
        let node = cluster.node(victim);
        let outage = Duration::from_millis(pick(0, 300));
        match pick(0, 5) {
            0 | 1 => {
                node.crash();
                time::sleep(outage).await;
                node.restart();
            }
            2 => {
                node.kill();
                time::sleep(outage).await;
                node.restart();
            }
            3 => {
                node.pause();
                time::sleep(outage).await;
                node.resume();
            }
            _ => {
                let me = ips[(victim - 1) as usize];
                let others: Vec<_> = ips.iter().copied().filter(|ip| *ip != me).collect();
                seedbank::net::faults::partition(&[me], &others);
                time::sleep(outage * 3).await;
                seedbank::net::faults::heal();
            }
        }
    }
}

/// Heals every fault, waits for the replicas to converge, and checks the promises:
/// no acknowledged increment lost, none applied twice or made up, all views equal.
/// Returns the counter's value.
async fn heal_and_check(ctx: &Ctx, cluster: &Cluster, history: History) -> u64 {
    ctx.heal_all();
    cluster.restart_stopped();
    let peers = peers(ctx);
    let checker = CLIENT_ID_BASE + 99;
    let listen = ctx.addr(checker as u16);
    let views = on_own_node(ctx, checker, async move {
        let mut c = Client::connect(checker, listen, &peers, Duration::from_millis(200))
            .await
            .expect("the checker binds");
        let deadline = time::now() + CONVERGE_WITHIN;
        loop {
            let mut views = Vec::new();
            for node in 1..=NODES {
                views.push(c.read(node).await);
            }
            let converged = views.iter().all(|v| v.is_some() && *v == views[0]);
            if converged || time::now() >= deadline {
                return views;
            }
            time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    for id in 1..=NODES {
        let i = (id - 1) as usize;
        let view = views[i].as_ref().unwrap_or_else(|| {
            panic!(
                "node {id} did not answer a read within {CONVERGE_WITHIN:?} of the faults healing"
            )
        });
        let (own, acked, unknown) = (view[i], history.acked[i], history.unknown[i]);
        assert!(
            own >= acked,
            "LOST ACKNOWLEDGED INCREMENTS: node {id} acknowledged {acked} increments but holds {own} after recovery ({unknown} more had an unknown outcome)"
        );
        assert!(
            own <= acked + unknown,
            "PHANTOM INCREMENTS: node {id} holds {own}, but only {acked} increments were acknowledged and {unknown} unknown"
        );
    }
    assert!(
        views.iter().all(|v| *v == views[0]),
        "NO CONVERGENCE: {CONVERGE_WITHIN:?} after healing the views still differ: {views:?}"
    );
    views[0].as_ref().map_or(0, |v| v.iter().sum())
}

/// The whole scenario: start the cluster, run the clients (under the nemesis in
/// simulation), heal, check. Returns the counter's final value.
pub async fn scenario(ctx: Ctx, ack_before_fsync: bool) -> u64 {
    scenario_with(ctx, ack_before_fsync, true).await
}

/// [`scenario`], with or without the nemesis.
pub async fn scenario_with(ctx: Ctx, ack_before_fsync: bool, with_nemesis: bool) -> u64 {
    let cluster = Cluster::start(&ctx, ack_before_fsync);
    let ops = if ctx.is_simulated() { 40 } else { 10 };
    let clients: Vec<_> = (1..=CLIENTS)
        .map(|k| {
            let ctx = ctx.clone();
            task::spawn(async move {
                let inner = ctx.clone();
                on_own_node(&ctx, CLIENT_ID_BASE + k, client(inner, k, ops)).await
            })
        })
        .collect();
    #[cfg(madsim)]
    if with_nemesis {
        nemesis(&ctx, &cluster).await;
    }
    #[cfg(not(madsim))]
    let _ = with_nemesis;
    let mut history = History::new();
    for c in clients {
        history.merge(&c.await.expect("client task"));
    }
    let total = heal_and_check(&ctx, &cluster, history.clone()).await;
    tracing::info!(?history, total, "checked");
    total
}
