//! On-disk formats through the file API: SSTables, WAL segments and the manifest,
//! round trips and damage. A flipped or missing byte must give a typed corruption error
//! (or, in the WAL's last record only, a torn-tail cut) — never a panic, never data
//! that was not written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::with_dir;
use crate::framing::encode_record;
use crate::kv::{KeyRange, Timestamp};
use crate::lsm::bloom::Layout;
use crate::lsm::cache::BlockCache;
use crate::lsm::codec::Entry;
use crate::lsm::error::LsmError;
use crate::lsm::manifest::{self, Change, Edit, ManifestState, ManifestWriter};
use crate::lsm::memtable::Memtable;
use crate::lsm::sstable::{table_path, write_table, Table, TableBuilder, FORMAT_VERSION};
use crate::lsm::wal::{segment_path, Wal, WalError};

/// Versions of 40 keys, some with several versions and tombstones.
fn sample_entries(keys: usize) -> Memtable {
    let mut m = Memtable::new();
    for i in 0..keys {
        let key = format!("key{:04}", i * 3).into_bytes();
        for v in 0..(i % 3 + 1) as u64 {
            let ts = Timestamp(1 + v * 10 + i as u64 % 7);
            let value = (i % 5 != 0 || v > 0).then(|| format!("value-{i}-{v}").into_bytes());
            m.insert(key.clone(), ts, value);
        }
    }
    m
}

fn build(
    m: &Memtable,
    block_bytes: usize,
    number: u64,
) -> (Vec<u8>, crate::lsm::sstable::TableMeta) {
    build_format(m, block_bytes, number, FORMAT_VERSION)
}

/// [`build`] in table format `version`.
fn build_format(
    m: &Memtable,
    block_bytes: usize,
    number: u64,
    version: u32,
) -> (Vec<u8>, crate::lsm::sstable::TableMeta) {
    let mut b = TableBuilder::new(block_bytes, 10).with_format_version(version);
    for e in m.entries() {
        b.add(&e);
    }
    b.finish(number)
}

fn cache(bytes: usize) -> Arc<BlockCache> {
    Arc::new(BlockCache::new(bytes))
}

async fn write_raw(path: &Path, bytes: &[u8]) {
    sim_fs::write(path, bytes).await.expect("write test file");
}

/// Every lookup a reader can make of `m`'s keys, compared to the memtable.
async fn check_table_against(t: &Table, m: &Memtable) -> Result<(), LsmError> {
    let keys: Vec<Vec<u8>> = m.entries().map(|e| e.key).collect();
    for k in keys
        .iter()
        .chain([&b"key0001".to_vec(), &b"zzz".to_vec(), &b"a".to_vec()])
    {
        for at in [0, 1, 5, 11, 15, 21, 30, u64::MAX] {
            let got = t.get(k, Timestamp(at)).await?;
            assert_eq!(got, m.get(k, Timestamp(at)), "get {k:?} at {at}");
        }
    }
    let ranges = [
        KeyRange::all(),
        KeyRange::new(b"key0010".to_vec()..b"key0050".to_vec()).unwrap(),
        KeyRange::new((
            std::ops::Bound::Excluded(b"key0003".to_vec()),
            std::ops::Bound::Included(b"key0099".to_vec()),
        ))
        .unwrap(),
        KeyRange::new(b"x".to_vec()..).unwrap(),
        // Bounds on keys that exist, with several versions (which may span blocks):
        // excluded and included, at either end, and a range of one key.
        KeyRange::new((
            std::ops::Bound::Excluded(b"key0011".to_vec()),
            std::ops::Bound::Excluded(b"key0071".to_vec()),
        ))
        .unwrap(),
        KeyRange::new((
            std::ops::Bound::Included(b"key0005".to_vec()),
            std::ops::Bound::Included(b"key0005".to_vec()),
        ))
        .unwrap(),
        KeyRange::new((
            std::ops::Bound::Excluded(b"key0104".to_vec()),
            std::ops::Bound::Unbounded,
        ))
        .unwrap(),
        KeyRange::new(..b"key0041".to_vec()).unwrap(),
    ];
    for r in &ranges {
        for at in [0, 12, u64::MAX] {
            assert_eq!(
                t.scan(r, Timestamp(at)).await?,
                m.scan(r, Timestamp(at)),
                "scan {r} at {at}"
            );
        }
    }
    let all: Vec<Entry> = t.read_all().await?;
    assert_eq!(all, m.entries().collect::<Vec<_>>());
    Ok(())
}

