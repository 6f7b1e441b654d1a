//! One run: a scenario, a seed, a fault plan → a [`RunRecord`], the client history and
//! the trace. Everything else (`run`, `sweep`, `replay`, `shrink`, the seed corpus)
//! calls [`run_seed`].

use super::plan::{self, FaultPlan, Horizon};
use super::record::RunRecord;
use super::scenario::{Scenario, Topology};
use super::world::{lock, World};
use crate::check::history::History;
use crate::workload::{HistoryCheck, KeyChooser};
use rand::SeedableRng;
use sim_runtime::trace::Trace;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Faults start within this window after the workload starts.
pub const FAULT_WINDOW_MS: u64 = 3_000;
/// A run that reaches this much virtual time is stopped (a hang, not a slow run).
pub const TIME_LIMIT: Duration = Duration::from_secs(600);

/// Everything one run produced.
pub struct RunOutput {
    pub record: RunRecord,
    pub plan: FaultPlan,
    pub history: History,
    pub trace: Trace,
}

/// The fault plan of `seed`: the scenario's fixed plan, or one drawn from the seed
/// (before the run, from its own stream, so the plan is a pure function of the seed).
pub fn plan_for(scenario: &Scenario, seed: u64) -> Result<FaultPlan, String> {
    if let Some(fixed) = scenario.fixed_plan() {
        return fixed.map_err(|e| format!("{}'s plan file: {e}", scenario.name));
    }
    let key =
        sim_runtime::rng::stable_hash(format!("{seed}/scenario.plan/{}", scenario.name).as_bytes());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(key);
    let horizon = Horizon {
        nodes: scenario.topology.nodes(),
        window_ms: FAULT_WINDOW_MS,
        ops: scenario.ops,
    };
    Ok(plan::generate(scenario.faults, horizon, &mut rng))
}

/// Runs `scenario` at `seed` under `plan` on a fresh thread and runtime.
pub fn run_seed(scenario: &Scenario, seed: u64, plan: &FaultPlan, keep_events: usize) -> RunOutput {
    run_seed_with(scenario, seed, plan, keep_events, None)
}

/// [`run_seed`] with one of the engine's deliberate bugs switched on (the canary
/// meta-test; needs the `canary` feature).
pub fn run_seed_with(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    keep_events: usize,
    canary: Option<engine::canary::Canary>,
) -> RunOutput {
    let workload: Arc<dyn crate::workload::Workload> = Arc::from((scenario.workload)());
    let mut fresh = World::new(workload, plan.ops);
    fresh.tuning = plan.tuning.clone();
    let world = Arc::new(Mutex::new(fresh));
    let keys = KeyChooser::zipf(scenario.keys, 0.99);
    let (run_world, run_plan, clients, topology, liveness) = (
        world.clone(),
        plan.clone(),
        scenario.clients,
        scenario.topology,
        scenario.liveness,
    );
    let sim = sim_runtime::sim::Sim::new(seed)
        .plugin::<sim_fs::SimFs>()
        .time_limit(TIME_LIMIT)
        .keep_events(keep_events);
    let branches = plan.branches.clone();
    let report = sim.run(move || async move {
        for b in &branches {
            sim_runtime::rng::branch_at(Duration::from_nanos(b.at_ns), b.salt);
        }
        #[cfg(feature = "canary")]
        if let Some(c) = canary {
            engine::canary::enable(c);
        }
        #[cfg(not(feature = "canary"))]
        assert!(canary.is_none(), "canaries need the `canary` feature");
        match topology {
            Topology::Embedded => {
                super::embedded::run(run_world, &run_plan, keys, clients, liveness).await;
            }
            Topology::Cluster { nodes } => {
                super::cluster::run(run_world, &run_plan, nodes, keys, clients, liveness).await;
            }
        }
    });
    let mut w = lock(&world);
    let history = std::mem::replace(&mut w.history, History::new());
    if let Err(panic) = &report.output {
        w.violation("panic", panic.clone());
    }
    if w.violations.is_empty() {
        check_history(&mut w, &history);
    }
    let first = w.violations.first().cloned();
    let mut faults = report.faults.clone();
    for s in &plan.steps {
        if s.fault.counter().starts_with("net.") {
            *faults.entry(s.fault.counter().to_string()).or_insert(0) += 1;
        }
    }
    let record = RunRecord {
        scenario: scenario.name.to_string(),
        seed,
        outcome: if first.is_none() {
            "pass".into()
        } else {
            "fail".into()
        },
        failed_check: first.as_ref().map(|v| v.check.clone()),
        message: first.map(|v| v.message),
        faults,
        marks: report.marks.clone(),
        mark_first_ns: report.mark_first_ns.clone(),
        operations: w.ops_invoked,
        acknowledged: w.acknowledged,
        rejected: w.rejected,
        indeterminate: w.indeterminate,
        recoveries: w.recoveries,
        acknowledged_after_heal: w.acknowledged_after_heal,
        virtual_time_ms: report.virtual_time.as_secs_f64() * 1000.0,
        wall_time_ms: report.wall_time.as_secs_f64() * 1000.0,
        digest: format!("{:016x}", report.trace.digest),
        events: report.trace.count,
        deterministic: None,
        plan_file: None,
    };
    RunOutput {
        record,
        plan: plan.clone(),
        history,
        trace: report.trace,
    }
}

/// Runs `scenario` at `seed` twice, each on a fresh thread, and compares the traces:
/// the first run's output (keeping `keep` events) and the verdict. Cheap when the runs
/// agree — each keeps only its per-event digests; when they differ, both are run once
/// more keeping every event up to the divergence, so the verdict can show the first
/// divergent event of each side (if that rerun agrees, the nondeterminism did not
/// repeat, and the verdict still reports the first pair's divergence by index).
pub fn check_determinism(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    keep: usize,
) -> (RunOutput, sim_runtime::sim::Determinism) {
    use sim_runtime::sim::{compare, Determinism};
    let first = run_seed(scenario, seed, plan, keep);
    let second = run_seed(scenario, seed, plan, 0);
    let verdict = compare(seed, &first.trace, &second.trace);
    let Determinism::Differs(d) = &verdict else {
        return (first, verdict);
    };
    if d.first.is_some() && d.second.is_some() {
        return (first, verdict);
    }
    let upto = usize::try_from(d.index)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let a = run_seed(scenario, seed, plan, upto);
    let b = run_seed(scenario, seed, plan, upto);
    let detailed = match compare(seed, &a.trace, &b.trace) {
        again @ Determinism::Differs(_) => again,
        Determinism::Same { .. } => verdict,
    };
    (first, detailed)
}

/// The history checker the workload names.
fn check_history(w: &mut World, history: &History) {
    match w.workload.history_check() {
        HistoryCheck::None => {}
        HistoryCheck::ListAppend => {
            let report = crate::check::elle::check(history);
            if !report.valid {
                w.violation("elle", report.to_string());
            }
        }
        HistoryCheck::Register => {
            let options = crate::check::linear::Options::default();
            match crate::check::linear::check(history, &options) {
                Ok(report) => {
                    if report.valid() == Some(false) {
                        w.violation("linearizability", report.to_string());
                    }
                }
                Err(e) => w.violation("linearizability", format!("unreadable history: {e}")),
            }
        }
    }
}
