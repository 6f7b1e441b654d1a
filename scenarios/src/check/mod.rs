//! # check — the checkers a scenario's client history must pass
//!
//! Pure library code: no runtime, no I/O. A workload records what its clients did, and
//! the scenario hands the record to a checker:
//! - [`history`]: the client history, Jepsen/Elle JSON lines (`run --history FILE`).
//! - [`elle`]: serializability of a list-append history, Elle-style (G0 … G2, with the
//!   cycle that proves each).
//! - [`linear`]: per-key linearizability of a register history (Wing–Gong search with
//!   memoization, bounded).
//! - [`durability`]: the three-state durability oracle checked after every recovery.
//! - [`graph`]: the dependency graph under Elle (edges, Tarjan SCCs, shortest cycles).
//!
//! ## Invariants
//! - Deterministic: ordered maps and sets only, so the same record gives the same
//!   verdict and the same text every run.
//! - Every "invalid" verdict carries its evidence (a cycle, a prefix and a blocked
//!   operation, a key and the transactions involved).
//!
//! ## Non-goals
//! - Real-time (strict serializability) edges in Elle; models other than registers in
//!   the linearizability checker.

pub mod durability;
pub mod elle;
pub mod graph;
pub mod history;
pub mod linear;

#[cfg(test)]
mod tests;
