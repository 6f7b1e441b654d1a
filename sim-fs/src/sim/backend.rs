//! Simulated-world backend of the public API: every call sleeps its injected latency
//! (virtual time), then passes the node's op barrier (`barrier.rs`) and runs against
//! the node's disk in the same step.

use crate::api::{Metadata, Opts};
use crate::sim::disk::{normalize, Disk, HandleRef};
use crate::sim::faults::Dice;
use crate::sim::plugin::{current_node, try_with_disk, with_disk};
use sim_runtime::trace::{self, EventKind};
use sim_runtime::NodeId;
use std::io;
use std::path::{Path, PathBuf};

/// An open simulated file: a handle on one node's disk, valid for one process epoch.
#[derive(Debug)]
pub(crate) struct File {
    node: NodeId,
    handle: HandleRef,
    path: PathBuf,
}

/// Sleeps the latency drawn for one operation on `node`, if any.
async fn latency(node: NodeId) {
    if let Some(d) = with_disk(node, |_, dice| dice.latency()) {
        sim_runtime::time::sleep(d).await;
    }
}

/// Runs one op (`what`, on `path`) on `node`'s disk if its op barrier admits it;
/// otherwise the op never runs and this never returns.
async fn gated<R>(
    node: NodeId,
    what: &str,
    path: &Path,
    f: impl FnOnce(&mut Disk, &mut Dice) -> io::Result<R>,
) -> io::Result<R> {
    let ran = with_disk(node, |d, dice| {
        if d.barrier.admit() {
            Ok(f(d, dice))
        } else {
            Err(d.barrier.performed)
        }
    });
    match ran {
        Ok(res) => res,
        Err(performed) => {
            trace::record(
                EventKind::File,
                format!(
                    "op barrier node {node}: holds {what} {} after {performed} ops",
                    path.display()
                ),
            );
            std::future::pending().await
        }
    }
}

pub(crate) async fn open(opts: Opts, path: &Path) -> io::Result<File> {
    let node = current_node();
    latency(node).await;
    let path = normalize(path)?;
    let handle = gated(node, "open", &path, |disk, _| disk.open(opts, &path)).await?;
    Ok(File { node, handle, path })
}

impl File {
    pub(crate) async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        latency(self.node).await;
        gated(self.node, "read_at", &self.path, |d, dice| {
            d.read_at(&self.handle, &self.path, buf, offset, dice)
        })
        .await
    }

    pub(crate) async fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        latency(self.node).await;
        gated(self.node, "write_all_at", &self.path, |d, dice| {
            d.write_at(&self.handle, &self.path, buf, Some(offset), dice)
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        latency(self.node).await;
        gated(self.node, "append", &self.path, |d, dice| {
            d.write_at(&self.handle, &self.path, buf, None, dice)
        })
        .await
    }

    pub(crate) async fn set_len(&self, len: u64) -> io::Result<()> {
        latency(self.node).await;
        gated(self.node, "set_len", &self.path, |d, dice| {
            d.set_len(&self.handle, &self.path, len, dice)
        })
        .await
    }

    pub(crate) async fn len(&self) -> io::Result<u64> {
        latency(self.node).await;
        gated(self.node, "len", &self.path, |d, _| {
            d.len(&self.handle, &self.path)
        })
        .await
    }

    pub(crate) async fn sync_data(&self) -> io::Result<()> {
        latency(self.node).await;
        gated(self.node, "sync", &self.path, |d, dice| {
            d.sync(&self.handle, &self.path, dice)
        })
        .await
    }

    pub(crate) async fn sync_all(&self) -> io::Result<()> {
        self.sync_data().await
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let handle = self.handle;
        try_with_disk(self.node, |d| d.close(&handle));
    }
}

/// Runs a namespace operation (`what`, on `path`) on the current node after its
/// latency, through the op barrier.
async fn on_current<R>(
    what: &str,
    path: &Path,
    f: impl FnOnce(&mut Disk, &mut Dice) -> io::Result<R>,
) -> io::Result<R> {
    let node = current_node();
    latency(node).await;
    gated(node, what, path, f).await
}

pub(crate) async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (normalize(from)?, normalize(to)?);
    on_current("rename", &from, |d, _| d.rename(&from, &to)).await
}

pub(crate) async fn remove_file(path: &Path) -> io::Result<()> {
    let path = normalize(path)?;
    on_current("remove_file", &path, |d, _| d.remove_file(&path)).await
}

pub(crate) async fn create_dir_all(path: &Path) -> io::Result<()> {
    let path = normalize(path)?;
    on_current("create_dir_all", &path, |d, _| d.create_dir_all(&path)).await
}

pub(crate) async fn read_dir(path: &Path) -> io::Result<Vec<PathBuf>> {
    let norm = normalize(path)?;
    let names = on_current("read_dir", &norm, |d, _| d.read_dir(&norm)).await?;
    // Like std: entries are the given path joined with each name.
    Ok(names.into_iter().map(|n| path.join(n)).collect())
}

pub(crate) async fn sync_dir(path: &Path) -> io::Result<()> {
    let path = normalize(path)?;
    on_current("sync_dir", &path, |d, dice| d.sync_dir(&path, dice)).await
}

pub(crate) async fn metadata(path: &Path) -> io::Result<Metadata> {
    let path = normalize(path)?;
    on_current("metadata", &path, |d, _| d.metadata(&path)).await
}

pub(crate) async fn exists(path: &Path) -> io::Result<bool> {
    let path = normalize(path)?;
    on_current("exists", &path, |d, _| Ok(d.exists(&path))).await
}

/// A held directory lock on a node's simulated disk, for one process epoch.
#[derive(Debug)]
pub(crate) struct DirLock {
    node: NodeId,
    dir: PathBuf,
    epoch: u64,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        try_with_disk(self.node, |d| {
            if d.locks
                .get(&self.dir)
                .is_some_and(|(e, _)| *e == self.epoch)
            {
                d.locks.remove(&self.dir);
            }
        });
    }
}

pub(crate) async fn lock_dir(dir: &Path, holder: &str) -> Result<DirLock, crate::LockError> {
    let node = current_node();
    let path = normalize(dir).map_err(|error| crate::LockError::Io {
        dir: dir.to_path_buf(),
        error,
    })?;
    let holder = format!("node {node} ({holder})");
    with_disk(node, |d, _| {
        if d.cached_ns.get(&path) != Some(&crate::sim::disk::Entry::Dir) {
            return Err(crate::LockError::Io {
                dir: dir.to_path_buf(),
                error: crate::sim::disk::os_err(2),
            });
        }
        // A lock of an earlier process epoch died with that process (kill, crash).
        match d.locks.get(&path) {
            Some((epoch, who)) if *epoch == d.epoch => Err(crate::LockError::Held {
                dir: dir.to_path_buf(),
                holder: who.clone(),
            }),
            _ => {
                d.locks.insert(path.clone(), (d.epoch, holder));
                Ok(DirLock {
                    node,
                    dir: path.clone(),
                    epoch: d.epoch,
                })
            }
        }
    })
}
