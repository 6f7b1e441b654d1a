//! The `seedbank` command line: each command, its flags and its exit codes are the clap
//! definitions below (`seedbank --help`); the README walks through them. Simulation
//! commands in a real-world build say how to get the madsim one.

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
    /// Scenarios, their topology and their checks.
    List,
    /// One run of a scenario: outcome, faults fired, trace digest.
    Run {
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Write the client history as Jepsen/Elle JSON lines.
        #[arg(long)]
        history: Option<PathBuf>,
        /// Run under this fault plan (JSON, as `shrink` writes) instead of the seed's.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Run twice and compare the traces.
        #[arg(long)]
        check_determinism: bool,
        /// Write the plan this run follows (the seed's, or `--plan`'s) as JSON: edit it
        /// (more operations, a fault moved or removed) and run it with `--plan`.
        #[arg(long)]
        save_plan: Option<PathBuf>,
        /// Print only a machine-readable result line (used by `sweep`).
        #[arg(long, hide = true)]
        child: bool,
    },
    /// Sweep seeds over scenarios (all of them if none named), each run in a fresh
    /// process; prints a summary per scenario and the command that reproduces each
    /// failure. Exit 1 if any run failed or a must-reach promise was missed (judged
    /// only when seeds 0..S all ran).
    Sweep {
        scenarios: Vec<String>,
        /// Seed range, A..B (B exclusive), or N for 0..N.
        #[arg(long)]
        seeds: String,
        /// Runs at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Write one JSON object per run to FILE.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Run every seed twice and fail on any trace difference.
        #[arg(long)]
        check_determinism: bool,
        /// Append each failing seed to `seeds/<scenario>.seeds`.
        #[arg(long)]
        save_failures: bool,
        /// Take every N-th seed starting at the K-th (K/N, 1-based), to split a sweep
        /// across machines; `auto/N` takes K from JOB_COMPLETION_INDEX + 1 (the 0-based
        /// index a Kubernetes Indexed Job gives each pod). `merge` joins the parts.
        #[arg(long)]
        shard: Option<String>,
        /// Targeted exploration: after the first runs, spend most seeds on mutated
        /// plans of the runs that reached rare coverage marks (not shardable).
        #[arg(long)]
        explore: bool,
        /// With --explore: also sweep the same budget of uniform seeds and print, per
        /// coverage mark, how many runs each took to reach it first.
        #[arg(long, requires = "explore")]
        compare: bool,
    },
    /// Merge the `--json` files of a sweep's shards (`sweep --shard K/N --json FILE`)
    /// into one report: the summary a single sweep prints, must-reach promises judged
    /// over all the runs, optionally JUnit XML for CI. Refuses shards that do not fit
    /// (another seed range or shard count, a seed missing or present twice). Exit 1 if
    /// any run failed or a promise was missed, 2 if the shards do not fit together.
    Merge(chaos::cli::args::MergeArgs),
    /// Replay one seed (optionally under a plan file) and write what it did: history,
    /// full trace, an HTML timeline.
    Replay {
        scenario: String,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Write every trace event as JSON lines.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Write a self-contained HTML picture of the run.
        #[arg(long)]
        timeline: Option<PathBuf>,
        /// Write the client history as Jepsen/Elle JSON lines.
        #[arg(long)]
        history: Option<PathBuf>,
        /// Write the plan this run follows as JSON (for editing and `--plan`).
        #[arg(long)]
        save_plan: Option<PathBuf>,
    },
    /// Shrink a failing run to a minimal fault plan that fails the same check, written
    /// to a file that `replay --plan` reproduces.
    Shrink {
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Start from this plan instead of the seed's.
        #[arg(long)]
        plan: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a seed twice and compare traces: exit 0 same, 1 differs (first divergence
    /// printed), 125 cannot test. Any scenario of `list`, or `demo-crash`.
    CheckDeterminism {
        scenario: String,
        #[arg(long)]
        seed: u64,
    },
    /// Interactive database: embedded (`--path DIR`) or a replicated cluster
    /// (`--connect ADDR[,ADDR…]`, each `ADDR` or `ID=ADDR`); named concurrent
    /// transactions, `--json` for scripts, `status` shows the cluster.
    Shell {
        /// Open (or create) an embedded database in DIR.
        #[arg(long, conflicts_with = "connect")]
        path: Option<PathBuf>,
        /// Connect to the replicas at these addresses (bare addresses are nodes 1, 2, …).
        #[arg(long)]
        connect: Option<String>,
        /// One JSON answer per command, no prompt.
        #[arg(long)]
        json: bool,
        /// Line-editing history file, on a terminal (default: ~/.seedbank_history).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// With `--connect`: the client's credentials (`--certs DIR` takes
        /// client-shell.pem/.key and ca.pem from DIR).
        #[command(flatten)]
        creds: crate::credentials::CredentialArgs,
    },
    /// What mutual TLS costs against plaintext, in one run on loopback: new connections
    /// per second (handshake included) and a 3-replica cluster's commits per second.
    BenchNet {
        /// Seconds per measurement (each runs twice per mode).
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Concurrent clients committing.
        #[arg(long, default_value_t = 8)]
        clients: u64,
    },
    /// A development CA and node/client certificates for `--certs DIR`.
    ///
    /// Writes ca.pem/ca.key, `node-<i>.pem`/`.key` for i in 1..=N, `client-<name>.pem`/`.key`
    /// for each client; refuses to overwrite. Keep ca.key private.
    Certs {
        /// Directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Number of nodes (ids 1..=N).
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Client names, comma-separated.
        #[arg(long, default_value = "shell")]
        clients: String,
    },
    /// One real replicated node over TCP; runs until SIGTERM/SIGINT, recovers from
    /// `--data` after a crash.
    Node {
        /// This node's id (one of `--peers`).
        #[arg(long)]
        id: u64,
        /// Address to listen on (peers and clients).
        #[arg(long)]
        listen: String,
        /// Every node of the cluster, this one included: `1=ADDR,2=ADDR,3=ADDR`.
        #[arg(long)]
        peers: String,
        /// Data directory (Raft log, hard state, the state machine's database).
        #[arg(long)]
        data: PathBuf,
        /// Mutual TLS credentials (`--certs DIR` takes `node-<id>.pem`/`.key` and ca.pem
        /// from DIR), or `--insecure`.
        #[command(flatten)]
        creds: crate::credentials::CredentialArgs,
    },
    /// Demonstrations.
    Demo {
        #[command(subcommand)]
        demo: Demo,
    },
    /// Real-world benchmarks of the database, against peer engines with `--features peers`.
    ///
    /// Seedbank's database and (built with `--features peers`, after
    /// scripts/install-peers) fjall, redb, sled and RocksDB, each in its durable,
    /// transactional mode and its own process; prints a table with each peer's ops/s as
    /// a ratio to Seedbank's, and `--json FILE` writes one line per (engine, workload).
    Bench {
        /// Workloads (default all): fill, commit-1, commit-4, commit-16, read-1, read-2,
        /// scan, ycsb-a, ycsb-b, ycsb-c; or the groups commit, read, ycsb.
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        workload: Vec<String>,
        /// Engines (default: all in this build): seedbank, fjall, redb, sled, rocksdb.
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        engines: Vec<String>,
        /// Write one JSON object per (engine, workload) to FILE.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Short timed workloads (3 s each instead of 10); still both scales, full size.
        #[arg(long)]
        quick: bool,
        /// Seconds per timed workload (overrides --quick).
        #[arg(long)]
        secs: Option<f64>,
        /// One scale: keys loaded by fill and read by the read workloads (instead of the
        /// default scales, 1M and then 10M).
        #[arg(long, conflicts_with = "scales")]
        keys: Option<u64>,
        /// Several scales, one table each, e.g. `1M,10M` (the default) or `100k,1M`.
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        scales: Vec<String>,
        /// Where the databases go (default: the system temp dir); removed at the end.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Run one engine's part, as a child process of `bench` (internal).
        #[arg(long, hide = true)]
        child: Option<String>,
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
