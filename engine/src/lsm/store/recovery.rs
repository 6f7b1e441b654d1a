//! Opening a store: manifest → tables, then the WAL, then a fresh manifest.
//!
//! 1. Create the directory (and make its entry durable).
//! 2. Read `CURRENT` and replay the manifest it names ([`crate::lsm::manifest::recover`]).
//!    No `CURRENT`: a new store — nothing can have been acknowledged before the first
//!    `CURRENT` was durable, so leftovers of an interrupted first open are deleted.
//! 3. Open every table the manifest names, checking size, footer, index and filter.
//!    A missing or damaged table is corruption.
//! 4. Replay the WAL segments numbered ≥ the manifest's log number, in order. The
//!    segment the log number names must exist (it was created, durably, before any
//!    edit named it, and is deleted only after a later edit moved past it); only the
//!    newest segment may end in a torn tail, which is cut. Records must have strictly
//!    increasing timestamps.
//! 5. List every file of ours the manifest does not name: tables, WAL segments below
//!    the log number, other manifests, `CURRENT.tmp` — deleted in step 6, only once the
//!    new `CURRENT` is durable (the one read here may exist only in the page cache, and
//!    the durable one may name them: D17). File numbers restart above every number seen
//!    in the directory.
//! 6. If the WAL replay found records, rewrite them into a fresh level-0 table and start
//!    the log in a new, empty segment (what the replay read may exist only in the page
//!    cache: D12). Write a fresh manifest (a snapshot of the recovered state), install
//!    it as `CURRENT`, then delete the old one, the orphans and the replayed segments. Otherwise the WAL
//!    continues in the newest segment (created, durably, before the manifest if there is
//!    none).
//!
//! Every step is idempotent: a crash at any point leaves a directory this procedure
//! recovers to the same state ("recovery twice from the same bytes").
//!
//! Steps 4 and 6 are specified by `specs/WAL.tla` (action Recover: read the newest
//! segment through the page cache, keep the valid prefix, refuse a valid record after a
//! bad one as corruption, cut the torn tail with `set_len` + `sync_all`, rewrite the
//! replayed records into a fresh table and restart the log in a new segment); checked
//! by `specs/check` (`WAL_norewrite` shows what appending behind page-cache records
//! loses).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::background;
use super::{LsmStats, LsmStore, Recovery, Shared, State};
use crate::kv::Timestamp;
use crate::lsm::cache::BlockCache;
use crate::lsm::codec::decode_commit;
use crate::lsm::error::{corrupt, io, Result};
use crate::lsm::manifest::{self, manifest_path, Change, Edit, ManifestState, ManifestWriter};
use crate::lsm::memtable::Memtable;
use crate::lsm::options::Options;
use crate::lsm::sstable::{table_path, Table, TableBuilder};
use crate::lsm::table_set::TableSet;
use crate::lsm::wal::{parse_segment_name, segment_path, Wal};

/// The files of ours in a store directory.
#[derive(Debug, Default)]
struct Listing {
    tables: BTreeSet<u64>,
    segments: BTreeSet<u64>,
    manifests: BTreeSet<u64>,
    current_tmp: bool,
}

impl Listing {
    fn max_number(&self) -> u64 {
        [&self.tables, &self.segments, &self.manifests]
            .iter()
            .filter_map(|s| s.last().copied())
            .max()
            .unwrap_or(0)
    }
}

fn parse_number(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

async fn list(dir: &Path) -> Result<Listing> {
    let mut l = Listing::default();
    for path in sim_fs::read_dir(dir)
        .await
        .map_err(|e| io("list directory", dir, e))?
    {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(n) = parse_number(name, "", ".sst") {
            l.tables.insert(n);
        } else if let Some(n) = parse_segment_name(&path) {
            l.segments.insert(n);
        } else if let Some(n) = parse_number(name, "MANIFEST-", "") {
            l.manifests.insert(n);
        } else if name == "CURRENT.tmp" {
            l.current_tmp = true;
        }
    }
    Ok(l)
}

async fn remove(path: &Path) -> Result<()> {
    match sim_fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove file", path, e)),
    }
}

/// Creates `dir` if needed and makes its entry durable — always, not only when this
/// call created it: an earlier open may have created it and then failed (or died)
/// before its parent's sync succeeded, leaving an entry that exists only in the page
/// cache, which a power loss would take with everything under it (simulator-found:
/// D16). New ancestors' entries are synced in their parents too.
async fn ensure_dir(dir: &Path) -> Result<()> {
    let mut created = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        if sim_fs::exists(d)
            .await
            .map_err(|e| io("stat directory", d, e))?
        {
            break;
        }
        created.push(d.to_path_buf());
        p = d.parent();
    }
    if !created.is_empty() {
        sim_fs::create_dir_all(dir)
            .await
            .map_err(|e| io("create directory", dir, e))?;
    }
    // Parents of every new level, and always the store directory's own parent.
    let mut parents: Vec<&Path> = created.iter().filter_map(|d| d.parent()).collect();
    parents.extend(dir.parent());
    parents.sort();
    parents.dedup();
    for parent in parents.into_iter().filter(|p| !p.as_os_str().is_empty()) {
        sim_fs::sync_dir(parent)
            .await
            .map_err(|e| io("sync_dir", parent, e))?;
    }
    Ok(())
}

