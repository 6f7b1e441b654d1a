//! # sim-runtime — the one gateway to time, randomness, tasks, nodes, buggify and the trace
//!
//! Seedbank code runs unchanged in two worlds. Built normally it runs on tokio and the
//! real clock; built with `RUSTFLAGS="--cfg madsim"` it runs on madsim, where one seed
//! decides every clock tick, scheduling choice and random draw. This crate is the only
//! place above the OS that reads a clock, draws a random number or starts a task; the
//! workspace's `clippy.toml` bans the alternatives everywhere else.
//!
//! ## Model
//! - [`time`]: virtual time in simulation, with per-node clock offset and drift
//!   ([`node::Node::set_clock`]); tokio's clock in the real world.
//! - [`rng`]: independent named streams (`rng::stream("raft.election")`), each a
//!   ChaCha8 generator keyed by the run's seed and the stream's name, so adding a draw
//!   in one component never reshuffles another's.
//! - [`task`]: spawn; every task spawned here gets a per-run id and its spawn and polls
//!   go into the trace.
//! - [`node`] (simulation only): create, crash (power loss: reaches sim-fs through its
//!   madsim plugin), kill (process death, page cache kept), restart, pause, resume.
//! - [`buggify!`]: FoundationDB semantics. Each call site is enabled or not once per run,
//!   from the seed and the site's location; an enabled site fires with its probability.
//!   Always false in the real world.
//! - [`cover!`]: coverage marks — named situations worth reaching; each run counts
//!   its hits and a sweep reports which marks it reached and which it never did.
//! - [`trace`]: every observable event (task spawn/poll, file op, message, fault, client
//!   op, `tracing` events from user code) with node, task, virtual time and source
//!   location, folded into a running digest with checkpoints.
//!   [`summary::summary`] names a serde message by its variant path
//!   (`Raft(AppendEntries)`) for the trace, without encoding it.
//! - [`sim`] (simulation only): [`sim::Sim`] runs a closure on a fresh thread with a
//!   fresh madsim runtime for a seed and returns its [`sim::RunReport`] (with the
//!   escape recognised in its panic, [`escape`]); [`sim::check_determinism`] runs it
//!   twice, names the first divergent event, and follows it to the task that behaved
//!   differently and its line in the user's code with a probe re-run ([`probe`]).
//!
//! ## Invariants
//! - Per-run state (streams, buggify sites, trace, fault counters, clocks) lives in a
//!   thread-local created at the start of a run; every run starts on a fresh thread, so
//!   nothing leaks between seeds.
//! - The trace digest is a pure function of the sequence of recorded events; two runs
//!   of the same seed and binary must produce the same digest.
//!
//! ## Fault model
//! This crate injects no faults itself; it provides the node operations (crash, kill,
//! pause, clock skew) and the counters ([`faults`]) that sim-fs, sim-net and the
//! scenario runner use to report which faults fired.
//!
//! - Escapes (simulated world, Linux): sim-runtime overrides libc's `open`, `open64`,
//!   `socket` and `syscall` (forwarding every call) to note, inside a run, a real file,
//!   a real socket, OS entropy or the kernel's clock, with the user's line
//!   (`RunReport::escapes`); an OS thread is recognised from madsim's refusal
//!   ([`escape`]).
//!
//! ## Non-goals
//! - Multi-threaded simulation: a simulated run is single-threaded by construction.
//! - Determinism for code that bypasses this crate (OS threads, `rand::thread_rng`):
//!   that is what the lint, the escapes and the double-run check are for.

pub mod buggify;
pub mod cover;
#[cfg(madsim)]
mod divergence;
pub mod escape;
pub mod faults;
#[cfg(all(madsim, target_os = "linux"))]
mod intercept;
pub mod probe;
pub mod rng;
mod state;
pub mod summary;
pub mod sync;
pub mod task;
pub mod time;
pub mod trace;
#[cfg(madsim)]
mod trace_layer;

#[cfg(madsim)]
pub mod node;
#[cfg(madsim)]
pub mod sim;

pub use trace::{record, EventKind};

/// A node's identity: the one spelling every layer uses for it (sim-fs's disks, sim-net's
/// endpoints, Raft's voters, traces, probes). In the simulated world it is madsim's node
/// number (1, 2, …; 0 is the supervisor, outside any node); madsim's own handle type is
/// `node::MadsimNodeId`, and `node::node_id_of` turns one into a `NodeId`.
pub type NodeId = u64;

/// True when this build is the simulated world (`--cfg madsim`).
pub const SIMULATED: bool = cfg!(madsim);

/// The seed of the current run. In simulation, madsim's seed; in the real world, the
/// seed the real-world streams were keyed with (see `rng::set_real_world_seed`, real world only).
pub fn seed() -> u64 {
    state::seed()
}
