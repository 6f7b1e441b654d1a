//! # scenarios — workloads, fault plans, checkers, the runner and the `seedbank` CLI
//!
//! ## Model
//! A scenario is a workload, a topology, a fault plan and the checks that must hold.
//! Today this crate holds the CLI skeleton, the crash demo (a simulated node loses power
//! mid-write and recovery shows what survived) and `check-determinism` for it; the
//! scenario runner (sweeps, fault plans as data, oracles, shrinking) is issue 5.
//!
//! ## Invariants
//! - Everything here runs through sim-runtime, sim-fs and sim-net; nothing touches the
//!   clock, randomness, threads, files or sockets directly (clippy.toml enforces it).
//!   The one exception is the real-world-only `seedbank shell` on a terminal: its line
//!   editor (rustyline) reads the terminal and keeps a history file (D56).
//! - A run is a pure function of its seed (and plan): `check-determinism` proves it.
//!
//! ## Fault model
//! Whatever sim-fs and sim-net inject, plus node crashes from sim-runtime.
//!
//! ## Non-goals
//! - Real-world fault injection: faults exist only in the simulated world.

pub mod chatter;
pub mod check;
pub mod cli;
pub mod demo_crash;
pub mod demo_write_skew;
pub mod determinism;
pub mod runner;
pub mod shell;
pub mod workload;
