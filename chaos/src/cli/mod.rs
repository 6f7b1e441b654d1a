//! The chaos commands for a user's own scenarios (D90, D94): `list`, `run` (alias
//! `replay`; `--trace FILE`, `--timeline FILE`), `sweep`, `merge`, `shrink` and
//! `check-determinism`, from a binary target of the user's crate, built in the
//! simulated world:
//!
//! ```ignore
//! // src/bin/chaos.rs of your crate (seedbank a dependency, not only a dev-dependency)
//! #[cfg(madsim)]
//! fn main() -> std::process::ExitCode {
//!     use seedbank::chaos::cli::{Cli, Entry};
//!     Cli::new(vec![Entry::new("counter", scenario(), system())])
//!         .reproduce_with(Cli::cargo_bin(env!("CARGO_PKG_NAME"), env!("CARGO_BIN_NAME")))
//!         .main()
//! }
//! ```
//!
//! then `RUSTFLAGS="--cfg madsim" cargo run --bin chaos -- sweep --seeds 0..100 --jobs 4`;
//! on shards, `sweep … --shard K/N --json shard-K.jsonl` and then `merge shard-*.jsonl
//! --junit junit.xml`; one run's trace and timeline page, `run NAME --seed S --trace
//! trace.jsonl --timeline run.html`.
//!
//! ## Model
//! - `sweep` runs each (entry, seed) in a fresh child process of the same executable
//!   (`run NAME --seed S --child`), `--jobs` at a time, so no process-wide state (tokio's
//!   RNG counter, the user's statics) of one run reaches another, and a seed replays
//!   alone as it ran in the sweep. The child answers with one [`record::RunRecord`] on
//!   stdout; a child that dies without one is an `error` line, not a lost run.
//! - `merge` fits shards' `--json` files together ([`crate::report::merge`]) and prints
//!   what one sweep would: the failures, then the sweep's summary; `--junit` and
//!   `--json` write the JUnit report and the merged lines.
//! - `run --trace/--timeline` write the run's kept trace events (JSON lines) and its
//!   timeline page ([`crate::report::timeline`]).
//! - Every printed reproduce line is the user's own command: the prefix given to
//!   `Cli::reproduce_with` (e.g. `Cli::cargo_bin`), or else this executable's path,
//!   never a Seedbank cargo alias.
//! - `shrink` shrinks in this process (`runner::shrink`), writes the plan file,
//!   and replays it in a fresh child: it says whether the file reproduces the same
//!   failed check there.
//! - `check-determinism` runs the seed in two child processes and compares trace
//!   digests and event counts: exit 0 same, 1 differs, 125 cannot test (`git bisect run`).
//!
//! ## Invariants
//! - Exit codes: 0 every run passed (or the same digest), 1 a check failed (or the
//!   digests differ, or the shrunk plan does not replay), 2 a usage error, 125 no verdict.
//! - `sweep --json` lines are Seedbank's own `sweep --json` lines (one record type,
//!   [`record::RunRecord`]); `--save-failures DIR` appends `SEED  # check: what` to
//!   `DIR/NAME.seeds`, read back by [`crate::host::read_seeds`].
//!
//! ## Fault model
//! A child that cannot start, crashes, or prints no result line is reported as an
//! `error` run with its exit status and the tail of its stderr.
//!
//! - Coverage: every run's record carries the marks it reached; `sweep` and `merge`
//!   print, per scenario, how many runs reached each mark of the scenario's layers
//!   (`Scenario::mark_layers`), the marks none reached, and fail (exit 1) on a missed
//!   `Scenario::must_reach` promise once seeds `0..within` all ran.
//!
//! ## Non-goals
//! Targeted exploration from this CLI: the explorer is the framework's
//! ([`crate::explore`]); Seedbank's own `sweep --explore` drives it, this one not yet.

pub mod args;
#[cfg(madsim)]
mod commands;
#[cfg(madsim)]
mod merge;
pub mod record;
#[cfg(madsim)]
mod sweep;

#[cfg(madsim)]
pub use madsim_only::*;

#[cfg(madsim)]
mod madsim_only {
    use crate::runner::{Scenario, System};
    use clap::{Parser, Subcommand};
    use std::path::PathBuf;
    use std::process::ExitCode;

    /// One scenario the CLI offers: a name, the scenario and the system it runs.
    #[derive(Debug, Clone)]
    pub struct Entry {
        pub(crate) name: String,
        pub(crate) about: String,
        pub(crate) scenario: Scenario,
        pub(crate) system: System,
    }

