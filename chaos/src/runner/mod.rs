//! The simulated runner over the user's nodes (madsim build only).
//!
//! A [`Scenario`] says how many server nodes and clients, which fault kinds may fire,
//! the operation budget and which checks judge the run; a [`System`] says what the
//! user's code does: each node's init (run at start and at every restart, with the
//! node's own disk and address), the client workload (recording every operation in
//! the [`Recorder`]), how to read the state after recovery, and the user's own
//! invariant. [`run`] executes one seed under one plan and returns a [`Record`];
//! [`sweep`] runs seeds until one fails; [`shrink`] reduces a failing plan.
//!
//! One run, in order: the nodes start (each data directory provisioned durably first,
//! as an operator would), the plan's disk and message fault rates are set, the clients
//! start, and the plan's timed faults fire at their times. A supervisor restarts a node
//! that stopped by itself (fail-stop). Once the last timed fault has healed, the plan's
//! probabilistic faults stop too, and the system must decide an operation (ok or fail)
//! within [`Scenario::liveness`] of the heal and of each decision after it, until the
//! budget is done. Then every fault is healed, every node loses power at once and
//! restarts ([`Scenario::final_power_loss`]), the state is read, and the checks run:
//! the durability oracle over the history's register writes against the registers read
//! (only when the system has a state reader), the history checkers the scenario names,
//! and the user's invariant. The first failed check is the verdict.

pub mod churn;
mod drive;
mod faults;
pub mod io_crash;
mod leadership;

pub use drive::provision;
pub use leadership::Leadership;

use crate::plan::{self, FaultPlan, FaultSpace, Horizon, NodeNo};
use crate::recorder::{Recorder, Violation};
use checkers::history::History;
use rand::SeedableRng;
use sim_runtime::cover::MustReach;
use sim_runtime::time::Duration;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// Fault counter of the power loss the runner injects before its recovery check (not a
/// planned fault: `node.crash` counts only those).
pub const FINAL_POWER_LOSS: &str = "runner.final_power_loss";
/// Fault counter of a supervisor's restart of a node that stopped by itself.
pub const FAIL_STOP_RESTART: &str = "runner.fail_stop_restart";
/// Every node's data directory (on its own simulated disk).
pub const DATA_DIR: &str = "/data";

/// A history checker the runner applies to the recorded history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Per-key linearizability of read / write / cas registers (`checkers::linear`).
    Linearizable,
    /// Elle list-append serializability (`checkers::elle`).
    Elle,
}

/// What to run: the topology, the fault kinds, the budget and the checks.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Names the plan stream (`{seed}/chaos.plan/{name}`) and the records.
    pub name: String,
    /// Server nodes, numbered `1..=nodes` (the plan's node numbers).
    pub nodes: NodeNo,
    /// Client tasks, numbered `1..=clients`, each on a node of its own.
    pub clients: u32,
    /// The fault kinds a plan may draw (swarm choice of a subset per seed). A kind off
    /// here is never drawn; so are the compound kinds below that build on it (leader
    /// churn on `partition`, recovery and file-operation power losses on `crash`).
    pub faults: FaultSpace,
    /// Aim about a third of the single-node faults at the leader, when the system can
    /// name it ([`System::leader`], [`System::leader_by_claims`]). Default on.
    pub aim_at_leader: bool,
    /// With three or more nodes, partitions on and a leader to aim at, add the leader
    /// churn ([`crate::plan::Fault::LeaderChurn`]) to a third of the plans. Default on.
    pub leader_churn: bool,
    /// With power loss on, follow each crash or kill with a power loss of the same
    /// node while it recovers, in a quarter of the plans. Default on.
    pub recovery_crashes: bool,
    /// With power loss on, time about half the power losses of half the plans by the
    /// node's file operations ([`crate::plan::Fault::CrashAtIo`]). Default on.
    pub io_crashes: bool,
    /// Timed faults start within this window (ms after the clients start).
    pub window_ms: u64,
    /// Client operations per run ([`Recorder::take_op`]); shrinking lowers it.
    pub ops: u64,
    /// The longest the system may go without deciding an operation once the faults
    /// have healed, and the time the state read has after recovery.
    pub liveness: Duration,
    /// Cut power to every node at once before reading the state (default on).
    pub final_power_loss: bool,
    /// History checkers to apply besides durability and the user's invariant.
    pub checks: Vec<Check>,
    /// The port every server node listens on.
    pub port: u16,
    /// A run that reaches this much virtual time is stopped (a hang).
    pub time_limit: Duration,
    /// Coverage marks a sweep of this scenario promises to reach: `sweep` (and `merge`
    /// of its shards) fails when seeds `0..within` all ran and none reached the mark.
    pub must_reach: Vec<MustReach>,
    /// The layers (a mark name's first dotted part: `counter.` in
    /// `counter.restart_recovered_increments`) whose marks the sweep's report lists,
    /// the unreached ones included; empty: every mark compiled into the binary.
    pub mark_layers: Vec<&'static str>,
}

