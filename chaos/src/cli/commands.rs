//! `run` (and its child form), `shrink` and `check-determinism`.

use super::record::RunRecord;
use super::{shell_word, sweep, usage, Cli, Entry};
use crate::plan::FaultPlan;
use crate::report::timeline::{self, Involved, RunView};
use crate::runner::{self, Record};
use checkers::history::Outcome;
use sim_runtime::trace::Trace;
use std::path::Path;
use std::process::ExitCode;

/// A run's [`RunRecord`]: `name` is the entry's (not the scenario's) name.
pub(crate) fn line_of(name: &str, r: &Record, wall_ms: f64, plan_file: Option<&Path>) -> RunRecord {
    let txns = r.history.txns();
    let count = |o: Outcome| txns.iter().filter(|t| t.outcome == o).count() as u64;
    let recoveries = r
        .faults
        .iter()
        .filter(|(k, _)| {
            ["node.crash", "node.kill"].contains(&k.as_str())
                || [runner::FAIL_STOP_RESTART, runner::FINAL_POWER_LOSS].contains(&k.as_str())
        })
        .map(|(_, v)| *v)
        .sum();
    RunRecord {
        scenario: name.to_string(),
        seed: r.seed,
        outcome: if r.failed.is_some() { "fail" } else { "pass" }.into(),
        failed_check: r.failed.as_ref().map(|v| v.check.clone()),
        message: r.failed.as_ref().map(|v| v.message.clone()),
        faults: r.faults.clone(),
        marks: r.marks.clone(),
        mark_first_ns: r.mark_first_ns.clone(),
        operations: txns.len() as u64,
        acknowledged: count(Outcome::Ok),
        rejected: count(Outcome::Fail),
        indeterminate: count(Outcome::Info),
        recoveries,
        acknowledged_after_heal: 0,
        virtual_time_ms: r.virtual_time.as_secs_f64() * 1e3,
        wall_time_ms: wall_ms,
        digest: format!("{:016x}", r.digest),
        events: r.events,
        deterministic: None,
        plan_file: plan_file.map(|p| p.display().to_string()),
        corruption_refused: None,
        sweep: None,
    }
}

/// Runs `seed` of `e` under `plan_file` (else the seed's own plan), timed.
fn run_once(e: &Entry, seed: u64, plan_file: Option<&Path>) -> Result<(Record, f64), String> {
    let (r, _, wall_ms) = run_timed(e, seed, plan_file)?;
    Ok((r, wall_ms))
}

/// [`run_once`] with the run's trace.
fn run_timed(
    e: &Entry,
    seed: u64,
    plan_file: Option<&Path>,
) -> Result<(Record, Trace, f64), String> {
    let plan: FaultPlan = match plan_file {
        Some(p) => crate::host::read_plan(p)?,
        None => runner::plan_for(&e.scenario, &e.system, seed),
    };
    #[allow(clippy::disallowed_methods)] // the run's wall time, for the report only
    let started = std::time::Instant::now();
    let (r, trace) = runner::run_traced(&e.scenario, &e.system, seed, &plan);
    Ok((r, trace, started.elapsed().as_secs_f64() * 1e3))
}

/// What `run` writes besides its report: `--history`, `--trace`, `--timeline` files.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outputs<'a> {
    pub history: Option<&'a Path>,
    pub trace: Option<&'a Path>,
    pub timeline: Option<&'a Path>,
}

/// The command that replays `seed` of `e` (under `plan_file`).
fn reproduce(cli: &Cli, e: &Entry, seed: u64, plan_file: Option<&Path>) -> String {
    let mut line = format!("{} run {} --seed {seed}", cli.prefix(), shell_word(&e.name));
    if let Some(p) = plan_file {
        line += &format!(" --plan {}", shell_word(&p.display().to_string()));
    }
    line
}

/// Writes the trace (one JSON event per line) and the timeline page.
fn write_trace_outputs(
    cli: &Cli,
    e: &Entry,
    (r, trace, line): (&Record, &Trace, &RunRecord),
    plan_file: Option<&Path>,
    out: Outputs,
) -> Result<(), String> {
    if let Some(path) = out.trace {
        let lines: String = trace
            .events
            .iter()
            .filter_map(|ev| serde_json::to_string(ev).ok())
            .map(|l| l + "\n")
            .collect();
        crate::host::write_text(path, &lines)?;
        println!(
            "  trace: {} ({} events)",
            path.display(),
            trace.events.len()
        );
    }
    if let Some(path) = out.timeline {
        let plan = r.plan.to_string();
        let repro = reproduce(cli, e, r.seed, plan_file);
        let view = RunView {
            record: line,
            plan: &plan,
            history: &r.history,
            trace,
            involved: &Involved::default(),
            reproduce: &repro,
        };
        crate::host::write_text(path, &timeline::render(&view))?;
        println!("  timeline: {}", path.display());
    }
    Ok(())
}

