//! The tree's shape at one moment: the open tables of every level, and which
//! compaction to run next.
//!
//! Invariants (checked by [`TableSet::check`]):
//! - Level 0 tables are ordered newest first (descending file number) and may overlap;
//!   a newer level-0 table holds only versions newer than an older one's.
//! - In every deeper level tables are sorted by key and do not overlap, and a user key
//!   lives in at most one table (compaction cuts output only between user keys).
//! - For one user key, the versions in level `i` are newer than those in level `i+1`.
//!   Reads therefore stop at the first source that has a version at or below their ts.

use std::sync::Arc;

use super::block::{key_prefix, past_common, CommonPrefix};
use super::codec::cmp_keys;
use super::manifest::ManifestState;
use super::options::Options;
use super::sstable::Table;
use crate::kv::{Key, KeyRange};
use std::ops::Bound;

/// An immutable view of the levels; readers hold an `Arc` of it while they read, which
/// keeps the tables' files open even after a compaction deletes them.
#[derive(Debug, Default)]
pub struct TableSet {
    /// Per level, its tables (see the module invariants for their order).
    pub levels: Vec<Vec<Arc<Table>>>,
    /// Per level, its tables' largest keys as a search array ([`Fences`]); empty for
    /// level 0, whose tables overlap.
    fences: Vec<Fences>,
}

/// The largest keys of a sorted level's tables, for [`TableSet::table_for`]: the prefix
/// they all share inline, then per table the next 8 bytes ([`key_prefix`]) in one
/// array. A point read searches it without following a pointer per step (table, then
/// its key) as a search over the tables' metadata did; it reads a table's key only
/// on a tie.
#[derive(Debug, Clone, Default)]
struct Fences {
    common: CommonPrefix,
    prefixes: Vec<u64>,
}

impl Fences {
    fn new(tables: &[Arc<Table>]) -> Fences {
        let (Some(first), Some(last)) = (tables.first(), tables.last()) else {
            return Fences::default();
        };
        let common = CommonPrefix::of(&first.meta().smallest, &last.meta().largest);
        let prefixes = tables
            .iter()
            .map(|t| key_prefix(&t.meta().largest[common.len()..]))
            .collect();
        Fences { common, prefixes }
    }