impl Scenario {
    /// `nodes` server nodes and `clients` clients under every fault kind a cluster can
    /// suffer, 200 operations, 3 s fault window, 10 s liveness bound.
    pub fn new(name: &str, nodes: NodeNo, clients: u32) -> Scenario {
        Scenario {
            name: name.to_string(),
            nodes,
            clients,
            faults: FaultSpace::CLUSTER,
            aim_at_leader: true,
            leader_churn: true,
            recovery_crashes: true,
            io_crashes: true,
            window_ms: 3_000,
            ops: 200,
            liveness: Duration::from_secs(10),
            final_power_loss: true,
            checks: Vec::new(),
            port: 7000,
            time_limit: Duration::from_secs(600),
            must_reach: Vec::new(),
            mark_layers: Vec::new(),
        }
    }

    /// Server node `i`'s address.
    pub fn node_addr(&self, i: NodeNo) -> SocketAddr {
        SocketAddr::new(server_ip(i), self.port)
    }

    /// Every server node's address, node `i` at index `i - 1`.
    pub fn node_addrs(&self) -> Vec<SocketAddr> {
        (1..=self.nodes).map(|i| self.node_addr(i)).collect()
    }
}

fn server_ip(i: NodeNo) -> IpAddr {
    let [_, _, hi, lo] = i.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo))
}

fn client_ip(k: u32) -> IpAddr {
    let [_, _, hi, lo] = k.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 1, hi, lo))
}

/// What a node's init gets.
#[derive(Debug, Clone)]
pub struct NodeCtx {
    /// This node's number, `1..=nodes`.
    pub id: NodeNo,
    /// This node's listen address.
    pub addr: SocketAddr,
    /// Every server node's address, node `i` at index `i - 1`.
    pub peers: Vec<SocketAddr>,
    /// This node's data directory: it exists, durably, before the first init runs.
    pub dir: PathBuf,
    /// Where the node says that it leads ([`System::leader_by_claims`]).
    pub leadership: Leadership,
}

/// What a client task gets.
#[derive(Debug, Clone)]
pub struct ClientCtx {
    /// This client's number, `1..=clients` (also a fine history process id).
    pub id: u32,
    /// An address the client may bind (its own node's IP; any port).
    pub addr: SocketAddr,
    /// Every server node's address, node `i` at index `i - 1`.
    pub peers: Vec<SocketAddr>,
    /// Where every operation is recorded, and the budget taken.
    pub recorder: Recorder,
}

/// What the state reader gets: it runs on a node of its own once the nodes recovered.
#[derive(Debug, Clone)]
pub struct ReadCtx {
    /// An address the reader may bind.
    pub addr: SocketAddr,
    /// Every server node's address.
    pub peers: Vec<SocketAddr>,
    /// How long it has (the scenario's liveness bound).
    pub within: Duration,
}

