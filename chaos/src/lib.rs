//! # chaos — chaos scenarios for any system
//!
//! Fault plans as data, a shrinker, and a simulated runner over *your* nodes: the
//! powers Seedbank's own database scenarios have, for a service you wrote on
//! `sim-runtime`, `sim-fs` and `sim-net` (D85). Re-exported as `seedbank::chaos`.
//!
//! ```ignore
//! use seedbank::chaos::runner::{self, Observed, Scenario, System};
//! let scenario = Scenario::new("counter", 3, 3);
//! let system = System::new(|n| serve(n.id, n.addr, n.peers, n.dir))   // each (re)start
//!     .client(|c| workload(c))              // records every op in c.recorder
//!     .read_state(|r| read_after_recovery(r)) // registers + facts
//!     .invariant(|history, observed| my_invariant(history, observed));
//! let (_, failure) = runner::sweep(&scenario, &system, 0..32);
//! if let Some(f) = failure {
//!     let shrunk = runner::shrink(&scenario, &system, f);
//!     chaos::host::write_plan(path, &shrunk.plan)?;   // replays with runner::run
//! }
//! ```
//!
//! ## Model
//! - [`plan`]: every fault of a run is decided before it starts, from the seed, into a
//!   [`plan::FaultPlan`]: disk and message fault rates for the whole run, and timed
//!   steps (power loss of node 2 at t=1.3 s, partition {1} | {2,3} for 2 s…). Swarm
//!   choice: each seed first draws which fault kinds are on, then rates and times. A
//!   plan prints, writes to JSON and reads back ([`host`]), and carries the system's own
//!   per-seed settings ([`plan::Settings`], opaque here).
//! - [`explore`]: targeted exploration — a corpus of the runs that reached rare
//!   coverage marks, and children of them (forks at a mark, a fault timed by a mark,
//!   mutated plans) that spend the sweep's budget where marks are rarely hit.
//! - [`shrink`]: ddmin over the timed steps, then each probabilistic kind off, then a
//!   smaller operation budget; a candidate counts only if its run fails the same way.
//! - `runner` (madsim build): `N` server nodes, each a simulated node with its own disk
//!   and address and an init run at start and every restart; clients on nodes of their
//!   own record every operation in a [`recorder::Recorder`] (invoke, then ok / fail /
//!   info); nodes may claim leadership (`runner::Leadership`) so that plans aim faults
//!   at the leader; after the faults heal and every node loses power and recovers, the state
//!   read back is judged by the `checkers` crate (durability oracle over the register
//!   writes, linearizability, Elle) and by the user's invariant. `Scenario::faults`
//!   names the fault kinds a plan may draw; `aim_at_leader`, `leader_churn`,
//!   `recovery_crashes` and `io_crashes` (on by default) turn the compound kinds off.
//! - [`report`]: the reports of a run and a sweep for any system (D94): one record type
//!   for a sweep's lines, merging sharded `--json` files, JUnit XML, the HTML timeline
//!   of a run (from its trace, history, plan and verdict). Seedbank's own CLI reports
//!   through it too.
//!
//! ## Invariants
//! - A run is a pure function of (scenario, seed, plan): the plan is drawn from its own
//!   stream before the run, and the run is one simulated world on a fresh thread and
//!   runtime, so a plan file replays the failure it was shrunk from.
//! - Checks judge what clients observed and what the system shows after recovery,
//!   never its internal bookkeeping.
//! - The first failed check is the verdict, named (`durability`, `linearizability`,
//!   `elle`, `invariant`, `liveness`, `history`, `panic`, `runner`) with its message.
//!
//! ## Fault model
//! Power loss (sim-fs's crash model: unsynced writes lost, torn or kept) and process
//! death with restarts, pauses, clock jumps and drift, symmetric and one-way partitions
//! and clogged links between server nodes, message drop / duplicate / reorder / delay /
//! reset, and disk faults (EIO on read, write, fsync; torn and reordered unsynced
//! writes; bit flips at power loss). A node whose init returns has stopped
//! (fail-stop) and is restarted by the runner's supervisor.
//!
//! ## Non-goals (this slice)
//! - Process isolation inside `runner::sweep`: runs of one process share process-wide
//!   state (tokio's RNG counter, the user's statics), so a replay in another process may
//!   take another path to the same verdict; [`cli`]'s `sweep` runs each seed in a fresh
//!   process instead.
//! - Real-world runs of the runner, faults among clients. (A user crate's
//!   `sweep`/`merge`/`run --timeline`/`shrink`/`check-determinism`, with process
//!   isolation per run: [`cli`].)

#![warn(missing_docs)]

/// The history checkers (`checkers` crate): the history format and its judges.
pub use checkers;

pub mod cli;
pub mod explore;
pub mod host;
pub mod plan;
#[cfg(madsim)]
pub mod recorder;
pub mod report;
#[cfg(madsim)]
pub mod runner;
pub mod shrink;
