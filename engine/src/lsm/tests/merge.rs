//! Compaction's streaming merge and GC ([`crate::lsm::store`]'s `merge`) against the
//! algorithm it replaced, kept here as the reference: read every input whole, sort,
//! refuse a duplicate version, garbage-collect the vector. Random inputs hold several
//! versions per key, tombstones, level-0 tables and sorted runs of several tables; a
//! random GC horizon and a random "a deeper level may hold this key" set.

use std::path::Path;
use std::sync::Arc;

use super::with_dir;
use crate::kv::Timestamp;
use crate::lsm::cache::BlockCache;
use crate::lsm::codec::{cmp_internal, Entry};
use crate::lsm::sstable::{table_path, write_table, Table, TableBuilder, READ_AHEAD_BYTES};
use crate::lsm::store::{Gc, Merge, MergeError};

/// The merge and GC as compaction ran them before streaming: whole inputs in memory.
fn reference(
    runs: &[Vec<Vec<Entry>>],
    horizon: Timestamp,
    below_may_hold: impl Fn(&[u8]) -> bool,
) -> Option<(Vec<Entry>, u64, u64)> {
    let mut all: Vec<Entry> = runs.iter().flatten().flatten().cloned().collect();
    all.sort_by(|a, b| cmp_internal(&a.key, a.ts, &b.key, b.ts));
    if all
        .windows(2)
        .any(|w| w[0].key == w[1].key && w[0].ts == w[1].ts)
    {
        return None;
    }
    let mut kept: Vec<Entry> = Vec::new();
    let (mut dropped, mut tombstones) = (0, 0);
    let mut base_seen_for: Option<Vec<u8>> = None;
    for e in all {
        if e.ts > horizon {
            kept.push(e);
            continue;
        }
        if base_seen_for.as_deref() == Some(e.key.as_slice()) {
            dropped += 1;
            continue;
        }
        base_seen_for = Some(e.key.clone());
        if e.value.is_none() && !below_may_hold(&e.key) {
            dropped += 1;
            tombstones += 1;
            continue;
        }
        kept.push(e);
    }
    Some((kept, dropped, tombstones))
}

async fn open_table(dir: &Path, number: u64, entries: &[Entry], block: usize) -> Arc<Table> {
    open_table_in(
        dir,
        number,
        entries,
        block,
        Arc::new(BlockCache::new(1 << 20)),
    )
    .await
}

async fn open_table_in(
    dir: &Path,
    number: u64,
    entries: &[Entry],
    block: usize,
    cache: Arc<BlockCache>,
) -> Arc<Table> {
    let mut b = TableBuilder::new(block, 10);
    for e in entries {
        b.add(e);
    }
    let (bytes, meta) = b.finish(number);
    let path = table_path(dir, number);
    write_table(&path, &bytes).await.expect("write table");
    let t = Table::open(&path, number, Some(meta.size), cache)
        .await
        .expect("open table");
    Arc::new(t)
}

/// The streaming merge and GC over `runs` (each a list of tables' entries), as tables
/// in `dir`.
async fn streamed(
    dir: &Path,
    runs: &[Vec<Vec<Entry>>],
    horizon: Timestamp,
    below_may_hold: impl Fn(&[u8]) -> bool,
) -> Result<(Vec<Entry>, u64, u64), MergeError> {
    let mut number = 0;
    let mut tables = Vec::new();
    for run in runs {
        let mut run_tables = Vec::new();
        for entries in run {
            number += 1;
            run_tables.push(open_table(dir, number, entries, 128).await);
        }
        tables.push(run_tables);
    }
    let mut merge = Merge::new(tables);
    let mut gc = Gc::new(horizon);
    let mut kept = Vec::new();
    while let Some(e) = merge.next().await? {
        if gc.keep(&e, &below_may_hold) {
            kept.push(e);
        }
    }
    let (dropped, tombstones) = gc.finish();
    Ok((kept, dropped, tombstones))
}

fn entry(key: u8, ts: u64, value: Option<u8>) -> Entry {
    Entry {
        key: format!("key{key:03}").into_bytes(),
        ts: Timestamp(ts),
        value: value.map(|v| vec![v; 1 + usize::from(v % 40)]),
    }
}

/// Versions `(key, ts, value, run)` as runs: run 0 a sorted run cut into tables every
/// `cut` keys (between keys, as a level's tables), the others one table each.
#[cfg(not(madsim))]
fn as_runs(versions: &[(u8, u64, Option<u8>, u8)], cut: u8) -> Vec<Vec<Vec<Entry>>> {
    let mut by_run: std::collections::BTreeMap<u8, Vec<Entry>> = Default::default();
    let mut seen = std::collections::BTreeSet::new();
    for &(k, ts, v, run) in versions {
        if seen.insert((k, ts)) {
            by_run.entry(run).or_default().push(entry(k, ts, v));
        }
    }
    let mut runs = Vec::new();
    for (run, mut entries) in by_run {
        entries.sort_by(|a, b| cmp_internal(&a.key, a.ts, &b.key, b.ts));
        if run != 0 {
            runs.push(vec![entries]);
            continue;
        }
        let mut tables: Vec<Vec<Entry>> = Vec::new();
        let mut keys_in_table = 0;
        for e in entries {
            let new_key = tables
                .last()
                .and_then(|t| t.last())
                .map_or(true, |l| l.key != e.key);
            if new_key {
                keys_in_table += 1;
                if tables.is_empty() || keys_in_table > cut {
                    tables.push(Vec::new());
                    keys_in_table = 1;
                }
            }
            tables.last_mut().expect("a table").push(e);
        }
        runs.push(tables);
    }
    runs
}