/// The state read after recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every register the workload writes, as the system now shows it (a key absent
    /// = no value): judged by the durability oracle against the history's writes.
    pub registers: BTreeMap<String, i64>,
    /// Anything else the user's invariant needs (counts, views), judged only by it.
    pub facts: BTreeMap<String, i64>,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;
type BoxedSend<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type NodeFn = dyn Fn(NodeCtx) -> Boxed<()> + Send + Sync;
type ClientFn = dyn Fn(ClientCtx) -> BoxedSend<()> + Send + Sync;
type ReadFn = dyn Fn(ReadCtx) -> BoxedSend<Result<Observed, String>> + Send + Sync;
type InvariantFn = dyn Fn(&History, &Observed) -> Result<(), String> + Send + Sync;
type LeaderFn = dyn Fn() -> Option<NodeNo> + Send + Sync;

/// The user's system: closures the runner calls in every run (shared across runs).
#[derive(Clone)]
pub struct System {
    node: Arc<NodeFn>,
    client: Option<Arc<ClientFn>>,
    read: Option<Arc<ReadFn>>,
    invariant: Option<Arc<InvariantFn>>,
    leader: Option<Arc<LeaderFn>>,
    leader_by_claims: bool,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System").finish_non_exhaustive()
    }
}

impl System {
    /// A system whose server node runs `init` at start and at every restart. When the
    /// init returns, the node has stopped (fail-stop): the supervisor restarts it.
    pub fn new<F, Fut>(init: F) -> System
    where
        F: Fn(NodeCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        System {
            node: Arc::new(move |ctx| Box::pin(init(ctx))),
            client: None,
            read: None,
            invariant: None,
            leader: None,
            leader_by_claims: false,
        }
    }

    /// The workload: each client runs `client`, taking operations from the budget
    /// and recording each in the history.
    pub fn client<F, Fut>(mut self, client: F) -> System
    where
        F: Fn(ClientCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.client = Some(Arc::new(move |ctx| Box::pin(client(ctx))));
        self
    }

