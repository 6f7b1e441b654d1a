//! # seedbank — deterministic simulation testing for your own code
//!
//! One dependency for a crate that wants Seedbank: the three gateway crates under short
//! names, and a test harness.
//!
//! | here | crate | what |
//! |------|-------|------|
//! | [`runtime`], [`time`], [`task`], [`rng`], [`buggify!`], [`cover!`] | `sim-runtime` | clocks, tasks, named random streams, nodes (simulation), the run trace, coverage marks |
//! | [`fs`] | `sim-fs` | the file API: `std::fs` in the real world, a per-node disk with a crash model in simulation |
//! | [`net`] | `sim-net` | typed messages between nodes: TCP in the real world, madsim plus partitions, drops, duplicates, delays in simulation |
//! | [`Test`], [`#[seedbank::test]`](macro@test), [`Ctx`] | this crate | run an async test body across seeds |
//! | [`chaos`] | `seedbank-chaos` | chaos scenarios over your nodes: fault plans (swarm choice per seed, JSON files), the shrinker, the simulated runner with history checks |
//!
//! Production code should depend on `sim-runtime`, `sim-fs` and `sim-net` directly (they
//! are small); tests depend on `seedbank` as a dev-dependency. `docs/getting-started.md`
//! in the Seedbank repository walks through a new crate.
//!
//! ## The harness
//! A test is an `async fn` taking a [`Ctx`]:
//!
//! ```
//! # mod wrapper {
//! use seedbank::Ctx;
//!
//! #[seedbank::test(seeds = 32, random_net_faults)]
//! async fn file_round_trip(ctx: Ctx) -> std::io::Result<()> {
//!     let path = ctx.data_dir().join("hello");
//!     seedbank::fs::write(&path, b"hi").await?;
//!     assert_eq!(seedbank::fs::read(&path).await?, b"hi");
//!     Ok(())
//! }
//! # }
//! ```
//!
//! - **Simulated world** (`RUSTFLAGS="--cfg madsim"`, or the `cargo simtest` alias): the
//!   body runs once per seed, each run in a process of its own, forked from a server
//!   process of the test binary that never runs a seed (see [`Isolation`]:
//!   process-wide state such as tokio's RNG counter would otherwise leak from one run
//!   into the next), on a fresh OS thread with a fresh madsim runtime
//!   (`sim_runtime::sim::Sim`), sim-fs's plugin registered, and the fault configuration
//!   the test chose — fixed, or drawn per seed from the named streams
//!   `seedbank.fs_faults` / `seedbank.net_faults`. The first failing seed stops the
//!   sweep and the test panics with the seed, the faults that fired, the panic message
//!   and location, the last trace events, and the one command that replays it:
//!   `SEEDBANK_SEED=17 RUSTFLAGS="--cfg madsim" cargo test -p mycrate --test mytest -- --exact name`.
//! - **Real world** (plain `cargo test`): the body runs once, on a current-thread tokio
//!   runtime, with the real file system (a fresh temporary directory,
//!   [`Ctx::data_dir`]) and real TCP ([`Ctx::addr`] gives free loopback ports). Fault
//!   settings are ignored: faults exist only in simulation.
//!
//! The body may return `()` or `Result<(), E: Debug>`; an `Err` fails the seed.
//!
//! ### Environment (simulated world)
//! | variable | effect |
//! |----------|--------|
//! | `SEEDBANK_SEED=N` | run only seed N (what the reproduce command sets) |
//! | `SEEDBANK_SEEDS=N` or `A..B` | run seeds `0..N`, or `A..B` (B exclusive), instead of the test's own |
//! | `SEEDBANK_JOBS=N` | run N seeds at once (each still on its own fresh thread); `0` = one per core |
//! | `SEEDBANK_CHECK_DETERMINISM=1` | run every seed twice and fail on any difference between the traces, naming the first divergent event and its source line; `only` = the same but the test's own verdict is ignored (for `git bisect run`); `0` = never. Unset: the first seed of each sweep runs twice |
//! | `SEEDBANK_ISOLATION=thread` | run seeds on fresh threads of the test process instead of processes of their own (faster to start, but process-wide state leaks between runs); `=exec` starts a fresh process for every run instead of forking it from a server (the slow reference) |
//! | `SEEDBANK_TRACE=1` | print every run's trace events as they happen, each run opened by a header line; task polls and spawns hidden (`=all` shows them) |
//!
//! [`Test::ignore_env`] makes a test use only its own seeds and determinism setting
//! (meta-tests that assert what a sweep finds use it).
//!
//! ### Escapes from the simulation
//! Code under simulation must reach time, randomness, threads, files and sockets only
//! through the gateway crates. The harness catches the escapes it can see:
//! - an OS thread (`std::thread::spawn`): madsim refuses it inside a run; the failure is
//!   reported as an escape naming the line that spawned it;
//! - a real file or socket, OS entropy (`rand::thread_rng`, `rand::random`, `OsRng`,
//!   `getrandom`) and the real clock asked of the kernel: sim-runtime sees the call as
//!   it happens (simulated world, Linux) and the seed fails as an escape naming the line,
//!   even when the run passed;
//! - anything else that makes two runs of one seed differ (the CPU counter, a randomly
//!   seeded hasher, process-wide state between runs in one process): the double-run
//!   check (on by default for the first seed) reports where the runs part and follows
//!   it to the cause — two more runs with backtraces name the task that behaved
//!   differently and the line of your code it was at;
//! - process-wide state (statics, caches, tokio's RNG counter): every run gets its own
//!   process ([`Isolation::Process`]), so it cannot leak from one run into the next.
//!
//! (The clock needs no net: madsim answers `clock_gettime` with virtual time.)
//!
//! The workspace's `clippy.toml` (copy it, see the guide) bans all of these at compile
//! time; the harness is the net under that lint.

