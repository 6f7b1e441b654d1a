//! Power loss: what of the unsynced state reaches the platter, then the page cache is
//! dropped and the node restarts from the durable image.
//!
//! 1. Data, per inode: each pending write independently survives whole, survives torn
//!    (a prefix ending on a 512-byte sector boundary of the file lands; the rest keeps
//!    its old bytes or becomes garbage) or is lost; each pending `set_len` survives or is
//!    lost. The survivors are applied to the durable image in a random order.
//! 2. Namespace: each pending directory op independently survives or is lost; the
//!    survivors are applied in issue order, skipping ones that no longer apply. Entries
//!    whose parent directory did not survive are unreachable and go too.
//! 3. Inodes without a surviving entry are freed. Durable files may get a bit flip.
//! 4. The page cache becomes the durable image; open handles die.

use crate::sim::disk::{to_usize, DataOp, Disk, Entry, Ino, SECTOR_SIZE};
use crate::sim::faults::Dice;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// What one power loss did, for the trace and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced writes that survived whole.
    pub whole_writes: u64,
    /// Unsynced writes that survived torn.
    pub torn_writes: u64,
    /// Torn writes whose missing part became garbage.
    pub garbage_writes: u64,
    /// Unsynced writes that were lost.
    pub lost_writes: u64,
    /// Unsynced `set_len`s that were lost.
    pub lost_set_lens: u64,
    /// Files whose surviving ops landed in an order other than issue order.
    pub reordered_files: u64,
    /// Unsynced directory ops that were lost.
    pub lost_dir_ops: u64,
    /// Surviving directory ops that no longer applied.
    pub skipped_dir_ops: u64,
    /// Entries dropped because their parent directory did not survive.
    pub orphaned_entries: u64,
    /// Inodes freed because no entry naming them survived.
    pub freed_inodes: u64,
    /// Bits flipped in durable sectors.
    pub bitflips: u64,
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writes whole={} torn={} (garbage={}) lost={}; set_len lost={}; reordered files={}; \
             dir ops lost={} skipped={}; orphaned entries={}; freed inodes={}; bitflips={}",
            self.whole_writes,
            self.torn_writes,
            self.garbage_writes,
            self.lost_writes,
            self.lost_set_lens,
            self.reordered_files,
            self.lost_dir_ops,
            self.skipped_dir_ops,
            self.orphaned_entries,
            self.freed_inodes,
            self.bitflips
        )
    }
}

impl Disk {
    /// Applies a power loss to this disk.
    pub(crate) fn power_loss(&mut self, dice: &mut Dice) -> CrashReport {
        let mut report = CrashReport::default();
        let inos: Vec<Ino> = self.inodes.keys().copied().collect();
        for ino in inos {
            let inode = self.inodes.get_mut(&ino).expect("listed above");
            let pending = std::mem::take(&mut inode.pending);
            let survivors = decide_data_ops(pending, dice, &mut report);
            for op in &survivors {
                op.apply(&mut inode.durable);
            }
        }

        for op in std::mem::take(&mut self.pending_dir) {
            if dice.roll(dice.cfg.crash.dir_op_lost) {
                report.lost_dir_ops += 1;
            } else if !op.apply(&mut self.durable_ns) {
                report.skipped_dir_ops += 1;
            }
        }
        report.orphaned_entries = prune_orphans(&mut self.durable_ns);

        self.epoch += 1;
        self.barrier.end_of_process();
        let before = self.inodes.len();
        for inode in self.inodes.values_mut() {
            inode.open_handles = 0;
        }
        self.cached_ns = self.durable_ns.clone();
        self.collect_garbage();
        report.freed_inodes = (before - self.inodes.len()) as u64;

        let durable_files: BTreeSet<Ino> = self
            .durable_ns
            .values()
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect();
        for ino in durable_files {
            let inode = self
                .inodes
                .get_mut(&ino)
                .expect("durable entries name live inodes");
            if !inode.durable.is_empty() && dice.roll(dice.cfg.crash_bitflip) {
                let byte = dice.rng.gen_range(0..inode.durable.len());
                let bit: u8 = dice.rng.gen_range(0..8);
                inode.durable[byte] ^= 1 << bit;
                inode.count_flip(byte as u64);
                report.bitflips += 1;
            }
        }
        for inode in self.inodes.values_mut() {
            inode.cached = inode.durable.clone();
            inode.diverged = false;
        }

        let count = |kind: &str, n: u64| sim_runtime::faults::count_n(kind, n);
        count("fs.torn_write", report.torn_writes);
        count("fs.garbage", report.garbage_writes);
        count("fs.lost_write", report.lost_writes);
        count("fs.lost_set_len", report.lost_set_lens);
        count("fs.reorder", report.reordered_files);
        count("fs.lost_dir_op", report.lost_dir_ops);
        self.stats.power_losses += 1;
        #[cfg(debug_assertions)]
        if let Err(e) = self.verify_invariants() {
            panic!(
                "sim-fs: disk model invariant broken on node {} after power loss: {e}",
                self.node
            );
        }
        report
    }
}

