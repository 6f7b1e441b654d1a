//! # engine — Seedbank's database: LSM storage, MVCC + SSI transactions, Raft
//!
//! ## Model
//! The modules form a DAG, bottom up (DECISIONS.md D66; `scripts/module-graph --check`
//! fails CI if an import cycle crosses folders): [`kv`] (keys, values, timestamps, key
//! ranges) → [`mvcc`] and [`lsm`] (neither imports the other) → [`db`] → [`raft`]
//! (imports none of them) → [`replicated`]; [`canary`] is a leaf anyone may ask.
//! - [`kv`]: the shared vocabulary: [`Key`], [`Value`], [`Timestamp`],
//!   [`kv::KeyRange`], [`kv::WriteSet`], [`kv::Version`] (one committed version of a key).
//! - [`mvcc`]: a synchronous, I/O-free transaction core. Snapshots at `begin`,
//!   buffered writes, first-committer-wins, and Serializable Snapshot Isolation after
//!   Cahill, Röhm & Fekete (SIGMOD 2008) with point *and* range (phantom) read tracking.
//!   [`Db`] pairs it with the LSM store; the tests also run it over `MemStore`, an
//!   in-memory reference model compiled for tests only.
//! - [`lsm`]: the storage layers, all I/O through `sim-fs` so they run unchanged in the
//!   real and the simulated world: WAL with group commit, memtable, SSTables with
//!   bloom filters and checksums, a byte-bounded block cache of verified decoded
//!   blocks (per open store), manifest, leveled compaction, recovery.
//! - [`db`]: the embedded, asynchronous database: [`Db::open`], [`Db::begin`],
//!   [`Txn::get`]/[`Txn::put`]/[`Txn::delete`]/[`Txn::scan`], [`Txn::commit`] →
//!   [`CommitOutcome`], [`Txn::rollback`], [`Db::close`]. Its module doc states the
//!   commit protocol and the visibility watermark.
//! - [`raft`]: a synchronous, I/O-free Raft state machine (pre-vote, check-quorum,
//!   fast backtracking, snapshots, ReadIndex) with a persist-then-send `Ready`
//!   contract, and [`raft::safety`], the cluster-wide safety checker. Its module doc
//!   states the model, invariants, fault model and non-goals.
//! - [`replicated`]: the same transaction API over a Raft group: a replica task per
//!   node (Raft log and hard state on disk, an embedded [`Db`] as the state machine,
//!   sim-net transport), deterministic backward-OCC validation of whole transactions
//!   in log order (strict serializability), client retries deduplicated by
//!   (client id, sequence), snapshots and log compaction.
//! - [`canary`]: deliberate named bugs behind the `canary` feature, for the meta-test
//!   that proves the simulator catches them.
//!
//! ## Invariants
//! - A commit that returns success is durable: it survives any crash sim-fs allows.
//! - A serialization conflict is an outcome (`CommitOutcome::Aborted`), not an error;
//!   read-only transactions never abort at commit.
//! - After a failed fsync the component that saw it fails every later call (fail-stop).
//!
//! ## Fault model
//! Everything sim-fs can do: lost, torn and reordered unsynced writes, lost directory
//! operations, fsync failure that drops dirty data, EIO, ENOSPC, bit flips. Bad bytes on
//! disk give a typed error or are cut back as a torn tail, never a panic.
//!
//! ## Non-goals
//! - OS threads or thread pools: the engine runs on tasks so the simulator schedules it.
//! - SQL.

pub mod canary;
pub mod db;
pub mod framing;
pub mod kv;
pub mod lsm;
pub mod mvcc;
pub mod raft;
pub mod replicated;
#[cfg(test)]
mod testscripts;

pub use db::{Db, DbStats, Error, ReadStats, ReadTxn, Result, Txn};
pub use kv::{Key, Timestamp, Value};
pub use lsm::{Options, Rows};
pub use mvcc::{CommitOutcome, Conflict, TxnId};
