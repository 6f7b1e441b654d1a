//! The `seedbank` binary.

mod node_cmd;

/// The simulated world's binary allocates through mimalloc (D80): a simulated run is
/// one thread allocating and freeing ~a million small objects (futures, messages,
/// trace text), where glibc's malloc spent a fifth of the run. The real world keeps
/// the system allocator, so `seedbank bench` compares engines on the allocator they
/// ship with.
#[cfg(madsim)]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use scenarios::cli::{Cli, Command, Demo};
use scenarios::runner::{commands, sweep};
use scenarios::shell::ShellOptions;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::List => commands::list(),
        Command::Run {
            scenario,
            seed,
            history,
            plan,
            check_determinism,
            save_plan,
            child,
        } => commands::run(commands::RunArgs {
            scenario,
            seed,
            plan,
            history,
            child,
            check_determinism,
            save_plan,
            ..commands::RunArgs::default()
        }),
        Command::Replay {
            scenario,
            seed,
            plan,
            trace,
            timeline,
            history,
            save_plan,
        } => commands::run(commands::RunArgs {
            scenario,
            seed,
            plan,
            history,
            trace,
            timeline,
            save_plan,
            ..commands::RunArgs::default()
        }),
        Command::Shrink {
            scenario,
            seed,
            plan,
            out,
        } => commands::shrink(&scenario, seed, plan, out),
        Command::Sweep {
            scenarios,
            seeds,
            jobs,
            json,
            check_determinism,
            save_failures,
            shard,
            explore,
            compare,
        } => {
            if !cfg!(madsim) {
                return commands::needs_madsim("sweep");
            }
            let seeds = match sweep::parse_seeds(&seeds) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let shard = match shard.as_deref().map(sweep::parse_shard).transpose() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            sweep::main(sweep::SweepArgs {
                scenarios,
                seeds,
                jobs,
                json,
                check_determinism,
                save_failures,
                shard,
                seeds_dir: PathBuf::from("seeds"),
                explore,
                compare,
            })
        }
        Command::Merge(args) => scenarios::runner::merge::main(args),
        Command::Demo {
            demo: Demo::Crash { seed },
        } => scenarios::demo_crash::main(seed),
        Command::Demo {
            demo: Demo::WriteSkew,
        } => scenarios::demo_write_skew::main(),
        Command::CheckDeterminism { scenario, seed } => {
            scenarios::determinism::main(&scenario, seed)
        }
        Command::Shell {
            path: Some(path),
            connect: None,
            json,
            history,
            creds,
        } => {
            if creds.cert.is_some() || creds.certs.is_some() || creds.insecure {
                eprintln!("seedbank shell: credentials apply to --connect, not --path");
                return ExitCode::from(2);
            }
            scenarios::shell::main(&path, &ShellOptions { json, history })
        }
        Command::Shell {
            path: None,
            connect: Some(list),
            json,
            history,
            creds,
        } => scenarios::shell::connect::main(&list, &ShellOptions { json, history }, &creds),
        #[cfg(not(madsim))]
        Command::BenchNet { secs, clients } => scenarios::netbench::main(secs, clients),
        #[cfg(madsim)]
        Command::BenchNet { .. } => {
            eprintln!("seedbank bench-net runs in the real world: cargo run --release --bin seedbank -- bench-net");
            ExitCode::from(2)
        }
        #[cfg(not(madsim))]
        Command::Certs {
            out,
            nodes,
            clients,
        } => scenarios::credentials::certs_main(&out, nodes, &clients),
        #[cfg(madsim)]
        Command::Certs { .. } => {
            eprintln!("seedbank certs runs in the real world: cargo run --bin seedbank -- certs …");
            ExitCode::from(2)
        }
        Command::Node {
            id,
            listen,
            peers,
            data,
            creds,
        } => node_cmd::main(id, &listen, &peers, &data, &creds),
        #[cfg(not(madsim))]
        Command::Bench { workload, .. } if workload.iter().any(|w| w == "sim") => {
            eprintln!(
                "the `sim` workload measures the simulator; run it from the simulated build: \
                 cargo sim bench --workload sim"
            );
            ExitCode::from(2)
        }
        #[cfg(not(madsim))]
        Command::Bench {
            workload,
            engines,
            json,
            quick,
            secs,
            keys,
            scales,
            dir,
            child,
        } => bench::main(bench::Args {
            workloads: workload,
            engines,
            json,
            quick,
            secs,
            keys,
            scales,
            dir,
            child,
        }),
        #[cfg(madsim)]
        Command::Bench {
            workload,
            json,
            quick,
            ..
        } if workload.iter().all(|w| w == "sim") => sim_bench(quick, json),
        #[cfg(madsim)]
        Command::Bench { .. } => {
            eprintln!(
                "seedbank bench measures the real world; run it from a real build: \
                 cargo run --release --bin seedbank -- bench \
                 (only `--workload sim`, the simulator's own speed, runs here)"
            );
            ExitCode::from(2)
        }
        other => not_built(&other),
    }
}

