//! # MVCC + Serializable Snapshot Isolation
//!
//! The transaction core of the engine: multi-version snapshots, buffered writes,
//! first-committer-wins, and SSI after Cahill, Röhm & Fekete (SIGMOD 2008) with the
//! commit-ordering and read-only refinements of Ports & Grittner (VLDB 2012). It is
//! synchronous, I/O-free and storage-agnostic: [`TxnCore`] holds the whole protocol and
//! never touches a store; the caller reads committed data itself, *outside* the core's
//! lock, and reports what it read. The asynchronous [`crate::Db`] pairs it with the LSM
//! store; for the tests, `TxnManager` pairs it with a synchronous `VersionedStore`
//! (`MemStore`, the in-memory reference model; all three are compiled for tests only).
//!
//! ```text
//!   Txn handle ──► TxnManager / Db ──► TxnCore (one Mutex, no I/O)
//!                     │                  └─ Ssi: active + retained committed records
//!                     │                       (snapshot, reads, ranges, writes, rw-edges)
//!                     └─ store reads at the snapshot, lock-free ──► MemStore | LsmStore
//! ```
//!
//! ## Model
//! - Timestamps: every commit gets `latest + 1` (read-only commits too, so commit order
//!   is a total order of distinct timestamps). A transaction's *snapshot* is `latest` at
//!   `begin`; it sees exactly the versions with commit ts ≤ snapshot, plus its own
//!   buffered writes (deletes are tombstones; scans merge them).
//! - Writes are buffered in the manager until commit; the store only ever holds
//!   committed versions. An aborted transaction therefore leaves no trace.
//! - `T1 →rw T2` (rw-antidependency): T1 read a key, or scanned a range, into which T2
//!   wrote a version T1's snapshot does not contain, and the two were concurrent. Since
//!   writes are buffered, an edge is known only once its writer has committed; it is
//!   found from whichever side comes second:
//!   - *reader side* ([`TxnCore::record_read`], [`TxnCore::record_scan`], after the
//!     store was read): the reader looks for retained committed transactions with
//!     commit ts > its snapshot whose write set meets what it read. This is the case
//!     naive SSI implementations miss: the writer committed *before* the reader's read
//!     was recorded — including in the window between the store read and its record.
//!   - *writer side* ([`TxnCore::prepare_commit`]): the committing writer looks at the read
//!     sets and scanned ranges of every concurrent transaction, active or committed
//!     after the writer's snapshot.
//! - Dangerous structure: `T1 →rw T2 →rw T3` where T3 committed first of the three
//!   (T1 may be T3). If T1 is read-only, additionally T3 committed before T1's snapshot
//!   (otherwise T1 can be serialized first and no cycle exists). Every non-serializable
//!   SI history contains one, so aborting one transaction of each one found is enough.
//! - Victim: the transaction whose action completes the structure, which is always one
//!   that has not committed. At a commit that is the committer (as pivot T2, or as a T1
//!   that read while read-only and then wrote); at a read, the reader (the pivot and T3
//!   have committed: Fekete's read-only anomaly ends here, with the read-only reader
//!   aborted because nothing else can be). An active transaction cannot be a pivot:
//!   its in-edges appear only when it commits.
//! - Read-only optimisation: a transaction with no writes is judged by the read-only
//!   rule while it has none. If it writes later, the structures it joined while
//!   read-only are re-checked at its commit. A transaction that never writes is never
//!   aborted at commit, and aborts at a read only in the Fekete case above.
//! - Doomed transactions: the engine aborts an active transaction early when the
//!   outcome is already certain: a read that completes a dangerous structure, a write to
//!   a key a concurrent transaction already committed (first *updater* wins), or another
//!   transaction committing a key it has buffered. Its `get`/`put`/`delete`/`scan`
//!   return [`Error::Aborted`]; its `commit` returns [`CommitOutcome::Aborted`] with the
//!   same [`Conflict`]; `rollback` acknowledges it.
//!
//! ## Reads that register nothing
//! A point read of one key at the watermark ([`TxnCore::read_point`]) and a read-only
//! transaction at a *safe snapshot* ([`TxnCore::begin_read_only`]: no transaction that
//! may still write predates it) cannot close a cycle, so they skip the graph; a
//! read-only transaction at an unsafe snapshot runs tracked. [`readonly`] has the
//! argument; `specs/SSI.tla` (config `SSI_readonly`) checks it.
//!
//! ## Reads outside the lock
//! A read is `read_start` (snapshot, or the transaction's own write) → store read at the
//! snapshot with no lock held → `record_read` (read set + reader-side check). The
//! snapshot's versions never change (GC keeps everything a snapshot at or above the
//! oldest active one can see), so what was read is exactly what the snapshot holds. A
//! concurrent writer `w` of the key is caught whatever the interleaving: if `w`
//! validates after the record, by its writer-side check; if before, `w` is retained
//! (it committed after the reader's snapshot and the reader is active) and the
//! reader-side check in the record finds it. The exhaustive tests enumerate every
//! interleaving of the split steps.
//!
//! ## Commit protocol
//! [`TxnCore::prepare_commit`], under the core's lock: (1) validate without changing
//! anything: first committer wins against the retained committed write sets (every
//! version newer than an active snapshot was written by a transaction retained for
//! exactly that reason), then the dangerous-structure tests, choosing ts = allocated +
//! 1; (2) run the caller's `apply` (log the commit, insert it into the store,
//! invisibly), record it as committed in the graph, add the writer-side edges, doom
//! concurrent transactions that buffered one of the keys. An `apply` failure poisons
//! the core (fail-stop): the store may hold part of the commit. Then
//! [`TxnCore::publish`] moves the visibility watermark (the snapshot of new
//! transactions) once the commit is durable; `TxnManager` publishes at once (its
//! store is memory), [`crate::Db`] when the WAL fsync returns (see [`crate::db`]).
//!
//! ## Invariants (checked by [`TxnCore::verify_invariants`] after every operation in
//! debug builds)
//! - visible ≤ allocated. Every committed record has snapshot < commit ts ≤ allocated;
//!   active snapshots lie in `[gc horizon, visible]`; active records have no in-edges.
//! - Every edge `r → w` is mirrored (`w.in ∋ r`), targets a retained committed record
//!   with the recorded commit ts, joins concurrent transactions (`r` did not see `w`;
//!   if `r` committed, it committed after `w`'s snapshot), and is never a self-edge.
//! - A committed record is retained exactly while some transaction, active or yet to
//!   begin, can be concurrent with it (commit ts > the oldest active snapshot, or >
//!   `visible` when none is active); then it is collected, and out-edges to it fold
//!   into a summary (`out_gc_min`) so later structure tests still see it.
//! - No active transaction holds a buffered write to a key with a version newer than its
//!   snapshot (first committer wins was enforced early).
//! - No committed pivot sits in a dangerous structure with a committed T1, nor with an
//!   active T1 under the read-only rule.
//!
//! ## Specification
//! `specs/SSI.tla` (written separately) models this protocol; its actions map to:
//! `Begin` → [`TxnCore::begin`]; `Read` → [`TxnCore::read_start`] +
//! [`TxnCore::record_read`]; `ScanRange` → [`TxnCore::scan_start`] +
//! [`TxnCore::record_scan`]; `Write` → [`TxnCore::put`] / [`TxnCore::delete`];
//! `Commit` → [`TxnCore::prepare_commit`] when validation passes (then `publish`);
//! `Abort` → [`TxnCore::rollback`], a failed validation, and the engine dooming a
//! transaction. [`crate::Db`] (and the tests' `TxnManager`) call these in this order.
//!
//! ## Non-goals
//! - Granularity escalation (page or predicate locks): read sets and ranges are exact,
//!   and memory is bounded only by the number of concurrent transactions.
//! - Streaming scans: a scan returns the whole range.

mod core;
// The synchronous manager over a `VersionedStore`, and `MemStore`: the reference model
// the tests run the protocol (and the LSM store) against; compiled for tests only, so
// the public transaction handles are `Db`'s and the replicated client's (D69).
#[cfg(test)]
mod manager;
pub mod readonly;
mod ssi;
#[cfg(test)]
mod store;
mod types;

#[cfg(test)]
mod tests;

pub use self::core::{ManagerState, Prepared, ReadStart, TxnCore, TxnInfo};
#[cfg(test)]
pub use manager::{Txn, TxnManager};
pub use readonly::ReadOnlyStart;
pub use ssi::SsiCanary;
#[cfg(test)]
pub use store::{MemStore, VersionedStore};
pub use types::{CommitOutcome, Conflict, Error, StoreError, TxnId};
// The shared vocabulary, re-exported: the transaction API speaks it (D66).
pub use crate::kv::{cmp_keys, show, Key, KeyRange, Timestamp, Value, Version, WriteSet};
