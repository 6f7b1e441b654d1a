//! The parent process: parse the selection, run one child process per engine, collect
//! their records, print the table, write `--json`, clean up.

use crate::disk;
use crate::engines::{self, EngineError};
use crate::measure;
use crate::report::{self, Record};
use crate::spec::{self, EngineKind, SpecError, Workload};
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Keys a child loads when its parent names none (the parent always does).
pub const DEFAULT_KEYS: u64 = 1_000_000;
/// Seconds per timed workload: default and `--quick`.
pub const DEFAULT_SECS: f64 = 10.0;
pub const QUICK_SECS: f64 = 3.0;

/// `seedbank bench`'s options, as the command line gave them.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub workloads: Vec<String>,
    pub engines: Vec<String>,
    pub json: Option<PathBuf>,
    pub quick: bool,
    pub secs: Option<f64>,
    /// One scale: this many keys (excludes `scales`).
    pub keys: Option<u64>,
    /// Several scales (`1M`, `10M`, …); neither this nor `keys`: [`spec::DEFAULT_SCALES`].
    pub scales: Vec<String>,
    pub dir: Option<PathBuf>,
    /// Internal: run as the child process of this engine, in `dir`.
    pub child: Option<String>,
}

/// What one child runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub workloads: Vec<Workload>,
    pub keys: u64,
    pub secs: f64,
}

/// A failed benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Usage(String),
    #[error("engine {engine}: the child process failed ({status}); its output is above")]
    Child { engine: EngineKind, status: String },
    #[error("engine {engine}: unreadable result line {line:?}: {source}")]
    BadRecord {
        engine: EngineKind,
        line: String,
        source: serde_json::Error,
    },
}

impl BenchError {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            BenchError::Spec(_) | BenchError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }
}

/// `seedbank bench`: runs the benchmark (or, with `child`, one engine's part of it).
pub fn main(args: Args) -> ExitCode {
    let result = match &args.child {
        Some(engine) => run_child(engine, &args),
        None => run_parent(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("seedbank bench: {e}");
            e.exit_code()
        }
    }
}

/// The key counts a run covers, smallest first: `--keys N` alone, the `--scales`
/// list, or [`spec::DEFAULT_SCALES`].
pub fn scales(args: &Args) -> Result<Vec<u64>, BenchError> {
    match args.keys {
        Some(_) if !args.scales.is_empty() => Err(BenchError::Usage(
            "--keys picks one scale and --scales several: give one of them".into(),
        )),
        Some(keys) => Ok(vec![keys]),
        None => Ok(spec::parse_scales(&args.scales)?),
    }
}

fn plan(args: &Args, keys: u64) -> Result<Plan, BenchError> {
    let secs = args
        .secs
        .unwrap_or(if args.quick { QUICK_SECS } else { DEFAULT_SECS });
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(BenchError::Usage(format!(
            "--secs must be positive, got {secs}"
        )));
    }
    if keys < spec::SCAN_LEN {
        return Err(BenchError::Usage(format!(
            "--keys must be at least {} (one scan range), got {keys}",
            spec::SCAN_LEN
        )));
    }
    Ok(Plan {
        workloads: spec::parse_workloads(&args.workloads)?,
        keys,
        secs,
    })
}

fn run_child(engine: &str, args: &Args) -> Result<ExitCode, BenchError> {
    let engine = EngineKind::parse(engine)?;
    let plan = plan(args, args.keys.unwrap_or(DEFAULT_KEYS))?;
    let dir = args
        .dir
        .as_deref()
        .ok_or_else(|| BenchError::Usage("--child needs --dir".into()))?;
    crate::child::main(engine, &plan, dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the run directory when dropped, on every path out.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != io::ErrorKind::NotFound {
                eprintln!("seedbank bench: could not remove {}: {e}", self.0.display());
            }
        }
    }
}

