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
//! - **Scales** ([`spec::parse_scales`], [`run::scales`]): the whole run (every engine,
//!   every workload) at each key count in turn, smallest first: 1M keys (~116 MB of
//!   live data, inside Seedbank's 256 MiB block cache) and 10M (~1.16 GB, several times
//!   it) by default; `--keys N` runs one scale, `--scales 100k,1M,…` others. One table
//!   per scale.
//! - **One child process per engine and scale** ([`child`]): the parent ([`run`])
//!   re-executes the same binary as `seedbank bench --child ENGINE --keys N …`; the child
//!   opens the engine in its own directory, runs the workloads one after another on that
//!   database, and prints one JSON [`report::Record`] per workload on stdout. So memory
//!   and I/O figures are per engine and scale, and a crashing engine loses only its own
//!   results.
//! - **Measured per (engine, workload)**: operations per second over the wall time of
//!   the workload (all threads, from start to the last thread's stop); per-operation
//!   latency in an `hdrhistogram` (p50, p99, p99.9, max; `fill`'s unit is one 1,000-key
//!   commit); transactions retried after a serialization conflict; peak RSS (the child
//!   writes `5` to `/proc/self/clear_refs` before each workload, then reads `VmHWM`;
//!   where the reset is refused the figure is the peak so far, and the record says so);
//!   bytes on disk when the workload ends (allocated blocks of every file under the
//!   engine's directory, and the apparent size), and as space amplification over the
//!   live data (keys × (16 + 100) bytes).
//! - **Write amplification** ([`measure::IoCounters`]): bytes the child process wrote,
//!   from `/proc/self/io` read just before the workload and again once the background
//!   work it caused has settled (the engine's settle, then no growth of the counters for
//!   1 s, at most 30 s), over the bytes of keys and values the workload wrote. Two
//!   counters, both kept: `write_bytes` − `cancelled_write_bytes` (pages the process
//!   dirtied, charged a whole page — on kernels with large folios, a whole folio — per
//!   clean-to-dirty transition; `wchar` instead where the kernel keeps no `write_bytes`)
//!   and `wchar` (bytes passed to write calls, no rounding). Seedbank also reports its
//!   own count ([`engines::Engine::bytes_written`]: WAL and table bytes, `LsmStats`).
//! - **Settled before each timed workload**: the child first waits until the engine's
//!   background flushes and compactions are done ([`engines::Engine::settle`]: Seedbank
//!   `Db::wait_idle`; fjall polls its active compactions and sealed journals; RocksDB
//!   cannot be asked through the crate's `TransactionDB`; redb and sled have nothing to
//!   wait for), so a workload is not measured against the previous one's leftovers —
//!   above all, the commit workloads against `fill`'s compactions. The wait is printed,
//!   not measured; [`engines::mode`]'s `settle` says what each engine does.
//! - **A disk baseline** ([`disk`]): before the engines run, the parent times 150-byte
//!   writes + `fdatasync` in the same directory — into preallocated, synced space, and
//!   appending — and prints their p50/p99 in the header, `commit-1`'s p50 as a ratio to
//!   the preallocated one at the end, and both as `--json` records of engine `disk`.
//!   The probes run again after the engines (`fdatasync-*-end`): a shared disk's speed
//!   drifts within minutes, and a drift beyond 1.5x is reported. Each child also runs a
//!   short preallocated probe just before each commit workload, after settling
//!   (`disk_p50_us` in that workload's record). On a VM the CPU a waiting thread runs on
//!   matters too: a wake-up from the disk's interrupt on another CPU costs an IPI, tens
//!   of µs per fdatasync (DECISIONS D35), and neither the probe nor an engine chooses it.
//! - **Repeatable keys**: every thread draws from a ChaCha8 generator seeded by
//!   (workload, thread), so every engine sees the same key sequence.
//! - **Output**: a table per workload with each peer's ops/s as a ratio to Seedbank's
//!   (`> 1` means the peer is faster), and `--json FILE`: one [`report::Record`] per line.
//!
//! ## Non-goals
//! - Tuning peers: every engine runs with its defaults, except what durability needs.
//! - Statistical rigour: one run per figure, no warm-up beyond the preceding workloads.
//!   Background work is settled before each timed workload, but only as far as each
//!   engine lets us see (not RocksDB's). Treat ratios under ~1.2x as noise on a shared
//!   2-core machine; the disk baseline shows how fast the disk was during the run.
//! - Simulated-world measurement: that is `cargo simbench` (the simulator's own speed).

// A real-world benchmark measures wall time (std::time), runs OS threads and walks and
// removes real directories (std::fs): exactly what the determinism lint bans elsewhere.
// This crate is never part of a simulation, so the whole crate opts out.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![cfg_attr(madsim, allow(rustdoc::broken_intra_doc_links))] // the crate is empty there
#![cfg(not(madsim))]

pub mod child;
pub mod disk;
pub mod engines;
pub mod measure;
pub mod report;
pub mod run;
pub mod spec;
pub mod zipf;

pub use run::{main, Args};
