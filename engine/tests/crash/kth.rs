//! Crash after the k-th I/O operation, for every k: the systematic counterpart of the
//! timed crashes in `harness.rs`.
//!
//! A short, deterministic workload performs `N` file operations for a given seed —
//! every operation the node issues after its data directory is provisioned, counted by
//! sim-fs's op barrier (`sim_fs::sim::set_op_limit`). The workload has two boots:
//! create the database and let concurrent clients commit multi-key transactions (with
//! deletes, reads and scans) until memtables flush and levels compact; a planned
//! restart in the middle of the commits ([`Restart`]: a process death, which keeps the
//! page cache, or a power loss, which tears and loses what was unsynced); then recovery of that store (manifest,
//! tables, WAL replay, a torn tail cut), the oracle, more commits, and a clean close. One run without a limit learns `N` and crashes after the
//! last operation; then, for each `k` in `1..N`, a fresh run of the same seed freezes
//! the node after exactly its k-th operation, lets every task that can still move
//! without I/O do so (a commit whose fsync was the k-th operation is acknowledged), and
//! cuts power. The crash model decides the fate of everything unsynced: the adversarial
//! default (each write whole, torn or lost, in any order; directory operations lost),
//! except that every fourth `k` loses all of it and every other even one keeps all of
//! it. Then:
//!
//! 1. recovery, from the bytes and from a copy of them (the same state), and the
//!    durability oracle of `world.rs`: every acknowledged commit present, each
//!    indeterminate one all or nothing, no value nobody wrote;
//! 2. the reopened database takes new commits (each client runs a few more
//!    transactions; at least one must commit), and a second power loss follows;
//! 3. recovery and the oracle again: what was committed after the first recovery
//!    survives the second crash.

use sim_runtime::NodeId;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sim_fs::{CrashConfig, FaultConfig, LatencyConfig};
use sim_runtime::node;
use sim_runtime::time::sleep;

use super::harness::{
    client, crash_restart, lock, open, recover_and_check_with, Failure, Phase, Shared, World,
    CLIENTS, DB,
};
use super::world::Client;

/// Transactions each client runs in each of the workload's two boots.
pub const TXNS_PER_WORKLOAD_BOOT: usize = 20;
/// Transactions each client runs after the checked crash's recovery.
pub const TXNS_AFTER_RECOVERY: usize = 2;
/// The workload's planned restart comes once this many commits were acknowledged in
/// its first boot and a WAL append is unsynced, with the clients still committing (or
/// when they are done).
pub const RESTART_AFTER_ACKS: u64 = (CLIENTS * TXNS_PER_WORKLOAD_BOOT * 3 / 4) as u64;

/// Every file operation takes 20–300 µs of virtual time: concurrent commits then queue
/// behind an in-flight fsync and share the next one (group commit).
fn faults(crash: CrashConfig) -> FaultConfig {
    FaultConfig {
        latency: LatencyConfig {
            probability: 1.0,
            min_us: 20,
            max_us: 300,
        },
        crash,
        ..FaultConfig::default()
    }
}

/// The crash model of the power loss after op `k`: mostly the adversarial default
/// (each unsynced write whole, torn or lost, in any order), with both extremes mixed in.
pub fn crash_model(k: u64) -> CrashConfig {
    match k % 4 {
        0 => CrashConfig::lose_all(),
        2 => CrashConfig::keep_all(),
        _ => CrashConfig::default(),
    }
}