fn run_parent(args: &Args) -> Result<ExitCode, BenchError> {
    let started = Instant::now();
    let plans: Vec<Plan> = scales(args)?
        .into_iter()
        .map(|keys| plan(args, keys))
        .collect::<Result<_, _>>()?;
    let engines = spec::parse_engines(&args.engines)?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir(base.join(format!("seedbank-bench-{}", std::process::id())));
    std::fs::create_dir_all(&run_dir.0)
        .map_err(BenchError::io(format!("creating {}", run_dir.0.display())))?;
    let mut json = match &args.json {
        Some(p) => Some(BufWriter::new(
            File::create(p).map_err(BenchError::io(format!("creating {}", p.display())))?,
        )),
        None => None,
    };
    let exe = std::env::current_exe().map_err(BenchError::io("finding this executable"))?;

    print_header(&plans, &engines, &run_dir.0);
    // The disk's floor, in the same directory, before any engine loads the disk.
    let baseline = disk::measure(&run_dir.0, disk::DEFAULT_BUDGET).map_err(BenchError::io(
        format!("measuring the disk in {}", run_dir.0.display()),
    ))?;
    print_baseline(
        "disk baseline (same filesystem, before the engines; not an engine)",
        &baseline,
    );
    println!();
    if let (Some(out), Some(path)) = (json.as_mut(), args.json.as_ref()) {
        for r in baseline.records(false) {
            writeln!(out, "{}", r.to_json_line())
                .map_err(BenchError::io(format!("writing {}", path.display())))?;
        }
    }
    let mut records: Vec<Record> = Vec::new();
    let mut failed: Vec<(EngineKind, u64)> = Vec::new();
    let mut scale_secs: Vec<f64> = Vec::new();
    for plan in &plans {
        let scale_started = Instant::now();
        eprintln!(
            "{} keys ({} MB of live data):",
            report::thousands(plan.keys as f64),
            report::thousands(measure::mib(spec::live_bytes(plan.keys)))
        );
        for &engine in &engines {
            let engine_started = Instant::now();
            eprintln!("{engine} at {}:", spec::scale_name(plan.keys));
            let (rs, outcome) = run_engine(&exe, engine, plan, &run_dir.0.join(engine.name()));
            if let (Some(out), Some(path)) = (json.as_mut(), args.json.as_ref()) {
                for r in &rs {
                    writeln!(out, "{}", r.to_json_line())
                        .map_err(BenchError::io(format!("writing {}", path.display())))?;
                }
                out.flush()
                    .map_err(BenchError::io(format!("writing {}", path.display())))?;
            }
            records.extend(rs);
            if let Err(e) = outcome {
                eprintln!("seedbank bench: {e}");
                failed.push((engine, plan.keys));
            }
            eprintln!(
                "  ({engine} at {}: {:.0}s)",
                spec::scale_name(plan.keys),
                engine_started.elapsed().as_secs_f64()
            );
        }
        scale_secs.push(scale_started.elapsed().as_secs_f64());
    }
    // Again after the engines: the disk of a shared machine changes speed within
    // minutes, and a ratio is only as good as the baseline next to it.
    let end = disk::measure(&run_dir.0, disk::DEFAULT_BUDGET).map_err(BenchError::io(format!(
        "measuring the disk in {}",
        run_dir.0.display()
    )))?;
    if let (Some(out), Some(path)) = (json.as_mut(), args.json.as_ref()) {
        for r in end.records(true) {
            writeln!(out, "{}", r.to_json_line())
                .map_err(BenchError::io(format!("writing {}", path.display())))?;
        }
        out.flush()
            .map_err(BenchError::io(format!("writing {}", path.display())))?;
    }
    drop(run_dir);

    let (start_p50, end_p50) = (baseline.prealloc_p50_us(), end.prealloc_p50_us());
    for (plan, secs) in plans.iter().zip(&scale_secs) {
        let at: Vec<Record> = records
            .iter()
            .filter(|r| r.keys == plan.keys)
            .cloned()
            .collect();
        println!();
        println!(
            "== {} keys: {} MB of live data ({} bytes a key and its value); {secs:.0}s ==",
            report::thousands(plan.keys as f64),
            report::thousands(measure::mib(spec::live_bytes(plan.keys))),
            spec::RECORD_BYTES,
        );
        print!("{}", report::table(&at));
        println!();
        print!("{}", report::amplification_table(&at));
        println!();
        print_commit_ratios(&at, start_p50, end_p50);
    }
    println!();
    print_baseline("disk baseline after the engines", &end);
    if let Some(f) = disk::drift(start_p50, end_p50) {
        println!(
            "the disk's speed changed {f:.1}x during the run (preallocated fdatasync p50 \
             {} -> {} µs): durable figures of engines run at different times may not compare",
            report::micros(start_p50),
            report::micros(end_p50),
        );
    }
    if let Some(load) = measure::load_avg_1m() {
        println!(
            "\nload average {load:.2} on {} cores at the end",
            measure::cores()
        );
    }
    let scale_names: Vec<String> = plans.iter().map(|p| spec::scale_name(p.keys)).collect();
    println!(
        "\n{} of {} engine run(s) completed ({} engine(s) at {}), {} workload(s), {:.0}s wall time{}",
        engines.len() * plans.len() - failed.len(),
        engines.len() * plans.len(),
        engines.len(),
        scale_names.join(" and "),
        plans.first().map_or(0, |p| p.workloads.len()),
        started.elapsed().as_secs_f64(),
        args.json.as_ref().map_or(String::new(), |p| format!(
            "; JSON lines in {}",
            p.display()
        )),
    );
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<String> = failed
            .iter()
            .map(|(e, keys)| format!("{e} at {}", spec::scale_name(*keys)))
            .collect();
        eprintln!("seedbank bench: failed: {}", names.join(", "));
        Ok(ExitCode::from(1))
    }
}

