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
//! of level `i+1`) as they stream from disk ([`super::merge`]), keeping per key every
//! version newer than the GC horizon and the newest at or below it — unless that one is
//! a tombstone and no deeper level may hold the key. Cut outputs at about the target
//! size, between user keys, writing and syncing each as it fills: memory holds one
//! read-ahead per input run and one output table, whatever the inputs' size. Then sync
//! the directory → append and sync the manifest edit {add outputs,
//! remove inputs} → install → only now delete the inputs and sync the directory. A
//! reader still holding the old version keeps the inputs' files open.
//!
//! A failed write or sync poisons the store (fail-stop). A failed *read* of compaction
//! inputs abandons that compaction (counted; the outputs written so far are removed)
//! and is retried on the next wake-up.

use std::sync::Arc;

use super::merge::{runs, Gc, Merge, MergeError};
use super::Shared;
use crate::canary::{self, Canary};
use crate::kv::Timestamp;
use crate::lsm::cache::BlockCache;
use crate::lsm::codec::Entry;
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
    /// Reading inputs failed: nothing the manifest names was changed.
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
    let out_level = plan.out_level;
    let table_set = shared.state().table_set.clone();
    let below = |k: &[u8]| table_set.below_may_hold(out_level, k);
    // Inputs stream through the merge, outputs are written as they fill: memory holds
    // a read-ahead per run and one output table, never the inputs (`merge`'s doc).
    let mut merge = Merge::new(runs(plan));
    let mut gc = Gc::new(horizon);
    let mut outputs: Vec<(Arc<Table>, TableMeta)> = Vec::new();
    let written = merge_into_outputs(shared, &mut merge, &mut gc, &below, &mut outputs).await;
    if let Err(Failure::Read(e)) = written {
        // Nothing was changed but these unnamed files: remove them (recovery deletes
        // any a crash leaves).
        for (t, _) in outputs.drain(..) {
            let path = table_path(&shared.dir, t.meta().number);
            drop(t);
            if let Err(r) = remove(&path).await {
                tracing::warn!(error = %r, "an abandoned compaction's output stays");
            }
        }
        return Err(Failure::Read(e));
    }
    written?;
    let (dropped, tombstones) = gc.finish();
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

/// Streams `merge` through `gc` into output tables cut at about the target size between
/// user keys, each written, synced and opened as it fills (pushed to `outputs`).
async fn merge_into_outputs(
    shared: &Shared,
    merge: &mut Merge,
    gc: &mut Gc,
    below: &impl Fn(&[u8]) -> bool,
    outputs: &mut Vec<(Arc<Table>, TableMeta)>,
) -> std::result::Result<(), Failure> {
    let new_builder = || TableBuilder::new(shared.opts.block_bytes, shared.opts.bloom_bits_per_key);
    let mut b = new_builder();
    while let Some(e) = merge.next().await.map_err(|e| match e {
        MergeError::Read(e) => Failure::Read(e),
        MergeError::Duplicate => Failure::Write(LsmError::Poisoned(
            "two compaction inputs hold one version".into(),
        )),
    })? {
        if !gc.keep(&e, below) {
            continue;
        }
        let key_ends = b.last_key().is_some_and(|k| *k != e.key);
        if key_ends && b.approx_bytes() as u64 >= shared.opts.table_target_bytes {
            let full = std::mem::replace(&mut b, new_builder());
            let number = shared.state().alloc_file();
            outputs.push(
                write_and_open(shared, full, number)
                    .await
                    .map_err(Failure::Write)?,
            );
        }
        b.add(&e);
    }
    if !b.is_empty() {
        let number = shared.state().alloc_file();
        outputs.push(
            write_and_open(shared, b, number)
                .await
                .map_err(Failure::Write)?,
        );
    }
    Ok(())
}