/// What one run saw.
#[derive(Debug, Default, Clone)]
pub struct KthOutcome {
    pub violations: Vec<String>,
    /// Ops the node performed after provisioning, before the checked crash.
    pub ops: u64,
    /// Ops of the first workload boot (before its planned restart).
    pub first_boot_ops: u64,
    /// Ops the barrier held (0: the workload finished first).
    pub held: u64,
    /// Whether the whole workload finished before the checked crash.
    pub finished: bool,
    pub recoveries: u64,
    /// Acknowledged commits the oracle checked, summed over the recoveries.
    pub acked_checked: u64,
    /// Commits acknowledged after the checked crash's recovery.
    pub acked_after_recovery: u64,
    /// Whether the checked crash landed during a compaction.
    pub in_compaction: bool,
    /// Whether it landed while the database was being opened (created or recovered).
    pub in_open: bool,
    pub flushes: u64,
    pub compactions: u64,
    /// What the workload's own recovery (after its planned restart) found: records
    /// replayed from the WAL, torn bytes cut.
    pub workload_recovery: Option<(usize, u64)>,
    /// Fault counters of the run (`fs.torn_write`, `fs.lost_write`, ...).
    pub faults: std::collections::BTreeMap<String, u64>,
}

/// What the node does when it boots; the supervisor sets it before each (re)start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    /// The workload, first half: provision, create the database, commit.
    #[default]
    Create,
    /// The workload, second half (after the planned restart): recover, check the
    /// oracle, commit, close.
    Reopen,
    /// After the checked crash: recover (twice, from the same bytes), check, commit.
    CheckAndCommit,
    /// After the last crash: recover, check.
    Check,
}

/// The node's progress, shared with the supervisor beside the oracle's [`World`].
#[derive(Default)]
struct Boots {
    stage: Stage,
    /// The last stage whose work is done.
    finished: Option<Stage>,
    /// `ops_performed` once the data directory was provisioned.
    base: u64,
    flushes: u64,
    compactions: u64,
    acked_checked: u64,
    workload_recovery: Option<(usize, u64)>,
}

type SharedBoots = Arc<Mutex<Boots>>;

fn boots(b: &SharedBoots) -> std::sync::MutexGuard<'_, Boots> {
    sim_runtime::sync::lock(b)
}

/// The workload's planned restart between its two boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Process death: the page cache, with whatever is unsynced, survives.
    Kill,
    /// Power loss under the adversarial crash model: the second boot recovers from torn
    /// and lost writes, so the sweep crashes that recovery at every step too. (A canary
    /// that loses acknowledged commits fails the workload itself then.)
    PowerLoss,
}

/// Runs `seed` with the node frozen after its `k`-th op (`None`: no limit, the whole
/// workload), then the crashes and checks above.
pub fn run_kth(
    seed: u64,
    k: Option<u64>,
    restart: Restart,
    canary: Option<engine::canary::Canary>,
) -> KthOutcome {
    let report = sim_runtime::sim::Sim::new(seed)
        .plugin::<sim_fs::SimFs>()
        .time_limit(Duration::from_secs(600))
        .run(move || supervise(k, restart, canary));
    match report.output {
        Ok(mut out) => {
            out.faults = report.faults;
            out
        }
        Err(panic) => KthOutcome {
            violations: vec![format!("the run panicked: {panic}")],
            ..KthOutcome::default()
        },
    }
}

/// Parks the node for good after a violation (the supervisor sees `stop`).
async fn fail(world: &Shared, v: String) {
    lock(world).violation(v);
    std::future::pending::<()>().await;
}

