//! The background task: flushes frozen memtables to level 0 and runs leveled
//! compactions, one step at a time, in one task (so manifest edits are serialized).
//!
//! ## Flush
//! Await the WAL rotation that closed the memtable's segment (so every record in it is
//! durable) → write the table, sync it, sync the directory → append the manifest edit
//! {add table at L0, log number = the new segment, last ts} and sync it → install the
//! table and drop the memtable in one step under the state lock → delete the WAL
//! segments below the new log number, sync the directory.
//!
//! ## Compaction
//! Merge the inputs (all of L0, or one table of level `i`, with the overlapping tables
//! of level `i+1`), keeping per key every version newer than the GC horizon and the
//! newest at or below it — unless that one is a tombstone and no deeper level may hold
//! the key. Cut outputs at about the target size, between user keys. Write and sync
//! the outputs, sync the directory → append and sync the manifest edit {add outputs,
//! remove inputs} → install → only now delete the inputs and sync the directory. A
//! reader still holding the old version keeps the inputs' files open.
//!
//! A failed write or sync poisons the store (fail-stop). A failed *read* of compaction
//! inputs abandons that compaction (counted) and is retried on the next wake-up.

use std::sync::Arc;

use super::Shared;
use crate::canary::{self, Canary};
use crate::kv::Timestamp;
use crate::lsm::cache::BlockCache;
use crate::lsm::codec::{cmp_internal, Entry};
use crate::lsm::error::{io, LsmError, Result};
use crate::lsm::manifest::{Change, Edit, ManifestWriter};
use crate::lsm::sstable::{table_path, write_table, Table, TableBuilder, TableMeta};
use crate::lsm::table_set::{Plan, TableSet};
use sim_runtime::sync::lock;

/// The task body.
pub(crate) async fn run(shared: Arc<Shared>, writer: ManifestWriter) {
    loop {
        if shared.state().closed {
            break;
        }
        let step = match flush_one(&shared, &writer).await {
            Ok(true) => Ok(true),
            Ok(false) => compact_one(&shared, &writer).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(true) => shared.bump(),
            Ok(false) => {
                shared.bump();
                shared.work.notified().await;
            }
            Err(e) => {
                sim_runtime::cover!("lsm.background_failure_poisons_store");
                shared.poison(&e.to_string());
                break;
            }
        }
    }
    let mut st = shared.state();
    st.stats.compacting = false;
    st.force_compaction = None;
    drop(st);
    shared.bump();
}

async fn sync_dir(shared: &Shared) -> Result<()> {
    shared
        .dir_sync
        .sync()
        .await
        .map_err(|e| io("sync_dir", &shared.dir, e))
}

async fn remove(path: &std::path::Path) -> Result<()> {
    match sim_fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove file", path, e)),
    }
}

/// Writes `builder` as table `number`, syncs it, and opens it back (checking what was
/// written). The directory is not synced.
async fn write_and_open(
    shared: &Shared,
    builder: TableBuilder,
    number: u64,
) -> Result<(Arc<Table>, TableMeta)> {
    write_and_open_in(&shared.dir, builder, number, &shared.cache).await
}

/// [`write_and_open`] for a directory (recovery has no [`Shared`] yet).
pub(crate) async fn write_and_open_in(
    dir: &std::path::Path,
    builder: TableBuilder,
    number: u64,
    cache: &Arc<BlockCache>,
) -> Result<(Arc<Table>, TableMeta)> {
    let (bytes, meta) = builder.finish(number);
    let path = table_path(dir, number);
    write_table(&path, &bytes).await?;
    let table = Table::open(&path, number, Some(meta.size), cache.clone()).await?;
    if *table.meta() != meta {
        return Err(crate::lsm::error::corrupt(
            &path,
            "table reads back differently",
        ));
    }
    table.warm_cache(&bytes)?;
    Ok((Arc::new(table), meta))
}

