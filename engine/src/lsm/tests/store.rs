//! [`LsmStore`] end to end: reads at snapshots across flushes, compactions and reopens;
//! garbage collection; orphan files; damaged and missing files at open.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::with_dir;
use crate::kv::{KeyRange, Timestamp, WriteSet};
use crate::lsm::sstable::table_path;
use crate::lsm::wal::segment_path;
use crate::lsm::{LsmStore, Options};
use crate::mvcc::{MemStore, VersionedStore};

/// Key `k` of the tests: `k007`, or with `stem` before it.
fn key(stem: &str, k: u64) -> Vec<u8> {
    format!("{stem}k{k:03}").into_bytes()
}

fn writes(i: u64) -> WriteSet {
    writes_under("", i)
}

fn writes_under(stem: &str, i: u64) -> WriteSet {
    let mut w = WriteSet::new();
    w.insert(
        key(stem, i % 37),
        Some(format!("v{i}-{}", "x".repeat((i % 5) as usize * 20)).into_bytes()),
    );
    if i % 7 == 0 {
        w.insert(key(stem, (i * 3) % 37), None);
    }
    w
}

async fn load(store: &LsmStore, model: &mut MemStore, from: u64, to: u64) {
    load_under("", store, model, from, to).await
}

async fn load_under(stem: &str, store: &LsmStore, model: &mut MemStore, from: u64, to: u64) {
    for i in from..to {
        let w = writes_under(stem, i);
        store
            .apply(Timestamp(i), &w, None)
            .unwrap()
            .wait()
            .await
            .unwrap();
        model.apply(Timestamp(i), &w).unwrap();
    }
}

/// Every key at a spread of snapshots, and scans, against the model.
async fn check(store: &LsmStore, model: &MemStore, from_ts: u64) {
    check_under("", store, model, from_ts).await
}

async fn check_under(stem: &str, store: &LsmStore, model: &MemStore, from_ts: u64) {
    let last = model.last_commit_ts().0;
    for at in (from_ts..=last).step_by(7).chain([last, u64::MAX]) {
        for k in 0..40 {
            let key = key(stem, k);
            assert_eq!(
                store.get(&key, Timestamp(at)).await.unwrap(),
                model.get(&key, Timestamp(at)).unwrap(),
                "get k{k:03} at {at}"
            );
        }
        // Whole, and short ranges with every kind of bound edge at keys spread over
        // the tables of each level (a scan visits only the tables its range meets:
        // `TableSet::tables_overlapping`).
        let mut ranges = vec![
            KeyRange::all(),
            KeyRange::new(key(stem, 5)..key(stem, 20)).unwrap(),
        ];
        for k in (0..40).step_by(5) {
            let (a, b) = (key(stem, k), key(stem, k + 3));
            ranges.push(KeyRange::new((Bound::Excluded(a.clone()), Bound::Included(b))).unwrap());
            ranges.push(KeyRange::new(a.clone()..=a.clone()).unwrap());
            ranges.push(KeyRange::new(..a).unwrap());
        }
        for r in &ranges {
            assert_eq!(
                store.scan(r, Timestamp(at)).await.unwrap(),
                model.scan(r, Timestamp(at)).unwrap(),
                "scan {r} at {at}"
            );
        }
    }
}

#[test]
fn reads_at_snapshots_survive_flush_compaction_and_reopen() {
    with_dir(|dir| async move {
        let mut model = MemStore::new();
        let (store, rec) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        assert_eq!(rec.last_ts, Timestamp::ZERO);
        load(&store, &mut model, 1, 300).await;
        check(&store, &model, 1).await;
        store.wait_idle().await.unwrap();
        let stats = store.stats();
        assert!(stats.flushes >= 5 && stats.compactions >= 1, "{stats:?}");
        store.verify_invariants().unwrap();
        check(&store, &model, 1).await;
        store.close().await.unwrap();
        drop(store);
        let (store, rec) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        assert_eq!(rec.last_ts, Timestamp(299));
        check(&store, &model, 1).await;
        load(&store, &mut model, 300, 400).await;
        store.compact_all().await.unwrap();
        let stats = store.stats();
        assert_eq!(
            stats.tables_per_level.iter().filter(|n| **n > 0).count(),
            1,
            "{stats:?}"
        );
        check(&store, &model, 1).await;
        store.close().await.unwrap();
    });
}

/// Keys that share more than the inline common prefix a block, a table index and a
/// level's fences keep ([`crate::lsm::block::COMMON_INLINE`]): every search falls back
/// to whole keys on prefix ties, across flushes and compactions into several levels.
#[test]
fn keys_with_a_long_common_prefix_read_back_from_every_level() {
    with_dir(|dir| async move {
        let stem = "tenant-0042/database-0007/table-users/";
        assert!(stem.len() > crate::lsm::block::COMMON_INLINE + 8);
        let mut model = MemStore::new();
        let (store, _) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        load_under(stem, &store, &mut model, 1, 400).await;
        store.wait_idle().await.unwrap();
        let stats = store.stats();
        assert!(
            stats
                .tables_per_level
                .iter()
                .skip(1)
                .filter(|n| **n > 1)
                .count()
                >= 1,
            "a level of several tables: {stats:?}"
        );
        store.verify_invariants().unwrap();
        check_under(stem, &store, &model, 1).await;
        store.close().await.unwrap();
    });
}

