//! `sweep`: every (entry, seed) in a fresh child process of this executable, `--jobs`
//! at a time. Worker threads only hand out jobs and collect the children's answers;
//! every simulated run is in a child.

use super::record::{corpus_line, json_lines, RunRecord, SweepTag};
use super::{args, Cli};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// What `sweep` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct SweepArgs {
    pub names: Vec<String>,
    pub seeds: Range<u64>,
    pub jobs: usize,
    pub json: Option<PathBuf>,
    pub shard: Option<(u64, u64)>,
    pub save_failures: Option<PathBuf>,
}

/// Runs `run NAME --seed S --child [--plan FILE]` in a fresh process of this
/// executable and reads its answer; a child without one is an `error` line.
pub(crate) fn run_child(name: &str, seed: u64, plan: Option<&Path>) -> RunRecord {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return RunRecord::error(
                name,
                seed,
                "runner",
                format!("cannot find this executable: {e}"),
            )
        }
    };
    let mut cmd = Command::new(&exe);
    cmd.args(["run", name, "--seed", &seed.to_string(), "--child"]);
    if let Some(plan) = plan {
        cmd.arg("--plan").arg(plan);
    }
    let out = match cmd.stdin(Stdio::null()).output() {
        Ok(o) => o,
        Err(e) => {
            return RunRecord::error(
                name,
                seed,
                "runner",
                format!("cannot start {}: {e}", exe.display()),
            )
        }
    };
    match RunRecord::from_child_stdout(&String::from_utf8_lossy(&out.stdout)) {
        Some(Ok(line)) => line,
        Some(Err(e)) => RunRecord::error(name, seed, "runner", e),
        None => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            RunRecord::error(
                name,
                seed,
                "runner",
                format!("the run died ({}) without a result:\n{tail}", out.status),
            )
        }
    }
}

/// `sweep`: exit 0 when every run passed, 1 when any did not, 2 when a file could not
/// be written.
pub(crate) fn sweep(cli: &Cli, a: &SweepArgs) -> ExitCode {
    let jobs = args::jobs(&a.names, a.seeds.clone(), a.shard);
    let total = jobs.len() as u64;
    let next = AtomicUsize::new(0);
    let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let lines = Mutex::new(Vec::new());
    #[allow(clippy::disallowed_methods)] // the sweep's own wall time, for the summary only
    let started = std::time::Instant::now();
    let prefix = cli.prefix();
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some((name, seed)) = jobs.get(i) else {
            break;
        };
        let r = run_child(name, *seed, None);
        if r.failed() {
            failed.fetch_add(1, Ordering::SeqCst);
            println!("{}", failure_line(&prefix, &r));
        }
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        if n % (total / 10).max(1) == 0 || n == total {
            eprintln!(
                "sweep: {n}/{total} runs, {} failed, {:.0} s",
                failed.load(Ordering::SeqCst),
                started.elapsed().as_secs_f64()
            );
        }
        sim_runtime::sync::lock(&lines).push(r);
    };
    // Worker threads hand out jobs to child processes; the simulations are the children's.
    std::thread::scope(|s| {
        for _ in 0..a.jobs.max(1) {
            s.spawn(worker);
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let mut lines = sim_runtime::sync::into_inner(lines);
    lines.sort_by(|x, y| (x.seed, &x.scenario).cmp(&(y.seed, &y.scenario)));
    let (text, promises_kept) = summary(cli, &a.names, &lines, wall);
    print!("{text}");
    let mut code = if lines.iter().any(RunRecord::failed) || !promises_kept {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if let Some(path) = &a.json {
        let (shard, shards) = a.shard.unwrap_or((1, 1));
        let tag = SweepTag {
            from: a.seeds.start,
            to: a.seeds.end,
            shard,
            shards,
            wall_s: wall,
            explore: false,
        };
        if let Err(e) = crate::host::write_text(path, &json_lines(&lines, &tag)) {
            eprintln!("{e}");
            code = ExitCode::from(2);
        }
    }
    if let Some(dir) = &a.save_failures {
        for r in lines.iter().filter(|r| r.outcome == "fail") {
            let file = dir.join(format!("{}.seeds", r.scenario));
            if let Err(e) = crate::host::append_text(&file, &corpus_line(r)) {
                eprintln!("{e}");
                code = ExitCode::from(2);
            }
        }
    }
    code
}

/// A failure and the command that reproduces it, in the user's own terms.
pub(crate) fn failure_line(prefix: &str, r: &RunRecord) -> String {
    r.failure_line_with(&format!("{prefix} run"))
}

/// Per scenario: runs, failures by check, the first failing seed, and its coverage
/// (each mark of its layers with the runs that reached it, the marks none reached, the
/// must-reach promises missed); then the totals. The second value is false when a
/// promise was missed.
pub(crate) fn summary(
    cli: &Cli,
    names: &[String],
    lines: &[RunRecord],
    wall_s: f64,
) -> (String, bool) {
    let sums = crate::report::record::summarize(lines);
    let mut out = String::new();
    let mut kept = true;
    for name in names {
        let mine: Vec<&RunRecord> = lines.iter().filter(|r| &r.scenario == name).collect();
        let bad: Vec<&&RunRecord> = mine.iter().filter(|r| r.failed()).collect();
        let mut checks = std::collections::BTreeMap::new();
        for r in &bad {
            *checks
                .entry(r.failed_check.clone().unwrap_or_default())
                .or_insert(0u64) += 1;
        }
        let checks: Vec<String> = checks.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let first = bad
            .first()
            .map_or(String::new(), |r| format!(", first seed {}", r.seed));
        out += &format!(
            "{name}: {} runs, {} failed{}{first}\n",
            mine.len(),
            bad.len(),
            if checks.is_empty() {
                String::new()
            } else {
                format!(" ({})", checks.join(", "))
            }
        );
        if let (Some(s), Some(p)) = (sums.get(name), cli.promises(name)) {
            let decided = s.decided(&p.must_reach);
            out += &s
                .coverage
                .render(p.universe.iter().copied(), &decided, "  ");
            kept &= s.coverage.missed(&decided).is_empty();
        }
    }
    let virt: f64 = lines.iter().map(|r| r.virtual_time_ms).sum::<f64>() / 1e3;
    out += &format!(
        "{} runs, {} failed, {wall_s:.1} s wall, {virt:.1} s virtual\n",
        lines.len(),
        lines.iter().filter(|r| r.failed()).count()
    );
    (out, kept)
}
