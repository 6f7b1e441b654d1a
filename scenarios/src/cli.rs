//! The `seedbank` command line (DESIGN.md "Command line"). Commands that are not built
//! yet are present, say so in `--help`, and exit with status 2 and the issue that
//! builds them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Seedbank: deterministic simulation testing for Rust, and the database that proves it.
///
/// Simulation commands need the madsim build: `cargo sim <command> …` (an alias for
/// `cargo run --bin seedbank` with `--cfg madsim` into target/sim).
#[derive(Debug, Parser)]
#[command(name = "seedbank", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scenarios and their checks. [not built yet: the scenario runner]
    List,
    /// One run of a scenario: outcome, faults fired, trace digest. [not built yet]
    Run {
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Write the client history as Jepsen/Elle JSON lines.
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Sweep seeds over scenarios in parallel. [not built yet]
    Sweep {
        scenarios: Vec<String>,
        /// Seed range, A..B (B exclusive).
        #[arg(long)]
        seeds: String,
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        check_determinism: bool,
    },
    /// Replay one seed, optionally from a fault-plan file. [not built yet]
    Replay {
        scenario: String,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        plan: Option<PathBuf>,
        #[arg(long)]
        trace: Option<PathBuf>,
        #[arg(long)]
        timeline: Option<PathBuf>,
    },
    /// Shrink a failing run to a minimal fault plan. [not built yet]
    Shrink {
        scenario: String,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a seed twice and compare traces: exit 0 same, 1 differs (first divergence
    /// printed), 125 cannot test. Scenario `demo-crash` is built; the rest come with the
    /// runner.
    CheckDeterminism {
        scenario: String,
        #[arg(long)]
        seed: u64,
    },
    /// Interactive embedded database (`--path DIR`; named concurrent transactions,
    /// `--json` for scripts) or replicated cluster (`--connect`, not built yet).
    Shell {
        #[arg(long)]
        path: Option<PathBuf>,
        #[arg(long)]
        connect: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One real replicated node over TCP. [not built yet]
    Node {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        listen: String,
        #[arg(long)]
        peers: String,
        #[arg(long)]
        data: PathBuf,
    },
    /// Demonstrations.
    Demo {
        #[command(subcommand)]
        demo: Demo,
    },
    /// Real-world benchmarks. [not built yet]
    Bench {
        #[arg(long)]
        workload: Vec<String>,
        #[arg(long)]
        engines: Vec<String>,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Demo {
    /// A simulated node appends checksummed records, syncing every few, and loses
    /// power mid-write; after restart it shows what survived (simulated world).
    Crash {
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The doctors-on-call write-skew anomaly, prevented by SSI (real world: two
    /// concurrent tasks on a multi-threaded runtime, a real database on disk).
    WriteSkew,
}