/// Flushes the oldest frozen memtable; false if there is none.
async fn flush_one(shared: &Shared, writer: &ManifestWriter) -> Result<bool> {
    let (mem, rotate, log, max_ts) = {
        let mut st = shared.state();
        let Some(imm) = st.imms.front_mut() else {
            return Ok(false);
        };
        (imm.mem.clone(), imm.rotate.take(), imm.log, imm.max_ts)
    };
    if let Some(rotate) = rotate {
        rotate.wait().await?;
    }
    let entries: Vec<Entry> = lock(&mem).entries().collect();
    sim_runtime::cover!(
        "lsm.flush_while_more_memtables_wait",
        shared.state().imms.len() > 1
    );
    let mut changes = Vec::new();
    let mut added = None;
    if !entries.is_empty() {
        let mut b = TableBuilder::new(shared.opts.block_bytes, shared.opts.bloom_bits_per_key);
        for e in &entries {
            b.add(e);
        }
        let number = shared.state().alloc_file();
        let (table, meta) = write_and_open(shared, b, number).await?;
        shared.state().stats.flush_bytes_written += meta.size;
        // The edit's `LastTs(max_ts)` covers the table: recovery skips WAL records at or
        // below it.
        debug_assert!(meta.max_ts <= max_ts);
        sync_dir(shared).await?;
        changes.push(Change::AddTable { level: 0, meta });
        added = Some(table);
    }
    let next_file = shared.state().next_file;
    changes.extend([
        Change::LogNumber(log),
        Change::NextFile(next_file),
        Change::LastTs(max_ts),
    ]);
    let edit = Edit(changes);
    {
        // What replay's `ManifestState::apply` requires, asserted before it is durable:
        // log number and last ts never go backwards (flushes run oldest first).
        let st = shared.state();
        assert!(log >= st.manifest.log_number && max_ts >= st.manifest.last_ts);
    }
    writer.append(&edit).await?;
    let obsolete: Vec<u64> = {
        let mut st = shared.state();
        st.manifest
            .apply(&edit)
            .map_err(|d| LsmError::Poisoned(format!("flush edit does not apply: {d}")))?;
        if let Some(t) = added {
            st.tables.insert(t.meta().number, t);
        }
        st.imms.pop_front();
        st.table_set = Arc::new(TableSet::build(&st.manifest, &st.tables));
        debug_assert_eq!(
            st.table_set.check(),
            Ok(()),
            "a flush broke the level invariants"
        );
        st.stats.flushes += 1;
        let obsolete: Vec<u64> = st.wal_segments.range(..log).copied().collect();
        for s in &obsolete {
            st.wal_segments.remove(s);
        }
        obsolete
    };
    sim_runtime::cover!("lsm.flush_retires_wal_segments", !obsolete.is_empty());
    shared.bump();
    for seq in obsolete {
        remove(&crate::lsm::wal::segment_path(&shared.dir, seq)).await?;
    }
    sync_dir(shared).await?;
    Ok(true)
}

/// Runs one compaction if one is due (or forced); false if none is.
async fn compact_one(shared: &Shared, writer: &ManifestWriter) -> Result<bool> {
    let plan = {
        let mut st = shared.state();
        let table_set = st.table_set.clone();
        let mut plan = table_set.pick(&shared.opts, &st.cursor);
        if plan.is_none() {
            // A manual full compaction: every level in turn, top down, all of its tables,
            // the last level into itself.
            while let Some(level) = st.force_compaction {
                if level >= table_set.levels.len() {
                    st.force_compaction = None;
                } else if table_set.levels[level].is_empty() {
                    st.force_compaction = Some(level + 1);
                } else {
                    st.force_compaction = Some(level + 1);
                    plan = Some(table_set.plan_all(level));
                    break;
                }
            }
        }
        let Some(plan) = plan else {
            return Ok(false);
        };
        st.stats.compacting = true;
        plan
    };
    let result = compact(shared, writer, &plan).await;
    // Release the inputs before reporting the compaction done: a removed table's last
    // reference may be here, and dropping it frees its cached blocks.
    drop(plan);
    let mut st = shared.state();
    st.stats.compacting = false;
    match result {
        Ok(()) => {
            st.stats.compactions += 1;
            Ok(true)
        }
        Err(Failure::Read(e)) => {
            st.stats.compaction_errors += 1;
            st.force_compaction = None;
            sim_runtime::cover!("lsm.compaction_abandoned_on_read_error");
            tracing::warn!(error = %e, "compaction abandoned: reading its inputs failed");
            Ok(false)
        }
        Err(Failure::Write(e)) => Err(e),
    }
}