#[test]
fn table_round_trip_through_many_blocks() {
    with_dir(|dir| async move {
        let m = sample_entries(40);
        // A table of the previous format (its filter spreads its probes) still reads.
        let (old, old_meta) = build_format(&m, 128, 6, 1);
        let old_path = table_path(&dir, 6);
        write_table(&old_path, &old).await.unwrap();
        let t = Table::open(&old_path, 6, Some(old_meta.size), cache(1 << 20))
            .await
            .unwrap();
        assert_eq!(t.filter_layout(), Layout::Spread);
        check_table_against(&t, &m).await.unwrap();
        let (bytes, meta) = build(&m, 128, 7);
        let path = table_path(&dir, 7);
        write_table(&path, &bytes).await.unwrap();
        // No cache, a cache of a few blocks (constant eviction), a cache of all.
        for bytes_cached in [0, 1200, 1 << 20] {
            let c = cache(bytes_cached);
            let t = Table::open(&path, 7, Some(meta.size), c.clone())
                .await
                .unwrap();
            assert_eq!(*t.meta(), meta);
            assert_eq!(t.filter_layout(), Layout::Local);
            assert_eq!(meta.entries as usize, m.len());
            // Twice: the second pass reads what the first cached.
            check_table_against(&t, &m).await.unwrap();
            check_table_against(&t, &m).await.unwrap();
            let s = c.stats();
            assert!(s.bytes <= bytes_cached, "{s:?}");
            if bytes_cached > 0 {
                assert!(s.hits > 0 && s.blocks > 0, "{s:?}");
            }
            c.verify_invariants().unwrap();
            drop(t);
            assert_eq!(c.stats().blocks, 0, "a dropped table frees its blocks");
        }
        assert!(bytes.len() > 128 * 10, "several blocks");
        // create_new: a table file is never overwritten.
        assert!(write_table(&path, &bytes).await.is_err());
    });
}

#[test]
fn bloom_filter_is_checked_before_any_data_block_read() {
    with_dir(|dir| async move {
        // Both filter layouts: the current format's and the one before it.
        for (number, version) in [(1, FORMAT_VERSION), (2, 1)] {
            let m = sample_entries(200);
            let (bytes, meta) = build_format(&m, 256, number, version);
            let path = table_path(&dir, number);
            write_table(&path, &bytes).await.unwrap();
            let t = Table::open(&path, number, Some(meta.size), cache(0))
                .await
                .unwrap();
            assert_eq!(t.blocks_read(), 0, "open reads no data block");
            // Absent keys inside the table's key span (key0001, key0002, key0004, …).
            for i in 0..600 {
                if i % 3 != 0 {
                    let k = format!("key{i:04}").into_bytes();
                    assert_eq!(t.get(&k, Timestamp::MAX).await.unwrap(), None);
                }
            }
            assert!(
                t.blocks_read() <= 12,
                "{} blocks read for 400 absent keys",
                t.blocks_read()
            );
            let before = t.blocks_read();
            assert!(t.get(b"key0003", Timestamp::MAX).await.unwrap().is_some());
            assert_eq!(t.blocks_read(), before + 1, "a present key costs one block");
        }
    });
}

/// A table just written warms the cache from its bytes while the cache has room:
/// every read is then a hit with no block read from disk; on a full cache it caches
/// nothing and evicts nothing.
#[test]
fn a_new_table_warms_spare_cache_room_and_evicts_nothing() {
    with_dir(|dir| async move {
        let m = sample_entries(200);
        let (bytes, meta) = build(&m, 256, 1);
        let path = table_path(&dir, 1);
        write_table(&path, &bytes).await.unwrap();
        let roomy = cache(1 << 20);
        let t = Table::open(&path, 1, Some(meta.size), roomy.clone())
            .await
            .unwrap();
        let blocks = t.warm_cache(&bytes).unwrap();
        assert!(blocks > 10, "{blocks} blocks warmed");
        assert_eq!(roomy.stats().blocks, blocks);
        check_table_against(&t, &m).await.unwrap();
        // Only `read_all` (compaction's path, which bypasses the cache) read blocks.
        assert_eq!(
            t.blocks_read(),
            blocks as u64,
            "gets and scans hit warmed blocks"
        );
        assert_eq!(roomy.stats().misses, 0);
        roomy.verify_invariants().unwrap();
        // A small cache, filled by reads of another table first: warming adds
        // nothing it has no room for and pushes nothing out.
        let (other, other_meta) = build(&m, 256, 2);
        let other_path = table_path(&dir, 2);
        write_table(&other_path, &other).await.unwrap();
        let small = cache(2048);
        let reader = Table::open(&other_path, 2, Some(other_meta.size), small.clone())
            .await
            .unwrap();
        check_table_against(&reader, &m).await.unwrap();
        let before = small.stats();
        assert!(
            before.evictions > 0 && before.bytes + 600 > before.capacity,
            "{before:?}"
        );
        let t2 = Table::open(&path, 3, Some(meta.size), small.clone())
            .await
            .unwrap();
        let warmed = t2.warm_cache(&bytes).unwrap();
        let after = small.stats();
        assert_eq!(after.evictions, before.evictions, "warming evicted");
        assert_eq!(after.blocks, before.blocks + warmed, "{before:?} {after:?}");
        assert!(after.bytes <= after.capacity);
        small.verify_invariants().unwrap();
        check_table_against(&t2, &m).await.unwrap();
    });
}