fn below(mask: u64) -> impl Fn(&[u8]) -> bool {
    move |k: &[u8]| mask >> (k.iter().map(|&b| u64::from(b)).sum::<u64>() % 64) & 1 == 1
}

#[cfg(not(madsim))]
mod props {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

    use super::*;

    type Case = (Vec<(u8, u64, Option<u8>, u8)>, u8, u64, u64);

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(
                (
                    0u8..30,
                    1u64..50,
                    prop::option::weighted(0.75, any::<u8>()),
                    0u8..5,
                ),
                1..300,
            ),
            1u8..8,
            0u64..55,
            any::<u64>(),
        )
    }

    fn check((versions, cut, horizon, mask): Case) -> Result<(), TestCaseError> {
        let runs = as_runs(&versions, cut);
        let horizon = Timestamp(horizon);
        let want = reference(&runs, horizon, below(mask)).expect("versions are unique");
        let got = with_dir(move |dir| async move {
            streamed(&dir, &runs, horizon, below(mask))
                .await
                .map_err(|e| format!("{e:?}"))
        });
        prop_assert_eq!(got, Ok(want));
        Ok(())
    }

    fn runner(cases: u32) -> TestRunner {
        let mut config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        if config.rng_seed == RngSeed::Random {
            config.rng_seed = RngSeed::Fixed(0xC0_4AC7);
        }
        TestRunner::new(config)
    }

    #[test]
    fn the_streaming_merge_keeps_exactly_what_the_whole_input_merge_kept() {
        if let Err(e) = runner(128).run(&case(), check) {
            panic!("{e}");
        }
    }

    #[test]
    fn the_comparison_catches_a_gc_that_drops_the_newest_visible_version() {
        crate::lsm::store::sabotage_gc_base(true);
        let result = runner(64).run(&case(), check);
        crate::lsm::store::sabotage_gc_base(false);
        match result {
            Err(proptest::test_runner::TestError::Fail(why, _)) => {
                eprintln!("caught; shrunk to: {why}")
            }
            Err(e) => panic!("{e}"),
            Ok(()) => panic!("a GC that loses visible versions survived 64 cases"),
        }
    }
}

#[test]
fn two_inputs_holding_one_version_stop_the_merge() {
    let runs = vec![
        vec![vec![entry(1, 5, Some(1)), entry(2, 5, Some(2))]],
        vec![vec![entry(2, 5, Some(2)), entry(3, 5, None)]],
    ];
    assert!(reference(&runs, Timestamp(0), below(0)).is_none());
    let got = with_dir(move |dir| async move {
        streamed(&dir, &runs, Timestamp(0), below(0))
            .await
            .map_err(|e| format!("{e:?}"))
    });
    assert_eq!(got, Err("Duplicate".to_string()));
}

/// A table several read-aheads long streams whole, each block read once, none cached;
/// the merge of it with a level-0 table and a sorted run of tables matches the
/// reference.
#[test]
fn tables_larger_than_the_read_ahead_stream_whole_around_the_cache() {
    let big: Vec<Entry> = (0..3000u64)
        .map(|i| Entry {
            key: format!("big{i:06}").into_bytes(),
            ts: Timestamp(1 + i % 7),
            value: (i % 11 != 0).then(|| vec![b'v'; 100]),
        })
        .collect();
    assert!(big.len() * 100 > 3 * READ_AHEAD_BYTES as usize);
    with_dir(move |dir| async move {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let t = open_table_in(&dir, 100, &big, 4096, cache.clone()).await;
        assert_eq!(t.read_all().await.unwrap(), big);
        let blocks = t.blocks_read();
        assert!(blocks > 3 * (READ_AHEAD_BYTES / 4096), "{blocks} blocks");
        assert_eq!(cache.stats().blocks, 0, "the stream caches nothing");
        let l0: Vec<Entry> = (0..500u64)
            .map(|i| Entry {
                key: format!("big{:06}", i * 6).into_bytes(),
                ts: Timestamp(10 + i % 3),
                value: (i % 4 != 0).then(|| vec![b'w'; 50]),
            })
            .collect();
        let runs = vec![vec![l0], vec![big[..1000].to_vec(), big[1000..].to_vec()]];
        let horizon = Timestamp(9);
        let want = reference(&runs, horizon, below(0x0F0F)).unwrap();
        let got = streamed(&dir, &runs, horizon, below(0x0F0F)).await.unwrap();
        assert_eq!(got, want);
        assert!(want.1 > 0 && want.2 > 0, "versions and tombstones dropped");
    });
}
