//! # scenarios — workloads, fault plans, checkers, the runner and the `seedbank` CLI
//!
//! ## Model
//! A scenario is a workload, a topology, a fault plan and the checks that must hold.
//! - [`runner`]: scenarios, fault plans as data, one run, sweeps, replay, shrinking,
//!   exploration, coverage promises, the HTML timeline; [`workload`]: what the clients
//!   do; [`check`]: the checkers their history must pass (the `checkers` crate,
//!   re-exported here so `scenarios::check::…` paths keep working).
//! - [`cli`]: the `seedbank` command line; the crash demo ([`demo_crash`]: a simulated
//!   node loses power mid-write and recovery shows what survived), the write-skew demo,
//!   [`determinism`] (`check-determinism`), and [`chatter`], the simulator's benchmark
//!   workload.
//!
//! The real-world commands live here too: the shell, `seedbank node` with its
//! credentials (`credentials`: `--certs DIR`, `--cert/--key/--ca`, `--insecure`, and
//! `seedbank certs`), and `seedbank bench-net` (`netbench`: TLS against plaintext).
//! `impostor` is the adversary of the `impostor-cluster` scenario, shared with the
//! real-world test that aims it at a TLS cluster on loopback.
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
/// The history checkers: the [`checkers`] crate (pure library code; D78).
pub use checkers as check;
pub mod cli;
pub mod credentials;
pub mod demo_crash;
pub mod demo_write_skew;
pub mod determinism;
pub mod impostor;
// Real world only. `doctest` too: `cargo test` under `--cfg madsim` runs rustdoc
// without that cfg against sim-net built with it, which has no `tls` module.
#[cfg(not(any(madsim, doctest)))]
pub mod netbench;
pub mod runner;
pub mod shell;
pub mod workload;
