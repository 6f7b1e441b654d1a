//! The scenario runner: scenarios, fault plans as data, one run, sweeps, replay,
//! shrinking, the seed corpus; merging a sharded sweep's parts into one report
//! (`merge`, with JUnit XML for CI dashboards). The reports — the record type, merge,
//! JUnit and its strict reader `xml`, the timeline — are the framework's
//! (`chaos::report`, D94); `record`, `merge` and `timeline` here supply what is
//! Seedbank's own: `cargo sim replay` and the built-in scenarios' promises.
//!
//! ## Model
//! A [`scenario::Scenario`] names a workload, a topology, the fault kinds it may suffer
//! and (optionally) a fixed fault schedule. For each seed the runner draws a
//! [`plan::FaultPlan`] *before* the run (swarm testing: which kinds are on, their
//! rates, timed crashes/partitions), runs the workload in the simulator under it,
//! and checks the history and every recovered state. A run is a pure function of
//! (scenario, seed, plan): `replay` and `check-determinism` rely on it.
//!
//! ## Invariants
//! - Every run starts on a fresh thread with a fresh runtime; `sweep` gives each its
//!   own process as well.
//! - A failing run's record carries the one command that reproduces it.
//! - Checks never read the engine's internals to decide correctness: histories are
//!   judged from what clients saw.
//! - A failed check names what it points at ([`world::Involved`]: keys and the
//!   history indexes of the operations) where it can — durability, linearizability —
//!   and the timeline ([`timeline`]) highlights exactly those.
//!
//! ## Fault model
//! Power loss and process death with restarts, pauses, clock skew, partitions (one-way
//! too), link clogging, and sim-fs/sim-net's probabilistic faults.
//!
//! ## Non-goals
//! - Running outside the madsim build: the CLI says how to get one.
//! - A timeline that scales past what one page can hold: it draws the events the run
//!   kept (`DEFAULT_KEEP_LIMIT`), aggregating dense kinds rather than sampling them.

#[cfg(madsim)]
pub mod client;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
mod cluster_faults;
pub mod commands;
#[cfg(madsim)]
pub mod embedded;
pub mod explore;
pub mod host;
#[cfg(madsim)]
pub mod impostor;
pub mod merge;
pub mod must_reach;
pub mod plan;
pub mod record;
#[cfg(madsim)]
pub mod run;
pub mod scenario;
pub mod shrink;
#[cfg(madsim)]
pub mod simbench;
pub mod store;
pub mod sweep;
#[cfg(madsim)]
pub mod timeline;
pub mod tuning;
pub mod world;
pub use chaos::report::{junit, xml};

/// Fault counter of the power loss the runner itself injects after the workload, before
/// its final recovery check (not a planned fault: `node.crash` counts only those).
pub const FINAL_POWER_LOSS: &str = "runner.final_power_loss";
/// Fault counter of a restart after the engine fail-stopped (a supervisor's restart,
/// not a planned fault: `node.kill` counts only those).
pub const FAIL_STOP_RESTART: &str = "runner.fail_stop_restart";
