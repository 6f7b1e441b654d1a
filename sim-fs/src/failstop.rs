//! [`FailStopDir`]: fsync of a directory shared by several tasks, fail-stop.
//!
//! A failed `sync_dir` may drop every unsynced entry of that directory (creations,
//! renames, removals), and a later `sync_dir` can then succeed without them — the
//! directory version of fsyncgate. When two tasks create files in one directory (a WAL
//! writer rotating segments, a background task writing tables), one task's *successful*
//! sync can therefore come right after the other's failed one and still not cover its
//! own new entry. Found by the scenario runner (DECISIONS.md D15): a table's entry was
//! lost that way and the manifest then named a missing file.
//!
//! So every task syncs the directory through one shared `FailStopDir`: once any sync
//! of it has failed, every sync — including one that was in flight and returned ok —
//! reports failure, and the owner must fail-stop and recover.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A directory whose syncs are fail-stop across every task that shares it.
#[derive(Debug)]
pub struct FailStopDir {
    path: PathBuf,
    failed: AtomicBool,
}

impl FailStopDir {
    /// A syncer for the directory at `path`; nothing has failed yet.
    pub fn new(path: impl Into<PathBuf>) -> FailStopDir {
        FailStopDir {
            path: path.into(),
            failed: AtomicBool::new(false),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a sync of this directory has failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Makes the directory's entries durable; an error if this or any earlier (or
    /// concurrent) sync of it failed.
    pub async fn sync(&self) -> io::Result<()> {
        self.check()?;
        if let Err(e) = crate::sync_dir(&self.path).await {
            self.failed.store(true, Ordering::SeqCst);
            return Err(e);
        }
        // Another task's sync may have failed while ours was in flight.
        self.check()
    }

    fn check(&self) -> io::Result<()> {
        if self.failed() {
            return Err(io::Error::other(format!(
                "an earlier sync of {} failed: its entries may be lost (fail-stop)",
                self.path.display()
            )));
        }
        Ok(())
    }
}