/// `run NAME --seed S [--plan FILE] [--history FILE] [--trace FILE] [--timeline FILE]
/// [--print-plan] [--child]`.
pub(crate) fn run(
    cli: &Cli,
    e: &Entry,
    seed: u64,
    plan_file: Option<&Path>,
    outputs: Outputs,
    print_plan: bool,
    child: bool,
) -> ExitCode {
    let (r, trace, wall_ms) = match run_timed(e, seed, plan_file) {
        Ok(x) => x,
        Err(msg) => return usage(&msg),
    };
    let line = line_of(&e.name, &r, wall_ms, plan_file);
    if child {
        println!("{}", line.to_child_line());
        return ExitCode::SUCCESS;
    }
    if print_plan {
        println!("plan:\n{}", r.plan);
    }
    match &r.failed {
        None => println!("{} seed {seed}: pass", e.name),
        Some(v) => println!("{} seed {seed}: FAILED {}: {}", e.name, v.check, v.message),
    }
    let faults: Vec<String> = r.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("  faults fired: {}", faults.join(", "));
    println!(
        "  {} operations ({} ok, {} fail, {} unknown); {:.3} s of virtual time, {} trace events, digest {}",
        line.operations,
        line.acknowledged,
        line.rejected,
        line.indeterminate,
        line.virtual_time_ms / 1e3,
        line.events,
        line.digest
    );
    if let Some(path) = outputs.history {
        if let Err(msg) = crate::host::write_text(path, &r.history.to_jsonl()) {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
        println!(
            "  history: {} ({} events)",
            path.display(),
            r.history.ops().len()
        );
    }
    if let Err(msg) = write_trace_outputs(cli, e, (&r, &trace, &line), plan_file, outputs) {
        eprintln!("{msg}");
        return ExitCode::from(2);
    }
    if r.failed.is_some() {
        if plan_file.is_none() {
            println!(
                "  shrink: {} shrink {} --seed {seed} --out {}",
                cli.prefix(),
                e.name,
                shell_word(&format!("{}-{seed}.plan.json", e.name))
            );
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `shrink NAME --seed S --out FILE`: exit 0 when the written plan replays the same
/// failed check in a fresh process, 1 when it does not, 2 when the seed passes.
pub(crate) fn shrink(cli: &Cli, e: &Entry, seed: u64, out: &Path) -> ExitCode {
    let (first, _) = match run_once(e, seed, None) {
        Ok(x) => x,
        Err(msg) => return usage(&msg),
    };
    let Some(check) = first.failed_check().map(str::to_string) else {
        eprintln!("{} seed {seed} passes: nothing to shrink", e.name);
        return ExitCode::from(2);
    };
    println!(
        "{} seed {seed} failed {check}; its plan has {} faults; shrinking…",
        e.name,
        first.plan.size()
    );
    let shrunk = runner::shrink(&e.scenario, &e.system, first);
    println!(
        "shrunk in {} runs to {} faults:\n{}",
        shrunk.runs,
        shrunk.plan.size(),
        shrunk.plan
    );
    if let Err(msg) = crate::host::write_plan(out, &shrunk.plan) {
        eprintln!("{msg}");
        return ExitCode::from(2);
    }
    let replay = sweep::run_child(&e.name, seed, Some(out));
    let same = replay.failed_check.as_deref() == Some(check.as_str());
    println!(
        "{}: replayed in a fresh process: {} ({})",
        out.display(),
        replay.failed_check.as_deref().unwrap_or("pass"),
        replay.headline()
    );
    println!(
        "  reproduce: {} run {} --seed {seed} --plan {}",
        cli.prefix(),
        e.name,
        shell_word(&out.display().to_string())
    );
    if same {
        ExitCode::SUCCESS
    } else {
        println!("  the plan file does NOT replay the {check} failure in a fresh process");
        ExitCode::from(1)
    }
}

/// `check-determinism NAME --seed S`: two child processes, their digests compared.
pub(crate) fn check_determinism(cli: &Cli, name: &str, seed: u64) -> ExitCode {
    let a = sweep::run_child(name, seed, None);
    let b = sweep::run_child(name, seed, None);
    for r in [&a, &b] {
        if r.outcome == "error" {
            println!("{name} seed {seed}: cannot test: {}", r.headline());
            return ExitCode::from(125);
        }
    }
    if (&a.digest, a.events, &a.failed_check) == (&b.digest, b.events, &b.failed_check) {
        println!(
            "{name} seed {seed} is deterministic: {} events, digest {} both runs ({})",
            a.events,
            a.digest,
            a.failed_check.as_deref().unwrap_or("pass")
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "{name} seed {seed} is NOT deterministic: digest {} after {} events, then {} after {} ({} then {})",
            a.digest,
            a.events,
            b.digest,
            b.events,
            a.failed_check.as_deref().unwrap_or("pass"),
            b.failed_check.as_deref().unwrap_or("pass")
        );
        println!(
            "  again: {} check-determinism {name} --seed {seed}",
            cli.prefix()
        );
        ExitCode::from(1)
    }
}
