//! # bench — `seedbank bench`: the embedded database against peer engines
//!
//! Real world only (under `--cfg madsim` this crate is empty): real threads, the real
//! disk, the wall clock.
//!
//! ## Model
//! - **Engines** ([`spec::EngineKind`]): `seedbank` (the `engine` crate, SSI on) and,
//!   behind the `peers` feature, `fjall`, `redb`, `sled` and `rocksdb`. Each runs in its
//!   durable mode through its transactional API where it has one; [`engines::mode`]
//!   states which, and the output repeats it per engine.
//! - **Workloads** ([`spec::Workload`]): 16-byte keys, 100-byte values, in this order:
//!   `fill` (N keys in a seeded random order, 1,000 per durable commit); `commit-1/4/16`
//!   (durable single-key read-modify-write transactions, uniform keys, from 1/4/16
//!   threads); `read-1/2` (uniform point reads); `scan` (100-key ranges, 1 thread);
//!   `ycsb-a/b/c` (50/95/100% reads, the rest durable single-key writes, Zipfian
//!   θ = 0.99 scrambled over the N keys, 2 threads). Workloads that read the keys get an
//!   unmeasured fill first when `fill` itself is not selected.
//! - **One child process per engine** ([`child`]): the parent ([`run`]) re-executes the
//!   same binary as `seedbank bench --child ENGINE …`; the child opens the engine in its
//!   own directory, runs the workloads one after another on that database, and prints
//!   one JSON [`report::Record`] per workload on stdout. So memory figures are per
//!   engine, and a crashing engine loses only its own results.
//! - **Measured per (engine, workload)**: operations per second over the wall time of
//!   the workload (all threads, from start to the last thread's stop); per-operation
//!   latency in an `hdrhistogram` (p50, p99, p99.9, max; `fill`'s unit is one 1,000-key
//!   commit); transactions retried after a serialization conflict; peak RSS (the child
//!   writes `5` to `/proc/self/clear_refs` before each workload, then reads `VmHWM`;
//!   where the reset is refused the figure is the peak so far, and the record says so);
//!   bytes on disk when the workload ends (allocated blocks of every file under the
//!   engine's directory, and the apparent size).
//! - **Repeatable keys**: every thread draws from a ChaCha8 generator seeded by
//!   (workload, thread), so every engine sees the same key sequence.
//! - **Output**: a table per workload with each peer's ops/s as a ratio to Seedbank's
//!   (`> 1` means the peer is faster), and `--json FILE`: one [`report::Record`] per line.
//!
//! ## Non-goals
//! - Tuning peers: every engine runs with its defaults, except what durability needs.
//! - Statistical rigour: one run per figure, no warm-up beyond the preceding workloads,
//!   background compaction may still run when a workload starts. Treat ratios under
//!   ~1.2x as noise on a shared 2-core machine.
//! - Simulated-world measurement: that is `cargo simbench` (the simulator's own speed).

// A real-world benchmark measures wall time (std::time), runs OS threads and walks and
// removes real directories (std::fs): exactly what the determinism lint bans elsewhere.
// This crate is never part of a simulation, so the whole crate opts out.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![cfg(not(madsim))]

pub mod child;
pub mod engines;
pub mod measure;
pub mod report;
pub mod run;
pub mod spec;
pub mod zipf;

pub use run::{main, Args};