enum Failure {
    /// Reading inputs failed: nothing was changed.
    Read(LsmError),
    /// Writing failed: fail-stop.
    Write(LsmError),
}

async fn compact(
    shared: &Shared,
    writer: &ManifestWriter,
    plan: &Plan,
) -> std::result::Result<(), Failure> {
    let horizon = lock(&shared.horizon)
        .clone()
        .map_or(Timestamp::ZERO, |f| f());
    let mut all: Vec<Entry> = Vec::new();
    for t in plan.inputs.iter().chain(&plan.next) {
        all.extend(t.read_all().await.map_err(Failure::Read)?);
    }
    all.sort_by(|a, b| cmp_internal(&a.key, a.ts, &b.key, b.ts));
    if all
        .windows(2)
        .any(|w| w[0].key == w[1].key && w[0].ts == w[1].ts)
    {
        return Err(Failure::Write(LsmError::Poisoned(
            "two compaction inputs hold one version".into(),
        )));
    }
    let out_level = plan.out_level;
    let table_set = shared.state().table_set.clone();
    let (kept, dropped, tombstones) = gc(all, horizon, |k| table_set.below_may_hold(out_level, k));

    let mut outputs: Vec<(Arc<Table>, TableMeta)> = Vec::new();
    let mut b = TableBuilder::new(shared.opts.block_bytes, shared.opts.bloom_bits_per_key);
    for (i, e) in kept.iter().enumerate() {
        b.add(e);
        let key_ends = kept.get(i + 1).map_or(true, |n| n.key != e.key);
        if key_ends && b.approx_bytes() as u64 >= shared.opts.table_target_bytes {
            let full = std::mem::replace(
                &mut b,
                TableBuilder::new(shared.opts.block_bytes, shared.opts.bloom_bits_per_key),
            );
            let number = shared.state().alloc_file();
            outputs.push(
                write_and_open(shared, full, number)
                    .await
                    .map_err(Failure::Write)?,
            );
        }
    }
    if !b.is_empty() {
        let number = shared.state().alloc_file();
        outputs.push(
            write_and_open(shared, b, number)
                .await
                .map_err(Failure::Write)?,
        );
    }
    shared.state().stats.compaction_bytes_written +=
        outputs.iter().map(|(_, meta)| meta.size).sum::<u64>();
    sync_dir(shared).await.map_err(Failure::Write)?;
    // Output is cut only between user keys: the tables of the level do not overlap.
    debug_assert!(outputs.windows(2).all(|w| w[0].1.largest < w[1].1.smallest));
    sim_runtime::cover!("lsm.compaction_splits_output", outputs.len() > 1);
    sim_runtime::cover!(
        "lsm.compaction_into_a_lower_level_with_overlap",
        !plan.next.is_empty()
    );

    let inputs: Vec<(u8, u64)> = plan
        .inputs
        .iter()
        .map(|t| (plan.level as u8, t.meta().number))
        .chain(plan.next.iter().map(|t| (out_level as u8, t.meta().number)))
        .collect();
    let delete_inputs = || async {
        for (_, n) in &inputs {
            remove(&table_path(&shared.dir, *n)).await?;
        }
        sync_dir(shared).await
    };
    if canary::enabled(Canary::DeleteBeforeManifest) {
        // The bug under test: inputs gone before the edit that drops them is durable.
        delete_inputs().await.map_err(Failure::Write)?;
    }
    let mut changes: Vec<Change> = outputs
        .iter()
        .map(|(_, meta)| Change::AddTable {
            level: out_level as u8,
            meta: meta.clone(),
        })
        .collect();
    changes.extend(inputs.iter().map(|(level, number)| Change::RemoveTable {
        level: *level,
        number: *number,
    }));
    changes.push(Change::NextFile(shared.state().next_file));
    let edit = Edit(changes);
    {
        // What replay's `ManifestState::apply` requires: outputs are new numbers,
        // inputs are tables the manifest holds at their levels.
        let st = shared.state();
        debug_assert!(outputs
            .iter()
            .all(|(_, m)| m.number >= st.manifest.next_file));
        debug_assert!(inputs.iter().all(|(level, n)| st
            .manifest
            .levels
            .get(usize::from(*level))
            .is_some_and(|l| l.contains_key(n))));
    }
    writer.append(&edit).await.map_err(Failure::Write)?;
    {
        let mut st = shared.state();
        st.manifest.apply(&edit).map_err(|d| {
            Failure::Write(LsmError::Poisoned(format!(
                "compaction edit does not apply: {d}"
            )))
        })?;
        for (_, n) in &inputs {
            st.tables.remove(n);
        }
        for (t, _) in &outputs {
            st.tables.insert(t.meta().number, t.clone());
        }
        st.table_set = Arc::new(TableSet::build(&st.manifest, &st.tables));
        if let Some(last) = plan.inputs.iter().map(|t| t.meta().largest.clone()).max() {
            st.cursor[plan.level] = last;
        }
        st.stats.versions_dropped += dropped;
        st.stats.tombstones_dropped += tombstones;
        // In the same step as the install: a view that holds these outputs sees it.
        st.gc_floor = st.gc_floor.max(horizon);
        if cfg!(debug_assertions) {
            if let Err(e) = st.table_set.check() {
                panic!("lsm level invariant broken by compaction: {e}");
            }
        }
    }
    shared.bump();
    if !canary::enabled(Canary::DeleteBeforeManifest) {
        delete_inputs().await.map_err(Failure::Write)?;
    }
    Ok(())
}

