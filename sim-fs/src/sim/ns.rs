//! Namespace operations on the simulated disk. Each changes the cached namespace at
//! once and queues a [`DirOp`] that becomes durable only when its parent directory is
//! synced.

use crate::api::{Metadata, Opts};
use crate::sim::disk::{
    os_err, DataOp, DirOp, Disk, Entry, HandleRef, EEXIST, EIO, EISDIR, ENOENT, ENOTDIR,
};
use crate::sim::faults::Dice;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};

impl Disk {
    fn queue(&mut self, op: DirOp) {
        self.pending_dir.push(op);
        self.stats.dir_ops += 1;
    }

    /// Opens (creating or truncating as asked) the file at normalized `path`.
    pub(crate) fn open(&mut self, opts: Opts, path: &Path) -> io::Result<HandleRef> {
        let ino = match self.cached_ns.get(path).copied() {
            Some(Entry::Dir) => return Err(os_err(EISDIR)),
            Some(Entry::File(_)) if opts.create_new => return Err(os_err(EEXIST)),
            Some(Entry::File(ino)) => {
                let inode = self.inodes.get_mut(&ino).expect("linked inode exists");
                if opts.truncate && !inode.cached.is_empty() {
                    let op = DataOp::SetLen(0);
                    op.apply(&mut inode.cached);
                    inode.pending.push(op);
                }
                ino
            }
            None if !(opts.create || opts.create_new) => return Err(os_err(ENOENT)),
            None => {
                self.check_parent(path)?;
                let ino = self.alloc_inode();
                self.cached_ns.insert(path.to_path_buf(), Entry::File(ino));
                self.queue(DirOp::Create {
                    path: path.to_path_buf(),
                    ino,
                });
                ino
            }
        };
        self.inodes
            .get_mut(&ino)
            .expect("inode exists")
            .open_handles += 1;
        self.stats.opens += 1;
        self.debug_verify();
        Ok(HandleRef {
            ino,
            epoch: self.epoch,
            read: opts.read,
            write: opts.write,
            append: opts.append,
        })
    }

    /// Renames a file, replacing any file at `to`.
    pub(crate) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let ino = match self.cached_ns.get(from).copied() {
            None => return Err(os_err(ENOENT)),
            Some(Entry::Dir) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "sim-fs: renaming directories is not modelled ({})",
                        from.display()
                    ),
                ))
            }
            Some(Entry::File(ino)) => ino,
        };
        self.check_parent(to)?;
        match self.cached_ns.get(to) {
            Some(Entry::Dir) => return Err(os_err(EISDIR)),
            Some(Entry::File(other)) if *other == ino => return Ok(()),
            _ => {}
        }
        self.cached_ns.remove(from);
        self.cached_ns.insert(to.to_path_buf(), Entry::File(ino));
        self.queue(DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            ino,
        });
        self.collect_garbage();
        self.debug_verify();
        Ok(())
    }

    /// Unlinks a file (open handles keep working on it).
    pub(crate) fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        match self.cached_ns.get(path) {
            None => return Err(os_err(ENOENT)),
            Some(Entry::Dir) => return Err(os_err(EISDIR)),
            Some(Entry::File(_)) => {}
        }
        self.cached_ns.remove(path);
        self.queue(DirOp::Remove {
            path: path.to_path_buf(),
        });
        self.collect_garbage();
        self.debug_verify();
        Ok(())
    }

    /// Creates `path` and its missing ancestors.
    pub(crate) fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let ancestors: Vec<&Path> = path.ancestors().collect();
        for dir in ancestors.into_iter().rev() {
            match self.cached_ns.get(dir) {
                Some(Entry::Dir) => {}
                Some(Entry::File(_)) if dir == path => return Err(os_err(EEXIST)),
                Some(Entry::File(_)) => return Err(os_err(ENOTDIR)),
                None => {
                    self.cached_ns.insert(dir.to_path_buf(), Entry::Dir);
                    self.queue(DirOp::Mkdir {
                        path: dir.to_path_buf(),
                    });
                }
            }
        }
        self.debug_verify();
        Ok(())
    }

    /// The names in directory `path`, sorted.
    pub(crate) fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.expect_dir(path)?;
        let names = self
            .cached_ns
            .range::<Path, _>((Bound::Excluded(path), Bound::Unbounded))
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(path))
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(PathBuf::from))
            .collect();
        Ok(names)
    }

    fn expect_dir(&self, path: &Path) -> io::Result<()> {
        match self.cached_ns.get(path) {
            Some(Entry::Dir) => Ok(()),
            Some(Entry::File(_)) => Err(os_err(ENOTDIR)),
            None => Err(os_err(ENOENT)),
        }
    }

    /// Makes the pending directory ops whose parent is `path` durable, in issue order.
    /// On an injected EIO they are dropped instead (fsyncgate for directories).
    pub(crate) fn sync_dir(&mut self, path: &Path, dice: &mut Dice) -> io::Result<()> {
        self.expect_dir(path)?;
        let failed = dice.inject(dice.cfg.sync_eio, "fsync_eio");
        let (covered, rest): (Vec<DirOp>, Vec<DirOp>) = std::mem::take(&mut self.pending_dir)
            .into_iter()
            .partition(|op| op.parent() == path);
        self.pending_dir = rest;
        if !failed {
            for op in &covered {
                op.apply(&mut self.durable_ns);
            }
            self.stats.dir_syncs += 1;
        }
        self.collect_garbage();
        self.debug_verify();
        if failed {
            Err(os_err(EIO))
        } else {
            Ok(())
        }
    }

    pub(crate) fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        match self.cached_ns.get(path) {
            Some(Entry::Dir) => Ok(Metadata {
                len: 0,
                is_dir: true,
            }),
            Some(Entry::File(ino)) => Ok(Metadata {
                len: self.inodes[ino].cached.len() as u64,
                is_dir: false,
            }),
            None => Err(os_err(ENOENT)),
        }
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        self.cached_ns.contains_key(path)
    }
}