/// Opens the store in `dir` (see the module doc).
pub(crate) async fn open(dir: &Path, opts: Options) -> Result<(LsmStore, Recovery)> {
    opts.validate()?;
    ensure_dir(dir).await?;
    let listing = list(dir).await?;
    let recovered = manifest::recover(dir, opts.max_levels).await?;
    let (mut state, old_manifest) = match recovered {
        Some((state, number)) => (state, Some(number)),
        None => (ManifestState::new(opts.max_levels), None),
    };
    let mut recovery = Recovery::default();
    // Per open store: a reopened store starts cold.
    let cache = Arc::new(BlockCache::new(opts.block_cache_bytes));

    // 3. Tables.
    let mut tables = BTreeMap::new();
    for (_, meta) in state.tables() {
        let path = table_path(dir, meta.number);
        if !listing.tables.contains(&meta.number) {
            return Err(corrupt(
                &path,
                "the manifest names a table that does not exist",
            ));
        }
        let t = Table::open(&path, meta.number, Some(meta.size), cache.clone()).await?;
        if t.meta() != meta {
            return Err(corrupt(&path, "table does not match its manifest entry"));
        }
        tables.insert(meta.number, Arc::new(t));
    }

    // 4. WAL.
    let live: Vec<u64> = if old_manifest.is_some() {
        listing
            .segments
            .range(state.log_number..)
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    if old_manifest.is_some() && live.first() != Some(&state.log_number) {
        return Err(corrupt(
            &segment_path(dir, state.log_number),
            "the manifest's first WAL segment is missing (a manifest edit was lost)",
        ));
    }
    let mut mem = Memtable::for_bytes(opts.memtable_bytes);
    let mut last_ts = state.last_ts;
    // Only the newest segment holding any bytes may end in a torn tail: a segment is
    // synced before the log rotates past it, but an open can crash after creating a
    // fresh, empty segment (step 6), leaving the torn one second to last.
    let mut newest = 0;
    for (i, seq) in live.iter().enumerate() {
        let path = segment_path(dir, *seq);
        let len = sim_fs::metadata(&path)
            .await
            .map_err(|e| io("stat wal segment", &path, e))?
            .len;
        if len > 0 || i == 0 {
            newest = i;
        }
    }
    for (i, seq) in live.iter().enumerate() {
        let path = segment_path(dir, *seq);
        let rec = Wal::recover_segment(&path, i >= newest).await?;
        recovery.cut_bytes += rec.cut_bytes;
        for (j, r) in rec.records.iter().enumerate() {
            let (ts, writes) = decode_commit(r)
                .ok_or_else(|| corrupt(&path, format!("record {j} is not a commit")))?;
            if ts <= state.last_ts {
                continue; // already in the tables
            }
            if ts <= last_ts {
                return Err(corrupt(
                    &path,
                    format!("record {j} at {ts} after {last_ts}"),
                ));
            }
            mem.apply(ts, &writes);
            last_ts = ts;
            recovery.replayed += 1;
            sim_runtime::cover!("lsm.recovery_replays_second_segment", i > 0);
        }
    }
    recovery.last_ts = last_ts;
    // The replay kept only commits after the tables' `last_ts`, in increasing order.
    debug_assert!(mem
        .entries()
        .map(|e| e.ts)
        .max()
        .map_or(true, |newest| newest == last_ts && last_ts > state.last_ts));

    // 5. Orphans.
    let mut next_file = state.next_file.max(listing.max_number() + 1);
    let mut orphans: Vec<PathBuf> = Vec::new();
    let named: BTreeSet<u64> = tables.keys().copied().collect();
    orphans.extend(
        listing
            .tables
            .difference(&named)
            .map(|n| table_path(dir, *n)),
    );
    let keep_from = if old_manifest.is_some() {
        state.log_number
    } else {
        u64::MAX
    };
    orphans.extend(
        listing
            .segments
            .range(..keep_from)
            .map(|n| segment_path(dir, *n)),
    );
    orphans.extend(
        listing
            .manifests
            .iter()
            .filter(|n| Some(**n) != old_manifest)
            .map(|n| manifest_path(dir, *n)),
    );
    if listing.current_tmp {
        orphans.push(dir.join("CURRENT.tmp"));
    }
    // Deleted only after the new manifest and `CURRENT` are durable (step 6): the
    // `CURRENT` this open read may exist only in the page cache (a failed directory
    // sync before a process death drops the rename), and the durable one may still
    // name files that look orphaned from here (simulator-found: D17).
    recovery.orphans_deleted = orphans.len();
    sim_runtime::cover!("lsm.recovery_deletes_orphans", !orphans.is_empty());

    // 6. What the WAL replay read came through the page cache, which after a process
    //    death (or a failed fsync, whose pages the kernel may mark clean without ever
    //    writing them: "fsyncgate") can hold records that are not on disk and never
    //    will be. Serving them would show clients commits a power loss then takes
    //    back. So the replayed records are rewritten into a fresh level-0 table —
    //    new pages, really written by its fsync — and the log restarts in a new,
    //    empty segment; the old segments go once the manifest naming both is durable.
    let mut obsolete_segments = Vec::new();
    // The torn-tail canary keeps the log going in the replayed segment, after its
    // uncut garbage (the rewrite would otherwise discard the garbage with the segment).
    let keep_torn = crate::canary::enabled(crate::canary::Canary::KeepTornWalTail);
    if !mem.is_empty() && !keep_torn {
        let mut b = TableBuilder::new(opts.block_bytes, opts.bloom_bits_per_key);
        for e in mem.entries() {
            b.add(&e);
        }
        let number = next_file;
        next_file += 1;
        let (table, meta) = background::write_and_open_in(dir, b, number, &cache).await?;
        // It holds exactly the replayed commits: after the tables' `last_ts`, up to the
        // `LastTs` the edit below records.
        debug_assert!(meta.min_ts > state.last_ts && meta.max_ts == last_ts);
        sim_fs::sync_dir(dir)
            .await
            .map_err(|e| io("sync_dir", dir, e))?;
        let edit = Edit(vec![
            Change::AddTable { level: 0, meta },
            Change::LastTs(last_ts),
        ]);
        state
            .apply(&edit)
            .map_err(|d| corrupt(dir, format!("recovery's table does not apply: {d}")))?;
        tables.insert(number, table);
        mem = Memtable::for_bytes(opts.memtable_bytes);
        recovery.rewritten_to_table = true;
        sim_runtime::cover!("lsm.recovery_rewrites_replayed_log_to_table");
        obsolete_segments = live.clone();
    }
    // The WAL segment to append to (created, durably, before the manifest names it),
    // then a fresh manifest.
    let segment = match live.last() {
        Some(seq) if obsolete_segments.is_empty() => *seq,
        _ => {
            let seq = next_file;
            next_file += 1;
            state.log_number = seq;
            seq
        }
    };
    let dir_sync = Arc::new(sim_fs::FailStopDir::new(dir));
    let wal = Wal::open(
        &segment_path(dir, segment),
        dir_sync.clone(),
        opts.wal_preallocate_bytes,
    )
    .await?;
    let number = next_file;
    next_file += 1;
    state.next_file = next_file;
    let writer = ManifestWriter::create(dir, number, &state).await?;
    if let Some(old) = old_manifest {
        remove(&manifest_path(dir, old)).await?;
    }
    for p in &orphans {
        remove(p).await?;
    }
    for seq in &obsolete_segments {
        remove(&segment_path(dir, *seq)).await?;
    }
    dir_sync.sync().await.map_err(|e| io("sync_dir", dir, e))?;
    let live: Vec<u64> = live
        .into_iter()
        .filter(|s| !obsolete_segments.contains(s))
        .collect();

    let table_set = Arc::new(TableSet::build(&state, &tables));
    table_set.check().map_err(|d| corrupt(dir, d))?;
    let levels = state.levels.len();
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        opts,
        state: Mutex::new(State {
            mem: Arc::new(Mutex::new(mem)),
            imms: VecDeque::new(),
            table_set,
            manifest: state,
            tables,
            next_file,
            last_ts,
            wal_segments: live.iter().copied().chain([segment]).collect(),
            poisoned: None,
            closed: false,
            force_compaction: None,
            cursor: vec![Vec::new(); levels],
            // Tables from before this open were collected at horizons ≤ the `last_ts`
            // recovered, and no read of this process reads below it.
            gc_floor: Timestamp::ZERO,
            stats: LsmStats::default(),
        }),
        wal,
        dir_sync,
        work: Notify::new(),
        progress: sim_runtime::sync::Signal::default(),
        horizon: Mutex::new(None),
        bg: Mutex::new(None),
        cache,
    });
    let task =
        sim_runtime::task::spawn_named("lsm.background", background::run(shared.clone(), writer));
    *sim_runtime::sync::lock(&shared.bg) = Some(task);
    if last_ts > Timestamp::ZERO || recovery.orphans_deleted > 0 {
        tracing::info!(dir = %dir.display(), ?recovery, "lsm store recovered");
    }
    Ok((LsmStore { shared }, recovery))
}
