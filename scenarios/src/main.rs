//! The `seedbank` binary.

use clap::Parser;
use scenarios::cli::{Cli, Command, Demo};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
        other => not_built(&other),
    }
}

fn not_built(command: &Command) -> ExitCode {
    let (what, issue) = match command {
        Command::List
        | Command::Run { .. }
        | Command::Sweep { .. }
        | Command::Replay { .. }
        | Command::Shrink { .. } => ("the scenario runner", 5),
        Command::Shell { connect: None, .. } | Command::Demo { .. } => ("the embedded database", 3),
        Command::Shell { .. } | Command::Node { .. } => ("the replicated database", 4),
        Command::Bench { .. } => ("benchmarks", 7),
        Command::CheckDeterminism { .. } => ("the scenario runner", 5),
    };
    eprintln!("seedbank: this command is not built yet ({what}, issue {issue}).");
    ExitCode::from(2)
}
