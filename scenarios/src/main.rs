//! The `seedbank` binary.

mod node_cmd;

use clap::Parser;
use scenarios::cli::{Cli, Command, Demo};
use scenarios::runner::{commands, sweep};
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
            child,
        } => commands::run(commands::RunArgs {
            scenario,
            seed,
            plan,
            history,
            child,
            check_determinism,
            ..commands::RunArgs::default()
        }),
        Command::Replay {
            scenario,
            seed,
            plan,
            trace,
            timeline,
            history,
        } => commands::run(commands::RunArgs {
            scenario,
            seed,
            plan,
            history,
            trace,
            timeline,
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
            })
        }
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
        } => scenarios::shell::main(&path, json),
        Command::Shell {
            path: None,
            connect: Some(list),
            json,
        } => scenarios::shell::connect::main(&list, json),
        Command::Node {
            id,
            listen,
            peers,
            data,
        } => node_cmd::main(id, &listen, &peers, &data),
        other => not_built(&other),
    }
}

fn not_built(command: &Command) -> ExitCode {
    let (what, issue) = match command {
        Command::Bench { .. } => ("benchmarks", 7),
        _ => ("this combination of arguments", 0),
    };
    if issue == 0 {
        eprintln!("seedbank: {what} is not supported; see --help.");
    } else {
        eprintln!("seedbank: this command is not built yet ({what}, issue {issue}).");
    }
    ExitCode::from(2)
}
