//! File data operations on the simulated disk: reads from the page cache, writes and
//! `set_len` into it (recorded as pending ops), and syncs that make pending ops durable
//! — or, on an injected EIO, drop them (fsyncgate).

use crate::sim::disk::{os_err, to_usize, DataOp, Disk, HandleRef, EBADF, EINVAL, EIO, ENOSPC};
use crate::sim::faults::Dice;
use std::io;
use std::path::Path;

impl Disk {
    fn check_epoch(&mut self, h: &HandleRef, path: &Path) -> io::Result<()> {
        self.inode_for(h, path).map(|_| ())
    }

    /// ENOSPC if growing a file from `old_len` to `new_len` would exceed the capacity.
    fn check_space(&self, old_len: u64, new_len: u64, dice: &mut Dice) -> io::Result<()> {
        let Some(cap) = dice.cfg.capacity_bytes else {
            return Ok(());
        };
        let growth = new_len.saturating_sub(old_len);
        if growth > 0 && self.visible_bytes().saturating_add(growth) > cap {
            sim_runtime::faults::count("fs.enospc");
            return Err(os_err(ENOSPC));
        }
        Ok(())
    }

    /// Reads from the page cache; short only at end of file.
    pub(crate) fn read_at(
        &mut self,
        h: &HandleRef,
        path: &Path,
        buf: &mut [u8],
        offset: u64,
        dice: &mut Dice,
    ) -> io::Result<usize> {
        self.check_epoch(h, path)?;
        if !h.read {
            return Err(os_err(EBADF));
        }
        if dice.inject(dice.cfg.read_eio, "read_eio") {
            return Err(os_err(EIO));
        }
        let inode = self.inode_for(h, path)?;
        let len = inode.cached.len() as u64;
        let n = if offset >= len {
            0
        } else {
            let n = (len - offset).min(buf.len() as u64) as usize;
            let start = to_usize(offset);
            buf[..n].copy_from_slice(&inode.cached[start..start + n]);
            n
        };
        self.stats.reads += 1;
        self.stats.bytes_read += n as u64;
        Ok(n)
    }

    /// Writes into the page cache at `offset` (at the end of the file for `None` or an
    /// append-mode handle) and returns the offset written at.
    pub(crate) fn write_at(
        &mut self,
        h: &HandleRef,
        path: &Path,
        buf: &[u8],
        offset: Option<u64>,
        dice: &mut Dice,
    ) -> io::Result<u64> {
        self.check_epoch(h, path)?;
        if !h.write && !h.append {
            return Err(os_err(EBADF));
        }
        let old_len = self.inode_for(h, path)?.cached.len() as u64;
        let offset = match offset {
            Some(o) if !h.append => o,
            _ => old_len,
        };
        if buf.is_empty() {
            return Ok(offset);
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| os_err(EINVAL))?;
        self.check_space(old_len, end, dice)?;
        if dice.inject(dice.cfg.write_eio, "write_eio") {
            return Err(os_err(EIO));
        }
        let op = DataOp::Write {
            offset,
            data: buf.to_vec(),
        };
        let inode = self.inode_for(h, path)?;
        op.apply(&mut inode.cached);
        inode.pending.push(op);
        self.stats.writes += 1;
        self.stats.bytes_written += buf.len() as u64;
        self.debug_verify_inode(h.ino);
        Ok(offset)
    }

    /// Truncates or zero-extends the cached file; pending until synced.
    pub(crate) fn set_len(
        &mut self,
        h: &HandleRef,
        path: &Path,
        len: u64,
        dice: &mut Dice,
    ) -> io::Result<()> {
        self.check_epoch(h, path)?;
        if !h.write && !h.append {
            // ftruncate(2) on a descriptor not open for writing.
            return Err(os_err(EINVAL));
        }
        let old_len = self.inode_for(h, path)?.cached.len() as u64;
        self.check_space(old_len, len, dice)?;
        let op = DataOp::SetLen(len);
        let inode = self.inode_for(h, path)?;
        op.apply(&mut inode.cached);
        inode.pending.push(op);
        self.stats.set_lens += 1;
        self.debug_verify_inode(h.ino);
        Ok(())
    }

    /// The cached length.
    pub(crate) fn len(&mut self, h: &HandleRef, path: &Path) -> io::Result<u64> {
        Ok(self.inode_for(h, path)?.cached.len() as u64)
    }

    /// `sync_data`/`sync_all`: the pending ops become durable, in order. On an injected
    /// EIO they are dropped instead (they stay in the page cache until power loss).
    pub(crate) fn sync(&mut self, h: &HandleRef, path: &Path, dice: &mut Dice) -> io::Result<()> {
        self.check_epoch(h, path)?;
        let failed = dice.inject(dice.cfg.sync_eio, "fsync_eio");
        let inode = self.inode_for(h, path)?;
        if failed {
            if !inode.pending.is_empty() {
                inode.diverged = true;
            }
            inode.pending.clear();
            return Err(os_err(EIO));
        }
        let pending = std::mem::take(&mut inode.pending);
        for op in &pending {
            op.apply(&mut inode.durable);
            if let DataOp::Write { offset, .. } = op {
                inode.synced_tail = Some(*offset);
            }
        }
        self.stats.syncs += 1;
        self.debug_verify_inode(h.ino);
        Ok(())
    }

    /// A handle was dropped.
    pub(crate) fn close(&mut self, h: &HandleRef) {
        if h.epoch != self.epoch {
            return;
        }
        if let Some(inode) = self.inodes.get_mut(&h.ino) {
            inode.open_handles = inode.open_handles.saturating_sub(1);
            if inode.open_handles == 0 {
                self.collect_garbage();
                self.debug_verify();
            }
        }
    }

    /// Flips one random bit of sector `sector` of the durable image of the file linked
    /// at `path` (and of its cached image, unless newer unsynced data covers that byte),
    /// counted as `fs.bitflip`. Returns the byte offset and bit flipped.
    pub(crate) fn corrupt_sector(
        &mut self,
        path: &Path,
        sector: u64,
        dice: &mut Dice,
    ) -> io::Result<(u64, u8)> {
        use crate::sim::disk::{Entry, SECTOR_SIZE};
        use rand::Rng;
        let Some(Entry::File(ino)) = self.cached_ns.get(path).copied() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "sim-fs: corrupt_sector: no file {} on node {}",
                    path.display(),
                    self.node
                ),
            ));
        };
        let inode = self.inodes.get_mut(&ino).expect("linked inode exists");
        let start = sector.saturating_mul(SECTOR_SIZE);
        let durable_len = inode.durable.len() as u64;
        if start >= durable_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "sim-fs: corrupt_sector: sector {sector} is past the durable length {durable_len} of {}",
                    path.display()
                ),
            ));
        }
        let end = (start + SECTOR_SIZE).min(durable_len);
        let byte = dice.rng.gen_range(start..end);
        let bit: u8 = dice.rng.gen_range(0..8);
        inode.durable[to_usize(byte)] ^= 1 << bit;
        // The page cache shows the flip too, unless a newer unsynced op covers the byte
        // (then the cache holds newer data, and syncing it will overwrite the flip).
        let covered = inode.pending.iter().any(|op| match op {
            DataOp::Write { offset, data } => (*offset..offset + data.len() as u64).contains(&byte),
            DataOp::SetLen(len) => *len <= byte,
        });
        if !covered {
            if let Some(b) = inode.cached.get_mut(to_usize(byte)) {
                *b ^= 1 << bit;
            }
        }
        inode.count_flip(byte);
        self.debug_verify_inode(ino);
        Ok((byte, bit))
    }
}