#[cfg(madsim)]
mod child;
mod ctx;
#[cfg(all(madsim, unix))]
mod forkserver;
mod harness;
#[cfg(not(madsim))]
mod real;
#[cfg(madsim)]
mod report;
#[cfg(madsim)]
mod sweep;

pub use ctx::{Ctx, SIM_PORT};
pub use harness::{DeterminismCheck, Isolation, Origin, Outcome, Test, DEFAULT_SEEDS};
#[cfg(madsim)]
pub use report::{Failure, FailureKind, SweepReport};
#[cfg(madsim)]
pub use sim_runtime::escape::Escape;

/// `#[seedbank::test]`: runs an `async fn` across seeds in simulation, once on tokio
/// in the real world.
///
/// The function takes no argument or one [`Ctx`], and returns `()` or
/// `Result<(), E: Debug>`. Arguments are [`Test`] builder calls: `key = value` calls
/// `.key(value)`, a bare `key` calls `.key()`.
///
/// ```
/// # mod wrapper {
/// use seedbank::{fs::FaultConfig, Ctx, DeterminismCheck};
///
/// #[seedbank::test]
/// async fn defaults(ctx: Ctx) {
///     // DEFAULT_SEEDS seeds, no injected faults, first seed checked twice.
///     assert!(ctx.data_dir().is_absolute());
/// }
///
/// #[seedbank::test(
///     seed_range = 1000..1100,
///     fs_faults = FaultConfig::chaos(),
///     random_net_faults,
///     check_determinism = DeterminismCheck::EverySeed,
///     cargo_args = "--features my-feature",
/// )]
/// async fn configured() {}
/// # }
/// ```
pub use seedbank_macros::test;

/// Chaos scenarios for your own nodes: fault plans drawn per seed, replayable from a
/// file and shrinkable, and the simulated runner that executes them and judges the
/// history (the `seedbank-chaos` crate, D85).
pub use chaos;
pub use sim_fs as fs;
pub use sim_net as net;
pub use sim_runtime as runtime;
pub use sim_runtime::{buggify, cover, rng, task, time, SIMULATED};

/// Whether this process is one the harness started to run seeds — a one-seed child or
/// a fork server, which run the test function again up to its sweep — rather than the
/// test run itself. Code around a sweep that must happen once (creating or removing a
/// file outside the simulation) checks it. Always `false` in the real world.
pub fn in_child_process() -> bool {
    #[cfg(madsim)]
    return child::in_child_process();
    #[cfg(not(madsim))]
    false
}

/// Where a test lives, taken at the call site: `seedbank::origin!()`. The harness uses
/// it to print the command that reproduces a failure (`-p <package> --test <target>`).
#[macro_export]
macro_rules! origin {
    () => {
        $crate::Origin {
            package: ::core::env!("CARGO_PKG_NAME"),
            crate_name: ::core::env!("CARGO_CRATE_NAME"),
            file: ::core::file!(),
            module: ::core::module_path!(),
            integration_test: ::core::option_env!("CARGO_TARGET_TMPDIR").is_some(),
        }
    };
}
