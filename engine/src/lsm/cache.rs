//! The block cache: decoded, verified data blocks shared by every table of one store.
//!
//! ## Model
//! Without it every point read paid a `pread`, a CRC32C over ~4 KiB and a full decode
//! of the block into owned entries. The cache maps `(table number, block index)` to an
//! immutable [`Block`] (see [`super::block`]): checked once, when it was read from
//! disk, then shared by `Arc` between readers. One cache per [`super::LsmStore`]
//! (built from [`super::Options::block_cache_bytes`]), so a crash and reopen starts
//! cold and two stores never see each other's blocks.
//!
//! Eviction is CLOCK (second chance): entries sit at positions of a clock face (a
//! `Vec`); a hit only sets the entry's `referenced` bit (an index lookup, no
//! reordering; the bit and the block live in the index slot, so a hit touches one
//! slot and the block, not a clock position too); to make room the hand sweeps the
//! face from where it stopped — an entry with its bit set gets it cleared and is
//! passed, the first one with it clear is evicted. A new entry takes a free position
//! (the most recently freed first) or a new one at the end.
//!
//! The index from key to entry (block, clock position, bit) is a small open-addressing
//! hash table (`Index`: linear probing, a fixed multiplicative hash, backward-shift
//! deletion). Nothing ever iterates it — eviction walks the face, dropping a table
//! walks that table's block numbers, [`BlockCache::keys`] sorts — and its hash has no
//! per-process seed, so the cache's contents depend only on the sequence of calls:
//! deterministic in the simulator, where a miss is a traced file read. (It replaced a
//! `BTreeMap`, whose search was ~17% of a cached point read.)
//!
//! ## Invariants (checked by [`BlockCache::verify_invariants`], after every mutation
//! in debug builds)
//! - Per shard, `bytes` is the sum of the entries' charges and never exceeds the
//!   shard's share of `capacity`; the shares sum to `capacity`; every key sits in the
//!   shard its hash names.
//! - The clock face and the index hold the same entries (the index maps each key to
//!   its position), and the free list names exactly the empty positions.
//! - A cached block is never mutated; what a reader gets from the cache is exactly what
//!   decoding the verified bytes on disk gives (tables are immutable and their numbers
//!   are never reused within a store: `next_file` only grows, and is persisted).
//! - A table's entries are dropped when the table is (its last reader gone after a
//!   compaction removed it), so deleted tables do not hold memory; even if they were
//!   not, their keys could never be asked for again and would age out.
//!
//! ## Shards
//! A cache of `capacity` bytes is `capacity / 4 MiB` independent CLOCK caches (a power
//! of two, at most 16), each with its share of the bytes; a key's shard is fixed by a
//! hash of it. One mutex for all was a fifth of a YCSB-C read at two threads, waiting
//! included. Caches under 8 MiB (every test's) have one shard: one CLOCK, as before.
//!
//! ## Non-goals
//! - Caching the index or filter blocks (they live in the table, always in memory).

use sim_runtime::sync::lock;
use std::sync::{Mutex, MutexGuard};

use super::block::Block;

mod index;
use index::Index;

/// Bytes charged per entry on top of the block's heap bytes (map node share, `Arc`
/// header, slot), so many tiny blocks cannot exceed the bound unnoticed.
pub const ENTRY_OVERHEAD: usize = 96;

/// Counters of a store's block cache, for stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The byte bound.
    pub capacity: usize,
    /// Bytes charged now (≤ `capacity`).
    pub bytes: usize,
    /// Blocks held now.
    pub blocks: usize,
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Blocks evicted to make room.
    pub evictions: u64,
}

type CacheKey = (u64, u32);

/// One position of the clock face: the key of the block it holds (`None`: free) and
/// the block's charge.
#[derive(Debug, Clone, Default)]
struct Hand {
    key: Option<CacheKey>,
    charge: usize,
}

