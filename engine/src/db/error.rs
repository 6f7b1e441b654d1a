//! Errors of the embedded database.

use crate::lsm::LsmError;
use crate::mvcc::{self, Conflict, TxnId};

/// An error of a [`super::Db`] call. A serialization conflict at commit is *not* an
/// error but [`crate::mvcc::CommitOutcome::Aborted`]; [`Error::Aborted`] is what the
/// other calls of a transaction the engine already aborted return.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The transaction was aborted by the engine (a conflict); retry all of it.
    #[error("transaction aborted: {0}")]
    Aborted(Conflict),
    /// The transaction has already committed or rolled back.
    #[error("{0} is not active (already committed, rolled back, or unknown)")]
    NotActive(TxnId),
    /// A write in a transaction begun read-only.
    #[error("{0} is read-only: it cannot write")]
    ReadOnly(TxnId),
    /// A scan range whose start lies after its end.
    #[error("invalid key range: start is after end")]
    InvalidRange,
    /// An earlier write or fsync failed: every call fails until the database is reopened
    /// (which recovers it from disk).
    #[error("database poisoned by an earlier failure (fail-stop; reopen it): {0}")]
    Poisoned(String),
    /// The storage failed (an I/O error on a read, or damaged bytes on disk).
    #[error(transparent)]
    Storage(LsmError),
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
    /// Another process (or another open handle) holds the directory (D54).
    #[error("{path} is in use by {holder}; one process per database directory")]
    Locked {
        /// The directory.
        path: String,
        /// Who holds it, as it described itself (pid and role in the real world).
        holder: String,
    },
    /// The directory could not be created or its lock file opened.
    #[error("cannot lock {path}: {reason}")]
    LockFailed {
        /// The directory.
        path: String,
        /// The OS error.
        reason: String,
    },
}

impl Error {
    /// The conflict, when this error means "aborted, retry".
    pub fn conflict(&self) -> Option<&Conflict> {
        match self {
            Error::Aborted(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the database refuses all work until it is reopened.
    pub fn is_fail_stop(&self) -> bool {
        matches!(self, Error::Poisoned(_))
    }

    /// Whether bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Storage(e) if e.is_corruption())
    }
}

impl From<LsmError> for Error {
    fn from(e: LsmError) -> Error {
        match e {
            LsmError::Poisoned(why) => Error::Poisoned(why),
            LsmError::Closed => Error::Closed,
            e => Error::Storage(e),
        }
    }
}

impl From<crate::kv::InvalidRange> for Error {
    fn from(_: crate::kv::InvalidRange) -> Error {
        Error::InvalidRange
    }
}

impl From<mvcc::Error> for Error {
    fn from(e: mvcc::Error) -> Error {
        match e {
            mvcc::Error::Aborted(c) => Error::Aborted(c),
            mvcc::Error::NotActive(id) => Error::NotActive(id),
            mvcc::Error::ReadOnly(id) => Error::ReadOnly(id),
            mvcc::Error::InvalidRange => Error::InvalidRange,
            mvcc::Error::Poisoned(why) => Error::Poisoned(why),
            // The core reports a failed apply (log + memtable) and poisons itself.
            mvcc::Error::Store(e) => Error::Poisoned(e.to_string()),
        }
    }
}

/// Results of the database.
pub type Result<T, E = Error> = std::result::Result<T, E>;