async fn node_main(world: Shared, b: SharedBoots, k: Option<u64>) {
    let stage = boots(&b).stage;
    lock(&world).phase = Some(Phase::Recovering);
    let me = sim_runtime::task::current_node_id();
    if stage == Stage::Create {
        let provisioned = async {
            sim_fs::create_dir_all(DB).await?;
            sim_fs::sync_dir("/").await
        }
        .await;
        if let Err(e) = provisioned {
            return fail(&world, format!("provisioning {DB}: {e}")).await;
        }
        boots(&b).base = sim_fs::sim::ops_performed(me);
        lock(&world).clients = (0..CLIENTS).map(|_| Client::default()).collect();
    }
    // The workload's boots count against the limit (the planned restart between them
    // cleared it; the count goes on).
    if let (Some(k), Stage::Create | Stage::Reopen) = (k, stage) {
        let base = boots(&b).base;
        sim_fs::sim::set_op_limit(me, Some(base + k));
    }
    let acked = lock(&world).acked;
    let db = if stage == Stage::Create {
        match open(DB, &world).await {
            Ok(db) => db,
            Err(e) => return fail(&world, format!("creating the database failed: {e}")).await,
        }
    } else {
        if let Err(f) = recover_and_check_with(&world, stage != Stage::Reopen).await {
            let v = match f {
                Failure::Violation(v) => v,
                Failure::Poisoned => "failed fail-stop with no fault injected".into(),
            };
            return fail(&world, format!("recovery ({stage:?}): {v}")).await;
        }
        let db = lock(&world).db.clone().expect("recovered");
        let mut b = boots(&b);
        b.acked_checked += acked;
        if stage == Stage::Reopen {
            b.workload_recovery = Some((db.recovery().replayed, db.recovery().cut_bytes));
        }
        db
    };
    if stage == Stage::Check {
        boots(&b).finished = Some(stage);
        return std::future::pending().await;
    }
    {
        let mut w = lock(&world);
        w.db = Some(db.clone());
        w.phase = Some(Phase::Running);
        w.txn_budget = Some(if stage == Stage::CheckAndCommit {
            TXNS_AFTER_RECOVERY
        } else {
            TXNS_PER_WORKLOAD_BOOT
        });
    }
    let acked = lock(&world).acked;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| sim_runtime::task::spawn_named("kth.client", client(world.clone(), db.clone(), c)))
        .collect();
    for c in clients {
        let _ = c.await;
    }
    let (poisoned, committed) = {
        let w = lock(&world);
        (w.poisoned, w.acked > acked)
    };
    if poisoned {
        return fail(
            &world,
            format!("a fail-stop error ({stage:?}) with no fault injected"),
        )
        .await;
    }
    if stage == Stage::CheckAndCommit && !committed {
        return fail(&world, "the recovered database committed nothing".into()).await;
    }
    if stage != Stage::CheckAndCommit {
        // (The first boot's background work may still be running: its counts are a
        // lower bound.)
        let stats = db.stats().lsm;
        let mut b = boots(&b);
        b.flushes += stats.flushes;
        b.compactions += stats.compactions;
    }
    if stage == Stage::Reopen {
        if let Err(e) = db.close().await {
            return fail(&world, format!("close failed: {e}")).await;
        }
    }
    boots(&b).finished = Some(stage);
    std::future::pending::<()>().await;
}

