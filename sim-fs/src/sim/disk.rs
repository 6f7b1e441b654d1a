//! The simulated disk of one node: inodes with a cached and a durable image, a cached
//! and a durable namespace, and the unsynced operations between them.
//!
//! - `cached_ns` / `Inode::cached` are what the running process sees (the page cache).
//! - `durable_ns` / `Inode::durable` are what is on the platter.
//! - `Inode::pending` are the data operations (writes, `set_len`s) issued since the
//!   file's last sync, in issue order; `pending_dir` the directory operations issued
//!   since their parent's last `sync_dir`, in issue order.
//!
//! Unless a failed sync dropped some ops (`Inode::diverged`), replaying an inode's
//! pending ops on its durable image gives its cached image. A power loss (see
//! `crash.rs`) replaces both cached views by the durable ones after letting a random
//! subset of the pending ops land.

use crate::sim::barrier::OpBarrier;
use crate::sim::stats::FsStats;
use crate::FaultConfig;
use sim_runtime::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};

pub(crate) type Ino = u64;

/// Sector size of the simulated disk: torn writes tear on these boundaries (absolute
/// file offsets), bit flips hit one of these.
pub const SECTOR_SIZE: u64 = 512;

pub(crate) const ENOENT: i32 = 2;
pub(crate) const EIO: i32 = 5;
pub(crate) const EBADF: i32 = 9;
pub(crate) const EEXIST: i32 = 17;
pub(crate) const ENOTDIR: i32 = 20;
pub(crate) const EISDIR: i32 = 21;
pub(crate) const EINVAL: i32 = 22;
pub(crate) const ENOSPC: i32 = 28;

pub(crate) fn os_err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// A directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Dir,
    File(Ino),
}

/// An unsynced data operation on an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl DataOp {
    /// Applies the op to `image` (a write past the end zero-fills the gap).
    pub(crate) fn apply(&self, image: &mut Vec<u8>) {
        match self {
            DataOp::Write { offset, data } => write_into(image, *offset, data),
            DataOp::SetLen(len) => image.resize(to_usize(*len), 0),
        }
    }

    fn apply_len(&self, len: u64) -> u64 {
        match self {
            DataOp::Write { offset, data } if !data.is_empty() => {
                len.max(offset + data.len() as u64)
            }
            DataOp::Write { .. } => len,
            DataOp::SetLen(l) => *l,
        }
    }
}

pub(crate) fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("sim-fs: file offset does not fit in memory")
}

pub(crate) fn write_into(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(data);
}

/// One file's contents.
#[derive(Debug, Default)]
pub(crate) struct Inode {
    pub cached: Vec<u8>,
    pub durable: Vec<u8>,
    pub pending: Vec<DataOp>,
    /// Open handles of the current process epoch.
    pub open_handles: u64,
    /// A failed sync dropped pending ops: the cache holds data the disk never will.
    pub diverged: bool,
    /// Where the last write a successful sync made durable begins. A bit flipped at or
    /// after it lands in the newest durable bytes, which a log reads as a torn tail
    /// (`fs.bitflip_tail`); one before it lands in data an older sync settled.
    pub synced_tail: Option<u64>,
}

impl Inode {
    /// Counts a flip of durable byte `byte`: `fs.bitflip`, and `fs.bitflip_tail` too
    /// when it lands in the newest synced write or after it.
    pub(crate) fn count_flip(&self, byte: u64) {
        sim_runtime::faults::count("fs.bitflip");
        if self.synced_tail.is_some_and(|start| byte >= start) {
            sim_runtime::faults::count("fs.bitflip_tail");
        }
    }
}

/// An unsynced directory operation. It becomes durable when its `parent()` is synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirOp {
    Create {
        path: PathBuf,
        ino: Ino,
    },
    Mkdir {
        path: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: Ino,
    },
}

impl DirOp {
    /// The directory whose `sync_dir` makes this op durable (for a rename: the
    /// destination's parent).
    pub(crate) fn parent(&self) -> &Path {
        let p = match self {
            DirOp::Create { path, .. } | DirOp::Mkdir { path } | DirOp::Remove { path } => path,
            DirOp::Rename { to, .. } => to,
        };
        p.parent().unwrap_or(Path::new("/"))
    }

    pub(crate) fn ino(&self) -> Option<Ino> {
        match self {
            DirOp::Create { ino, .. } | DirOp::Rename { ino, .. } => Some(*ino),
            DirOp::Mkdir { .. } | DirOp::Remove { .. } => None,
        }
    }

    /// Applies the op to a durable namespace; false (and no change) when it no longer
    /// applies there.
    pub(crate) fn apply(&self, ns: &mut BTreeMap<PathBuf, Entry>) -> bool {
        match self {
            DirOp::Create { path, ino } => {
                if ns.get(path) == Some(&Entry::Dir) {
                    return false;
                }
                ns.insert(path.clone(), Entry::File(*ino));
                true
            }
            DirOp::Mkdir { path } => match ns.get(path) {
                None => {
                    ns.insert(path.clone(), Entry::Dir);
                    true
                }
                Some(_) => false,
            },
            DirOp::Remove { path } => match ns.get(path) {
                Some(Entry::File(_)) => {
                    ns.remove(path);
                    true
                }
                _ => false,
            },
            // The destination's directory block now names the inode; the source entry
            // goes if it still names the same inode. (If the source's creation never
            // became durable, the file simply appears under its new name.)
            DirOp::Rename { from, to, ino } => {
                if ns.get(to) == Some(&Entry::Dir) {
                    return false;
                }
                if ns.get(from) == Some(&Entry::File(*ino)) {
                    ns.remove(from);
                }
                ns.insert(to.clone(), Entry::File(*ino));
                true
            }
        }
    }
}

