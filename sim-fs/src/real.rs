//! Real-world backend: `std::fs` with positional I/O (`FileExt`). Reads and writes are
//! blocking calls (fast on a page cache); syncs block in place (see [`blocking`]).

// sim-fs is one of the three crates allowed to touch the world: this module IS the real
// file system behind the API, so std::fs is what it must use.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use crate::api::{Metadata, Opts};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An open real file.
#[derive(Debug)]
pub(crate) struct File {
    file: Arc<std::fs::File>,
    /// Serializes `append` (length read + write) through this handle.
    append_lock: Mutex<()>,
}

pub(crate) async fn open(opts: Opts, path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(opts.read)
        .write(opts.write)
        .create(opts.create)
        .create_new(opts.create_new)
        .truncate(opts.truncate)
        .append(opts.append)
        .open(path)?;
    Ok(File {
        file: Arc::new(file),
        append_lock: Mutex::new(()),
    })
}

/// Runs a blocking call (an fsync) where blocking is allowed, without a thread hand-off
/// on the caller's path: in place on a multi-thread runtime (tokio hands the worker's
/// other tasks to another thread meanwhile), directly outside any runtime, and on the
/// blocking pool only on a current-thread runtime, which cannot block in place. Passing
/// every fsync to the blocking pool cost two thread wake-ups per commit (D28).
#[cfg(not(doctest))]
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::CurrentThread => pooled(f).await,
        _ => tokio::task::block_in_place(f),
    }
}

/// The simulated world's doctests make rustdoc compile this module without
/// `--cfg madsim` (RUSTFLAGS do not reach rustdoc) against madsim-tokio, which has
/// neither `block_in_place` nor `RuntimeFlavor`; that build never runs it.
#[cfg(doctest)]
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    pooled(f).await
}

async fn pooled<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("sim-fs blocking task failed: {e}")))?
}

impl File {
    pub(crate) async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    pub(crate) async fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    pub(crate) async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        let _guard = sim_runtime::sync::lock(&self.append_lock);
        let offset = self.file.metadata()?.len();
        self.file.write_all_at(buf, offset)?;
        Ok(offset)
    }

    pub(crate) async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    pub(crate) async fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub(crate) async fn sync_data(&self) -> io::Result<()> {
        let file = self.file.clone();
        blocking(move || file.sync_data()).await
    }

    pub(crate) async fn sync_all(&self) -> io::Result<()> {
        let file = self.file.clone();
        blocking(move || file.sync_all()).await
    }
}

pub(crate) async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

pub(crate) async fn remove_file(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)
}

pub(crate) async fn create_dir_all(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

pub(crate) async fn read_dir(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path)? {
        out.push(entry?.path());
    }
    out.sort();
    Ok(out)
}

pub(crate) async fn sync_dir(path: &Path) -> io::Result<()> {
    let path = path.to_path_buf();
    blocking(move || std::fs::File::open(&path)?.sync_all()).await
}

pub(crate) async fn metadata(path: &Path) -> io::Result<Metadata> {
    let m = std::fs::metadata(path)?;
    Ok(Metadata {
        len: m.len(),
        is_dir: m.is_dir(),
    })
}

pub(crate) async fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A held directory lock: the open, locked `LOCK` file (closing it releases the lock).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: std::fs::File,
}

// `File::try_lock` is stable since Rust 1.89; the toolchain here is 1.95. The
// workspace's rust-version (1.80) is left for the lead to raise: raising it turns on
// MSRV-gated lints (e.g. `manual_is_multiple_of`) in ~24 places other crates own.
#[allow(clippy::incompatible_msrv)]
pub(crate) async fn lock_dir(dir: &Path, holder: &str) -> Result<DirLock, crate::LockError> {
    use std::io::{Read, Seek, Write};
    let io_err = |error: io::Error| crate::LockError::Io {
        dir: dir.to_path_buf(),
        error,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(crate::lock::LOCK_FILE))
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            // Best effort: the holder may be rewriting it; the lock is what counts.
            let _ = (&file).take(1024).read_to_string(&mut text);
            return Err(crate::LockError::Held {
                dir: dir.to_path_buf(),
                holder: text.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    let who = format!("pid {} ({holder})\n", std::process::id());
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    file.write_all(who.as_bytes()).map_err(io_err)?;
    Ok(DirLock { _file: file })
}
