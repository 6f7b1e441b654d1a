//! # fuzz — every decoder fed hostile bytes, on stable Rust (D55)
//!
//! cargo-fuzz needs nightly; this crate is a small coverage-free fuzzer that runs on the
//! stable toolchain. Each [`Target`] is a `fn(&[u8])` that hands its bytes to one
//! decoder of the project; the [`driver`] mutates a seed corpus (`fuzz/corpus/TARGET/`)
//! with a seeded `rand_chacha` generator, so a run is reproducible from its seed.
//!
//! ## Model
//! - **Mutations** ([`mutate`]): bit flips, byte sets, inserts, deletes, duplicated
//!   ranges, splices with another corpus input, and length-prefix tweaks (a little-endian
//!   u32 or a varint rewritten to 0, 1, a nearby or a huge value) — the shapes that
//!   reach the length checks of every format here.
//! - **Checksums**: a target whose format is checksummed has a `fix` that recomputes
//!   its checksums; every input then runs twice, raw (the checksum must reject it) and
//!   fixed (the parser behind the checksum is reached).
//! - **Findings**: a panic, or a single allocation larger than
//!   `64 × input length + 64 KiB` (plus the target's stated slack) while the target
//!   runs. The input is written to `fuzz/findings/TARGET-<crc>.bin` and the run fails.
//!   Every finding, once fixed, joins the corpus as a regression input.
//!
//! ## Invariants
//! - Decoders never panic and never allocate from a claim (a length prefix, a count)
//!   before the bytes that back it are there.
//! - A run is a function of (target, seed, corpus, iterations): the time limit only
//!   decides how many iterations run.
//!
//! ## Non-goals
//! - Coverage guidance (no instrumentation on stable); the corpus and the format-aware
//!   mutations stand in for it. Semantic checks beyond "no panic, bounded allocation".
#![cfg_attr(madsim, allow(rustdoc::broken_intra_doc_links))] // the crate is empty there
#![cfg(not(madsim))]
// A command-line tool outside every simulation: it reads and writes its corpus with
// std::fs and measures wall time to stop.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod alloc;
pub mod driver;
pub mod mutate;
pub mod targets;

pub use driver::{run, RunReport};

#[cfg(test)]
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;
pub use targets::{Target, TARGETS};
