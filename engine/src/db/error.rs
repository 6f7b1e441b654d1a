//! Errors of the embedded database.

use crate::lsm::LsmError;
use crate::mvcc::{self, Conflict};

/// An error of a [`super::Db`] call. A serialization conflict at commit is *not* an
/// error but [`crate::mvcc::CommitOutcome::Aborted`]; `Error::Txn(mvcc::Error::Aborted)`
/// is what the other calls of a transaction the engine already aborted return
/// ([`Error::conflict`] finds it).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The transaction layer refused the call: [`mvcc::Error::Aborted`] (a conflict;
    /// retry all of it), [`mvcc::Error::NotActive`] (already committed or rolled back),
    /// [`mvcc::Error::ReadOnly`] (a write in a transaction begun read-only) or
    /// [`mvcc::Error::InvalidRange`]. Never `Store` or `Poisoned`: a failure below the
    /// transaction layer is this database's [`Error::Poisoned`].
    #[error(transparent)]
    Txn(mvcc::Error),
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
            Error::Txn(e) => e.conflict(),
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
    fn from(e: crate::kv::InvalidRange) -> Error {
        Error::Txn(e.into())
    }
}

impl From<mvcc::Error> for Error {
    fn from(e: mvcc::Error) -> Error {
        match e {
            mvcc::Error::Poisoned(why) => Error::Poisoned(why),
            // The core reports a failed apply (log + memtable) and poisons itself.
            mvcc::Error::Store(e) => Error::Poisoned(e.to_string()),
            e => Error::Txn(e),
        }
    }
}

/// Results of the database.
pub type Result<T, E = Error> = std::result::Result<T, E>;
