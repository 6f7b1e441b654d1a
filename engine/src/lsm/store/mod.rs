//! [`LsmStore`]: the write-ahead log, the memtables and the levels of tables, with
//! reads at a snapshot timestamp, flushes and compactions in a background task, and
//! fail-stop on any failed write or sync.
//!
//! ```text
//!  apply(ts, writes) ──► WAL submit ─► memtable ──freeze──► immutable memtables ──flush──► L0
//!                        (in order)     (ts-ordered)          (oldest first)                 │
//!  get/scan(at) ◄── memtable, immutables newest first, L0 newest first, L1, L2, … ◄─compact─┘
//! ```
//!
//! ## Invariants
//! - `apply` is called with strictly increasing timestamps, under the caller's commit
//!   lock, so WAL order = ts order = memtable order. Sources are ts-ordered: the active
//!   memtable holds versions newer than every immutable one, those newer than level 0,
//!   level `i` newer than level `i+1` (per key). A read stops at the first hit.
//! - A frozen memtable is flushed only once the WAL rotation that closed its segment
//!   has succeeded, i.e. every record it holds is durable; the flush's manifest edit
//!   (table + new log number) is durable before the old segments are deleted.
//! - After any failed write or sync (WAL, table, manifest, directory) the store is
//!   poisoned: every later call returns [`LsmError::Poisoned`] until it is reopened.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use sim_runtime::sync::Signal;
use tokio::sync::Notify;

use super::cache::{BlockCache, CacheStats};
use super::codec::encode_commit;
use super::error::{LsmError, Result};
use super::manifest::ManifestState;
use super::memtable::Memtable;
use super::options::Options;
mod background;
mod merge;
mod recovery;
mod view;

use super::sstable::Table;
use super::table_set::TableSet;
use super::wal::{segment_path, Hook, Wal, WalWait};
use crate::kv::{Key, KeyRange, Timestamp, Value, Version, WriteSet};
#[cfg(all(test, not(madsim)))]
pub(crate) use merge::sabotage_gc_base;
#[cfg(test)]
pub(crate) use merge::{Gc, Merge, MergeError};
use sim_runtime::sync::lock;
pub use view::ReadView;

/// The garbage-collection horizon source: the oldest snapshot any reader may still
/// use. Compaction keeps, per key, every version newer than it and the newest at or
/// below it.
pub type HorizonFn = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Counters and shape of the store, for tests, tools and crash scenarios.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsmStats {
    /// Memtables flushed to level 0.
    pub flushes: u64,
    /// Compactions finished.
    pub compactions: u64,
    /// Bytes of tables written by flushes since the store opened.
    pub flush_bytes_written: u64,
    /// Bytes of tables written by compactions since the store opened.
    pub compaction_bytes_written: u64,
    /// Bytes written to the WAL since the store opened (records and preallocated
    /// zeros). With the two above, all the store writes but its manifest's edits.
    pub wal_bytes_written: u64,
    /// Whether a compaction is under way.
    pub compacting: bool,
    /// Compactions abandoned because reading their inputs failed.
    pub compaction_errors: u64,
    /// Versions compaction dropped below the horizon (tombstones included).
    pub versions_dropped: u64,
    /// Tombstones compaction dropped at the bottom.
    pub tombstones_dropped: u64,
    /// Tables per level.
    pub tables_per_level: Vec<usize>,
    /// Frozen memtables awaiting their flush.
    pub immutable_memtables: usize,
    /// Live WAL segments.
    pub wal_segments: usize,
    /// The block cache's size and counters (memory it holds: `block_cache.bytes`).
    pub block_cache: CacheStats,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The newest commit ts recovered (tables or WAL).
    pub last_ts: Timestamp,
    /// Commit records replayed from the WAL.
    pub replayed: usize,
    /// Torn bytes cut off the newest WAL segment.
    pub cut_bytes: u64,
    /// Files the manifest does not name that were deleted.
    pub orphans_deleted: usize,
    /// The replayed WAL records were rewritten into a fresh table (recovery step 6).
    pub rewritten_to_table: bool,
}