    impl Entry {
        /// `name` runs `system` under `scenario`. The plans come from the scenario's
        /// own name, so two entries over one scenario (a system with a switch on and
        /// off) draw the same plan for a seed.
        pub fn new(name: &str, scenario: Scenario, system: System) -> Entry {
            Entry {
                name: name.to_string(),
                about: String::new(),
                scenario,
                system,
            }
        }

        /// A line `list` prints after the name.
        pub fn about(mut self, about: &str) -> Entry {
            self.about = about.to_string();
            self
        }
    }

    /// The command line over the user's entries.
    #[derive(Debug, Clone)]
    pub struct Cli {
        pub(crate) entries: Vec<Entry>,
        pub(crate) reproduce: Option<String>,
    }

    #[derive(Parser, Debug)]
    #[command(
        about = "Chaos scenarios of this crate: list, run, sweep, merge, shrink, check-determinism"
    )]
    struct Args {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand, Debug)]
    enum Cmd {
        /// The scenarios.
        List,
        /// One seed (under its own plan, or a plan file): outcome, faults, digest; exit
        /// 1 on a failed check.
        #[command(alias = "replay")]
        Run {
            name: String,
            #[arg(long)]
            seed: u64,
            /// Run under this plan file instead of the seed's own plan.
            #[arg(long)]
            plan: Option<PathBuf>,
            /// Write the client history here (JSON lines, `checkers::history`).
            #[arg(long)]
            history: Option<PathBuf>,
            /// Write the run's trace here (one JSON event per line, `sim_runtime::trace`).
            #[arg(long)]
            trace: Option<PathBuf>,
            /// Write the run's timeline here: one self-contained HTML page (nodes, faults,
            /// partitions, messages, client operations, the verdict).
            #[arg(long)]
            timeline: Option<PathBuf>,
            /// Print the plan the run used.
            #[arg(long)]
            print_plan: bool,
            /// Answer a parent sweep with one result line.
            #[arg(long, hide = true)]
            child: bool,
        },
        /// Many seeds, each in a fresh child process; exit 1 if any failed.
        Sweep {
            /// Scenarios to sweep (default: all).
            names: Vec<String>,
            /// `A..B` (B exclusive) or `N` (= 0..N).
            #[arg(long, default_value = "0..32")]
            seeds: String,
            /// Child processes at a time (default: the cores).
            #[arg(long)]
            jobs: Option<usize>,
            /// Write one JSON object per run to this file.
            #[arg(long)]
            json: Option<PathBuf>,
            /// `K/N`: only the seeds `s` with `s % N == K - 1` (or `auto/N` from
            /// JOB_COMPLETION_INDEX).
            #[arg(long)]
            shard: Option<String>,
            /// Append each failed seed to DIR/NAME.seeds (the corpus your suite replays).
            #[arg(long, value_name = "DIR")]
            save_failures: Option<PathBuf>,
        },
        /// Merge sharded `sweep --json` files into one sweep's summary (exit 1 if a run
        /// failed or a must-reach promise was missed, 2 if the shards do not fit
        /// together).
        Merge(args::MergeArgs),
        /// Shrink a failing seed's plan to a file that `run --plan FILE` replays.
        Shrink {
            name: String,
            #[arg(long)]
            seed: u64,
            #[arg(long)]
            out: PathBuf,
        },
        /// Run a seed in two processes and compare traces: exit 0 same, 1 differs, 125
        /// cannot test (for `git bisect run`).
        CheckDeterminism {
            name: String,
            #[arg(long)]
            seed: u64,
        },
    }

    impl Cli {
        /// A command line over `entries`.
        pub fn new(entries: Vec<Entry>) -> Cli {
            Cli {
                entries,
                reproduce: None,
            }
        }

        /// The command that runs this executable from the user's shell (reproduce
        /// lines print it, then `run NAME --seed S`). Default: this executable's path.
        pub fn reproduce_with(mut self, prefix: impl Into<String>) -> Cli {
            self.reproduce = Some(prefix.into());
            self
        }

        /// `RUSTFLAGS="--cfg madsim" cargo run -p PKG --bin BIN --`: the prefix for a
        /// binary target (`env!("CARGO_PKG_NAME")`, `env!("CARGO_BIN_NAME")`).
        pub fn cargo_bin(package: &str, bin: &str) -> String {
            format!("RUSTFLAGS=\"--cfg madsim\" cargo run -p {package} --bin {bin} --")
        }

        /// `RUSTFLAGS="--cfg madsim" cargo run -p PKG --example NAME --`: the prefix for
        /// an example target.
        pub fn cargo_example(package: &str, example: &str) -> String {
            format!("RUSTFLAGS=\"--cfg madsim\" cargo run -p {package} --example {example} --")
        }

        /// Parses the process's arguments and runs the command.
        pub fn main(self) -> ExitCode {
            self.main_from(std::env::args_os())
        }

        /// Parses `args` (the program name first) and runs the command. Help and
        /// usage errors print and exit as clap does (0 and 2).
        pub fn main_from<I, T>(self, args: I) -> ExitCode
        where
            I: IntoIterator<Item = T>,
            T: Into<std::ffi::OsString> + Clone,
        {
            let args = match Args::try_parse_from(args) {
                Ok(a) => a,
                Err(e) => e.exit(),
            };
            match args.cmd {
                Cmd::List => {
                    for e in &self.entries {
                        let s = &e.scenario;
                        println!(
                            "{:<24} {} nodes, {} clients, {} ops  {}",
                            e.name, s.nodes, s.clients, s.ops, e.about
                        );
                    }
                    ExitCode::SUCCESS
                }
                Cmd::Run {
                    name,
                    seed,
                    plan,
                    history,
                    trace,
                    timeline,
                    print_plan,
                    child,
                } => self.with_entry(&name, |e| {
                    let outputs = commands::Outputs {
                        history: history.as_deref(),
                        trace: trace.as_deref(),
                        timeline: timeline.as_deref(),
                    };
                    commands::run(&self, e, seed, plan.as_deref(), outputs, print_plan, child)
                }),
                Cmd::Merge(m) => {
                    merge::merge(&self, &m.files, m.junit.as_deref(), m.json.as_deref())
                }
                Cmd::Sweep {
                    names,
                    seeds,
                    jobs,
                    json,
                    shard,
                    save_failures,
                } => {
                    let seeds = match args::parse_seeds(&seeds) {
                        Ok(s) => s,
                        Err(e) => return usage(&e),
                    };
                    let shard = match shard.as_deref().map(args::parse_shard).transpose() {
                        Ok(s) => s,
                        Err(e) => return usage(&e),
                    };
                    for n in &names {
                        if self.find(n).is_none() {
                            return usage(&format!("unknown scenario {n:?}; `list` shows them"));
                        }
                    }
                    let names = if names.is_empty() {
                        self.entries.iter().map(|e| e.name.clone()).collect()
                    } else {
                        names
                    };
                    let jobs = jobs.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(1, |n| n.get())
                    });
                    sweep::sweep(
                        &self,
                        &sweep::SweepArgs {
                            names,
                            seeds,
                            jobs,
                            json,
                            shard,
                            save_failures,
                        },
                    )
                }
                Cmd::Shrink { name, seed, out } => {
                    self.with_entry(&name, |e| commands::shrink(&self, e, seed, &out))
                }
                Cmd::CheckDeterminism { name, seed } => {
                    if self.find(&name).is_none() {
                        eprintln!("unknown scenario {name:?}; `list` shows them");
                        return ExitCode::from(125);
                    }
                    commands::check_determinism(&self, &name, seed)
                }
            }
        }

        /// What the reports need of the entries: the user's reproduce command and each
        /// entry's coverage universe and must-reach promises.
        pub(crate) fn promises(&self, name: &str) -> Option<crate::report::record::Promises> {
            let sc = &self.find(name)?.scenario;
            Some(crate::report::record::Promises {
                must_reach: sc.must_reach.clone(),
                universe: sim_runtime::cover::catalog_of(&sc.mark_layers),
            })
        }

        pub(crate) fn find(&self, name: &str) -> Option<&Entry> {
            self.entries.iter().find(|e| e.name == name)
        }

        fn with_entry(&self, name: &str, f: impl FnOnce(&Entry) -> ExitCode) -> ExitCode {
            match self.find(name) {
                Some(e) => f(e),
                None => usage(&format!("unknown scenario {name:?}; `list` shows them")),
            }
        }

        /// The prefix of every reproduce line.
        pub(crate) fn prefix(&self) -> String {
            if let Some(p) = &self.reproduce {
                return p.clone();
            }
            match std::env::current_exe() {
                Ok(exe) => shell_word(&exe.display().to_string()),
                Err(_) => "<this executable>".to_string(),
            }
        }
    }

    /// Runs the command line over `entries` with this executable's path as the
    /// reproduce prefix: `fn main() -> ExitCode { chaos::cli::main(vec![…]) }`.
    pub fn main(entries: Vec<Entry>) -> ExitCode {
        Cli::new(entries).main()
    }

    pub(crate) fn usage(message: &str) -> ExitCode {
        eprintln!("{message}");
        ExitCode::from(2)
    }

    pub(crate) use crate::report::record::shell_word;

    use super::{args, commands, merge, sweep};
}
