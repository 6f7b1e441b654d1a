//! # checkers — judging a recorded history, for any system
//!
//! Pure library code: no runtime, no I/O, no dependency on the engine or the sim crates
//! (only serde and serde_json, for the history format). A test records what its clients
//! asked for and what they were told, and hands the record to a checker; the same
//! checkers judge Seedbank's own database (the `scenarios` runner, the engine's
//! replicated tests) and any other system (D78).
//!
//! ## Model
//! A history is what clients observed, never what the system says about itself
//! (except where a checker is explicitly about a claim the system makes: [`serial`]).
//! - [`history`]: the client history in the Jepsen/Elle JSON-lines format (invoke, then
//!   `ok` / `fail` / `info`), built event by event or parsed from a file.
//! - [`elle`]: serializability of a list-append history, Elle-style: G0, G1a, G1b,
//!   G1c, G-single, G2, each cycle anomaly reported with the cycle that proves it.
//!   Assumes every appended element is unique (it checks that).
//! - [`linear`]: per-key linearizability of a read / write / compare-and-set register
//!   history (Wing–Gong search with memoization, bounded per key). Proves each key's
//!   operations fit one sequential register order inside their real-time windows.
//! - [`durability`]: the three-state durability oracle, checked against the state read
//!   after every recovery: acknowledged writes present, rejected writes never visible,
//!   indeterminate transactions all-or-nothing and stable once decided. Assumes unique
//!   values per key and a store that commits in real-time order.
//! - [`serial`]: the replay of a claimed serial order, for a system that reports where
//!   each commit landed (a Raft log index, a sequencer number, a commit timestamp): the
//!   reads must equal the replay, points must be distinct and respect real time, and
//!   the final state must equal the replay of every acknowledged commit.
//!
//! ## Invariants
//! - Deterministic: ordered maps and sets only, so the same record gives the same
//!   verdict and the same text every run.
//! - Sound under each checker's stated model: every "invalid" verdict is a history no
//!   correct system can produce, and carries its evidence (a cycle, a prefix and a
//!   blocked operation, a key and the transactions involved).
//! - Total: malformed input is an error value ([`history::HistoryError`],
//!   [`linear::LinearError`], [`durability::DurabilityError`]) or a reported anomaly,
//!   never a panic.
//! - Each checker has tests that feed it a bad history and see it fail (`src/tests/`).
//!
//! ## Fault model (what a history may contain)
//! - Indeterminate outcomes: an `info` completion, or an invocation never completed (a
//!   timeout, a client or node crash before the reply). [`elle`], [`linear`] and
//!   [`durability`] treat such an operation as "took effect, all of it, at some instant
//!   after its invocation — or never". [`serial`] needs definite outcomes (its clients
//!   retry until they know) and reports an indeterminate one as a violation.
//! - Crashes and recoveries of the system under test: [`durability`] is told of each
//!   (`Oracle::crash`) and checks the state read after it.
//! - Anything the system does wrong: lost, duplicated, reordered, stale or invented
//!   values; the checkers never trust the system's own bookkeeping beyond what reads
//!   confirm.
//!
//! ## Non-goals
//! - Real-time (strict serializability) edges in Elle; models other than registers in
//!   the linearizability checker (queues, sets, counters).
//! - Recording: how a history is collected (clients, clocks, the runner) is the
//!   caller's business; `scenarios` records its workloads, the engine's tests record
//!   theirs.
//! - Liveness: whether the system answered after the faults healed is judged by the
//!   runner, online, against its own deadline (not a property of a finished history).

#![warn(missing_docs)]

pub mod durability;
pub mod elle;
mod graph;
pub mod history;
pub mod linear;
pub mod serial;

#[cfg(test)]
mod tests;
