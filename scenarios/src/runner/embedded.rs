//! The embedded topology: one simulated node runs the engine and the clients (which
//! die with it). After every boot the node copies its disk, recovers both copies and
//! compares them (recovery idempotence), checks the recovered state against the
//! workload's invariant and the durability oracle, then serves the clients again.

use super::plan::{Fault, FaultPlan};
use super::store::Store;
use super::world::{lock, Phase, Shared};
use crate::workload::{KeyChooser, State};
use engine::{Db, Options};
use sim_runtime::node::{self, Node};
use sim_runtime::time::{self, sleep, Duration};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const DATA: &str = "/data";
const COPY: &str = "/recovery-copy";
const IP: &str = "10.0.0.1";

fn options() -> Options {
    // Small memtables and levels, so flushes and compactions happen within a run.
    Options {
        memtable_bytes: 4096,
        ..Options::tiny()
    }
}

/// Why a boot did not reach `Running`.
enum BootError {
    /// A fail-stop error (an injected fsync/write EIO): restart the node.
    FailStop,
    /// A check failed (recorded already).
    Violated,
}

async fn open(path: &str, opts: &Options) -> Result<Db, engine::Error> {
    let mut last = None;
    for _ in 0..50 {
        match Db::open(path, opts.clone()).await {
            Ok(db) => return Ok(db),
            Err(e) if e.is_corruption() => return Err(e),
            Err(e) => {
                last = Some(e);
                sleep(Duration::from_millis(1)).await;
            }
        }
    }
    Err(last.unwrap_or(engine::Error::Closed))
}

async fn read_all(db: &Db) -> Result<State, engine::Error> {
    let mut last = None;
    for _ in 0..50 {
        match db.begin().scan(..).await {
            Ok(rows) => return Ok(crate::workload::state_of(rows)),
            Err(e) if e.is_corruption() || e.is_fail_stop() => return Err(e),
            Err(e) => {
                last = Some(e);
                sleep(Duration::from_millis(1)).await;
            }
        }
    }
    Err(last.unwrap_or(engine::Error::Closed))
}

fn failed(world: &Shared, what: &str, e: engine::Error) -> BootError {
    if e.is_fail_stop() {
        return BootError::FailStop;
    }
    let mut w = lock(world);
    let message = format!("{what}: {e}");
    if !(e.is_corruption() && w.corruption_refused(&message)) {
        w.violation("recovery", message);
    }
    BootError::Violated
}

/// Recovers twice from the same bytes, checks the state, loads the initial rows.
async fn boot(world: &Shared) -> Result<Db, BootError> {
    let mut tries = 0;
    while let Err(e) = sim_fs::copy_dir_durably(Path::new(DATA), Path::new(COPY)).await {
        tries += 1;
        if tries > 50 {
            return Err(failed(
                world,
                "copying the disk before recovery",
                engine::Error::Poisoned(e.to_string()),
            ));
        }
        sleep(Duration::from_millis(1)).await;
    }
    let opts = lock(world).tuning.engine_options(options());
    let db = open(DATA, &opts)
        .await
        .map_err(|e| failed(world, "recovery", e))?;
    let state = read_all(&db)
        .await
        .map_err(|e| failed(world, "reading the recovered state", e))?;
    let copy = open(COPY, &opts)
        .await
        .map_err(|e| failed(world, "recovery of a copy of the same bytes", e))?;
    let copy_state = read_all(&copy)
        .await
        .map_err(|e| failed(world, "reading the copy", e))?;
    let _ = copy.close().await;
    {
        let mut w = lock(world);
        if copy_state != state {
            w.violation(
                "recovery-idempotence",
                format!(
                    "the same bytes recovered to two states: {} keys vs {} keys",
                    state.len(),
                    copy_state.len()
                ),
            );
            return Err(BootError::Violated);
        }
        if let Err(e) = db.verify_invariants() {
            w.violation(
                "invariant",
                format!("engine invariants after recovery: {e}"),
            );
            return Err(BootError::Violated);
        }
        let when = format!("after recovery {}", w.recoveries + 1);
        w.check_state(&state, &when);
        w.recoveries += 1;
        if w.stop {
            return Err(BootError::Violated);
        }
    }
    let (initial, loaded) = {
        let w = lock(world);
        (w.workload.initial(), w.initial_loaded)
    };
    // Loaded once: after an acknowledged load, rows that vanished are a violation
    // (check_state above), never loaded again over the loss.
    if !loaded && !initial.is_empty() && initial.iter().all(|(k, _)| !state.contains_key(k)) {
        load(world, &db, &initial).await?;
    }
    Ok(db)
}