    /// The position of the first of `tables` (those it was built from) whose largest
    /// key is ≥ `key` (`tables.len()` if none).
    fn first_not_below(&self, tables: &[Arc<Table>], key: &[u8]) -> usize {
        let rest = match past_common(key, self.common.as_slice()) {
            None => return 0,
            Some(None) => return tables.len(),
            Some(Some(rest)) => rest,
        };
        let p = key_prefix(rest);
        let (mut lo, mut hi) = (0, tables.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = match self.prefixes[mid].cmp(&p) {
                std::cmp::Ordering::Equal => {
                    let largest = &tables[mid].meta().largest[self.common.len()..];
                    cmp_keys(largest, rest).is_lt()
                }
                o => o.is_lt(),
            };
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// A compaction to run: `inputs` of `level` merge with the overlapping `next` tables of
/// `out_level` into new tables of `out_level` (`level + 1`, or `level` itself for a
/// The smallest and largest user key over `tables` (empty keys when there are none).
fn key_span(tables: &[Arc<Table>]) -> (Key, Key) {
    let lo = tables.iter().map(|t| t.meta().smallest.clone()).min();
    let hi = tables.iter().map(|t| t.meta().largest.clone()).max();
    (lo.unwrap_or_default(), hi.unwrap_or_default())
}

/// rewrite of the last level).
#[derive(Debug)]
pub struct Plan {
    /// The source level.
    pub level: usize,
    /// The level the outputs go to.
    pub out_level: usize,
    /// Tables of `level`.
    pub inputs: Vec<Arc<Table>>,
    /// Overlapping tables of `level + 1`.
    pub next: Vec<Arc<Table>>,
}

impl TableSet {
    /// The version the manifest `state` describes, from the open `tables`.
    pub fn build(
        state: &ManifestState,
        tables: &std::collections::BTreeMap<u64, Arc<Table>>,
    ) -> TableSet {
        let mut levels: Vec<Vec<Arc<Table>>> = state
            .levels
            .iter()
            .map(|l| l.keys().map(|n| tables[n].clone()).collect())
            .collect();
        levels[0].sort_by_key(|t| std::cmp::Reverse(t.meta().number));
        for l in levels.iter_mut().skip(1) {
            l.sort_by(|a, b| a.meta().smallest.cmp(&b.meta().smallest));
        }
        let fences = levels
            .iter()
            .enumerate()
            .map(|(l, tables)| {
                if l == 0 {
                    Fences::default()
                } else {
                    Fences::new(tables)
                }
            })
            .collect();
        TableSet { levels, fences }
    }

    /// Checks the ordering invariants of the module doc that need no I/O.
    pub fn check(&self) -> Result<(), String> {
        for w in self.levels[0].windows(2) {
            if w[0].meta().number <= w[1].meta().number || w[0].meta().min_ts <= w[1].meta().max_ts
            {
                return Err(format!(
                    "level 0 tables {} and {} out of order",
                    w[0].meta().number,
                    w[1].meta().number
                ));
            }
        }
        for (l, tables) in self.levels.iter().enumerate().skip(1) {
            for w in tables.windows(2) {
                if w[0].meta().largest >= w[1].meta().smallest {
                    return Err(format!(
                        "level {l} tables {} and {} overlap",
                        w[0].meta().number,
                        w[1].meta().number
                    ));
                }
            }
        }
        Ok(())
    }

    /// Bytes in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta().size).sum()
    }

    /// Tables of `level` (≥ 1) whose key span meets `[lo, hi]`.
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<Table>> {
        self.levels[level]
            .iter()
            .filter(|t| t.meta().overlaps(lo, hi))
            .cloned()
            .collect()
    }

    /// The table of `level` (≥ 1) whose span contains `key`, if any.
    pub fn table_for(&self, level: usize, key: &[u8]) -> Option<&Arc<Table>> {
        let tables = &self.levels[level];
        let i = self.fences[level].first_not_below(tables, key);
        debug_assert_eq!(
            i,
            tables.partition_point(|t| cmp_keys(&t.meta().largest, key).is_lt())
        );
        tables
            .get(i)
            .filter(|t| cmp_keys(&t.meta().smallest, key).is_le())
    }

    /// The tables of `level` whose span overlaps `range` (not empty), in the order a
    /// read visits them: level 0's by filtering its few tables; a sorted level's from
    /// the first whose largest key is not below the start (its `Fences`) to the last
    /// that begins before the end, so a scan looks at the tables it reads and not at
    /// every table of the tree (that filter was 5% of a 100-key scan).
    pub fn tables_overlapping<'v>(
        &'v self,
        level: usize,
        range: &'v KeyRange,
    ) -> impl Iterator<Item = &'v Arc<Table>> + 'v {
        let tables = &self.levels[level];
        let first = match (&range.start, level) {
            (_, 0) | (Bound::Unbounded, _) => 0,
            (Bound::Included(s) | Bound::Excluded(s), _) => {
                self.fences[level].first_not_below(tables, s)
            }
        };
        let sorted = level > 0;
        tables[first..]
            .iter()
            .take_while(move |t| !sorted || !range.beyond_end(&t.meta().smallest))
            .filter(move |t| t.meta().overlaps_range(range))
    }

    /// Whether any level below `level` may hold a version of `key` (so a tombstone
    /// written to `level` must be kept).
    pub fn below_may_hold(&self, level: usize, key: &[u8]) -> bool {
        (level + 1..self.levels.len()).any(|l| self.table_for(l, key).is_some())
    }

    /// The most urgent compaction, if any level is over its limit; `cursor[level]` is
    /// the key after which the last compaction of that level stopped (round robin).
    pub fn pick(&self, opts: &Options, cursor: &[Key]) -> Option<Plan> {
        let last = self.levels.len() - 1;
        let mut best: Option<(f64, usize)> = None;
        let l0 = self.levels[0].len() as f64 / opts.l0_compaction_trigger as f64;
        if l0 >= 1.0 {
            best = Some((l0, 0));
        }
        for level in 1..last {
            let score = self.level_bytes(level) as f64 / opts.level_max_bytes(level) as f64;
            if score >= 1.0 && best.map_or(true, |(s, _)| score > s) {
                best = Some((score, level));
            }
        }
        best.map(|(_, level)| self.plan(level, cursor))
    }

    /// A compaction of `level` into `level + 1`: all of level 0, or for deeper levels the
    /// first table after `cursor[level]` (wrapping around).
    pub fn plan(&self, level: usize, cursor: &[Key]) -> Plan {
        let inputs: Vec<Arc<Table>> = if level == 0 {
            self.levels[0].clone()
        } else {
            let tables = &self.levels[level];
            let after = cursor.get(level).map_or(&[][..], Vec::as_slice);
            let pick = tables
                .iter()
                .find(|t| t.meta().smallest.as_slice() > after)
                .or(tables.first());
            pick.into_iter().cloned().collect()
        };
        let (lo, hi) = key_span(&inputs);
        let next = if inputs.is_empty() {
            Vec::new()
        } else {
            self.overlapping(level + 1, &lo, &hi)
        };
        Plan {
            level,
            out_level: level + 1,
            inputs,
            next,
        }
    }

    /// A compaction of every table of `level` into the next level, or, for the last
    /// level, into itself (a rewrite that collects everything below the horizon).
    pub fn plan_all(&self, level: usize) -> Plan {
        let last = self.levels.len() - 1;
        let inputs = self.levels[level].clone();
        if level == last || inputs.is_empty() {
            return Plan {
                level,
                out_level: level,
                inputs,
                next: Vec::new(),
            };
        }
        let (lo, hi) = key_span(&inputs);
        Plan {
            level,
            out_level: level + 1,
            next: self.overlapping(level + 1, &lo, &hi),
            inputs,
        }
    }
}