/// Decides the fate of each pending data op of one inode; returns the survivors in the
/// order they land.
fn decide_data_ops(pending: Vec<DataOp>, dice: &mut Dice, report: &mut CrashReport) -> Vec<DataOp> {
    let c = dice.cfg.crash.clone();
    let mut survivors = Vec::new();
    for op in pending {
        match op {
            DataOp::SetLen(_) => {
                if dice.roll(c.set_len_lost) {
                    report.lost_set_lens += 1;
                } else {
                    survivors.push(op);
                }
            }
            DataOp::Write { offset, mut data } => {
                let u: f64 = dice.rng.gen_range(0.0..1.0);
                if u < c.write_whole {
                    report.whole_writes += 1;
                    survivors.push(DataOp::Write { offset, data });
                } else if u < c.write_whole + c.write_torn {
                    match tear_point(offset, data.len() as u64, dice) {
                        Some(cut) => {
                            report.torn_writes += 1;
                            let keep = to_usize(cut - offset);
                            if dice.roll(c.torn_garbage) {
                                report.garbage_writes += 1;
                                dice.rng.fill_bytes(&mut data[keep..]);
                            } else {
                                data.truncate(keep);
                            }
                            survivors.push(DataOp::Write { offset, data });
                        }
                        // Within one sector: sector writes are atomic, so it lands whole.
                        None => {
                            report.whole_writes += 1;
                            survivors.push(DataOp::Write { offset, data });
                        }
                    }
                } else {
                    report.lost_writes += 1;
                }
            }
        }
    }
    if c.reorder && survivors.len() > 1 {
        let mut order: Vec<usize> = (0..survivors.len()).collect();
        order.shuffle(&mut dice.rng);
        if order.windows(2).any(|w| w[0] > w[1]) {
            report.reordered_files += 1;
        }
        let mut slots: Vec<Option<DataOp>> = survivors.into_iter().map(Some).collect();
        survivors = order
            .into_iter()
            .map(|i| slots[i].take().expect("each index once"))
            .collect();
    }
    survivors
}

/// A sector boundary strictly inside `[offset, offset + len)`, chosen at random, or
/// `None` when the write lies within one sector.
fn tear_point(offset: u64, len: u64, dice: &mut Dice) -> Option<u64> {
    if len == 0 {
        return None;
    }
    let first = (offset / SECTOR_SIZE + 1) * SECTOR_SIZE;
    let last = ((offset + len - 1) / SECTOR_SIZE) * SECTOR_SIZE;
    if first > last {
        return None;
    }
    let n = (last - first) / SECTOR_SIZE + 1;
    Some(first + SECTOR_SIZE * dice.rng.gen_range(0..n))
}

/// Removes entries whose parent is not a surviving directory; returns how many.
fn prune_orphans(ns: &mut BTreeMap<PathBuf, Entry>) -> u64 {
    // Paths order by component, so a parent always comes before its children.
    let mut kept: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    let mut dropped = 0;
    for (path, entry) in std::mem::take(ns) {
        let ok = match path.parent() {
            None => true,
            Some(parent) => kept.get(parent) == Some(&Entry::Dir),
        };
        if ok {
            kept.insert(path, entry);
        } else {
            dropped += 1;
        }
    }
    *ns = kept;
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FaultConfig;

    #[test]
    fn tear_points_are_sector_boundaries_strictly_inside_the_write() {
        let mut dice = Dice::new(99, FaultConfig::default());
        let mut seen = std::collections::BTreeSet::new();
        for offset in [0u64, 1, 511, 512, 700, 4095] {
            for len in [1u64, 2, 511, 512, 513, 1024, 2000, 5000] {
                for _ in 0..20 {
                    match tear_point(offset, len, &mut dice) {
                        Some(cut) => {
                            assert_eq!(cut % SECTOR_SIZE, 0);
                            assert!(offset < cut && cut < offset + len, "{offset}+{len}: {cut}");
                            seen.insert((offset, len, cut));
                        }
                        None => assert_eq!(offset / SECTOR_SIZE, (offset + len - 1) / SECTOR_SIZE),
                    }
                }
            }
        }
        // 700+2000 has four boundaries inside; all must be chosen sometimes.
        let cuts: Vec<u64> = seen
            .iter()
            .filter(|(o, l, _)| (*o, *l) == (700, 2000))
            .map(|t| t.2)
            .collect();
        assert_eq!(cuts, vec![1024, 1536, 2048, 2560]);
    }

    #[test]
    fn orphans_are_pruned_with_their_subtrees() {
        let mut ns = BTreeMap::from([
            (PathBuf::from("/"), Entry::Dir),
            (PathBuf::from("/a"), Entry::Dir),
            (PathBuf::from("/a/f"), Entry::File(1)),
            (PathBuf::from("/b/c"), Entry::Dir),
            (PathBuf::from("/b/c/g"), Entry::File(2)),
            (PathBuf::from("/a b"), Entry::File(3)),
        ]);
        assert_eq!(prune_orphans(&mut ns), 2);
        let left: Vec<&str> = ns.keys().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(left, vec!["/", "/a", "/a/f", "/a b"]);
    }
}
