//! The runner's commands: `list`, `run`, `replay`, `shrink`, `check-determinism` (for
//! runner scenarios), plus the child side of `sweep`.

#[cfg(madsim)]
use super::record::{Reproduce, RunRecord};
use super::scenario;
#[cfg(madsim)]
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `run` and `replay` were asked for.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub scenario: String,
    pub seed: u64,
    pub plan: Option<PathBuf>,
    pub history: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    pub timeline: Option<PathBuf>,
    /// Write the plan the run follows here (JSON, what `--plan` reads).
    pub save_plan: Option<PathBuf>,
    /// Print only the result line (the child side of `sweep`).
    pub child: bool,
    pub check_determinism: bool,
}

/// A topology as `list` prints it: `embedded`, `cluster:3` (one column, no spaces).
fn topology_name(t: scenario::Topology) -> String {
    match t {
        scenario::Topology::Embedded => "embedded".to_string(),
        scenario::Topology::Cluster { nodes } => format!("cluster:{nodes}"),
        scenario::Topology::Impostor { nodes, .. } => format!("impostor:{nodes}"),
    }
}

/// `seedbank list`.
pub fn list() -> ExitCode {
    println!("{:<24} {:<9} checks", "scenario", "topology");
    for s in scenario::all() {
        println!(
            "{:<24} {:<9} {}",
            s.name,
            topology_name(s.topology),
            s.checks().join(", ")
        );
        println!("    {}", s.about);
    }
    println!("\ndemos (a planted bug: they fail by design, and `sweep` without names skips them):");
    for s in scenario::demos() {
        println!(
            "{:<24} {:<9} {}",
            s.name,
            topology_name(s.topology),
            s.checks().join(", ")
        );
        println!("    {}", s.about);
    }
    println!("\nrun one:   cargo sim run <scenario> --seed N\nsweep:     cargo sim sweep --seeds 0..100 --jobs 2");
    ExitCode::SUCCESS
}

/// What a real-world build says to simulation commands.
pub fn needs_madsim(command: &str) -> ExitCode {
    eprintln!(
        "`seedbank {command}` runs the simulated world, and this binary is the real-world build.\n\
         Use the madsim build: cargo sim {command} …\n\
         (= RUSTFLAGS=\"--cfg madsim\" cargo run --target-dir target/sim --bin seedbank -- {command} …)"
    );
    ExitCode::from(2)
}

#[cfg(madsim)]
fn print_record(r: &RunRecord) {
    println!(
        "{} seed {}: {}{}",
        r.scenario,
        r.seed,
        r.outcome.to_uppercase(),
        match (&r.failed_check, &r.message) {
            (Some(c), Some(m)) => format!(" [{c}] {m}"),
            _ => String::new(),
        }
    );
    println!(
        "  operations {} (acknowledged {}, rejected {}, indeterminate {}), recoveries {}",
        r.operations, r.acknowledged, r.rejected, r.indeterminate, r.recoveries
    );
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!(
        "  faults fired: {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(" ")
        }
    );
    let marks: Vec<&str> = r.marks.keys().map(String::as_str).collect();
    println!(
        "  coverage marks reached: {}",
        if marks.is_empty() {
            "none".into()
        } else {
            format!("{} ({})", marks.len(), marks.join(" "))
        }
    );
    println!(
        "  virtual time {:.3} s, wall {:.0} ms, trace {} events, digest {}",
        r.virtual_time_ms / 1000.0,
        r.wall_time_ms,
        r.events,
        r.digest
    );
    if let Some(d) = r.deterministic {
        println!(
            "  deterministic: {}",
            if d {
                "yes (second run identical)"
            } else {
                "NO"
            }
        );
    }
    if r.failed() {
        println!("  reproduce: {}", r.reproduce());
    }
}