/// Garbage collection of one merged run (internal order): per key, keeps every version
/// newer than `horizon` and the newest at or below it, which is dropped too if it is a
/// tombstone and `below_may_hold(key)` is false. Returns the kept entries, the number
/// dropped, and how many of those were bottom tombstones.
pub fn gc(
    entries: Vec<Entry>,
    horizon: Timestamp,
    below_may_hold: impl Fn(&[u8]) -> bool,
) -> (Vec<Entry>, u64, u64) {
    let input = entries.len() as u64;
    let mut kept = Vec::with_capacity(entries.len());
    let (mut dropped, mut tombstones) = (0u64, 0u64);
    let mut base_seen_for: Option<Vec<u8>> = None;
    for e in entries {
        if e.ts > horizon {
            kept.push(e);
            continue;
        }
        if base_seen_for.as_deref() == Some(e.key.as_slice()) {
            sim_runtime::cover!("lsm.gc_drops_shadowed_version");
            dropped += 1; // shadowed for every reader at or above the horizon
            continue;
        }
        base_seen_for = Some(e.key.clone());
        if (e.value.is_none() && !below_may_hold(&e.key)) || sabotaged() {
            sim_runtime::cover!("lsm.gc_drops_bottom_tombstone");
            dropped += 1;
            tombstones += 1;
            continue;
        }
        sim_runtime::cover!("lsm.gc_keeps_tombstone_over_lower_level", e.value.is_none());
        // A newer version sits above the horizon: this older one survives only for a
        // reader (an open snapshot) at or below the horizon.
        sim_runtime::cover!(
            "lsm.gc_keeps_old_version_for_open_snapshot",
            kept.last().is_some_and(|k: &Entry| k.key == e.key)
        );
        kept.push(e);
    }
    // Every version is kept or counted as dropped (the stats report the drops).
    debug_assert_eq!(kept.len() as u64 + dropped, input);
    (kept, dropped, tombstones)
}

#[cfg(test)]
thread_local! {
    static SABOTAGE_GC_BASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test-only defect: garbage collection also drops the newest version at or below the
/// horizon (which readers at the horizon still need). Proves the model test has teeth.
#[cfg(all(test, not(madsim)))]
pub(crate) fn sabotage_gc_base(on: bool) {
    SABOTAGE_GC_BASE.with(|c| c.set(on));
}

#[cfg(test)]
fn sabotaged() -> bool {
    SABOTAGE_GC_BASE.with(|c| c.get())
}

#[cfg(not(test))]
fn sabotaged() -> bool {
    false
}