/// A frozen memtable awaiting its flush.
pub(crate) struct Imm {
    pub mem: Arc<Mutex<Memtable>>,
    /// The rotation that closed its WAL segment; the flush awaits it first.
    pub rotate: Option<WalWait>,
    /// The segment the next memtable's records go to: the flush's new log number.
    pub log: u64,
    /// Every commit with ts ≤ this is in this or an older memtable.
    pub max_ts: Timestamp,
}

pub(crate) struct State {
    pub mem: Arc<Mutex<Memtable>>,
    /// Oldest first.
    pub imms: VecDeque<Imm>,
    pub table_set: Arc<TableSet>,
    /// The durable description of the tables.
    pub manifest: ManifestState,
    pub tables: BTreeMap<u64, Arc<Table>>,
    pub next_file: u64,
    /// The newest ts applied.
    pub last_ts: Timestamp,
    pub wal_segments: BTreeSet<u64>,
    pub poisoned: Option<String>,
    pub closed: bool,
    /// A manual full compaction in progress: the next level to compact.
    pub force_compaction: Option<usize>,
    /// Per level, where round-robin compaction resumes.
    pub cursor: Vec<Key>,
    /// The highest GC horizon of any compaction installed since open: a table of
    /// `version` may lack versions that only a read below it would return
    /// ([`ReadView::gc_floor`]).
    pub gc_floor: Timestamp,
    pub stats: LsmStats,
}

impl State {
    pub fn alloc_file(&mut self) -> u64 {
        // Numbers at and above the manifest's `next_file` were never named by it.
        debug_assert!(self.next_file >= self.manifest.next_file);
        let n = self.next_file;
        self.next_file += 1;
        n
    }

    pub fn check_open(&self) -> Result<()> {
        if let Some(why) = &self.poisoned {
            return Err(LsmError::Poisoned(why.clone()));
        }
        if self.closed {
            return Err(LsmError::Closed);
        }
        Ok(())
    }
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub opts: Options,
    pub state: Mutex<State>,
    pub wal: Wal,
    /// Wakes the background task.
    pub work: Notify,
    /// Bumped whenever the background task finishes a step or the store is poisoned.
    /// Every sync of `dir` after open goes through this (the WAL writer's and the
    /// background task's): one failure fail-stops them all (D15).
    pub dir_sync: Arc<sim_fs::FailStopDir>,
    /// Raised on every change a waiter may care about (a deterministic `watch`).
    pub progress: Signal,
    pub horizon: Mutex<Option<HorizonFn>>,
    pub bg: Mutex<Option<sim_runtime::task::JoinHandle<()>>>,
    /// Decoded data blocks of every table of this store (see [`super::cache`]).
    pub cache: Arc<BlockCache>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Fail-stop: records the first failure; wakes everyone waiting.
    pub fn poison(&self, why: &str) {
        let mut st = self.state();
        if st.poisoned.is_none() {
            tracing::error!(dir = %self.dir.display(), why, "lsm store poisoned");
            st.poisoned = Some(why.to_string());
        }
        drop(st);
        self.bump();
    }

    pub fn bump(&self) {
        self.progress.raise();
    }

    /// Waits until `done(state)` holds or the store fails.
    pub async fn wait_until(&self, done: impl Fn(&State) -> bool) -> Result<()> {
        // Read the version before looking at the state, so a change in between is seen.
        let mut seen = self.progress.version();
        loop {
            {
                let st = self.state();
                if let Some(why) = &st.poisoned {
                    return Err(LsmError::Poisoned(why.clone()));
                }
                if done(&st) {
                    return Ok(());
                }
                if st.closed {
                    return Err(LsmError::Closed);
                }
            }
            seen = self.progress.changed(seen).await;
        }
    }