async fn supervise(
    k: Option<u64>,
    restart: Restart,
    canary: Option<engine::canary::Canary>,
) -> KthOutcome {
    #[cfg(feature = "canary")]
    if let Some(c) = canary {
        engine::canary::enable(c);
    }
    #[cfg(not(feature = "canary"))]
    assert!(canary.is_none(), "canaries need --features canary");
    sim_fs::sim::set_fault_config(faults(CrashConfig::default()));
    let world: Shared = Arc::new(Mutex::new(World::default()));
    let b: SharedBoots = Arc::default();
    let (w, bb) = (world.clone(), b.clone());
    let node = node::build("db")
        .ip("10.0.0.1".parse().expect("an address"))
        .init(move || node_main(w.clone(), bb.clone(), k))
        .create();
    let id = node.number();
    let mut out = KthOutcome::default();

    // The workload: until it is done or the node froze at the barrier. The supervisor
    // polls the same way in every run, so a limited run is the unlimited one up to its
    // k-th op.
    let mut frozen = false;
    for stage in [Stage::Create, Stage::Reopen] {
        if stage == Stage::Reopen {
            // The planned restart between the workload's two boots.
            out.first_boot_ops = sim_fs::sim::ops_performed(id) - boots(&b).base;
            boots(&b).stage = stage;
            match restart {
                Restart::Kill => {
                    {
                        let mut w = lock(&world);
                        w.db = None;
                        w.phase = Some(Phase::Down);
                    }
                    node.kill();
                    node.restart();
                }
                Restart::PowerLoss => crash_restart(&world, &node, true),
            }
        }
        let mut polls = 0;
        let restart_now = || {
            stage == Stage::Create && lock(&world).acked >= RESTART_AFTER_ACKS && unsynced_wal(id)
        };
        while boots(&b).finished != Some(stage) && !lock(&world).stop && !restart_now() {
            sleep(Duration::from_millis(1)).await;
            polls += 1;
            if sim_fs::sim::ops_held(id) > 0 {
                settle(&world, id).await;
                frozen = true;
                break;
            }
            if polls > 100_000 {
                lock(&world).violation(format!("{stage:?} neither finished nor froze"));
            }
        }
        if frozen || lock(&world).stop {
            break;
        }
    }
    out.ops = sim_fs::sim::ops_performed(id) - boots(&b).base;
    out.held = sim_fs::sim::ops_held(id);
    out.finished = boots(&b).finished == Some(Stage::Reopen);
    {
        let w = lock(&world);
        out.in_compaction = w.db.as_ref().is_some_and(|d| d.stats().lsm.compacting);
        out.in_open = frozen && w.phase == Some(Phase::Recovering);
    }

    // The checked power loss, recovery, new commits; the last power loss, recovery.
    for stage in [Stage::CheckAndCommit, Stage::Check] {
        if lock(&world).stop {
            break;
        }
        let model = if stage == Stage::CheckAndCommit {
            crash_model(k.unwrap_or(out.ops))
        } else {
            CrashConfig::default()
        };
        sim_fs::sim::set_node_fault_config(id, faults(model));
        let acked = lock(&world).acked;
        boots(&b).stage = stage;
        crash_restart(&world, &node, true);
        let mut polls = 0;
        while boots(&b).finished != Some(stage) && !lock(&world).stop {
            sleep(Duration::from_millis(1)).await;
            polls += 1;
            if polls > 100_000 {
                lock(&world).violation(format!("{stage:?} never finished"));
            }
        }
        if stage == Stage::CheckAndCommit {
            out.acked_after_recovery = lock(&world).acked - acked;
        }
    }
    let w = lock(&world);
    let b = boots(&b);
    out.violations = w.violations.clone();
    out.recoveries = w.recoveries;
    out.acked_checked = b.acked_checked;
    out.flushes = b.flushes;
    out.compactions = b.compactions;
    out.workload_recovery = b.workload_recovery;
    out
}

/// Whether a WAL segment of `node` has unsynced writes.
fn unsynced_wal(node: NodeId) -> bool {
    sim_fs::sim::durable_paths(node).iter().any(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("wal-"))
            && sim_fs::sim::pending_data_ops(node, p).is_some_and(|n| n > 0)
    })
}

/// Lets the frozen node settle: every task that can still move without I/O (a commit
/// whose fsync completed being acknowledged, a client starting its next transaction)
/// does, until nothing changes for 10 ms of virtual time.
async fn settle(world: &Shared, id: u64) {
    let progress = || {
        let w = lock(world);
        let txns: usize = w.clients.iter().map(|c| c.txns.len()).sum();
        (w.acked, w.rejected, txns, sim_fs::sim::ops_held(id))
    };
    let mut last = progress();
    let mut quiet = 0;
    for _ in 0..10_000 {
        sleep(Duration::from_millis(1)).await;
        let now = progress();
        if now == last {
            quiet += 1;
            if quiet >= 10 {
                return;
            }
        } else {
            (last, quiet) = (now, 0);
        }
    }
}

