//! Tuning of the storage engine.

use super::error::{LsmError, Result};

/// Options of [`crate::Db::open`] (and of the LSM store under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// A memtable is frozen and flushed to level 0 once it holds this many bytes.
    pub memtable_bytes: usize,
    /// Target size of an SSTable data block.
    pub block_bytes: usize,
    /// Bloom filter bits per key (about 1% false positives at 10).
    pub bloom_bits_per_key: u32,
    /// Level 0 is compacted into level 1 once it has this many tables.
    pub l0_compaction_trigger: usize,
    /// Level 1's size limit; each deeper level's is `level_size_ratio` times larger.
    pub level1_max_bytes: u64,
    /// Size ratio between adjacent levels.
    pub level_size_ratio: u64,
    /// Number of levels (the last one is never compacted further).
    pub max_levels: usize,
    /// Compaction cuts its output tables at about this size (at a key boundary).
    pub table_target_bytes: u64,
    /// Commits wait while this many frozen memtables await their flush.
    pub max_immutable_memtables: usize,
    /// Bound of the block cache of decoded data blocks, shared by all tables of the
    /// store (`lsm/cache.rs`); 0 disables it. 256 MiB by default (DECISIONS.md D33):
    /// a miss costs a `pread`, a checksum and a decode, about half of a point read's
    /// time when half the data fits; redb and sled default to 1 GiB.
    pub block_cache_bytes: usize,
    /// The WAL zero-fills (and syncs) this much space ahead of its records, so that a
    /// commit's fdatasync overwrites allocated space instead of growing the file (no
    /// size change to journal: about 124 µs instead of 204 µs on the development VM's
    /// disk). A segment is cut back to its records when it is rotated or closed, and
    /// recovery cuts the zeros like a torn tail. 0 disables it.
    pub wal_preallocate_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            memtable_bytes: 4 << 20,
            block_bytes: 4096,
            bloom_bits_per_key: 10,
            l0_compaction_trigger: 4,
            level1_max_bytes: 10 << 20,
            level_size_ratio: 10,
            max_levels: 7,
            table_target_bytes: 2 << 20,
            max_immutable_memtables: 2,
            block_cache_bytes: 256 << 20,
            wal_preallocate_bytes: 1 << 20,
        }
    }
}

impl Options {
    /// Tiny sizes, so a small test workload flushes and compacts often.
    pub fn tiny() -> Options {
        Options {
            memtable_bytes: 2048,
            block_bytes: 256,
            bloom_bits_per_key: 10,
            l0_compaction_trigger: 2,
            level1_max_bytes: 8 << 10,
            level_size_ratio: 4,
            max_levels: 4,
            table_target_bytes: 4 << 10,
            max_immutable_memtables: 2,
            // A few blocks: tests exercise hits, misses and eviction.
            block_cache_bytes: 4 << 10,
            // A few commits' worth: tests extend, overwrite and cut it often.
            wal_preallocate_bytes: 4 << 10,
        }
    }

    /// Checks that the options can work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(LsmError::InvalidOptions(m.to_string()));
        if self.memtable_bytes == 0 {
            return bad("memtable_bytes must be positive");
        }
        if self.block_bytes < 64 {
            return bad("block_bytes must be at least 64");
        }
        if self.bloom_bits_per_key == 0 || self.bloom_bits_per_key > 64 {
            return bad("bloom_bits_per_key must be in 1..=64");
        }
        if self.l0_compaction_trigger == 0 {
            return bad("l0_compaction_trigger must be positive");
        }
        if self.level1_max_bytes == 0 || self.table_target_bytes == 0 {
            return bad("level1_max_bytes and table_target_bytes must be positive");
        }
        if self.level_size_ratio < 2 {
            return bad("level_size_ratio must be at least 2");
        }
        if !(2..=16).contains(&self.max_levels) {
            return bad("max_levels must be in 2..=16");
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be positive");
        }
        if self.wal_preallocate_bytes > 1 << 30 {
            return bad("wal_preallocate_bytes must be at most 1 GiB");
        }
        Ok(())
    }

    /// The size limit of `level` (≥ 1).
    pub fn level_max_bytes(&self, level: usize) -> u64 {
        let mut max = self.level1_max_bytes;
        for _ in 1..level {
            max = max.saturating_mul(self.level_size_ratio);
        }
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_nonsense_is_rejected() {
        Options::default().validate().unwrap();
        Options::tiny().validate().unwrap();
        let bad = [
            Options {
                memtable_bytes: 0,
                ..Options::default()
            },
            Options {
                block_bytes: 10,
                ..Options::default()
            },
            Options {
                bloom_bits_per_key: 0,
                ..Options::default()
            },
            Options {
                level_size_ratio: 1,
                ..Options::default()
            },
            Options {
                max_levels: 1,
                ..Options::default()
            },
            Options {
                max_immutable_memtables: 0,
                ..Options::default()
            },
        ];
        for o in bad {
            assert!(
                matches!(o.validate(), Err(LsmError::InvalidOptions(_))),
                "{o:?}"
            );
        }
        let o = Options::default();
        assert_eq!(o.level_max_bytes(1), 10 << 20);
        assert_eq!(o.level_max_bytes(3), 1000 << 20);
    }
}