#[test]
fn compaction_collects_versions_below_the_horizon_and_tombstones_at_the_bottom() {
    with_dir(|dir| async move {
        let mut model = MemStore::new();
        let (store, _) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        let horizon = Arc::new(AtomicU64::new(0));
        let h = horizon.clone();
        store.set_gc_horizon(Arc::new(move || Timestamp(h.load(Ordering::Relaxed))));
        load(&store, &mut model, 1, 200).await;
        store.compact_all().await.unwrap();
        assert_eq!(
            store.stats().versions_dropped,
            0,
            "horizon 0 keeps everything"
        );
        check(&store, &model, 1).await;
        horizon.store(150, Ordering::Relaxed);
        let mut w = WriteSet::new();
        w.insert(b"k001".to_vec(), None);
        store
            .apply(Timestamp(200), &w, None)
            .unwrap()
            .wait()
            .await
            .unwrap();
        model.apply(Timestamp(200), &w).unwrap();
        horizon.store(200, Ordering::Relaxed);
        store.compact_all().await.unwrap();
        let stats = store.stats();
        assert!(stats.versions_dropped > 50, "{stats:?}");
        assert!(stats.tombstones_dropped >= 1, "{stats:?}");
        // Reads at or above the horizon are unchanged, and the bottom tombstone is gone
        // (as from the reference store collected at the same horizon).
        assert_eq!(store.get(b"k001", Timestamp::MAX).await.unwrap(), None);
        model.gc(Timestamp(200)).unwrap();
        check(&store, &model, 200).await;
        store.close().await.unwrap();
    });
}

async fn flip_byte(path: &Path, at_end: u64) {
    let mut bytes = sim_fs::read(path).await.unwrap();
    let i = bytes.len() - at_end as usize;
    bytes[i] ^= 0x40;
    let f = sim_fs::File::open(path).await.unwrap();
    f.write_all_at(&bytes, 0).await.unwrap();
    f.sync_data().await.unwrap();
}

async fn first_table(dir: &Path) -> std::path::PathBuf {
    sim_fs::read_dir(dir)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .expect("a table")
}

#[test]
fn damaged_or_missing_files_fail_open_with_typed_errors() {
    with_dir(|dir| async move {
        let mut model = MemStore::new();
        let (store, _) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        load(&store, &mut model, 1, 60).await;
        store.flush().await.unwrap();
        store.close().await.unwrap();
        drop(store);
        let table = first_table(&dir).await;
        // A flipped footer byte.
        flip_byte(&table, 10).await;
        let e = LsmStore::open(&dir, Options::tiny()).await.unwrap_err();
        assert!(e.is_corruption(), "{e}");
        flip_byte(&table, 10).await;
        // A missing table the manifest names.
        let saved = sim_fs::read(&table).await.unwrap();
        sim_fs::remove_file(&table).await.unwrap();
        let e = LsmStore::open(&dir, Options::tiny()).await.unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("does not exist"),
            "{e}"
        );
        sim_fs::write(&table, &saved).await.unwrap();
        // Back in one piece.
        let (store, _) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        check(&store, &model, 1).await;
        store.close().await.unwrap();
    });
}

#[test]
fn files_the_manifest_does_not_name_are_deleted_not_trusted() {
    with_dir(|dir| async move {
        let mut model = MemStore::new();
        let (store, _) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        load(&store, &mut model, 1, 40).await;
        store.close().await.unwrap();
        drop(store);
        // A stray table full of garbage, a WAL segment below the log number with a
        // record in it, a leftover CURRENT.tmp, and an unrelated file.
        let stray = table_path(&dir, 999);
        sim_fs::write(&stray, b"not a table").await.unwrap();
        let old_wal = segment_path(&dir, 0);
        sim_fs::write(
            &old_wal,
            crate::framing::encode_record(&crate::lsm::codec::encode_commit(
                Timestamp(1000),
                &writes(1),
            ))
            .unwrap(),
        )
        .await
        .unwrap();
        sim_fs::write(dir.join("CURRENT.tmp"), b"junk")
            .await
            .unwrap();
        sim_fs::write(dir.join("notes.txt"), b"mine").await.unwrap();
        let (store, rec) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        assert_eq!(rec.orphans_deleted, 3, "{rec:?}");
        assert_eq!(
            rec.last_ts,
            Timestamp(39),
            "the stray segment's commit is not replayed"
        );
        for p in [&stray, &old_wal, &dir.join("CURRENT.tmp")] {
            assert!(
                !sim_fs::exists(p).await.unwrap(),
                "{} survived",
                p.display()
            );
        }
        assert!(
            sim_fs::exists(dir.join("notes.txt")).await.unwrap(),
            "foreign files are left alone"
        );
        check(&store, &model, 1).await;
        // A new table gets a number above every one seen.
        store.flush().await.unwrap();
        let max = sim_fs::read_dir(&dir)
            .await
            .unwrap()
            .iter()
            .filter_map(|p| p.file_stem()?.to_str()?.parse::<u64>().ok())
            .max();
        assert!(max > Some(999), "{max:?}");
        store.close().await.unwrap();
        drop(store);
        // The manifest's first WAL segment missing: a lost manifest edit, not a new store.
        let segs: Vec<_> = sim_fs::read_dir(&dir)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| crate::lsm::wal::parse_segment_name(p).is_some())
            .collect();
        for s in &segs {
            sim_fs::remove_file(s).await.unwrap();
        }
        let e = LsmStore::open(&dir, Options::tiny()).await.unwrap_err();
        assert!(e.is_corruption(), "{e}");
    });
}