/// The access an open handle was granted, and which process epoch opened it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandleRef {
    pub ino: Ino,
    pub epoch: u64,
    pub read: bool,
    pub write: bool,
    pub append: bool,
}

/// One node's disk.
#[derive(Debug)]
pub(crate) struct Disk {
    pub node: NodeId,
    /// Bumped on every kill/crash: handles of an older epoch are dead.
    pub epoch: u64,
    next_ino: Ino,
    pub inodes: BTreeMap<Ino, Inode>,
    pub cached_ns: BTreeMap<PathBuf, Entry>,
    pub durable_ns: BTreeMap<PathBuf, Entry>,
    pub pending_dir: Vec<DirOp>,
    /// Per-node override of the global fault configuration.
    pub config: Option<FaultConfig>,
    pub stats: FsStats,
    /// The op counter and limit (`sim::set_op_limit`).
    pub barrier: OpBarrier,
    /// Directory locks (D54): directory → (process epoch that took it, holder). A lock
    /// of an older epoch is free: kill and power loss release locks.
    pub locks: BTreeMap<PathBuf, (u64, String)>,
}

/// Lexically normalizes a path to an absolute one ("/" is the simulated working
/// directory; `..` pops a component).
pub(crate) fn normalize(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(os_err(ENOENT));
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
        }
    }
    Ok(out)
}

impl Disk {
    pub(crate) fn new(node: NodeId) -> Self {
        let root = || BTreeMap::from([(PathBuf::from("/"), Entry::Dir)]);
        Disk {
            node,
            epoch: 0,
            next_ino: 1,
            inodes: BTreeMap::new(),
            cached_ns: root(),
            durable_ns: root(),
            pending_dir: Vec::new(),
            config: None,
            stats: FsStats::default(),
            barrier: OpBarrier::default(),
            locks: BTreeMap::new(),
        }
    }

    pub(crate) fn alloc_inode(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        ino
    }

    /// The inode of a live handle, or the error a stale/forbidden handle gets.
    pub(crate) fn inode_for(&mut self, h: &HandleRef, path: &Path) -> io::Result<&mut Inode> {
        if h.epoch != self.epoch {
            return Err(io::Error::other(format!(
                "sim-fs: stale handle for {} on node {}: the process that opened it was \
                 killed or crashed (handle epoch {}, node epoch {})",
                path.display(),
                self.node,
                h.epoch,
                self.epoch
            )));
        }
        self.inodes
            .get_mut(&h.ino)
            .ok_or_else(|| io::Error::other("sim-fs: handle refers to a freed inode (model bug)"))
    }

    /// The parent of `path` must be a directory in the cached namespace.
    pub(crate) fn check_parent(&self, path: &Path) -> io::Result<()> {
        let parent = path.parent().ok_or_else(|| os_err(EISDIR))?;
        match self.cached_ns.get(parent) {
            Some(Entry::Dir) => Ok(()),
            Some(Entry::File(_)) => Err(os_err(ENOTDIR)),
            None => Err(os_err(ENOENT)),
        }
    }

    /// Bytes of every file the running system can see (linked, or open).
    pub(crate) fn visible_bytes(&self) -> u64 {
        let linked: BTreeSet<Ino> = self.linked_in_cache();
        self.inodes
            .iter()
            .filter(|(ino, inode)| linked.contains(ino) || inode.open_handles > 0)
            .map(|(_, inode)| inode.cached.len() as u64)
            .sum()
    }

    fn linked_in_cache(&self) -> BTreeSet<Ino> {
        self.cached_ns
            .values()
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect()
    }

    /// Inodes something still refers to: a cached or durable entry, a pending directory
    /// op (a crash may resurrect it), or an open handle.
    fn referenced(&self) -> BTreeSet<Ino> {
        let mut live = self.linked_in_cache();
        for e in self.durable_ns.values() {
            if let Entry::File(ino) = e {
                live.insert(*ino);
            }
        }
        live.extend(self.pending_dir.iter().filter_map(DirOp::ino));
        live
    }

    /// Frees inodes nothing refers to any more.
    pub(crate) fn collect_garbage(&mut self) {
        let live = self.referenced();
        self.inodes
            .retain(|ino, inode| live.contains(ino) || inode.open_handles > 0);
    }

    /// Process death: the page cache survives, the process's handles do not.
    pub(crate) fn process_death(&mut self) {
        self.epoch += 1;
        for inode in self.inodes.values_mut() {
            inode.open_handles = 0;
        }
        self.collect_garbage();
        self.barrier.end_of_process();
        self.stats.kills += 1;
        self.debug_verify();
    }

