//! Typed errors of the storage layers.

use std::path::Path;

use super::wal::WalError;

/// An error of the LSM storage. `Clone`, so one failure can be handed to every waiter.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LsmError {
    /// An I/O operation failed. Writes and syncs that fail also poison the store.
    #[error("i/o error during {op} on {path}: {message}")]
    Io {
        /// What was being done (`"read table block"`, `"sync manifest"`, …).
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Bytes on disk are not what was written: a checksum, magic number, length or
    /// structural check failed. Nothing read from the damaged part is returned.
    #[error("corruption in {path}: {detail}")]
    Corruption {
        /// The damaged file.
        path: String,
        /// What check failed.
        detail: String,
    },
    /// An earlier write or fsync failed: the store refuses every call until it is
    /// reopened (fail-stop).
    #[error("storage poisoned by an earlier failure (fail-stop; reopen the database): {0}")]
    Poisoned(String),
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// Options that cannot work (a zero block size, …).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

impl From<crate::framing::TooLarge> for LsmError {
    fn from(e: crate::framing::TooLarge) -> LsmError {
        LsmError::Wal(WalError::from(e))
    }
}

impl LsmError {
    /// Whether this error reports damaged bytes on disk (as opposed to a failed
    /// operation that may succeed on retry or after a reopen).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            LsmError::Corruption { .. } | LsmError::Wal(WalError::Corrupt { .. })
        )
    }
}

/// An I/O error on `path` during `op`.
pub(crate) fn io(op: &'static str, path: &Path, e: std::io::Error) -> LsmError {
    LsmError::Io {
        op,
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Corruption of `path`.
pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> LsmError {
    LsmError::Corruption {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Results of the storage layers.
pub type Result<T, E = LsmError> = std::result::Result<T, E>;
