//! # engine — Seedbank's database: LSM storage, MVCC + SSI transactions, (later) Raft
//!
//! ## Model
//! - [`mvcc`]: a synchronous, I/O-free transaction core. Snapshots at `begin`,
//!   buffered writes, first-committer-wins, and Serializable Snapshot Isolation after
//!   Cahill, Röhm & Fekete (SIGMOD 2008) with point *and* range (phantom) read tracking.
//!   It runs over any [`mvcc::VersionedStore`]; [`mvcc::MemStore`] is the in-memory one.
//! - [`lsm`]: the storage layers, all I/O through `sim-fs` so they run unchanged in the
//!   real and the simulated world. Today: the write-ahead log with group commit and
//!   torn-tail recovery ([`lsm::wal`]). Memtable, SSTables, manifest and compaction are
//!   issue 3's remaining work.
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
pub mod lsm;
pub mod mvcc;
