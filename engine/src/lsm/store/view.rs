//! Reads: a [`ReadView`] is every source a read consults — the active memtable, the
//! frozen ones, the table set — captured in one step under the store's state lock, so
//! no flush or compaction can show a read half of its change.
//!
//! ## What a view guarantees
//! - Every commit applied before the capture is in it: `apply` inserts into the active
//!   memtable under the same lock; freezing moves a memtable to the frozen list, and a
//!   flush installs its table and drops the frozen memtable in one step.
//! - It stays readable for as long as it is held: memtables only grow (at timestamps
//!   above any snapshot a reader already has), the [`TableSet`] is immutable, and its
//!   tables keep their files open (a compaction deletes an input's directory entry;
//!   the open handle still reads it, on Linux and in `sim-fs` alike).
//! - Versions a read at `at` needs are in it if `at ≥` [`ReadView::gc_floor`]: each
//!   compaction keeps, per key, everything above its horizon and the newest version at
//!   or below it. A transaction's snapshot (or a pin) is never below a later
//!   compaction's horizon, nor below an earlier one's (horizons are at most the
//!   watermark when taken, and snapshots are the watermark); a read point taken
//!   *without* registering can be, if a compaction started after it was taken — the
//!   floor is how such a read notices (`crate::Db::get`).

use std::sync::{Arc, Mutex};

use super::State;
use crate::kv::{Key, KeyRange, Timestamp, Value, Version};
use crate::lsm::error::Result;
use crate::lsm::memtable::Memtable;
use crate::lsm::scan::{merge, merge_each, Rows, Source};
use crate::lsm::table_set::TableSet;
use sim_runtime::sync::lock;

/// The sources of a read, captured atomically ([`super::LsmStore::read_view`]).
pub struct ReadView {
    mem: Arc<Mutex<Memtable>>,
    /// Newest first.
    imms: Vec<Arc<Mutex<Memtable>>>,
    table_set: Arc<TableSet>,
    gc_floor: Timestamp,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("imms", &self.imms.len())
            .field("gc_floor", &self.gc_floor)
            .finish()
    }
}

impl ReadView {
    /// Captures the sources of `st` (under its lock).
    pub(crate) fn capture(st: &State) -> ReadView {
        ReadView {
            mem: st.mem.clone(),
            imms: st.imms.iter().rev().map(|i| i.mem.clone()).collect(),
            table_set: st.table_set.clone(),
            gc_floor: st.gc_floor,
        }
    }

    /// The highest horizon any compaction whose output this view may hold collected
    /// garbage at. A read at `at ≥` it returns exactly what the snapshot `at` holds; a
    /// read below it may miss a version (the newest at or below `at`, if a newer one
    /// at or below the floor shadowed it).
    pub fn gc_floor(&self) -> Timestamp {
        self.gc_floor
    }

    /// The newest version of `key` with ts ≤ `at` (a value or a tombstone). Sources are
    /// searched newest first and the first hit wins (see [`crate::lsm::LsmStore`]).
    pub async fn get(&self, key: &[u8], at: Timestamp) -> Result<Option<Version>> {
        // One hash for every filter the read consults (memtables' and tables').
        let hash = crate::lsm::bloom::hash(key);
        if let Some(v) = lock(&self.mem).get_hashed(key, hash, at) {
            return Ok(Some(v));
        }
        for imm in &self.imms {
            if let Some(v) = lock(imm).get_hashed(key, hash, at) {
                return Ok(Some(v));
            }
        }
        for t in &self.table_set.levels[0] {
            if let Some(v) = t.get_hashed(key, hash, at).await? {
                return Ok(Some(v));
            }
        }
        for level in 1..self.table_set.levels.len() {
            if let Some(t) = self.table_set.table_for(level, key) {
                if let Some(v) = t.get_in_span(key, hash, at).await? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    /// The live rows of `range` as of `at`, in key order.
    pub async fn scan(&self, range: &KeyRange, at: Timestamp) -> Result<Vec<(Key, Value)>> {
        Ok(self.scan_rows(range, at).await?.into_pairs())
    }

    /// [`ReadView::scan`] into one buffer ([`Rows`]).
    pub async fn scan_rows(&self, range: &KeyRange, at: Timestamp) -> Result<Rows> {
        if range.is_empty() {
            return Ok(Rows::default());
        }
        Ok(merge(self.scan_sources(range, at).await?))
    }

    /// [`ReadView::scan`], handing each live row to `visit` in key order, borrowed:
    /// nothing is copied.
    pub async fn scan_each(
        &self,
        range: &KeyRange,
        at: Timestamp,
        visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        if !range.is_empty() {
            merge_each(self.scan_sources(range, at).await?, visit);
        }
        Ok(())
    }

    /// Every source's rows of `range` as of `at`: memtables, then tables by level.
    async fn scan_sources(&self, range: &KeyRange, at: Timestamp) -> Result<Vec<Source>> {
        let mut sources: Vec<Source> = Vec::new();
        sources.push(Source::Owned(lock(&self.mem).scan(range, at)));
        for imm in &self.imms {
            sources.push(Source::Owned(lock(imm).scan(range, at)));
        }
        for level in 0..self.table_set.levels.len() {
            for t in self.table_set.tables_overlapping(level, range) {
                sources.push(Source::Table(t.scan_rows(range, at).await?));
            }
        }
        Ok(sources)
    }
}