/// Loads the workload's initial rows in one transaction.
async fn load(world: &Shared, db: &Db, rows: &[(String, String)]) -> Result<(), BootError> {
    for _ in 0..50 {
        let mut t = db.begin();
        let mut ok = true;
        for (k, v) in rows {
            if let Err(e) = t.put(k.as_bytes().to_vec(), v.as_bytes().to_vec()).await {
                if e.is_fail_stop() {
                    return Err(BootError::FailStop);
                }
                ok = false;
                break;
            }
        }
        if ok {
            match t.commit().await {
                Ok(engine::CommitOutcome::Committed { .. }) => {
                    lock(world).initial_loaded = true;
                    return Ok(());
                }
                Ok(engine::CommitOutcome::Aborted(_)) => {}
                Err(e) if e.is_fail_stop() => return Err(BootError::FailStop),
                Err(_) => {}
            }
        }
        sleep(Duration::from_millis(1)).await;
    }
    Err(failed(
        world,
        "loading the initial rows",
        engine::Error::Closed,
    ))
}

/// The node's init task.
async fn node_main(world: Shared, keys: KeyChooser, clients: usize) {
    let boot_no = {
        let mut w = lock(&world);
        w.boots += 1;
        w.phase = Phase::Recovering;
        w.boots
    };
    if boot_no == 1 {
        if let Err(e) = chaos::runner::provision(DATA).await {
            lock(&world).violation("runner", format!("provisioning {DATA} failed: {e}"));
            return std::future::pending().await;
        }
    }
    let db = match boot(&world).await {
        Ok(db) => db,
        Err(BootError::FailStop) => {
            lock(&world).poisoned = true;
            return std::future::pending().await;
        }
        Err(BootError::Violated) => return std::future::pending().await,
    };
    {
        let mut w = lock(&world);
        w.db = Some(db.clone());
        w.phase = Phase::Running;
    }
    let store = Store::Embedded(db);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let name = format!("scenario.client{c}.boot{boot_no}");
        tasks.push(sim_runtime::task::spawn_named(
            "client",
            super::client::run(world.clone(), store.clone(), keys.clone(), name),
        ));
    }
    for t in tasks {
        let _ = t.await;
    }
    std::future::pending::<()>().await
}

/// Why the runner takes the node down; each is counted apart, so the plan's faults
/// (`node.crash`, `node.kill`) count exactly what the plan asked for.
#[derive(Debug, Clone, Copy)]
enum TakeDown {
    /// A planned power loss (`node.crash`) or process death (`node.kill`).
    Planned { power_loss: bool },
    /// The engine fail-stopped; its supervisor restarts the process
    /// (`runner.fail_stop_restart`).
    FailStop,
    /// The power loss after the workload, before the final recovery check
    /// (`runner.final_power_loss`).
    Final,
}

/// Takes the node down (a restart follows).
fn take_down(world: &Shared, node: &Node, why: TakeDown) {
    lock(world).crashed();
    match why {
        TakeDown::Planned { power_loss: true } => node.crash(),
        TakeDown::Planned { power_loss: false } => node.kill(),
        TakeDown::FailStop => node.kill_counted_as(super::FAIL_STOP_RESTART),
        TakeDown::Final => node.crash_counted_as(super::FINAL_POWER_LOSS),
    }
}

