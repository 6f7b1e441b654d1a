//! The block cache's tests: hits, the byte bound, second-chance eviction, removal per table, sharding, determinism.

use super::*;
use crate::kv::Timestamp;
use crate::lsm::block::BlockBuilder;
use crate::lsm::codec::Entry;

/// A block with one entry whose value has `n` bytes.
fn block(tag: u64, n: usize) -> Block {
    let mut b = BlockBuilder::new();
    b.add(&Entry {
        key: format!("k{tag}").into_bytes(),
        ts: Timestamp(tag + 1),
        value: Some(vec![7; n]),
    });
    Block::decode(&b.finish()).unwrap()
}

fn charge(n: usize) -> usize {
    BlockCache::charge(&block(0, n))
}

#[test]
fn hit_after_miss_returns_the_same_block() {
    let c = BlockCache::new(1 << 20);
    assert!(c.get(1, 0).is_none());
    let b = block(1, 100);
    c.insert(1, 0, b.clone());
    let got = c.get(1, 0).unwrap();
    assert!(got.is_same_copy(&b));
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.blocks), (1, 1, 1));
    assert_eq!(s.bytes, BlockCache::charge(&b));
    // A second insert of the same key keeps the first copy.
    c.insert(1, 0, block(2, 100));
    assert!(c.get(1, 0).unwrap().is_same_copy(&b));
    c.verify_invariants().unwrap();
}

#[test]
fn bytes_stay_within_the_bound() {
    let per = charge(1000);
    let c = BlockCache::new(per * 5 + per / 2);
    for i in 0..50 {
        c.insert(i % 7, i as u32, block(i, 1000));
        let s = c.stats();
        assert!(s.bytes <= s.capacity, "{s:?}");
        assert!(s.blocks <= 5, "{s:?}");
        c.verify_invariants().unwrap();
    }
    assert_eq!(c.stats().blocks, 5);
    assert_eq!(c.stats().evictions, 45);
    // Too big for the whole cache: not kept, nothing evicted for it.
    c.insert(99, 0, block(99, per * 6));
    assert!(c.get(99, 0).is_none());
    assert_eq!(c.stats().evictions, 45);
    // A disabled cache keeps nothing.
    let off = BlockCache::new(0);
    off.insert(1, 0, block(1, 10));
    assert_eq!(off.stats().blocks, 0);
}

#[test]
fn eviction_gives_referenced_blocks_a_second_chance() {
    let per = charge(1000);
    let c = BlockCache::new(per * 3);
    for i in 0..3 {
        c.insert(1, i, block(u64::from(i), 1000));
    }
    // Use block 0: the hand gives it a second chance (to the back) and evicts 1.
    assert!(c.get(1, 0).is_some());
    c.insert(1, 3, block(3, 1000));
    assert_eq!(c.keys(), vec![(1, 0), (1, 2), (1, 3)]);
    // Block 2 (unused) is the oldest now.
    c.insert(1, 4, block(4, 1000));
    assert_eq!(c.keys(), vec![(1, 0), (1, 3), (1, 4)]);
    // Then block 0: its second chance is spent.
    c.insert(1, 5, block(5, 1000));
    assert_eq!(c.keys(), vec![(1, 3), (1, 4), (1, 5)]);
    // Everything referenced: one full turn clears the bits, then the oldest goes.
    for i in 3..6 {
        assert!(c.get(1, i).is_some());
    }
    c.insert(2, 0, block(6, 1000));
    assert_eq!(c.keys(), vec![(1, 4), (1, 5), (2, 0)]);
    assert_eq!(c.stats().evictions, 4);
    c.verify_invariants().unwrap();
}

#[test]
fn removing_a_table_frees_its_blocks_only() {
    let c = BlockCache::new(1 << 20);
    for t in 1..4 {
        for i in 0..3 {
            c.insert(t, i, block(t * 10 + u64::from(i), 50));
        }
    }
    let before = c.stats().bytes;
    let freed: usize = (0..3).map(|i| BlockCache::charge(&block(20 + i, 50))).sum();
    c.remove_table(2, 3);
    assert_eq!(c.stats().blocks, 6);
    assert_eq!(c.stats().bytes, before - freed);
    // Freed positions are reused before the clock face grows.
    c.insert(4, 0, block(40, 50));
    assert_eq!(c.stats().blocks, 7);
    assert!(c.keys().iter().all(|(t, _)| *t != 2));
    assert!(c.get(2, 1).is_none());
    assert!(c.get(3, 2).is_some());
    c.verify_invariants().unwrap();
}

/// A large cache is sharded: blocks spread over the shards, each shard keeps its
/// share of the bound, the totals add up, and dropping a table finds its blocks in
/// every shard. A small one (every other test's) has one shard.
#[test]
fn large_caches_are_sharded_and_keep_their_bound() {
    assert_eq!(BlockCache::new(4 << 20).shard_count(), 1);
    assert_eq!(BlockCache::new(24 << 20).shard_count(), 4);
    let per = charge(100_000);
    let c = BlockCache::new(64 << 20);
    assert_eq!(c.shard_count(), SHARDS_MAX);
    // Twice what fits: every shard evicts, none exceeds its share.
    let n = 2 * (64 << 20) / per;
    for i in 0..n {
        c.insert(1 + (i % 3) as u64, i as u32, block(i as u64, 100_000));
    }
    let s = c.stats();
    assert!(s.bytes <= s.capacity && s.evictions > 0, "{s:?}");
    assert!(s.blocks > SHARDS_MAX * 4, "{s:?}");
    c.verify_invariants().unwrap();
    let before = c.keys().len();
    let of_2 = c.keys().iter().filter(|(t, _)| *t == 2).count();
    assert!(of_2 > 0);
    c.remove_table(2, n as u32);
    assert_eq!(c.keys().len(), before - of_2);
    assert!(c.keys().iter().all(|(t, _)| *t != 2));
    c.verify_invariants().unwrap();
}

#[test]
fn same_calls_same_contents() {
    let run = || {
        let c = BlockCache::new(charge(200) * 4);
        for i in 0..40u64 {
            if i % 3 == 0 {
                let _ = c.get(i % 5, (i % 4) as u32);
            }
            c.insert(i % 5, (i % 4) as u32, block(i, 200));
        }
        (c.keys(), c.stats())
    };
    assert_eq!(run(), run());
}