#[test]
fn a_cached_block_is_read_from_disk_once() {
    with_dir(|dir| async move {
        let m = sample_entries(200);
        let (bytes, meta) = build(&m, 256, 1);
        let path = table_path(&dir, 1);
        write_table(&path, &bytes).await.unwrap();
        let c = cache(1 << 20);
        let t = Table::open(&path, 1, Some(meta.size), c.clone())
            .await
            .unwrap();
        let want = m.get(b"key0003", Timestamp::MAX);
        assert!(want.is_some());
        assert_eq!(t.get(b"key0003", Timestamp::MAX).await.unwrap(), want);
        assert_eq!(t.blocks_read(), 1);
        for _ in 0..10 {
            assert_eq!(t.get(b"key0003", Timestamp::MAX).await.unwrap(), want);
        }
        assert_eq!(t.blocks_read(), 1, "hits read nothing");
        let s = c.stats();
        assert_eq!((s.misses, s.hits, s.blocks), (1, 10, 1));
        // A whole scan caches every block; a second scan reads none.
        let all = t.scan(&KeyRange::all(), Timestamp::MAX).await.unwrap();
        let read = t.blocks_read();
        assert_eq!(t.scan(&KeyRange::all(), Timestamp::MAX).await.unwrap(), all);
        assert_eq!(t.blocks_read(), read);
        // Compaction's read bypasses the cache (reads the file, caches nothing new).
        let blocks = c.stats().blocks;
        t.read_all().await.unwrap();
        assert_eq!(c.stats().blocks, blocks);
    });
}

#[test]
fn every_byte_flip_and_truncation_of_a_table_is_a_typed_error() {
    with_dir(|dir| async move {
        let m = sample_entries(12);
        let (bytes, meta) = build(&m, 96, 3);
        let mut caught = 0;
        for i in 0..bytes.len() {
            let mut d = bytes.clone();
            d[i] ^= 1 << (i % 8);
            let path = dir.join(format!("flip-{i}.sst"));
            write_raw(&path, &d).await;
            let verdict = match Table::open(&path, 3, Some(meta.size), cache(1 << 20)).await {
                Err(e) => Err(e),
                // Open checked footer, index and filter; the flip is in a data block,
                // which every read of it must notice (the reads that succeed must
                // return exactly the original data).
                Ok(t) => check_table_against(&t, &m).await,
            };
            let e = verdict.expect_err(&format!(
                "flip at byte {i} of {} went unnoticed",
                bytes.len()
            ));
            assert!(e.is_corruption(), "flip at {i}: {e}");
            caught += 1;
            sim_fs::remove_file(&path).await.unwrap();
        }
        assert_eq!(caught, bytes.len());
        for cut in 0..bytes.len() {
            let path = dir.join(format!("cut-{cut}.sst"));
            write_raw(&path, &bytes[..cut]).await;
            for expect in [Some(meta.size), None] {
                let e = Table::open(&path, 3, expect, cache(1 << 20))
                    .await
                    .expect_err("truncated table opened");
                assert!(e.is_corruption(), "cut at {cut}: {e}");
            }
            sim_fs::remove_file(&path).await.unwrap();
        }
    });
}

fn wal_image(n: usize) -> (Vec<Vec<u8>>, Vec<u8>, Vec<usize>) {
    let records: Vec<Vec<u8>> = (0..n).map(|i| vec![b'a' + i as u8; 30 + i * 7]).collect();
    let mut image = Vec::new();
    let mut starts = Vec::new();
    for r in &records {
        starts.push(image.len());
        image.extend(encode_record(r).unwrap());
    }
    (records, image, starts)
}

