//! One run: a scenario, a seed, a fault plan → a [`RunRecord`], the client history and
//! the trace. Everything else (`run`, `sweep`, `replay`, `shrink`, the seed corpus)
//! calls [`run_seed`].

use super::plan::{self, FaultPlan, Horizon};
use super::record::RunRecord;
use super::scenario::{Scenario, Topology};
use super::world::{lock, Involved, World};
use crate::check::history::History;
use crate::workload::{HistoryCheck, KeyChooser};
use rand::SeedableRng;
use sim_runtime::escape::Escape;
use sim_runtime::probe::{ProbeLog, Window};
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
    /// The escape recognised in the run's panic (an OS thread), if any.
    pub escape: Option<Escape>,
    /// Escapes noted as they happened (a real file or socket, OS entropy, the real
    /// clock), each with the user's line.
    pub escapes: Vec<Escape>,
    /// What a probe run recorded (None: not a probe run).
    pub probe: Option<ProbeLog>,
    /// The keys and operations the failed check names (empty if it passed or names
    /// none): the timeline highlights them.
    pub involved: Involved,
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
        aim_at_leader: true,
        leader_churn: true,
        recovery_crashes: true,
        io_crashes: true,
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
    run_inner(scenario, seed, plan, keep_events, canary, None, true)
}

/// [`run_seed`] with the trace switched off (`Sim::record(false)`): the same run and
/// verdict, an empty trace. For measuring the trace's share of a run (`seedbank bench
/// --workload sim`) only; its digest is the empty trace's.
pub fn run_seed_untraced(scenario: &Scenario, seed: u64, plan: &FaultPlan) -> RunOutput {
    run_inner(scenario, seed, plan, 0, None, None, false)
}

/// A probe run of `scenario` at `seed` over `window` (`sim_runtime::probe`): what each
/// task did there, with the user frames of its stack.
pub fn run_seed_probe(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    keep_events: usize,
    window: Window,
) -> RunOutput {
    run_inner(scenario, seed, plan, keep_events, None, Some(window), true)
}

fn run_inner(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    keep_events: usize,
    canary: Option<engine::canary::Canary>,
    probe: Option<Window>,
    record: bool,
) -> RunOutput {
    let workload: Arc<dyn crate::workload::Workload> = Arc::from((scenario.workload)());
    let mut fresh = World::new(workload, plan.ops);
    fresh.tuning = plan.tuning.clone();
    fresh.media_faults = scenario.faults.bitflips;
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
        .keep_events(keep_events)
        .record(record);
    let branches = plan.branches.clone();
    let sim = match probe {
        Some(w) => sim.probe(w),
        None => sim,
    };
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
            Topology::Impostor {
                nodes,
                authenticated,
            } => {
                let impostor = Some(authenticated);
                super::cluster::run_with(
                    run_world, &run_plan, nodes, keys, clients, liveness, impostor,
                )
                .await;
            }
        }
    });
    let mut w = lock(&world);
    let history = std::mem::replace(&mut w.history, History::new());
    let escape = report.escape().cloned();
    if let Err(panic) = &report.output {
        match &escape {
            Some(e) => w.violation(
                "escape",
                format!("{e}; the panic: {}", panic.replace('\n', " ")),
            ),
            None => w.violation("panic", panic.clone()),
        }
    }
    if let Some(e) = report.escapes.first() {
        let more = report.escapes.len() - 1;
        w.violation(
            "escape",
            if more == 0 {
                e.to_string()
            } else {
                format!("{e} (and {more} more)")
            },
        );
    }
    if w.violations.is_empty() {
        // After an excused loss, only what clients saw before the damage is judged.
        let prefix = w.history_judged.map(|n| {
            let text = history.to_jsonl();
            History::from_jsonl(&text.lines().take(n).collect::<Vec<_>>().join("\n"))
        });
        match prefix {
            None => check_history(&mut w, &history),
            Some(Ok(judged)) => check_history(&mut w, &judged),
            Some(Err(e)) => w.violation("history", format!("the history before the damage: {e}")),
        }
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
        message: first.as_ref().map(|v| v.message.clone()),
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
        corruption_refused: w.corruption_refused.clone(),
        sweep: None,
    };
    RunOutput {
        record,
        plan: plan.clone(),
        history,
        trace: report.trace,
        escape,
        escapes: report.escapes,
        probe: report.probe,
        involved: first.map(|v| v.involved).unwrap_or_default(),
    }
}

/// Runs `scenario` at `seed` twice, each on a fresh thread, and compares the traces:
/// the first run's output (keeping `keep` events) and the verdict. Cheap when the runs
/// agree — each keeps only its per-event digests. When they differ, both are run once
/// more as probe runs around the divergence (`sim_runtime::probe`), keeping every event
/// up to just past it; the verdict is that pair's divergence with its localisation (the
/// task that behaved differently and its line in the user's code), so index, events
/// and localisation all come from one pair of runs. If the probe pair agrees, the
/// nondeterminism did not repeat, and the verdict is the first pair's divergence by
/// index, saying so. An escape recognised in the first run's panic (an OS thread) is
/// the verdict without a second run: both runs would fail alike.
pub fn check_determinism(
    scenario: &Scenario,
    seed: u64,
    plan: &FaultPlan,
    keep: usize,
) -> (RunOutput, sim_runtime::sim::Determinism) {
    use sim_runtime::sim::{compare, escaped_anyway, follow_up, merge_escapes, Determinism};
    let first = run_seed(scenario, seed, plan, keep);
    if let Some(escape) = first.escape.clone() {
        let message = first.record.message.clone().unwrap_or_default();
        return (
            first,
            Determinism::Escaped {
                seed,
                escape,
                message,
            },
        );
    }
    let second = run_seed(scenario, seed, plan, 0);
    let mut escapes = first.escapes.clone();
    merge_escapes(&mut escapes, &second.escapes);
    let verdict = compare(seed, &first.trace, &second.trace);
    let Determinism::Differs(mut d) = verdict else {
        return (first, escaped_anyway(seed, verdict, escapes));
    };
    d.escapes = escapes;
    let detailed = follow_up(*d, |window| {
        let upto = usize::try_from(window.to)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let a = run_seed_probe(scenario, seed, plan, upto, window);
        let b = run_seed_probe(scenario, seed, plan, upto, window);
        Some(((a.trace, a.probe), (b.trace, b.probe)))
    });
    (first, Determinism::Differs(Box::new(detailed)))
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
                        w.violation_involving(
                            "linearizability",
                            report.to_string(),
                            linear_involved(&report),
                        );
                    }
                }
                Err(e) => w.violation("linearizability", format!("unreadable history: {e}")),
            }
        }
    }
}

/// The operations a linearizability failure names: per failing key, the operation that
/// cannot be placed and the last few of the longest linearizable prefix (what set the
/// register it contradicts).
pub fn linear_involved(report: &crate::check::linear::Report) -> Involved {
    let mut involved = Involved::default();
    for f in report.failures() {
        involved.keys.push(f.key.clone());
        involved.ops.push(f.blocked.id);
        let skip = f.linearized.len().saturating_sub(2);
        involved
            .ops
            .extend(f.linearized[skip..].iter().map(|op| op.id));
    }
    involved
}