/// Runs the scenario's clients on one node under `plan`; returns when the budget is
/// spent (or a check failed, or liveness ran out).
pub async fn run(
    world: Shared,
    plan: &FaultPlan,
    keys: KeyChooser,
    clients: usize,
    liveness: Duration,
) {
    sim_fs::sim::set_fault_config(plan.disk.clone());
    let w = world.clone();
    let node = Arc::new(
        node::build("db")
            .ip(IP.parse().expect("a literal address"))
            .init(move || node_main(w.clone(), keys.clone(), clients))
            .create(),
    );
    let start = time::now();
    let steps = plan.steps.clone();
    let (exec_world, exec_node) = (world.clone(), node.clone());
    let executed = Arc::new(AtomicBool::new(false));
    let exec_done = executed.clone();
    sim_runtime::task::spawn_named("fault-plan", async move {
        let mut waiting = Vec::new();
        for step in steps {
            time::sleep_until(start + Duration::from_millis(step.at_ms)).await;
            waiting.extend(crash_at_io(&exec_world, &exec_node, &step.fault));
            apply(&exec_world, &exec_node, &step.fault);
        }
        for crash in waiting {
            let _finished = crash.await;
        }
        exec_done.store(true, Ordering::SeqCst);
    });
    let healed_at = start + plan.healed_at();
    let deadline = healed_at + liveness;
    loop {
        sleep(Duration::from_millis(2)).await;
        let (poisoned, done, stop) = {
            let mut w = lock(&world);
            if time::now() >= healed_at {
                w.heal();
            }
            (
                w.poisoned,
                w.ops_completed >= w.ops_budget && w.phase == Phase::Running,
                w.stop,
            )
        };
        if stop {
            return;
        }
        if poisoned && !node.is_down() {
            // Fail-stop: the process exits and is restarted; the OS (page cache) lives on.
            take_down(&world, &node, TakeDown::FailStop);
            node.restart();
        }
        if done && executed.load(Ordering::SeqCst) {
            break;
        }
        if time::now() > deadline {
            let w = &mut *lock(&world);
            let msg = format!(
                "{} of {} operations completed {:?} after the last fault healed (node {:?})",
                w.ops_completed, w.ops_budget, liveness, w.phase
            );
            w.violation("liveness", msg);
            return;
        }
    }
    // The final state must hold too, and survive one more power loss.
    let db = lock(&world).db.clone();
    if let Some(db) = db {
        match read_all(&db).await {
            Ok(state) => lock(&world).check_state(&state, "at the end"),
            Err(e) if e.is_fail_stop() => {}
            Err(e) => {
                let mut w = lock(&world);
                let message = format!("reading the final state: {e}");
                if !(e.is_corruption() && w.corruption_refused(&message)) {
                    w.violation("invariant", message);
                }
            }
        }
    }
    take_down(&world, &node, TakeDown::Final);
    node.restart();
    let until = time::now() + liveness;
    while time::now() < until {
        sleep(Duration::from_millis(2)).await;
        let (phase, poisoned, stop) = {
            let w = lock(&world);
            (w.phase, w.poisoned, w.stop)
        };
        if stop || phase == Phase::Running {
            break;
        }
        if poisoned {
            take_down(&world, &node, TakeDown::FailStop);
            node.restart();
        }
    }
    let mut w = lock(&world);
    if w.phase != Phase::Running && !w.stop {
        w.violation(
            "liveness",
            "the node did not recover after the final power loss",
        );
    }
    w.stop = true;
}

/// Starts a [`Fault::CrashAtIo`]: a task that waits for the node to reach its file
/// operation and cuts its power there. The plan's task awaits it before the run moves
/// on to its final checks (a node frozen at the barrier must not meet them).
fn crash_at_io(
    world: &Shared,
    node: &Arc<Node>,
    fault: &Fault,
) -> Option<sim_runtime::task::JoinHandle<()>> {
    let Fault::CrashAtIo {
        after_ops, down_ms, ..
    } = *fault
    else {
        return None;
    };
    if node.is_down() {
        return None;
    }
    let (world, node) = (world.clone(), node.clone());
    let crash = Fault::Crash { node: 1, down_ms };
    let id = node.id();
    Some(chaos::runner::io_crash::spawn(id, after_ops, move || {
        apply(&world, &node, &crash)
    }))
}

/// Executes one timed fault against the node.
fn apply(world: &Shared, node: &Arc<Node>, fault: &Fault) {
    if node.is_down() {
        return; // already down: the fault has nothing to act on
    }
    match fault {
        Fault::Crash { down_ms, .. } | Fault::Kill { down_ms, .. } => {
            let power_loss = matches!(fault, Fault::Crash { .. });
            take_down(world, node, TakeDown::Planned { power_loss });
            let node = node.clone();
            let down = Duration::from_millis(*down_ms);
            sim_runtime::task::spawn_named("fault-plan.restart", async move {
                sleep(down).await;
                node.restart();
            });
        }
        // Waited on by the plan's task: see `crash_at_io`.
        Fault::CrashAtIo { .. } => {}
        Fault::Pause { for_ms, .. } => {
            node.pause();
            let node = node.clone();
            let d = Duration::from_millis(*for_ms);
            sim_runtime::task::spawn_named("fault-plan.resume", async move {
                sleep(d).await;
                node.resume();
            });
        }
        Fault::ClockSkew {
            offset_ms,
            drift_ppm,
            ..
        } => {
            node.set_clock(offset_ms.saturating_mul(1_000_000), *drift_ppm);
        }
        // Network faults need a network: nothing to do on one node.
        Fault::Partition { .. }
        | Fault::PartitionOneWay { .. }
        | Fault::Clog { .. }
        | Fault::LeaderChurn { .. } => {}
    }
}