    /// Checks every invariant of the model, including each file's data; `Err` names
    /// the first one broken.
    pub(crate) fn verify_invariants(&self) -> Result<(), String> {
        self.verify_namespace()?;
        for (ino, inode) in &self.inodes {
            self.verify_inode(*ino, inode)?;
        }
        Ok(())
    }

    /// The namespace invariants (cheap: no file data is read).
    fn verify_namespace(&self) -> Result<(), String> {
        for (name, ns) in [("cached", &self.cached_ns), ("durable", &self.durable_ns)] {
            if ns.get(Path::new("/")) != Some(&Entry::Dir) {
                return Err(format!("{name} namespace lost its root directory"));
            }
            for (path, entry) in ns {
                if let Entry::File(ino) = entry {
                    if !self.inodes.contains_key(ino) {
                        return Err(format!(
                            "{name} entry {} -> freed inode {ino}",
                            path.display()
                        ));
                    }
                }
            }
        }
        for path in self.cached_ns.keys() {
            if let Some(parent) = path.parent() {
                if self.cached_ns.get(parent) != Some(&Entry::Dir) {
                    return Err(format!(
                        "cached entry {} has no parent directory",
                        path.display()
                    ));
                }
            }
        }
        for op in &self.pending_dir {
            if let Some(ino) = op.ino() {
                if !self.inodes.contains_key(&ino) {
                    return Err(format!("pending {op:?} refers to freed inode {ino}"));
                }
            }
        }
        let live = self.referenced();
        for (ino, inode) in &self.inodes {
            if !live.contains(ino) && inode.open_handles == 0 {
                return Err(format!(
                    "inode {ino} is referenced by nothing but was not freed"
                ));
            }
        }
        Ok(())
    }

    /// Per-inode invariant: unless a failed sync dropped ops, the cached image is the
    /// durable image with the pending ops replayed in order (checked in full for small
    /// files, by length for larger ones).
    pub(crate) fn verify_inode(&self, ino: Ino, inode: &Inode) -> Result<(), String> {
        if inode.diverged {
            return Ok(());
        }
        let pending_bytes: usize = inode
            .pending
            .iter()
            .map(|op| match op {
                DataOp::Write { data, .. } => data.len(),
                DataOp::SetLen(_) => 0,
            })
            .sum();
        if inode.pending.len() <= 256 && inode.durable.len() + pending_bytes <= 64 << 10 {
            let mut image = inode.durable.clone();
            for op in &inode.pending {
                op.apply(&mut image);
            }
            if image != inode.cached {
                return Err(format!(
                    "inode {ino}: cached image ({} B) != durable ({} B) + {} pending ops",
                    inode.cached.len(),
                    inode.durable.len(),
                    inode.pending.len()
                ));
            }
        } else if inode.pending.len() <= 4096 {
            let len = inode
                .pending
                .iter()
                .fold(inode.durable.len() as u64, |len, op| op.apply_len(len));
            if len != inode.cached.len() as u64 {
                return Err(format!(
                    "inode {ino}: cached length {} but pending ops imply {len}",
                    inode.cached.len()
                ));
            }
        }
        Ok(())
    }

    /// Debug builds: panics if a namespace invariant is broken (after namespace ops).
    pub(crate) fn debug_verify(&self) {
        #[cfg(debug_assertions)]
        if let Err(e) = self.verify_namespace() {
            panic!(
                "sim-fs: disk model invariant broken on node {}: {e}",
                self.node
            );
        }
    }

    /// Debug builds: panics if one inode's invariant is broken (cheaper, after data ops).
    pub(crate) fn debug_verify_inode(&self, ino: Ino) {
        #[cfg(debug_assertions)]
        if let Some(inode) = self.inodes.get(&ino) {
            if let Err(e) = self.verify_inode(ino, inode) {
                panic!(
                    "sim-fs: disk model invariant broken on node {}: {e}",
                    self.node
                );
            }
        }
        #[cfg(not(debug_assertions))]
        let _ = ino;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical_and_absolute() {
        let n = |p: &str| normalize(Path::new(p)).unwrap();
        assert_eq!(n("/a/b/"), PathBuf::from("/a/b"));
        assert_eq!(n("a/./b"), PathBuf::from("/a/b"));
        assert_eq!(n("/a/../b"), PathBuf::from("/b"));
        assert_eq!(n("/.."), PathBuf::from("/"));
        assert!(normalize(Path::new("")).is_err());
    }

    #[test]
    fn replaying_ops_zero_fills_and_truncates() {
        let mut img = b"abc".to_vec();
        DataOp::Write {
            offset: 5,
            data: b"xy".to_vec(),
        }
        .apply(&mut img);
        assert_eq!(img, b"abc\0\0xy");
        DataOp::SetLen(2).apply(&mut img);
        assert_eq!(img, b"ab");
        assert_eq!(DataOp::SetLen(9).apply_len(2), 9);
        assert_eq!(
            DataOp::Write {
                offset: 1,
                data: vec![]
            }
            .apply_len(0),
            0
        );
    }
}
