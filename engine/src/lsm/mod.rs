//! # Storage: a log-structured merge tree, all I/O through `sim-fs`
//!
//! The layers, bottom up (private modules; the public surface is the re-exports below
//! and [`formats`]; `scripts/module-graph --check` keeps their imports acyclic):
//! - `wal`: the write-ahead log: records in [`crate::framing`], group commit (one fsync
//!   for many commits), ordered segment rotation, torn-tail recovery.
//! - `memtable`: versions in memory, `(key, Reverse(ts)) → value | tombstone`.
//! - `block`, `bloom`, `sstable`: immutable sorted tables of versions: ~4 KiB
//!   prefix-compressed data blocks, a block index, a bloom filter checked before any
//!   data block is read, a footer with magic, version and offsets; a CRC32C on every
//!   block and the footer, verified after every read from disk.
//! - `cache`: the block cache, one per open store, bounded by
//!   [`Options::block_cache_bytes`]: verified, decoded data blocks keyed by (table
//!   number, block index), CLOCK eviction, shared by readers as immutable `Arc`s, so a
//!   point read that hits is a binary search with no I/O, checksum or decode.
//! - `manifest`: which tables form the tree, as checksummed edits, with an atomic
//!   `CURRENT` pointer.
//! - `table_set`: the set of tables of every level at one moment (`TableSet` — not a
//!   key's [`crate::kv::Version`]), and the choice of the next compaction (L0 → L1 → …,
//!   triggered by table count and size ratio).
//! - `store/` (one folder): [`LsmStore`], the whole engine: `apply` a commit at a ts,
//!   `get`/`scan` at a snapshot ts through a [`ReadView`] captured atomically
//!   (`store/view.rs`), open = recover (`store/recovery.rs`), flushes and compactions
//!   with garbage collection of versions below the oldest live snapshot
//!   (`store/background.rs`; compaction's streaming merge and GC in `store/merge.rs`).
//!   Only `store/` imports the store; everything else is below it.
//!
//! Every version is `(user key, commit ts, value or tombstone)`; a read at ts `at`
//! returns per key the newest version with ts ≤ `at`.
//!
//! ## Invariants
//! - Nothing is acknowledged before its WAL record is durable; nothing is deleted
//!   before a durable manifest edit stops naming it.
//! - Bytes read back are checked (checksums, magic, lengths, order) before they are
//!   used; damage is a typed [`LsmError::Corruption`] (or, for the unsynced WAL tail
//!   only, a cut), never a panic and never wrong data.
//! - After a failed write or sync, the store is poisoned until reopened (fail-stop).
//! - The block cache changes no result: it holds only blocks that passed every check,
//!   never mutated; table numbers are never reused within an open store, so a key of
//!   the cache names one immutable block; it holds at most `block_cache_bytes` (its
//!   accounting is checked by [`LsmStore::verify_invariants`], and after every change
//!   in debug builds); a reopened store starts with an empty cache.
//! - Memory grows with the data only through the open tables' indexes and filters:
//!   besides the block cache and the memtables
//!   (the active one and at most [`Options::max_immutable_memtables`] frozen ones), a
//!   flush holds one memtable's entries and the table it writes, and a compaction one
//!   read-ahead (64 KiB) and one decoded block per input run (each level-0 table, one
//!   sorted level's tables, the next level's) plus the one output table it is filling
//!   (about [`Options::table_target_bytes`]); every open table keeps its index and
//!   filter in memory (about 3% of its size at 4 KiB blocks and 116-byte versions).
//!
//! ## Fault model
//! Everything `sim-fs` injects: torn, lost and reordered unsynced writes, lost
//! directory operations, fsync failure that drops dirty pages, EIO, bit flips.
//!
//! ## Non-goals
//! - Streaming scans (a scan holds the blocks of its range), compression, trivial
//!   moves, subcompactions; caching of compaction's reads (they bypass the block
//!   cache, which would only be flushed by them).
//! - A bit flip in the *last* WAL record is indistinguishable from a torn write and is
//!   cut like one; every other damage to synced bytes is reported.

mod block;
mod bloom;
mod cache;
mod codec;
mod error;
mod manifest;
mod memtable;
mod options;
mod scan;
mod sstable;
mod store;
mod table_set;
mod wal;

#[cfg(test)]
pub(crate) mod tests;

pub use cache::CacheStats;
pub use error::LsmError;
pub use options::Options;
pub use scan::Rows;
pub use store::{HorizonFn, LsmStats, LsmStore, Poisoner, ReadView, Recovery};
pub(crate) use wal::Hook;
pub use wal::WalError;

/// The on-disk formats' encoders and decoders, public for the fuzz targets (`fuzz/`,
/// D55) and their corpus generator; nothing else outside the crate needs them.
pub mod formats {
    pub use super::block::{Block, BlockBuilder, Index};
    pub use super::bloom::{Bloom, Layout};
    pub use super::codec::{decode_commit, encode_commit, Entry};
    pub use super::manifest::{replay as replay_manifest, Change, Edit};
    pub use super::sstable::TableMeta;
}