#[test]
fn the_block_cache_is_bounded_changes_no_read_and_starts_cold_on_reopen() {
    with_dir(|dir| async move {
        // Tiny, a cache of everything, and no cache: the same reads.
        for cache in [Options::tiny().block_cache_bytes, 1 << 20, 0] {
            let opts = Options {
                block_cache_bytes: cache,
                ..Options::tiny()
            };
            let sub = dir.join(format!("c{cache}"));
            let (store, _) = LsmStore::open(&sub, opts.clone()).await.unwrap();
            let mut model = MemStore::new();
            load(&store, &mut model, 1, 300).await;
            store.wait_idle().await.unwrap();
            check(&store, &model, 1).await;
            check(&store, &model, 1).await;
            let s = store.stats().block_cache;
            assert!(s.bytes <= cache, "{s:?}");
            if cache > 0 {
                assert!(s.hits > 0 && s.blocks > 0, "{s:?}");
            } else {
                assert_eq!(s.blocks, 0, "{s:?}");
            }
            store.verify_invariants().unwrap();
            // A full compaction replaces every table: the old tables' blocks leave the
            // cache with them, so what is cached belongs to live tables only.
            store.compact_all().await.unwrap();
            let live: Vec<u64> = store.shared.state().tables.keys().copied().collect();
            assert!(
                store
                    .shared
                    .cache
                    .keys()
                    .iter()
                    .all(|(t, _)| live.contains(t)),
                "cached blocks of dropped tables"
            );
            check(&store, &model, 1).await;
            store.verify_invariants().unwrap();
            store.close().await.unwrap();
            drop(store);
            let (store, _) = LsmStore::open(&sub, opts).await.unwrap();
            let s = store.stats().block_cache;
            assert_eq!((s.blocks, s.bytes, s.hits), (0, 0, 0), "reopen starts cold");
            check(&store, &model, 1).await;
            store.close().await.unwrap();
        }
    });
}

/// Bytes of the files under `dir` whose names end in `suffix`.
async fn bytes_of(dir: &Path, suffix: &str) -> u64 {
    let mut total = 0;
    for path in sim_fs::read_dir(dir).await.unwrap() {
        if path.to_string_lossy().ends_with(suffix) {
            total += sim_fs::metadata(&path).await.unwrap().len;
        }
    }
    total
}

/// The byte counters (`LsmStats::*_bytes_written`, read by `seedbank bench`): every
/// append grows the WAL's by at least its framed record, and the tables on disk were
/// all written by this store's flushes and compactions, so never exceed their sum.
#[test]
fn the_store_counts_the_bytes_it_writes() {
    with_dir(|dir| async move {
        let mut model = MemStore::new();
        let (store, _) = LsmStore::open(&dir, Options::tiny()).await.unwrap();
        let s = store.stats();
        assert_eq!(
            (
                s.wal_bytes_written,
                s.flush_bytes_written,
                s.compaction_bytes_written
            ),
            (0, 0, 0)
        );
        load(&store, &mut model, 1, 2).await;
        let one = store.stats().wal_bytes_written;
        assert!(
            one > crate::framing::HEADER_BYTES as u64,
            "one append: {one} bytes"
        );
        load(&store, &mut model, 2, 300).await;
        store.wait_idle().await.unwrap();
        let s = store.stats();
        assert!(s.flushes >= 5 && s.compactions >= 1, "{s:?}");
        assert!(s.wal_bytes_written >= one + 298 * (crate::framing::HEADER_BYTES as u64 + 1));
        let tables = bytes_of(&dir, ".sst").await;
        assert!(s.flush_bytes_written > 0 && tables > 0, "{s:?}");
        assert!(
            s.flush_bytes_written + s.compaction_bytes_written >= tables,
            "{s:?}, {tables} bytes of tables"
        );
        // A full compaction rewrites every table: the counter grows by what is left.
        let before = s.compaction_bytes_written;
        store.compact_all().await.unwrap();
        let after = store.stats().compaction_bytes_written;
        let tables = bytes_of(&dir, ".sst").await;
        assert!(
            after - before >= tables,
            "{before} -> {after}, {tables} bytes of tables"
        );
        store.close().await.unwrap();
    });
}
