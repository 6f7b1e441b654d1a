//! The crash harness: a database on a simulated node, a workload of concurrent clients,
//! a supervisor that crashes (power loss) and restarts the node, and after every
//! recovery the durability oracle ([`super::world`]) plus recovery idempotence (the
//! same bytes, copied before the first recovery touches them, recover to the same state).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{CommitOutcome, Db, Error, Options};
use rand::Rng;
use sim_fs::FaultConfig;
use sim_runtime::node;
use sim_runtime::time::sleep;

use super::world::{check_read, key, value, Client, Kv, Status, TxnLog};

pub const DB: &str = "/db";
const COPY: &str = "/copy";
pub const CLIENTS: usize = 4;
pub const KEYS_PER_CLIENT: usize = 5;

/// When the supervisor pulls the plug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// After a random delay.
    Random,
    /// While a compaction is running (or after a timeout).
    DuringCompaction,
    /// Soon after a restart, often while recovery is still running.
    DuringRecovery,
    /// Within a few ms after recovery finished: the first commits after a recovery.
    AfterRecovery,
}

/// One seed's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub crashes: usize,
    pub triggers: Vec<Trigger>,
    pub faults: FaultConfig,
    pub canary: Option<engine::canary::Canary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Down,
    Recovering,
    Running,
}

/// What the supervisor and the node share.
#[derive(Default)]
pub struct World {
    pub clients: Vec<Client>,
    pub phase: Option<Phase>,
    pub db: Option<Db>,
    /// A Db call failed fail-stop: restart the node.
    pub poisoned: bool,
    pub stop: bool,
    /// Each client stops after this many transactions per boot (`None`: runs until
    /// stopped).
    pub txn_budget: Option<usize>,
    pub recoveries: u64,
    pub violations: Vec<String>,
    pub acked: u64,
    pub rejected: u64,
    pub crashes_in_compaction: u64,
    pub crashes_in_recovery: u64,
    pub poison_restarts: u64,
    pub open_retries: u64,
}

pub type Shared = Arc<Mutex<World>>;

pub use sim_runtime::sync::lock;

impl World {
    pub fn violation(&mut self, v: String) {
        if self.violations.len() < 10 {
            self.violations.push(v);
        }
        self.stop = true;
    }
}

fn opts() -> Options {
    Options {
        memtable_bytes: 4096,
        ..Options::tiny()
    }
}