    pub fn stats(&self) -> LsmStats {
        let st = self.state();
        let mut s = st.stats.clone();
        s.tables_per_level = st.table_set.levels.iter().map(Vec::len).collect();
        s.immutable_memtables = st.imms.len();
        s.wal_segments = st.wal_segments.len();
        drop(st);
        s.wal_bytes_written = self.wal.bytes_written();
        s.block_cache = self.cache.stats();
        s
    }
}

/// Poisons a store from wherever a failure is seen.
#[derive(Clone)]
pub struct Poisoner(Arc<Shared>);

impl Poisoner {
    /// Fail-stop with reason `why`.
    pub fn poison(&self, why: &str) {
        self.0.poison(why);
    }
}

impl std::fmt::Debug for Poisoner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Poisoner")
    }
}

/// The LSM store. Dropping it stops its background task.
pub struct LsmStore {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for LsmStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmStore")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl LsmStore {
    /// Opens (creating if needed) the store in `dir` and recovers it; see
    /// `store/recovery.rs`.
    pub async fn open(dir: &Path, opts: Options) -> Result<(LsmStore, Recovery)> {
        recovery::open(dir, opts).await
    }

    /// Logs and applies one commit at `ts` (greater than every ts applied before). The
    /// record is queued to the WAL and the versions enter the memtable at once, but a
    /// reader sees them only when it reads at ≥ `ts`, which the caller must not allow
    /// before the returned wait (or `hook`) reports the record durable. May freeze the
    /// memtable and rotate the WAL. Call under the caller's commit lock.
    pub fn apply(&self, ts: Timestamp, writes: &WriteSet, hook: Option<Hook>) -> Result<WalWait> {
        let mut st = self.shared.state();
        st.check_open()?;
        assert!(ts > st.last_ts, "apply at {ts} after {}", st.last_ts);
        let wait = match self.shared.wal.submit(&encode_commit(ts, writes), hook) {
            Ok(w) => w,
            Err(e) => {
                drop(st);
                self.shared.poison(&e.to_string());
                return Err(e.into());
            }
        };
        let full = {
            let mut mem = lock(&st.mem);
            mem.apply(ts, writes);
            mem.approx_bytes() >= self.shared.opts.memtable_bytes
        };
        st.last_ts = ts;
        if full {
            self.freeze(&mut st)?;
        }
        Ok(wait)
    }

    /// Freezes the active memtable (if not empty) and rotates the WAL to a new segment.
    fn freeze(&self, st: &mut State) -> Result<()> {
        if lock(&st.mem).is_empty() {
            return Ok(());
        }
        let seq = st.alloc_file();
        // Segments and frozen memtables are in log order: replay relies on it, and a
        // flush's `LogNumber` edit must not go backwards.
        assert!(st.wal_segments.last().map_or(true, |&last| last < seq));
        assert!(st
            .imms
            .back()
            .map_or(true, |prev| prev.log < seq && prev.max_ts < st.last_ts));
        let rotate = self
            .shared
            .wal
            .rotate(&segment_path(&self.shared.dir, seq))?;
        st.wal_segments.insert(seq);
        let fresh = Memtable::for_bytes(self.shared.opts.memtable_bytes);
        let old = std::mem::replace(&mut st.mem, Arc::new(Mutex::new(fresh)));
        st.imms.push_back(Imm {
            mem: old,
            rotate: Some(rotate),
            log: seq,
            max_ts: st.last_ts,
        });
        self.shared.work.notify_one();
        Ok(())
    }

    /// The sources a read consults, captured atomically (see [`ReadView`]).
    pub fn read_view(&self) -> Result<ReadView> {
        let st = self.shared.state();
        st.check_open()?;
        Ok(ReadView::capture(&st))
    }