#[cfg(madsim)]
fn load_plan(path: &Path) -> Result<super::plan::FaultPlan, String> {
    super::plan::FaultPlan::from_json(&super::host::read(path)?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(madsim)]
pub use sim::*;

#[cfg(madsim)]
mod sim {
    use super::*;
    use crate::runner::run::{check_determinism as double_run, plan_for, run_seed, RunOutput};
    use crate::runner::sweep::RESULT_MARKER;
    use sim_runtime::sim::Determinism;

    /// The plan of a run: from `--plan FILE`, or the seed's own.
    fn plan_of(
        sc: &scenario::Scenario,
        args: &RunArgs,
    ) -> Result<super::super::plan::FaultPlan, String> {
        match &args.plan {
            Some(p) => load_plan(p),
            None => plan_for(sc, args.seed),
        }
    }

    fn write_outputs(out: &RunOutput, args: &RunArgs) -> Result<(), String> {
        if let Some(p) = &args.history {
            super::super::host::write(p, &out.history.to_jsonl())?;
            println!(
                "  history: {} ({} operations)",
                p.display(),
                out.history.ops().len()
            );
        }
        if let Some(p) = &args.trace {
            let lines: String = out
                .trace
                .events
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .map(|l| l + "\n")
                .collect();
            super::super::host::write(p, &lines)?;
            println!(
                "  trace: {} ({} events)",
                p.display(),
                out.trace.events.len()
            );
        }
        if let Some(p) = &args.timeline {
            super::super::host::write(p, &crate::runner::timeline::render(out))?;
            println!("  timeline: {}", p.display());
        }
        Ok(())
    }

    /// `seedbank run` / `seedbank replay`.
    pub fn run(args: RunArgs) -> ExitCode {
        let Some(sc) = scenario::find(&args.scenario) else {
            eprintln!(
                "unknown scenario {:?}; `seedbank list` shows them",
                args.scenario
            );
            return ExitCode::from(2);
        };
        let plan = match plan_of(&sc, &args) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        if let Some(path) = &args.save_plan {
            if let Err(e) = super::super::host::write(path, &plan.to_json()) {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
        let keep = if args.trace.is_some() || args.timeline.is_some() {
            sim_runtime::trace::DEFAULT_KEEP_LIMIT
        } else {
            0
        };
        let (out, verdict) = if args.check_determinism {
            let (out, verdict) = double_run(&sc, args.seed, &plan, keep);
            (out, Some(verdict))
        } else {
            (run_seed(&sc, args.seed, &plan, keep), None)
        };
        let mut record = out.record.clone();
        let mut divergence = None;
        if let Some(verdict) = verdict {
            match verdict {
                Determinism::Same { .. } => record.deterministic = Some(true),
                Determinism::Differs(d) => {
                    record.deterministic = Some(false);
                    if !record.failed() {
                        record.outcome = "fail".into();
                        record.failed_check = Some("determinism".into());
                        record.message = Some(d.to_string());
                    }
                    divergence = Some(d.to_string());
                }
                Determinism::Escaped { escape, .. } => {
                    // The run's record already fails [escape] with the line.
                    record.deterministic = Some(false);
                    divergence = Some(format!("not deterministic: {escape}"));
                }
            }
        }
        if args.child {
            match serde_json::to_string(&record) {
                Ok(line) => println!("{RESULT_MARKER}{line}"),
                Err(e) => eprintln!("cannot encode the result: {e}"),
            }
            return ExitCode::SUCCESS;
        }
        if args.plan.is_some() || !plan.steps.is_empty() {
            print!("fault plan:\n{plan}");
        }
        print_record(&record);
        if let Some(d) = divergence {
            println!("{d}");
        }
        if let Err(e) = write_outputs(&out, &args) {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
        if record.failed() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }

    /// `seedbank shrink <scenario> --seed N [--plan FILE] [--out FILE]`.
    pub fn shrink(
        scenario: &str,
        seed: u64,
        plan: Option<PathBuf>,
        out: Option<PathBuf>,
    ) -> ExitCode {
        let Some(sc) = scenario::find(scenario) else {
            eprintln!("unknown scenario {scenario:?}; `seedbank list` shows them");
            return ExitCode::from(2);
        };
        let args = RunArgs {
            scenario: scenario.into(),
            seed,
            plan,
            ..RunArgs::default()
        };
        let plan = match plan_of(&sc, &args) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let first = run_seed(&sc, seed, &plan, 0).record;
        let Some(check) = first.failed_check.clone() else {
            println!("{scenario} seed {seed} passes: nothing to shrink");
            return ExitCode::SUCCESS;
        };
        println!("{scenario} seed {seed} fails [{check}]; shrinking a plan of {} faults and {} operations…", plan.size(), plan.ops);
        let before = (plan.size(), plan.ops);
        let shrunk = crate::runner::shrink::shrink(plan, &check, first, |p| {
            run_seed(&sc, seed, p, 0).record
        });
        let path = out.unwrap_or_else(|| PathBuf::from(format!("shrunk-{scenario}-{seed}.json")));
        if let Err(e) = crate::runner::host::write(&path, &shrunk.plan.to_json()) {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
        println!(
            "shrunk in {} runs: {} -> {} faults, {} -> {} operations; still fails [{check}]: {}",
            shrunk.runs,
            before.0,
            shrunk.plan.size(),
            before.1,
            shrunk.plan.ops,
            shrunk
                .record
                .message
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
        print!("{}", shrunk.plan);
        println!(
            "plan written to {}\nreplay: cargo sim replay {scenario} --seed {seed} --plan {}",
            path.display(),
            path.display()
        );
        ExitCode::SUCCESS
    }

    /// `seedbank check-determinism <runner scenario> --seed N`: the verdict of the
    /// double run, or why it could not be made (exit 125).
    pub fn check_determinism(scenario: &str, seed: u64) -> Result<Determinism, String> {
        let sc = scenario::find(scenario)
            .ok_or_else(|| format!("unknown scenario {scenario:?}; `seedbank list` shows them"))?;
        let plan = plan_for(&sc, seed)?;
        Ok(double_run(&sc, seed, &plan, 0).1)
    }
}

#[cfg(not(madsim))]
pub fn run(_args: RunArgs) -> ExitCode {
    needs_madsim("run")
}

#[cfg(not(madsim))]
pub fn shrink(
    _scenario: &str,
    _seed: u64,
    _plan: Option<PathBuf>,
    _out: Option<PathBuf>,
) -> ExitCode {
    needs_madsim("shrink")
}
