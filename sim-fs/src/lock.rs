//! One process per directory (D54): an exclusive, advisory lock on a directory,
//! identical in both worlds.
//!
//! Real world: `DIR/LOCK` opened and locked with `File::try_lock` (flock on Linux; held
//! per open file, so a second opener in the same process is refused too), released
//! when the [`DirLock`] is dropped or the process dies. The holder's description (pid
//! and what it is) is written into the file so a refused opener can say who holds it.
//! Simulated world: the lock lives on the node's simulated disk, tied to the process
//! epoch; a kill or power loss of the node releases it (no file is written, so the
//! crash model's file set is unchanged).

use crate::backend;
use sim_runtime::trace::{self, EventKind};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The lock file's name inside a locked directory (real world).
pub const LOCK_FILE: &str = "LOCK";

/// Why [`lock_dir`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another holder has the directory.
    Held {
        /// The directory.
        dir: PathBuf,
        /// Who holds it, as the holder described itself (empty if unknown).
        holder: String,
    },
    /// The lock file could not be opened, read or written.
    Io {
        /// The directory.
        dir: PathBuf,
        /// The error.
        error: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { dir, holder } if holder.is_empty() => {
                write!(f, "{} is in use by another process", dir.display())
            }
            LockError::Held { dir, holder } => {
                write!(f, "{} is in use by {holder}", dir.display())
            }
            LockError::Io { dir, error } => {
                write!(f, "cannot lock {}: {error}", dir.display())
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { error, .. } => Some(error),
            LockError::Held { .. } => None,
        }
    }
}

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    _inner: backend::DirLock,
    dir: PathBuf,
}

impl DirLock {
    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Takes the exclusive lock on `dir` (which must exist) for a holder described by
/// `holder` (e.g. "seedbank node 2"); the process id is added in the real world. Fails
/// at once with [`LockError::Held`] if anyone holds it.
#[track_caller]
pub fn lock_dir(
    dir: impl AsRef<Path>,
    holder: &str,
) -> impl std::future::Future<Output = Result<DirLock, LockError>> + Send {
    let loc = std::panic::Location::caller();
    let dir = dir.as_ref().to_path_buf();
    let holder = holder.to_string();
    async move {
        let res = backend::lock_dir(&dir, &holder).await;
        if trace::is_recording() {
            let outcome = match &res {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("err {e}"),
            };
            trace::record_at(
                EventKind::File,
                format_args!("lock_dir {} -> {outcome}", dir.display()),
                loc.file(),
                loc.line(),
            );
        }
        res.map(|inner| DirLock { _inner: inner, dir })
    }
}