/// A cached block, as its index slot holds it: what a hit needs in one place.
#[derive(Debug)]
struct Cached {
    block: Block,
    /// Its position on the clock face.
    at: u32,
    /// The second-chance bit.
    referenced: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Key → the cached block, its position on the clock face and its bit.
    index: Index<Cached>,
    /// The clock face; a free position is reused before the face grows.
    clock: Vec<Hand>,
    /// Free positions of `clock`.
    free: Vec<usize>,
    /// The position the hand looks at next.
    hand: usize,
    stats: CacheStats,
}

/// A byte-bounded CLOCK cache of decoded data blocks (see the module doc).
#[derive(Debug)]
pub struct BlockCache {
    /// Independent caches, each with its share of the capacity; a key's shard is
    /// fixed by its hash.
    shards: Box<[Mutex<Inner>]>,
    capacity: usize,
}

/// Bytes per shard at least: small caches (every test's) have one shard, so their
/// eviction order is exactly one CLOCK's.
pub const SHARD_BYTES_MIN: usize = 4 << 20;
/// At most this many shards (a power of two).
pub const SHARDS_MAX: usize = 16;

impl BlockCache {
    /// A cache holding at most `capacity` bytes (0 disables it: nothing is kept), in
    /// `capacity / 4 MiB` shards (a power of two, 1 to 16) so that readers on
    /// different cores rarely wait for the same lock.
    pub fn new(capacity: usize) -> BlockCache {
        let n = (capacity / SHARD_BYTES_MIN).clamp(1, SHARDS_MAX);
        let n = if n.is_power_of_two() {
            n
        } else {
            n.next_power_of_two() / 2
        };
        let shards = (0..n)
            .map(|i| {
                // The shares add up to `capacity` exactly.
                let share = capacity / n + usize::from(i < capacity % n);
                Mutex::new(Inner {
                    stats: CacheStats {
                        capacity: share,
                        ..CacheStats::default()
                    },
                    ..Inner::default()
                })
            })
            .collect();
        BlockCache { shards, capacity }
    }