#[test]
fn wal_byte_flips_are_corruption_or_a_cut_of_the_last_record() {
    with_dir(|dir| async move {
        let (records, image, starts) = wal_image(4);
        let last = *starts.last().unwrap();
        let (mut errors, mut cuts) = (0, 0);
        for i in 0..image.len() {
            let mut d = image.clone();
            d[i] ^= 1 << (i % 8);
            let path = dir.join(format!("wal-flip-{i}"));
            write_raw(&path, &d).await;
            match Wal::recover_segment(&path, false).await {
                Err(WalError::Corrupt { .. }) => {}
                other => panic!("flip at {i} in a synced segment: {other:?}"),
            }
            match Wal::recover_segment(&path, true).await {
                Err(WalError::Corrupt { .. }) => errors += 1,
                Ok(rec) => {
                    assert!(
                        i >= last,
                        "flip at {i}, before the last record, was cut as torn"
                    );
                    assert_eq!(rec.records, records[..3], "flip at {i}");
                    let after = sim_fs::read(&path).await.unwrap();
                    assert_eq!(after.len(), last, "the cut is made on disk");
                    cuts += 1;
                }
                Err(e) => panic!("flip at {i}: unexpected {e}"),
            }
            sim_fs::remove_file(&path).await.unwrap();
        }
        assert_eq!(errors, last);
        assert_eq!(cuts, image.len() - last);
        // Torn tails: every prefix recovers to the records wholly inside it.
        for cut in 0..=image.len() {
            let path = dir.join(format!("wal-cut-{cut}"));
            write_raw(&path, &image[..cut]).await;
            let rec = Wal::recover_segment(&path, true).await.unwrap();
            let whole = starts
                .iter()
                .skip(1)
                .chain([&image.len()])
                .filter(|end| **end <= cut)
                .count();
            assert_eq!(rec.records, records[..whole], "cut at {cut}");
            sim_fs::remove_file(&path).await.unwrap();
        }
    });
}

#[test]
fn wal_group_commit_and_rotation_keep_submission_order() {
    with_dir(|dir| async move {
        let wal = Wal::open(
            &segment_path(&dir, 1),
            std::sync::Arc::new(sim_fs::FailStopDir::new(&dir)),
            0,
        )
        .await
        .unwrap();
        let mut waits = Vec::new();
        for i in 0..10u8 {
            waits.push(wal.submit(&[i; 10], None).unwrap());
        }
        let rotated = wal.rotate(&segment_path(&dir, 2)).unwrap();
        for i in 10..15u8 {
            waits.push(wal.submit(&[i; 10], None).unwrap());
        }
        for w in waits {
            w.wait().await.unwrap();
        }
        rotated.wait().await.unwrap();
        wal.close().await.unwrap();
        assert_eq!(wal.append(b"late").await, Err(WalError::Stopped));
        let one = Wal::recover_segment(&segment_path(&dir, 1), false)
            .await
            .unwrap();
        let two = Wal::recover_segment(&segment_path(&dir, 2), true)
            .await
            .unwrap();
        let got: Vec<u8> = one
            .records
            .iter()
            .chain(&two.records)
            .map(|r| r[0])
            .collect();
        assert_eq!(got, (0..15).collect::<Vec<u8>>());
        assert_eq!(one.records.len(), 10);
    });
}

fn state_with(tables: u64) -> ManifestState {
    let mut s = ManifestState::new(3);
    s.apply(&Edit(vec![
        Change::LogNumber(1),
        Change::NextFile(10 + tables),
    ]))
    .unwrap();
    s
}

#[test]
fn manifest_install_recover_and_damage() {
    with_dir(|dir: PathBuf| async move {
        assert_eq!(
            manifest::recover(&dir, 3).await.unwrap(),
            None,
            "no CURRENT: new store"
        );
        let s = state_with(0);
        let w = ManifestWriter::create(&dir, 5, &s).await.unwrap();
        let edit = Edit(vec![Change::LogNumber(4), Change::LastTs(Timestamp(9))]);
        w.append(&edit).await.unwrap();
        let mut want = s.clone();
        want.apply(&edit).unwrap();
        assert_eq!(
            manifest::recover(&dir, 3).await.unwrap(),
            Some((want.clone(), 5))
        );
        // A second manifest replaces the first atomically.
        ManifestWriter::create(&dir, 6, &want).await.unwrap();
        assert_eq!(manifest::recover(&dir, 3).await.unwrap(), Some((want, 6)));
        assert!(!sim_fs::exists(dir.join("CURRENT.tmp")).await.unwrap());
        // CURRENT naming a missing manifest, or damaged, is corruption.
        let cur = sim_fs::read(dir.join("CURRENT")).await.unwrap();
        sim_fs::remove_file(manifest::manifest_path(&dir, 6))
            .await
            .unwrap();
        assert!(manifest::recover(&dir, 3)
            .await
            .unwrap_err()
            .is_corruption());
        for i in 0..cur.len() {
            let mut d = cur.clone();
            d[i] ^= 0x08;
            write_raw(&dir.join("CURRENT"), &d).await;
            assert!(
                manifest::recover(&dir, 3)
                    .await
                    .unwrap_err()
                    .is_corruption(),
                "flip at {i}"
            );
        }
    });
}