fn not_built(_command: &Command) -> ExitCode {
    eprintln!("seedbank: this combination of arguments is not supported; see --help.");
    ExitCode::from(2)
}

/// The optimisation level this binary was built at (`cargo sim`: the `sim` profile's 3;
/// `cargo simtest`'s dev profile: 1).
#[cfg(madsim)]
const OPT_LEVEL: &str = env!("SEEDBANK_OPT_LEVEL");

/// `seedbank bench --workload sim` (simulated build): the simulator's own speed.
#[cfg(madsim)]
fn sim_bench(quick: bool, json: Option<std::path::PathBuf>) -> ExitCode {
    use scenarios::runner::simbench;
    let seeds = if quick { 10 } else { 40 };
    let r = match simbench::measure(seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench sim: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "sim: {} seeds of {} with {} client operations each (3 replicas, the seed's faults)",
        r.seeds, r.scenario, r.ops_per_seed
    );
    let assertions = if cfg!(debug_assertions) { "on" } else { "off" };
    println!("  build                       opt-level {OPT_LEVEL}, debug assertions {assertions}");
    println!(
        "  seeds/s (one core)          {:>8.2}   (goal >= 10)",
        r.seeds_per_sec
    );
    println!(
        "  simulated s per wall s      {:>8.1}",
        r.simulated_s_per_wall_s
    );
    println!("  trace events per seed       {:>8}", r.events_per_seed);
    println!(
        "  seeds per CPU-second        {:>8.2}   (recording off: {:.2}; the trace's share of a run's CPU: {:.0}%, {} verdicts differ)",
        r.cpu_seeds_per_sec,
        r.untraced_cpu_seeds_per_sec,
        r.trace_share * 100.0,
        r.untraced_mismatch
    );
    println!(
        "  double-run check / one run  {:>8.2}x  (goal <= 2.1x; {} nondeterministic)",
        r.determinism_ratio, r.nondeterministic
    );
    if let Some(path) = json {
        let line = serde_json::json!({
            "engine": "simulator",
            "workload": "sim",
            "scenario": r.scenario,
            "seeds": r.seeds,
            "ops_per_seed": r.ops_per_seed,
            "seeds_per_sec": r.seeds_per_sec,
            "simulated_s_per_wall_s": r.simulated_s_per_wall_s,
            "determinism_ratio": r.determinism_ratio,
            "cpu_seeds_per_sec": r.cpu_seeds_per_sec,
            "untraced_cpu_seeds_per_sec": r.untraced_cpu_seeds_per_sec,
            "untraced_cpu_s": r.untraced_cpu_s,
            "trace_share": r.trace_share,
            "opt_level": OPT_LEVEL,
            "debug_assertions": cfg!(debug_assertions),
        });
        if let Err(e) = scenarios::runner::host::write(&path, &format!("{line}\n")) {
            eprintln!("bench sim: {e}");
            return ExitCode::from(2);
        }
    }
    if r.untraced_mismatch > 0 {
        eprintln!(
            "bench sim: {} seeds reached another verdict with recording off",
            r.untraced_mismatch
        );
        return ExitCode::from(1);
    }
    if r.failed > 0 || r.nondeterministic > 0 {
        eprintln!(
            "bench sim: {} failed runs, {} nondeterministic seeds",
            r.failed, r.nondeterministic
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