    /// The shard of `key`, locked.
    fn lock(&self, key: CacheKey) -> MutexGuard<'_, Inner> {
        let i = (index::mix(key) >> 16) as usize & (self.shards.len() - 1);
        lock(&self.shards[i])
    }

    /// Number of shards (for tests and stats).
    #[cfg(test)]
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The bytes `block` would be charged.
    pub fn charge(block: &Block) -> usize {
        block.heap_bytes() + ENTRY_OVERHEAD
    }

    /// `f` of block `index` of table `table`, if cached (marks it recently used): a
    /// point read's search, under the shard's lock, without taking a reference.
    pub fn with<R>(&self, table: u64, index: u32, f: impl FnOnce(&Block) -> R) -> Option<R> {
        let mut g = self.lock((table, index));
        let inner = &mut *g;
        match inner.index.find_mut((table, index)) {
            Some(c) => {
                inner.stats.hits += 1;
                if !c.referenced {
                    c.referenced = true;
                }
                Some(f(&c.block))
            }
            None => {
                inner.stats.misses += 1;
                None
            }
        }
    }

    /// Block `index` of table `table`, if cached (marks it recently used).
    pub fn get(&self, table: u64, index: u32) -> Option<Block> {
        let mut g = self.lock((table, index));
        let inner = &mut *g;
        match inner.index.find_mut((table, index)) {
            Some(c) => {
                inner.stats.hits += 1;
                c.referenced = true;
                Some(c.block.clone())
            }
            None => {
                inner.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `block` (verified by the caller) as block `index` of `table`, evicting
    /// others (of its shard) as needed. A block larger than its shard is not kept; if
    /// another reader cached the same block first, its copy stays (they are equal).
    pub fn insert(&self, table: u64, index: u32, block: Block) {
        let charge = Self::charge(&block);
        // Evicted blocks are freed after the lock is released.
        let mut evicted: Vec<Block> = Vec::new();
        let mut g = self.lock((table, index));
        let inner = &mut *g;
        if charge > inner.stats.capacity || inner.index.find((table, index)).is_some() {
            return;
        }
        while inner.stats.bytes + charge > inner.stats.capacity {
            evicted.extend(inner.evict_one());
        }
        inner.place((table, index), block, charge);
        #[cfg(debug_assertions)]
        inner.debug_verify();
        drop(g);
        drop(evicted);
    }

    /// Caches `block` as block `index` of `table` only if its shard has room for it
    /// without evicting anything (and does not hold it already); whether it did. For
    /// blocks nobody asked for yet (a table just written): spare capacity is filled,
    /// a block a reader used is never pushed out for one. Enters unreferenced, so
    /// under pressure it is the first to go.
    pub fn insert_if_room(&self, table: u64, index: u32, block: Block) -> bool {
        let charge = Self::charge(&block);
        let mut g = self.lock((table, index));
        let inner = &mut *g;
        if inner.stats.bytes + charge > inner.stats.capacity
            || inner.index.find((table, index)).is_some()
        {
            return false;
        }
        inner.place((table, index), block, charge);
        #[cfg(debug_assertions)]
        inner.debug_verify();
        true
    }

    /// Whether the shard of block `index` of `table` has `bytes` to spare (a cheap
    /// check before decoding a block for [`BlockCache::insert_if_room`]).
    pub fn has_room(&self, table: u64, index: u32, bytes: usize) -> bool {
        let g = self.lock((table, index));
        g.stats.bytes + bytes + ENTRY_OVERHEAD <= g.stats.capacity
    }

    /// Drops every block of `table`, whose blocks are numbered `0..blocks` (the table
    /// is gone).
    pub fn remove_table(&self, table: u64, blocks: u32) {
        let mut removed = Vec::new();
        for i in 0..blocks {
            let mut g = self.lock((table, i));
            if let Some(at) = g.index.find((table, i)).map(|c| c.at as usize) {
                removed.push(g.remove(at));
                #[cfg(debug_assertions)]
                g.debug_verify();
            }
        }
        // Freed after every lock is released.
        drop(removed);
    }

    /// Counters and size, summed over the shards.
    pub fn stats(&self) -> CacheStats {
        let mut sum = CacheStats {
            capacity: self.capacity,
            ..CacheStats::default()
        };
        for shard in self.shards.iter() {
            let g = lock(shard);
            sum.bytes += g.stats.bytes;
            sum.blocks += g.index.len();
            sum.hits += g.stats.hits;
            sum.misses += g.stats.misses;
            sum.evictions += g.stats.evictions;
        }
        sum
    }

    /// The keys cached, in key order (for tests).
    #[cfg(test)]
    pub fn keys(&self) -> Vec<(u64, u32)> {
        let mut keys: Vec<CacheKey> = Vec::new();
        for shard in self.shards.iter() {
            keys.extend(lock(shard).clock.iter().filter_map(|h| h.key));
        }
        keys.sort_unstable();
        keys
    }

    /// Checks the size accounting of every shard: `bytes` is the sum of the charges
    /// and within the shard's bound, every charge is what its block costs, and every
    /// key is in the shard its hash names.
    pub fn verify_invariants(&self) -> Result<(), String> {
        let mut capacity = 0;
        for (i, shard) in self.shards.iter().enumerate() {
            let g = lock(shard);
            g.verify()?;
            capacity += g.stats.capacity;
            for key in g.clock.iter().filter_map(|h| h.key) {
                let home = (index::mix(key) >> 16) as usize & (self.shards.len() - 1);
                if home != i {
                    return Err(format!("block {key:?} in shard {i}, not {home}"));
                }
            }
        }
        if capacity != self.capacity {
            return Err(format!("shards hold {capacity} of {} bytes", self.capacity));
        }
        Ok(())
    }
}

impl Inner {
    /// Puts `block` (absent, with room made for it) at a free position of the face,
    /// unreferenced.
    fn place(&mut self, key: CacheKey, block: Block, charge: usize) {
        let hand = Hand {
            key: Some(key),
            charge,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.clock[at] = hand;
                at
            }
            None => {
                self.clock.push(hand);
                self.clock.len() - 1
            }
        };
        let cached = Cached {
            block,
            at: u32::try_from(at).expect("clock positions under 2^32"),
            referenced: false,
        };
        self.index.insert(key, cached);
        self.stats.bytes += charge;
        // Callers evict (or refuse) first: a shard never holds more than its share.
        debug_assert!(self.stats.bytes <= self.stats.capacity);
    }

    /// Removes the entry at position `at` (occupied) from the face and the index; its
    /// block.
    fn remove(&mut self, at: usize) -> Block {
        let hand = std::mem::take(&mut self.clock[at]);
        let key = hand.key.expect("an occupied position");
        let cached = self.index.remove(key).expect("a clock entry is indexed");
        debug_assert_eq!(cached.at as usize, at);
        self.stats.bytes -= hand.charge;
        self.free.push(at);
        cached.block
    }

    /// Evicts one entry (the cache is not empty): the first the hand reaches with its
    /// bit clear, clearing set bits on the way. Ends within one turn plus one step.
    fn evict_one(&mut self) -> Option<Block> {
        if self.index.is_empty() {
            return None;
        }
        loop {
            if self.hand >= self.clock.len() {
                self.hand = 0;
            }
            let at = self.hand;
            self.hand += 1;
            let Some(key) = self.clock[at].key else {
                continue;
            };
            let cached = self.index.find_mut(key).expect("a clock entry is indexed");
            if cached.referenced {
                cached.referenced = false;
                continue;
            }
            self.stats.evictions += 1;
            return Some(self.remove(at));
        }
    }

    /// [`Inner::verify`] after a mutation, in debug builds. It is O(n), so above
    /// `DEBUG_VERIFY_MAX` blocks (far beyond any test's cache) it is skipped rather
    /// than make a debug build's every insert quadratic.
    #[cfg(debug_assertions)]
    fn debug_verify(&self) {
        const DEBUG_VERIFY_MAX: usize = 4096;
        if self.index.len() <= DEBUG_VERIFY_MAX {
            self.verify().expect("block cache invariants");
        }
    }

    fn verify(&self) -> Result<(), String> {
        self.index.verify()?;
        let mut sum = 0usize;
        for (at, h) in self.clock.iter().enumerate() {
            let Some(k) = h.key else {
                continue;
            };
            let Some(cached) = self.index.find(k).filter(|c| c.at as usize == at) else {
                return Err(format!("block {k:?} at {at} is not indexed there"));
            };
            if h.charge != BlockCache::charge(&cached.block) {
                return Err(format!("block {k:?} charged {} bytes", h.charge));
            }
            sum += h.charge;
        }
        let used = self.clock.iter().filter(|h| h.key.is_some()).count();
        let mut free = self.free.clone();
        free.sort_unstable();
        free.dedup();
        if used != self.index.len()
            || free.len() != self.free.len()
            || used + free.len() != self.clock.len()
            || free.iter().any(|&at| self.clock[at].key.is_some())
        {
            return Err(format!(
                "{used} clock entries and {} free of {} for {} indexed blocks",
                self.free.len(),
                self.clock.len(),
                self.index.len()
            ));
        }
        if sum != self.stats.bytes {
            return Err(format!(
                "charges sum to {sum}, bytes say {}",
                self.stats.bytes
            ));
        }
        if self.stats.bytes > self.stats.capacity {
            return Err(format!(
                "{} bytes cached over a bound of {}",
                self.stats.bytes, self.stats.capacity
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