/// What a sweep of one seed did.
pub struct Sweep {
    /// Ops of the whole workload.
    pub n: u64,
    /// Ops of the workload's first boot.
    pub first_boot_ops: u64,
    /// Crash points run and passed (the unlimited run counts as the one after op `n`).
    pub points: u64,
    pub recoveries: u64,
    pub acked_checked: u64,
    pub acked_after_recovery: u64,
    /// Crash points that landed during a compaction.
    pub in_compaction: u64,
    /// Crash points that landed while the database was being created or recovered.
    pub in_open: u64,
    pub flushes: u64,
    pub compactions: u64,
    /// What the workload's own recovery found (replayed records, torn bytes cut).
    pub workload_recovery: (usize, u64),
    /// Fault counters summed over the runs.
    pub faults: std::collections::BTreeMap<String, u64>,
    /// Crash points whose checks failed, with the first violation of each.
    pub failed: Vec<(u64, String)>,
    /// The first violation, with the `k` that reproduces it.
    pub failure: Option<(u64, String)>,
}

/// The sweep of one seed: the unlimited run (the crash point after op `N`), then every
/// `k` in `1..N`. Stops at the first violation unless `all`.
pub fn sweep(
    seed: u64,
    restart: Restart,
    all: bool,
    canary: Option<engine::canary::Canary>,
) -> Sweep {
    let full = run_kth(seed, None, restart, canary);
    assert!(
        full.finished,
        "the unlimited run did not finish its workload"
    );
    let n = full.ops;
    let mut s = Sweep {
        n,
        first_boot_ops: full.first_boot_ops,
        points: 0,
        recoveries: 0,
        acked_checked: 0,
        acked_after_recovery: 0,
        in_compaction: 0,
        in_open: 0,
        flushes: full.flushes,
        compactions: full.compactions,
        workload_recovery: full.workload_recovery.unwrap_or_default(),
        faults: std::collections::BTreeMap::new(),
        failed: Vec::new(),
        failure: None,
    };
    s.add(n, &full);
    for k in 1..n {
        if s.failure.is_some() && !all {
            break;
        }
        let out = run_kth(seed, Some(k), restart, canary);
        if out.violations.is_empty() {
            // The barrier must have fired exactly at k, every time: a sweep that
            // silently crashed nowhere (or elsewhere) would prove nothing.
            let first_boot = if k >= full.first_boot_ops {
                full.first_boot_ops
            } else {
                0
            };
            assert_eq!(
                (out.ops, out.finished, out.first_boot_ops),
                (k, false, first_boot),
                "seed {seed}, k={k}: the node did not stop after exactly k ops of the same run"
            );
            assert!(out.held > 0, "seed {seed}, k={k}: the barrier never fired");
        }
        s.add(k, &out);
    }
    s
}

impl Sweep {
    fn add(&mut self, k: u64, out: &KthOutcome) {
        if let Some(v) = out.violations.first() {
            self.failed.push((k, v.clone()));
            if self.failure.is_none() {
                self.failure = Some((k, v.clone()));
            }
            return;
        }
        self.points += 1;
        self.recoveries += out.recoveries;
        self.acked_checked += out.acked_checked;
        self.acked_after_recovery += out.acked_after_recovery;
        self.in_compaction += u64::from(out.in_compaction);
        self.in_open += u64::from(out.in_open);
        for (kind, count) in &out.faults {
            *self.faults.entry(kind.clone()).or_default() += count;
        }
    }

    /// One line: what the sweep did.
    pub fn summary(&self, seed: u64) -> String {
        let f = |kind: &str| self.faults.get(kind).copied().unwrap_or(0);
        format!(
            "kth: seed {seed}: N={} ops ({} in the first boot), {} crash points ({} during a \
             compaction, {} while opening or recovering), {} recoveries checked, {} acked commits \
             checked, {} committed after a recovery; the workload flushed {} times and compacted {} \
             times, and its own recovery replayed {} records and cut {} torn bytes; the power \
             losses tore {} writes, lost {} writes and {} directory operations",
            self.n,
            self.first_boot_ops,
            self.points,
            self.in_compaction,
            self.in_open,
            self.recoveries,
            self.acked_checked,
            self.acked_after_recovery,
            self.flushes,
            self.compactions,
            self.workload_recovery.0,
            self.workload_recovery.1,
            f("fs.torn_write"),
            f("fs.lost_write"),
            f("fs.lost_dir_op"),
        )
    }
}