fn print_header(plans: &[Plan], engines: &[EngineKind], dir: &Path) {
    let Some(plan) = plans.first() else {
        return;
    };
    let names: Vec<String> = plan.workloads.iter().map(|w| w.to_string()).collect();
    let scales: Vec<String> = plans
        .iter()
        .map(|p| report::thousands(p.keys as f64))
        .collect();
    println!(
        "seedbank bench: {} keys of {} bytes, values of {} bytes; {} s per timed workload; \
         workloads: {}",
        scales.join(" and then "),
        spec::KEY_LEN,
        spec::VALUE_LEN,
        plan.secs,
        names.join(" "),
    );
    println!(
        "data in {} (removed at the end); each engine in its own process",
        dir.display()
    );
    if let Some(load) = measure::load_avg_1m() {
        let cores = measure::cores();
        let busy = if load > cores as f64 * 0.75 {
            " — the machine is busy: expect noisy figures"
        } else {
            ""
        };
        println!("load average {load:.2} on {cores} cores at the start{busy}");
    }
    for &e in engines {
        let m = engines::mode(e);
        println!("  {e:<8} durable: {}", m.durability);
        println!("  {:<8} api:     {}", "", m.api);
        println!("  {:<8} settle:  {}", "", m.settle);
        if let Some(note) = m.note {
            println!("  {:<8} note:    {note}", "");
        }
    }
    if !engines.iter().any(|e| *e != EngineKind::Seedbank) && !cfg!(feature = "peers") {
        println!(
            "  (peer engines need the `peers` feature: scripts/install-peers, then \
             cargo run --release --features peers --bin seedbank -- bench …)"
        );
    }
    println!();
}

/// `commit-1`'s p50 against the disk probes, per engine, for one scale's records.
fn print_commit_ratios(records: &[Record], start_p50: f64, end_p50: f64) {
    for (engine, x) in disk::commit_ratios(records, start_p50) {
        let before = records
            .iter()
            .find(|r| r.engine == engine && r.workload == "commit-1")
            .and_then(disk::ratio_to_probe_before)
            .map_or(String::new(), |y| {
                format!("; {y:.2}x against the probe just before it")
            });
        let at_end = disk::commit_ratios(records, end_p50)
            .into_iter()
            .find(|(e, _)| *e == engine)
            .map_or(String::new(), |(_, y)| {
                format!("; {y:.2}x against the end figure")
            });
        println!("commit-1 p50 / preallocated fdatasync p50 = {x:.2}x ({engine}{before}{at_end})");
    }
}

fn print_baseline(title: &str, b: &disk::Baseline) {
    let line = |name: &str, p: &disk::Probe| {
        println!(
            "  {name:<19} p50 {:>8} µs  p99 {:>8} µs  ({} writes of {} bytes + fdatasync, {:.1}s)",
            report::micros(p.latencies.quantile_us(0.5)),
            report::micros(p.latencies.quantile_us(0.99)),
            p.ops,
            disk::RECORD_BYTES,
            p.elapsed.as_secs_f64(),
        );
    };
    println!("{title}:");
    line(disk::PREALLOC, &b.prealloc);
    line(disk::APPEND, &b.append);
}

/// Runs one engine's child process and reads its records: all it printed, even when
/// it failed part-way (then with the error).
fn run_engine(
    exe: &Path,
    engine: EngineKind,
    plan: &Plan,
    dir: &Path,
) -> (Vec<Record>, Result<(), BenchError>) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return (
            Vec::new(),
            Err(BenchError::io(format!("creating {}", dir.display()))(e)),
        );
    }
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .arg("--child")
        .arg(engine.name())
        .arg("--dir")
        .arg(dir)
        .arg("--keys")
        .arg(plan.keys.to_string())
        .arg("--secs")
        .arg(plan.secs.to_string())
        .arg("--workload")
        .args(plan.workloads.iter().map(|w| w.to_string()))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let out = cmd.output();
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("seedbank bench: could not remove {}: {e}", dir.display());
    }
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            return (
                Vec::new(),
                Err(BenchError::io(format!("starting {}", exe.display()))(e)),
            )
        }
    };
    let mut records = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(source) => {
                let line = line.to_string();
                return (
                    records,
                    Err(BenchError::BadRecord {
                        engine,
                        line,
                        source,
                    }),
                );
            }
        }
    }
    if !out.status.success() {
        let status = out.status.to_string();
        return (records, Err(BenchError::Child { engine, status }));
    }
    (records, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(keys: Option<u64>, scales: &[&str]) -> Args {
        Args {
            keys,
            scales: scales.iter().map(|s| s.to_string()).collect(),
            ..Args::default()
        }
    }

    #[test]
    fn keys_pick_one_scale_and_scales_several() {
        assert_eq!(scales(&args(None, &[])).unwrap(), [1_000_000, 10_000_000]);
        assert_eq!(scales(&args(Some(2_000), &[])).unwrap(), [2_000]);
        assert_eq!(
            scales(&args(None, &["100k", "1M"])).unwrap(),
            [100_000, 1_000_000]
        );
        assert!(matches!(
            scales(&args(Some(2_000), &["1M"])),
            Err(BenchError::Usage(_))
        ));
        assert!(matches!(
            scales(&args(None, &["1X"])),
            Err(BenchError::Spec(_))
        ));
        // A scale too small for one scan range is refused before any engine starts.
        assert!(plan(&args(None, &[]), spec::SCAN_LEN - 1).is_err());
        assert_eq!(plan(&args(None, &[]), 5_000).unwrap().keys, 5_000);
    }
}
