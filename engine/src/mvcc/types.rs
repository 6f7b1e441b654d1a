//! Names for the things the transaction layer talks about beyond the shared vocabulary
//! ([`crate::kv`]): transaction ids, conflicts, outcomes and errors.

use std::fmt;
use std::sync::Arc;

use crate::kv::{show, InvalidRange, Key, Timestamp};

/// A transaction's identity, unique for the life of a [`super::TxnCore`]; assigned in
/// `begin` order starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn{}", self.0)
    }
}

/// Why a transaction was aborted. A conflict is an *outcome* the caller retries, never
/// an [`Error`] of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// First-committer-wins: `key` is in this transaction's write set and another
    /// transaction committed a version of it at `committed`, after this transaction's
    /// snapshot.
    WriteWrite {
        /// The contended key.
        key: Key,
        /// The commit timestamp of the version that won.
        committed: Timestamp,
    },
    /// A dangerous structure `t1 →rw pivot →rw t3` (Cahill et al. 2008), where `t3`
    /// committed first, was found; this transaction is the victim. `t1` may equal `t3`
    /// (plain write skew). `t1 →rw pivot` means `t1` read a version that `pivot`
    /// overwrote (or a range `pivot` wrote into) without seeing `pivot`'s write.
    Serialization {
        /// The reader at the start of the structure.
        t1: TxnId,
        /// The transaction with both an incoming and an outgoing rw-antidependency.
        pivot: TxnId,
        /// The first of the three to commit.
        t3: TxnId,
    },
}

impl Conflict {
    /// A short, stable name for the kind of conflict (`"write-write"`, `"serialization"`),
    /// e.g. for the shell's JSON `reason`.
    pub fn kind(&self) -> &'static str {
        match self {
            Conflict::WriteWrite { .. } => "write-write",
            Conflict::Serialization { .. } => "serialization",
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::WriteWrite { key, committed } => {
                write!(
                    f,
                    "write-write conflict on {} (committed {committed})",
                    show(key)
                )
            }
            Conflict::Serialization { t1, pivot, t3 } => {
                write!(
                    f,
                    "serialization failure: {t1} →rw {pivot} →rw {t3} (pivot {pivot})"
                )
            }
        }
    }
}

/// The result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The transaction committed; its writes are visible to snapshots at or after `ts`.
    Committed {
        /// The commit timestamp.
        ts: Timestamp,
    },
    /// The transaction was aborted and left no trace; retry it.
    Aborted(Conflict),
}

/// An error from the storage below the transaction layer. Shared (`Arc`), so an error
/// can be cloned and handed to every waiter; two are equal when their messages are.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(#[source] pub Arc<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps any error (or a message: `StoreError::new("…")`).
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError(Arc::from(e.into()))
    }
}

impl PartialEq for StoreError {
    fn eq(&self, other: &StoreError) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StoreError {}

/// Errors of the transaction layer: misuse, storage failure, and operations on a
/// transaction the engine has already aborted. [`crate::db::Error`] wraps it
/// ([`crate::db::Error::Txn`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The transaction was aborted by the engine (a conflict). `get`/`put`/`delete`/`scan`
    /// report this; `commit` reports the same conflict as [`CommitOutcome::Aborted`].
    /// Retry the whole transaction.
    #[error("transaction aborted: {0}")]
    Aborted(Conflict),
    /// The transaction has already committed or rolled back, or never existed.
    #[error("{0} is not active (already committed, rolled back, or unknown)")]
    NotActive(TxnId),
    /// A write in a transaction begun read-only.
    #[error("{0} is read-only: it cannot write")]
    ReadOnly(TxnId),
    /// A scan range whose start lies after its end.
    #[error("invalid key range: start is after end")]
    InvalidRange,
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An earlier failure while applying a commit left the store in an unknown state;
    /// the database must be reopened (fail-stop).
    #[error("transaction manager poisoned by an earlier failure: {0}")]
    Poisoned(String),
}

impl From<InvalidRange> for Error {
    fn from(_: InvalidRange) -> Error {
        Error::InvalidRange
    }
}

impl Error {
    /// The conflict, when this error means "aborted, retry".
    pub fn conflict(&self) -> Option<&Conflict> {
        match self {
            Error::Aborted(c) => Some(c),
            _ => None,
        }
    }
}