    /// The newest version of `key` with ts ≤ `at` (a value or a tombstone). `at` must
    /// be at or above the GC horizon of every compaction to come (a registered
    /// snapshot): see [`ReadView::gc_floor`] for reads that are not.
    pub async fn get(&self, key: &[u8], at: Timestamp) -> Result<Option<Version>> {
        self.read_view()?.get(key, at).await
    }

    /// The live rows of `range` as of `at`, in key order (`at` as for
    /// [`LsmStore::get`]).
    pub async fn scan(&self, range: &KeyRange, at: Timestamp) -> Result<Vec<(Key, Value)>> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        self.read_view()?.scan(range, at).await
    }

    /// Waits while too many frozen memtables await their flush (write stall).
    pub async fn wait_for_room(&self) -> Result<()> {
        let max = self.shared.opts.max_immutable_memtables;
        self.shared.wait_until(|st| st.imms.len() < max).await
    }

    /// Freezes the memtable and waits until every frozen memtable is flushed.
    pub async fn flush(&self) -> Result<()> {
        {
            let mut st = self.shared.state();
            st.check_open()?;
            self.freeze(&mut st)?;
        }
        self.shared.wait_until(|st| st.imms.is_empty()).await
    }

    /// Flushes, then compacts every level in turn (all of its tables) into the next,
    /// and the last level into itself, and waits for it: every version present at the
    /// call is rewritten once with garbage collection at the current horizon.
    pub async fn compact_all(&self) -> Result<()> {
        self.flush().await?;
        self.shared.state().force_compaction = Some(0);
        self.shared.work.notify_one();
        self.shared
            .wait_until(|st| st.force_compaction.is_none() && !st.stats.compacting)
            .await
    }

    /// Waits until no flush or compaction is pending or running.
    pub async fn wait_idle(&self) -> Result<()> {
        let opts = self.shared.opts.clone();
        self.shared.work.notify_one();
        self.shared
            .wait_until(|st| {
                st.imms.is_empty()
                    && !st.stats.compacting
                    && st.force_compaction.is_none()
                    && st.table_set.pick(&opts, &st.cursor).is_none()
            })
            .await
    }

    /// Sets where garbage collection stops (see [`HorizonFn`]). Without one, compaction
    /// keeps every version.
    pub fn set_gc_horizon(&self, f: HorizonFn) {
        *lock(&self.shared.horizon) = Some(f);
    }

    /// Poisons the store (the caller saw a failure the store must not outlive).
    pub fn poison(&self, why: &str) {
        self.shared.poison(why);
    }

    /// `Ok` unless the store is poisoned ([`LsmError::Poisoned`]) or closed.
    pub fn check_open(&self) -> Result<()> {
        self.shared.state().check_open()
    }

    /// A handle that can poison the store from elsewhere (a WAL hook).
    pub fn poisoner(&self) -> Poisoner {
        Poisoner(self.shared.clone())
    }

    /// Counters and shape.
    pub fn stats(&self) -> LsmStats {
        self.shared.stats()
    }

    /// The newest ts applied (recovered or since).
    pub fn last_ts(&self) -> Timestamp {
        self.shared.state().last_ts
    }

    /// Checks the level invariants (`TableSet::check`) and the block cache's
    /// accounting (`BlockCache::verify_invariants`).
    pub fn verify_invariants(&self) -> std::result::Result<(), String> {
        self.shared.state().table_set.check()?;
        self.shared.cache.verify_invariants()
    }

    /// Stops the background task (after its current step) and the WAL writer. Commits
    /// whose WAL record was queued are written first.
    pub async fn close(&self) -> Result<()> {
        {
            let mut st = self.shared.state();
            if st.closed {
                return Ok(());
            }
            st.closed = true;
        }
        self.shared.work.notify_one();
        self.shared.bump();
        let bg = lock(&self.shared.bg).take();
        if let Some(bg) = bg {
            let _ = bg.await;
        }
        self.shared.wal.close().await?;
        Ok(())
    }
}

impl Drop for LsmStore {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.work.notify_one();
    }
}
