//! `seedbank sweep`: many seeds of many scenarios, in parallel, each run in a fresh
//! process of this binary (`seedbank run <scenario> --seed N --child`), so no state of
//! one run — a static, tokio's process-wide RNG counter (D10) — can reach another, and a
//! seed replays the same alone as in a sweep. Worker threads only hand out jobs and
//! collect results; none of this is inside a simulated run.

use super::record::{json_lines, Reproduce, RunRecord, SweepTag};
use super::{host, scenario};
/// Seed ranges, shards and a sweep's jobs: shared with the chaos CLI for users' own
/// scenarios (`chaos::cli::args`, where they are tested).
pub use chaos::cli::args::{
    jobs, parse_seeds, parse_shard, parse_shard_with, COMPLETION_INDEX_VAR,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The marker before the child's one JSON result line on stdout.
pub const RESULT_MARKER: &str = "SEEDBANK-RESULT ";

/// What `sweep` was asked for.
#[derive(Debug, Clone)]
pub struct SweepArgs {
    pub scenarios: Vec<String>,
    pub seeds: Range<u64>,
    pub jobs: usize,
    pub json: Option<PathBuf>,
    pub check_determinism: bool,
    pub save_failures: bool,
    /// `(k, n)`: this machine takes every n-th seed starting at the k-th (1-based k).
    pub shard: Option<(u64, u64)>,
    /// Where the seed corpus lives (for `--save-failures`).
    pub seeds_dir: PathBuf,
    /// Targeted exploration ([`super::explore`]) instead of uniform seeds.
    pub explore: bool,
    /// With `explore`: also run the same budget of uniform seeds and print, per mark,
    /// the runs each took to reach it first.
    pub compare: bool,
}

/// Runs one job in a child process (under the plan file `plan`, if given) and reads
/// its result.
pub(crate) fn run_child(
    exe: &Path,
    scenario: &str,
    seed: u64,
    determinism: bool,
    plan: Option<&Path>,
) -> RunRecord {
    let mut cmd = Command::new(exe);
    cmd.args(["run", scenario, "--seed", &seed.to_string(), "--child"]);
    if determinism {
        cmd.arg("--check-determinism");
    }
    if let Some(plan) = plan {
        cmd.arg("--plan").arg(plan);
    }
    let out = match cmd.stdin(Stdio::null()).output() {
        Ok(o) => o,
        Err(e) => {
            return RunRecord::error(
                scenario,
                seed,
                "runner",
                format!("cannot start {}: {e}", exe.display()),
            )
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(RESULT_MARKER))
    {
        match serde_json::from_str::<RunRecord>(line) {
            Ok(r) => return r,
            Err(e) => {
                return RunRecord::error(
                    scenario,
                    seed,
                    "runner",
                    format!("unreadable child result: {e}"),
                )
            }
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    RunRecord::error(
        scenario,
        seed,
        "panic",
        format!(
            "the run died ({}) without a result:\n{}",
            out.status,
            tail.join("\n")
        ),
    )
}

/// `seedbank sweep`.
pub fn main(args: SweepArgs) -> ExitCode {
    let names = if args.scenarios.is_empty() {
        scenario::all()
            .iter()
            .map(|s| s.name.to_string())
            .collect::<Vec<_>>()
    } else {
        for n in &args.scenarios {
            if scenario::find(n).is_none() {
                eprintln!("unknown scenario {n:?}; `seedbank list` shows them");
                return ExitCode::from(2);
            }
        }
        args.scenarios.clone()
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot find this binary to run seeds in child processes: {e}");
            return ExitCode::from(2);
        }
    };
    let jobs = jobs(&names, args.seeds.clone(), args.shard);
    if args.explore && args.shard.is_some() {
        eprintln!("--explore decides each run from the runs before it: it cannot be sharded");
        return ExitCode::from(2);
    }
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("0 failed");
    let next = AtomicUsize::new(0);
    let failed = AtomicU64::new(0);
    let records = Mutex::new(Vec::new());
    #[allow(clippy::disallowed_methods)] // the sweep's own wall time, for the summary only
    let started = std::time::Instant::now();
    // Piped or redirected, the bar is hidden (and prints nothing): then each failure
    // is printed as it happens and a progress line goes to stderr every tenth of the
    // runs, so a long sweep is not silent until it ends.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = jobs.len() as u64;
    let done = AtomicU64::new(0);
    let report = |r: &RunRecord| {
        if r.failed() {
            let n = failed.fetch_add(1, Ordering::SeqCst) + 1;
            bar.set_message(format!("{n} failed"));
            if tty {
                bar.println(r.failure_line());
            } else {
                println!("{}", r.failure_line());
            }
        }
        bar.inc(1);
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        if !tty && (n % (total / 10).max(1) == 0 || n == total) {
            eprintln!(
                "sweep: {n}/{total} runs, {} failed, {:.0} s",
                failed.load(Ordering::SeqCst),
                started.elapsed().as_secs_f64()
            );
        }
    };
    if args.explore {
        let run = super::explore::sweep_all(&exe, &names, &args, &report);
        match run {
            Ok(all) => *sim_runtime::sync::lock(&records) = all,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    let worker = || loop {
        if args.explore {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some((scenario, seed)) = jobs.get(i) else {
            break;
        };
        let r = run_child(&exe, scenario, *seed, args.check_determinism, None);
        report(&r);
        sim_runtime::sync::lock(&records).push(r);
    };
    // Worker threads hand out jobs to child processes; the simulation is in the children.
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(worker);
        }
    });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let mut records = sim_runtime::sync::into_inner(records);
    records.sort_by(|a, b| (a.seed, &a.scenario).cmp(&(b.seed, &b.scenario)));
    let (summary, clean) = super::record::report(&records, wall);
    print!("{summary}");
    if let Some(path) = &args.json {
        let (shard, shards) = args.shard.unwrap_or((1, 1));
        let tag = SweepTag {
            from: args.seeds.start,
            to: args.seeds.end,
            shard,
            shards,
            wall_s: wall,
            explore: args.explore,
        };
        let lines = json_lines(&records, &tag);
        if let Err(e) = host::write(path, &lines) {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    if args.save_failures {
        for r in records.iter().filter(|r| r.failed()) {
            let line =
                format!(
                "{}  # {}: {} — found by `seedbank sweep`; pinned by scenarios/tests/seeds.rs\n",
                r.seed,
                r.failed_check.as_deref().unwrap_or("?"),
                r.message.as_deref().unwrap_or("").lines().next().unwrap_or("").replace('#', "")
            );
            let file = args.seeds_dir.join(format!("{}.seeds", r.scenario));
            if let Err(e) = host::append(&file, &line) {
                eprintln!("{e}");
            }
        }
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