/// Opens `path`, retrying I/O errors (injected EIO); corruption is final.
pub async fn open(path: &str, world: &Shared) -> Result<Db, Error> {
    loop {
        match Db::open(path, opts()).await {
            Ok(db) => return Ok(db),
            Err(e) if e.is_corruption() => return Err(e),
            Err(e) => {
                tracing::info!(error = %e, "open failed; retrying");
                lock(world).open_retries += 1;
                sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// The whole state at the newest snapshot, retrying I/O errors.
async fn read_all(db: &Db) -> Result<Kv, Error> {
    for _ in 0..20 {
        match db.begin().scan(..).await {
            Ok(rows) => return Ok(rows.into_iter().collect()),
            Err(e) if e.is_corruption() || e.is_fail_stop() => return Err(e),
            Err(_) => sleep(Duration::from_millis(1)).await,
        }
    }
    db.begin().scan(..).await.map(|r| r.into_iter().collect())
}

/// The node's init task: recover, check, then run the workload until stopped.
pub async fn node_main(world: Shared) {
    let first_boot = lock(&world).phase.is_none();
    lock(&world).phase = Some(Phase::Recovering);
    if first_boot {
        // Provisioned before the first start, with no faults: a failed sync of the
        // parent while the engine creates the directory is a known limitation (D16).
        let node = sim_runtime::task::current_node_id();
        sim_fs::sim::set_node_fault_config(node, FaultConfig::default());
        let made = async {
            sim_fs::create_dir_all(DB).await?;
            sim_fs::sync_dir("/").await
        }
        .await;
        sim_fs::sim::clear_node_fault_config(node);
        if let Err(e) = made {
            lock(&world).violation(format!("provisioning {DB}: {e}"));
            return std::future::pending().await;
        }
    }
    if let Err(failure) = recover_and_check(&world).await {
        {
            let mut w = lock(&world);
            match failure {
                Failure::Violation(v) => w.violation(v),
                // A fail-stop error (an injected EIO in a background flush): the
                // supervisor restarts the node.
                Failure::Poisoned => w.poisoned = true,
            }
        }
        std::future::pending::<()>().await;
    }
    let db = lock(&world).db.clone().expect("opened");
    lock(&world).phase = Some(Phase::Running);
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(sim_runtime::task::spawn_named(
            "crash.client",
            client(world.clone(), db.clone(), c),
        ));
    }
    for c in clients {
        let _ = c.await;
    }
    std::future::pending::<()>().await;
}

/// Why a recovery check did not pass.
pub enum Failure {
    Violation(String),
    Poisoned,
}

impl From<String> for Failure {
    fn from(v: String) -> Failure {
        Failure::Violation(v)
    }
}

fn failure(what: &str, e: Error) -> Failure {
    if e.is_fail_stop() {
        Failure::Poisoned
    } else {
        Failure::Violation(format!("{what} failed: {e}"))
    }
}

/// Recovers the database (and a copy of its bytes, which must recover to the same
/// state), checks the oracle, and leaves the open database in `world.db`.
pub async fn recover_and_check(world: &Shared) -> Result<(), Failure> {
    recover_and_check_with(world, true).await
}

/// [`recover_and_check`], with or without the idempotence check (recovering a copy).
pub async fn recover_and_check_with(world: &Shared, idempotence: bool) -> Result<(), Failure> {
    // Copy the bytes before recovery touches them; recover both; same state.
    if idempotence {
        while let Err(e) = sim_fs::copy_dir_durably(Path::new(DB), Path::new(COPY)).await {
            tracing::info!(error = %e, "copy failed; retrying");
            sleep(Duration::from_millis(1)).await;
        }
    }
    let db = open(DB, world).await.map_err(|e| failure("recovery", e))?;
    let state = read_all(&db)
        .await
        .map_err(|e| failure("reading the recovered state", e))?;
    if idempotence {
        let copy = open(COPY, world)
            .await
            .map_err(|e| failure("recovery of the copy", e))?;
        let copy_state = read_all(&copy)
            .await
            .map_err(|e| failure("reading the copy", e))?;
        let _ = copy.close().await;
        if copy_state != state {
            return Err(Failure::Violation(format!(
                "recovery is not idempotent: {} keys vs {} from the same bytes",
                state.len(),
                copy_state.len()
            )));
        }
    }
    db.verify_invariants()?;
    let mut w = lock(world);
    let w = &mut *w;
    if w.clients.is_empty() {
        w.clients = (0..CLIENTS).map(|_| Client::default()).collect();
    }
    for (c, client) in w.clients.iter_mut().enumerate() {
        for t in &mut client.txns {
            if t.status == Status::InFlight {
                t.status = Status::Unknown;
            }
        }
        let mine: Kv = state
            .iter()
            .filter(|(k, _)| k.starts_with(format!("c{c}k").as_bytes()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        client.check(c, &mine)?;
    }
    let known = state
        .keys()
        .filter(|k| (0..CLIENTS).any(|c| k.starts_with(format!("c{c}k").as_bytes())))
        .count();
    if known != state.len() {
        return Err(Failure::Violation(format!(
            "{} keys nobody wrote",
            state.len() - known
        )));
    }
    w.recoveries += 1;
    w.db = Some(db);
    Ok(())
}

/// One client: transactions over its own keys, with reads of everyone's.
pub async fn client(world: Shared, db: Db, c: usize) {
    let mut rng = sim_runtime::rng::stream(format!("crash.client{c}"));
    let mut ran = 0;
    loop {
        let seq = {
            let w = lock(&world);
            if w.stop || w.txn_budget.is_some_and(|b| ran >= b) {
                return;
            }
            ran += 1;
            w.clients[c].txns.len() as u64 + 1
        };
        let mut writes = BTreeMap::new();
        for _ in 0..rng.gen_range(1..=3) {
            let k = rng.gen_range(0..KEYS_PER_CLIENT);
            writes.insert(key(c, k), (!rng.gen_bool(0.2)).then(|| value(c, seq, k)));
        }
        let reads: Vec<Vec<u8>> = (0..rng.gen_range(0..3))
            .map(|_| key(rng.gen_range(0..CLIENTS), rng.gen_range(0..KEYS_PER_CLIENT)))
            .collect();
        let scan = rng.gen_bool(0.2);
        lock(&world).clients[c].txns.push(TxnLog {
            seq,
            writes: writes.clone(),
            status: Status::InFlight,
            resolved: None,
        });
        let status = run_txn(&world, &db, &writes, &reads, scan).await;
        if !record(&world, c, status) {
            return;
        }
        sleep(Duration::from_micros(rng.gen_range(0..300))).await;
    }
}

/// Records how a transaction ended; false if the client must stop.
fn record(world: &Shared, c: usize, status: Result<Status, Error>) -> bool {
    let mut w = lock(world);
    match status {
        Ok(s) => {
            if s == Status::Acked {
                w.acked += 1;
            } else {
                w.rejected += 1;
            }
            w.clients[c].txns.last_mut().expect("pushed").status = s;
            true
        }
        Err(e) => {
            w.clients[c].txns.last_mut().expect("pushed").status = Status::Unknown;
            if e.is_fail_stop() {
                w.poisoned = true;
                return false;
            }
            if e.is_corruption() {
                w.violation(format!("corruption during the workload: {e}"));
                return false;
            }
            true
        }
    }
}

fn check_value(world: &Shared, k: &[u8], v: &[u8]) {
    let mut w = lock(world);
    if let Err(e) = check_read(&w.clients, k, v) {
        w.violation(e);
    }
}

/// Runs one transaction: `Ok(Acked | Rejected)`, or the commit error (indeterminate).
async fn run_txn(
    world: &Shared,
    db: &Db,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    reads: &[Vec<u8>],
    scan: bool,
) -> Result<Status, Error> {
    let mut t = db.begin();
    let before_commit = async {
        for k in reads {
            if let Some(v) = t.get(k).await? {
                check_value(world, k, &v);
            }
        }
        if scan {
            for (k, v) in t.scan(b"c0".to_vec()..b"c9".to_vec()).await? {
                check_value(world, &k, &v);
            }
        }
        for (k, v) in writes {
            match v {
                Some(v) => t.put(k.clone(), v.clone()).await?,
                None => t.delete(k.clone()).await?,
            }
        }
        Ok::<(), Error>(())
    };
    if let Err(e) = before_commit.await {
        let _ = t.rollback().await;
        // Nothing was committed; a fail-stop error still means: restart.
        return if e.is_fail_stop() || e.is_corruption() {
            Err(e)
        } else {
            Ok(Status::Rejected)
        };
    }
    match t.commit().await {
        Ok(CommitOutcome::Committed { .. }) => Ok(Status::Acked),
        Ok(CommitOutcome::Aborted(_)) => Ok(Status::Rejected),
        Err(e) => Err(e),
    }
}

/// The outcome of one seed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub violations: Vec<String>,
    pub recoveries: u64,
    pub acked: u64,
    pub rejected: u64,
    pub crashes_in_compaction: u64,
    pub crashes_in_recovery: u64,
    pub poison_restarts: u64,
    pub faults: BTreeMap<String, u64>,
}

/// Runs one seed of `plan`.
pub fn run_seed(seed: u64, plan: Plan) -> Outcome {
    let report = sim_runtime::sim::Sim::new(seed)
        .plugin::<sim_fs::SimFs>()
        .time_limit(Duration::from_secs(3600))
        .run(move || supervise(plan));
    match report.output {
        Ok(mut out) => {
            out.faults = report.faults;
            out
        }
        Err(panic) => Outcome {
            violations: vec![format!("the run panicked: {panic}")],
            ..Outcome::default()
        },
    }
}

async fn supervise(plan: Plan) -> Outcome {
    #[cfg(feature = "canary")]
    if let Some(c) = plan.canary {
        engine::canary::enable(c);
    }
    #[cfg(not(feature = "canary"))]
    assert!(plan.canary.is_none(), "canaries need --features canary");
    sim_fs::sim::set_fault_config(plan.faults.clone());
    let world: Shared = Arc::new(Mutex::new(World::default()));
    let w = world.clone();
    let node = node::build("db")
        .ip("10.0.0.1".parse().expect("an address"))
        .init(move || node_main(w.clone()))
        .create();
    let mut rng = sim_runtime::rng::stream("crash.supervisor");
    for i in 0..plan.crashes {
        let trigger = plan.triggers[i % plan.triggers.len()];
        wait_for(&world, &node, &mut rng, trigger).await;
        if lock(&world).stop {
            break;
        }
        crash_restart(&world, &node, true);
    }
    // The last recovery must finish and pass, and the workload run on a little.
    wait_running(&world, &node).await;
    sleep(Duration::from_millis(5)).await;
    let mut w = lock(&world);
    if w.phase != Some(Phase::Running) && w.violations.is_empty() {
        let phase = w.phase;
        w.violations
            .push(format!("the node never came back up (phase {phase:?})"));
    }
    w.stop = true;
    Outcome {
        violations: w.violations.clone(),
        recoveries: w.recoveries,
        acked: w.acked,
        rejected: w.rejected,
        crashes_in_compaction: w.crashes_in_compaction,
        crashes_in_recovery: w.crashes_in_recovery,
        poison_restarts: w.poison_restarts,
        faults: BTreeMap::new(),
    }
}

/// Power loss and restart. A planned crash is counted where it landed; a restart after
/// a fail-stop error is not a planned crash.
pub fn crash_restart(world: &Shared, node: &node::Node, planned: bool) {
    {
        let mut w = lock(world);
        if planned {
            let compacting = w.db.as_ref().is_some_and(|d| d.stats().lsm.compacting);
            w.crashes_in_compaction += u64::from(compacting);
            w.crashes_in_recovery += u64::from(w.phase == Some(Phase::Recovering));
        } else {
            w.poison_restarts += 1;
        }
        w.db = None;
        w.poisoned = false;
        w.phase = Some(Phase::Down);
    }
    node.crash();
    node.restart();
}

/// Restarts the node if a fail-stop error poisoned it; true if it did.
fn restart_if_poisoned(world: &Shared, node: &node::Node) -> bool {
    let poisoned = lock(world).poisoned;
    if poisoned {
        crash_restart(world, node, false);
    }
    poisoned
}

/// Waits until the node is up and running (restarting it after fail-stop errors).
async fn wait_running(world: &Shared, node: &node::Node) {
    for _ in 0..20_000 {
        restart_if_poisoned(world, node);
        {
            let w = lock(world);
            if w.stop || w.phase == Some(Phase::Running) {
                return;
            }
        }
        sleep(Duration::from_millis(1)).await;
    }
}

fn compacting(world: &Shared) -> bool {
    let w = lock(world);
    w.db.as_ref().is_some_and(|d| d.stats().lsm.compacting)
}

async fn wait_for(world: &Shared, node: &node::Node, rng: &mut impl Rng, trigger: Trigger) {
    match trigger {
        Trigger::Random | Trigger::AfterRecovery => {
            // Up and running first (recovery takes tens of ms of virtual time), then a
            // random point of the workload.
            wait_running(world, node).await;
            let max = if trigger == Trigger::Random {
                80_000
            } else {
                8_000
            };
            let until = Duration::from_micros(rng.gen_range(1_000..max));
            let mut waited = Duration::ZERO;
            while waited < until {
                if restart_if_poisoned(world, node) {
                    return;
                }
                sleep(Duration::from_micros(500)).await;
                waited += Duration::from_micros(500);
            }
        }
        Trigger::DuringCompaction => {
            for _ in 0..20_000 {
                if restart_if_poisoned(world, node) {
                    return;
                }
                if compacting(world) {
                    break;
                }
                sleep(Duration::from_micros(50)).await;
            }
            // Anywhere in the compaction (which takes tens of ms of virtual time).
            sleep(Duration::from_micros(rng.gen_range(0..40_000))).await;
        }
        Trigger::DuringRecovery => {
            sleep(Duration::from_micros(rng.gen_range(0..100_000))).await;
        }
    }
}