    /// Reads the state after recovery (for the durability oracle and the invariant).
    pub fn read_state<F, Fut>(mut self, read: F) -> System
    where
        F: Fn(ReadCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Observed, String>> + Send + 'static,
    {
        self.read = Some(Arc::new(move |ctx| Box::pin(read(ctx))));
        self
    }

    /// The user's own invariant over the history and the state read after recovery.
    pub fn invariant(
        mut self,
        check: impl Fn(&History, &Observed) -> Result<(), String> + Send + Sync + 'static,
    ) -> System {
        self.invariant = Some(Arc::new(check));
        self
    }

    /// Which node leads now (for faults aimed at the leader); without it, plans never
    /// aim at the leader.
    pub fn leader(mut self, leader: impl Fn() -> Option<NodeNo> + Send + Sync + 'static) -> System {
        self.leader = Some(Arc::new(leader));
        self
    }

    /// The nodes say when they lead ([`NodeCtx::leadership`]): plans aim faults at the
    /// leader, which is the node up with the highest claimed term when the fault fires
    /// (none: the fault is skipped). The claims are the run's own, so this works where
    /// a [`System::leader`] closure, shared by every run, could not keep per-run state.
    pub fn leader_by_claims(mut self) -> System {
        self.leader_by_claims = true;
        self
    }
}

/// One run's result.
#[derive(Debug, Clone)]
pub struct Record {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The plan it ran under.
    pub plan: FaultPlan,
    /// The first failed check (None: every check held).
    pub failed: Option<Violation>,
    /// What the clients observed.
    pub history: History,
    /// Faults injected, by kind (sim-runtime's counters).
    pub faults: BTreeMap<String, u64>,
    /// Coverage marks the run reached (`sim_runtime::cover!`, in the user's code and
    /// in every layer under it), with their hit counts.
    pub marks: BTreeMap<String, u64>,
    /// Each reached mark's first hit, ns of virtual time (targeted exploration forks
    /// a run just after it: [`crate::explore`]).
    pub mark_first_ns: BTreeMap<String, u64>,
    /// Virtual time the run took.
    pub virtual_time: Duration,
    /// The run's trace digest.
    pub digest: u64,
    /// The run's trace events.
    pub events: u64,
}

impl Record {
    /// The failed check's name, if any.
    pub fn failed_check(&self) -> Option<&str> {
        self.failed.as_ref().map(|v| v.check.as_str())
    }
}

/// The plan of `seed`: drawn from its own stream before the run, so it is a pure
/// function of (scenario name, seed).
pub fn plan_for(scenario: &Scenario, system: &System, seed: u64) -> FaultPlan {
    let key =
        sim_runtime::rng::stable_hash(format!("{seed}/chaos.plan/{}", scenario.name).as_bytes());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(key);
    let horizon = Horizon {
        nodes: scenario.nodes,
        aim_at_leader: scenario.aim_at_leader
            && (system.leader.is_some() || system.leader_by_claims),
        leader_churn: scenario.leader_churn,
        recovery_crashes: scenario.recovery_crashes,
        io_crashes: scenario.io_crashes,
        window_ms: scenario.window_ms,
        ops: scenario.ops,
    };
    plan::generate(scenario.faults, horizon, &mut rng)
}

/// Runs `seed` under `plan` on a fresh thread and runtime.
pub fn run(scenario: &Scenario, system: &System, seed: u64, plan: &FaultPlan) -> Record {
    run_traced(scenario, system, seed, plan).0
}

/// [`run`], also returning the run's trace (the events it kept, up to
/// `sim_runtime::trace::DEFAULT_KEEP_LIMIT`): what `--trace` writes and the timeline
/// ([`crate::report::timeline`]) draws.
pub fn run_traced(
    scenario: &Scenario,
    system: &System,
    seed: u64,
    plan: &FaultPlan,
) -> (Record, sim_runtime::trace::Trace) {
    let recorder = Recorder::new(plan.ops);
    let (sc, sys, pl, rec) = (
        scenario.clone(),
        system.clone(),
        plan.clone(),
        recorder.clone(),
    );
    let report = sim_runtime::sim::Sim::new(seed)
        .plugin::<sim_fs::SimFs>()
        .time_limit(scenario.time_limit)
        .run(move || async move { drive::drive(&sc, &sys, &pl, &rec).await });
    if let Err(panic) = &report.output {
        recorder.violation("panic", panic.clone());
    }
    let record = Record {
        scenario: scenario.name.clone(),
        seed,
        plan: plan.clone(),
        failed: recorder.first_violation(),
        history: recorder.history(),
        faults: report.faults.clone(),
        marks: report.marks.clone(),
        mark_first_ns: report.mark_first_ns.clone(),
        virtual_time: report.virtual_time,
        digest: report.trace.digest,
        events: report.trace.count,
    };
    (record, report.trace)
}

/// Runs seeds in order under their drawn plans until one fails; returns the runs made
/// and the failing record, if any.
pub fn sweep(
    scenario: &Scenario,
    system: &System,
    seeds: std::ops::Range<u64>,
) -> (u64, Option<Record>) {
    let mut runs = 0;
    for seed in seeds {
        runs += 1;
        let r = run(scenario, system, seed, &plan_for(scenario, system, seed));
        if r.failed.is_some() {
            return (runs, Some(r));
        }
    }
    (runs, None)
}

/// Shrinks a failing record's plan: candidates rerun its seed, and count only if they
/// fail the same check.
pub fn shrink(
    scenario: &Scenario,
    system: &System,
    failing: Record,
) -> crate::shrink::Shrunk<(), Record> {
    let check = failing.failed_check().map(str::to_string);
    let seed = failing.seed;
    crate::shrink::shrink(
        failing.plan.clone(),
        failing,
        |p| run(scenario, system, seed, p),
        |r| r.failed_check().is_some() && r.failed_check() == check.as_deref(),
    )
}
