//! Sorted string tables: immutable files of versions in internal order.
//!
//! ## Layout
//! ```text
//! +--------------+-----+--------------+--------------+-------------+--------------+
//! | data block 0 | ... | data block n | filter block | index block | footer (64B) |
//! +--------------+-----+--------------+--------------+-------------+--------------+
//! footer = magic: u64  version: u32  index offset: u64  index len: u32
//!          filter offset: u64  filter len: u32  entries: u64  min ts: u64  max ts: u64
//!          crc32c: u32 (of the 60 bytes before it)
//! ```
//! Data blocks and the index are described in [`super::block`]; the filter block is a
//! [`Bloom`] over the table's user keys followed by its CRC32C. Every block and the
//! footer carry a checksum, verified after every read: [`Table::open`] checks the
//! footer, index and filter; each data block is checked when read. Any mismatch is an
//! [`LsmError::Corruption`](super::LsmError::Corruption), never a panic and never wrong data.
//!
//! A table is written whole into memory by [`TableBuilder`], then to a new file with
//! one write and one `sync_data` ([`write_table`]). Its directory entry is made durable
//! by the caller's `sync_dir` before any manifest edit names it.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use super::block::{key_prefix, past_common, Block, CommonPrefix, Index, IndexEntry};
use super::bloom::{Bloom, Layout};
use super::cache::BlockCache;
use super::codec::{cmp_keys, verify_crc, Cursor};
use super::error::{corrupt, io, Result};
use crate::kv::{Key, KeyRange, Timestamp, Version};

/// "SEEDSST1".
pub const MAGIC: u64 = u64::from_le_bytes(*b"SEEDSST1");
/// The format version this code writes. It reads 1 and 2; they differ only in the
/// filter's [`Layout`]: 1 spreads a key's probes over the filter, 2 keeps them in one
/// cache line.
pub const FORMAT_VERSION: u32 = 2;

/// The filter layout of table format `version` (one this code reads).
fn filter_layout(version: u32) -> Option<Layout> {
    match version {
        1 => Some(Layout::Spread),
        2 => Some(Layout::Local),
        _ => None,
    }
}
/// Bytes of the footer.
pub const FOOTER_BYTES: usize = 64;

/// What the manifest records about a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// The file number (`<number>.sst`).
    pub number: u64,
    /// File size in bytes.
    pub size: u64,
    /// Smallest user key.
    pub smallest: Key,
    /// Largest user key.
    pub largest: Key,
    /// Oldest version's ts.
    pub min_ts: Timestamp,
    /// Newest version's ts.
    pub max_ts: Timestamp,
    /// Number of versions.
    pub entries: u64,
}

impl TableMeta {
    /// Whether the table's key span meets `[lo, hi]`.
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest.as_slice() <= hi && lo <= self.largest.as_slice()
    }

    /// Whether the table's key span meets `range`.
    pub fn overlaps_range(&self, range: &KeyRange) -> bool {
        let after_start = match &range.start {
            Bound::Included(s) => cmp_keys(&self.largest, s).is_ge(),
            Bound::Excluded(s) => cmp_keys(&self.largest, s).is_gt(),
            Bound::Unbounded => true,
        };
        after_start && !range.beyond_end(&self.smallest)
    }
}

/// The path of table `number` in `dir`.
pub fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.sst"))
}

mod builder;
mod stream;
pub use builder::TableBuilder;
pub use stream::TableStream;
#[cfg(test)]
pub use stream::READ_AHEAD_BYTES;

/// Creates `path` (which must not exist), writes `bytes` and syncs the data. The
/// directory entry is not yet durable: the caller syncs the directory.
pub async fn write_table(path: &Path, bytes: &[u8]) -> Result<()> {
    assert!(
        bytes.len() > FOOTER_BYTES,
        "a table holds data blocks and a footer"
    );
    let file = sim_fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(|e| io("create table", path, e))?;
    file.write_all_at(bytes, 0)
        .await
        .map_err(|e| io("write table", path, e))?;
    file.sync_data()
        .await
        .map_err(|e| io("sync table", path, e))?;
    Ok(())
}

/// An open table: its metadata, index and filter in memory, data blocks read on demand
/// through the store's [`BlockCache`] (compaction's [`TableStream`] bypasses it).
#[derive(Debug)]
pub struct Table {
    meta: TableMeta,
    path: PathBuf,
    file: sim_fs::File,
    index: Index,
    bloom: Bloom,
    /// Per index row, the first 8 bytes of its last key after the `common` bytes all
    /// rows' last keys begin with ([`key_prefix`]): a point lookup's binary search
    /// compares these, in one contiguous array, and follows a row's key pointer only on
    /// a tie.
    prefixes: Vec<u64>,
    /// Leading bytes all rows' last keys share, inline.
    common: CommonPrefix,
    cache: Arc<BlockCache>,
    blocks_read: AtomicU64,
}

impl Drop for Table {
    /// The last reader of a table is gone (a compaction removed it, or the store
    /// closed): its cached blocks can never be asked for again, so free them now.
    fn drop(&mut self) {
        let blocks = u32::try_from(self.index.blocks.len()).unwrap_or(u32::MAX);
        self.cache.remove_table(self.meta.number, blocks);
    }
}

struct Footer {
    filter_layout: Layout,
    index_off: u64,
    index_len: u32,
    filter_off: u64,
    filter_len: u32,
    entries: u64,
    min_ts: u64,
    max_ts: u64,
}

fn decode_footer(bytes: &[u8], file_len: u64) -> std::result::Result<Footer, String> {
    // The caller refused a file too short to hold a footer before reading one.
    debug_assert!(file_len >= FOOTER_BYTES as u64);
    let payload = verify_crc(bytes).ok_or("footer checksum mismatch")?;
    let mut c = Cursor::new(payload);
    let magic = c.u64().ok_or("footer truncated")?;
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#x}"));
    }
    let version = c.u32().ok_or("footer truncated")?;
    let filter_layout =
        filter_layout(version).ok_or(format!("unsupported table format version {version}"))?;
    let f = Footer {
        filter_layout,
        index_off: c.u64().ok_or("footer truncated")?,
        index_len: c.u32().ok_or("footer truncated")?,
        filter_off: c.u64().ok_or("footer truncated")?,
        filter_len: c.u32().ok_or("footer truncated")?,
        entries: c.u64().ok_or("footer truncated")?,
        min_ts: c.u64().ok_or("footer truncated")?,
        max_ts: c.u64().ok_or("footer truncated")?,
    };
    let footer_off = file_len - FOOTER_BYTES as u64;
    let filter_end = f.filter_off.checked_add(u64::from(f.filter_len));
    let index_end = f.index_off.checked_add(u64::from(f.index_len));
    if filter_end != Some(f.index_off)
        || index_end != Some(footer_off)
        || f.entries == 0
        || f.min_ts > f.max_ts
    {
        return Err("footer offsets do not describe this file".into());
    }
    Ok(f)
}

impl Table {
    /// Opens table `number` at `path`, checking its size against `expect_size` (when
    /// given), and its footer, index and filter checksums. Its data blocks are cached
    /// in `cache` under `number`, which must name no other table of the cache.
    pub async fn open(
        path: &Path,
        number: u64,
        expect_size: Option<u64>,
        cache: Arc<BlockCache>,
    ) -> Result<Table> {
        let file = sim_fs::OpenOptions::new()
            .read(true)
            .open(path)
            .await
            .map_err(|e| io("open table", path, e))?;
        let len = file.len().await.map_err(|e| io("stat table", path, e))?;
        if let Some(want) = expect_size {
            if want != len {
                return Err(corrupt(
                    path,
                    format!("table is {len} bytes, manifest says {want}"),
                ));
            }
        }
        if len < FOOTER_BYTES as u64 {
            return Err(corrupt(path, format!("table of {len} bytes has no footer")));
        }
        let mut footer = vec![0u8; FOOTER_BYTES];
        read_exact(&file, path, &mut footer, len - FOOTER_BYTES as u64).await?;
        let f = decode_footer(&footer, len).map_err(|d| corrupt(path, d))?;
        let mut filter = vec![0u8; f.filter_len as usize];
        read_exact(&file, path, &mut filter, f.filter_off).await?;
        let bloom = verify_crc(&filter)
            .and_then(|b| Bloom::decode(b, f.filter_layout))
            .ok_or_else(|| corrupt(path, "filter block checksum mismatch or malformed"))?;
        let mut index = vec![0u8; f.index_len as usize];
        read_exact(&file, path, &mut index, f.index_off).await?;
        let index = Index::decode(&index, f.filter_off).map_err(|d| corrupt(path, d))?;
        let meta = TableMeta {
            number,
            size: len,
            smallest: index.smallest_key.clone(),
            largest: index.largest_key().to_vec(),
            min_ts: Timestamp(f.min_ts),
            max_ts: Timestamp(f.max_ts),
            entries: f.entries,
        };
        // Established by `Index::decode`'s order check (the pair of `Index::encode`).
        debug_assert!(cmp_keys(&meta.smallest, &meta.largest).is_le());
        let (first, last) = (&index.blocks[0].last_key, index.largest_key());
        let common = CommonPrefix::of(first, last);
        let prefixes = index
            .blocks
            .iter()
            .map(|b| key_prefix(&b.last_key[common.len()..]))
            .collect();
        Ok(Table {
            meta,
            path: path.to_path_buf(),
            file,
            index,
            bloom,
            prefixes,
            common,
            cache,
            blocks_read: AtomicU64::new(0),
        })
    }

    /// The table's metadata as read from its own footer and index.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// The rows of the block index (for scans).
    pub(super) fn index_blocks(&self) -> &[IndexEntry] {
        &self.index.blocks
    }

    /// Where its filter's probes land (fixed by the file's format version).
    #[cfg(test)]
    pub fn filter_layout(&self) -> Layout {
        self.bloom.layout()
    }

    /// Data blocks read so far (for tests of the bloom filter).
    #[cfg(test)]
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read.load(AtomicOrdering::Relaxed)
    }

    /// [`Index::find`] by the prefixes: the first block that can hold `(key, at)` or a
    /// later internal key.
    pub(super) fn find_block(&self, key: &[u8], at: Timestamp) -> Option<usize> {
        let found = match past_common(key, self.common.as_slice()) {
            None => Some(0),
            Some(None) => None,
            Some(Some(rest)) => self.find_block_past_common(rest, at),
        };
        debug_assert_eq!(found, self.index.find(key, at));
        found
    }

    /// [`Table::find_block`] for a key that begins with the shared prefix of the rows'
    /// last keys, by what follows it (`rest`).
    fn find_block_past_common(&self, rest: &[u8], at: Timestamp) -> Option<usize> {
        let p = key_prefix(rest);
        let blocks = &self.index.blocks;
        let (mut lo, mut hi) = (0, blocks.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let before = match self.prefixes[mid].cmp(&p) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => {
                    let b = &blocks[mid];
                    let row_rest = &b.last_key[self.common.len()..];
                    super::codec::cmp_internal(row_rest, b.last_ts, rest, at).is_lt()
                }
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < blocks.len()).then_some(lo)
    }

    /// Block `i`, from the cache or else read from disk, verified, decoded and cached.
    pub(super) async fn block(&self, i: usize) -> Result<Block> {
        let n = u32::try_from(i).expect("block index under 2^32");
        if let Some(b) = self.cache.get(self.meta.number, n) {
            return Ok(b);
        }
        self.load_block(i).await
    }

    /// Block `i` read from disk, verified, decoded and cached (the cache missed).
    async fn load_block(&self, i: usize) -> Result<Block> {
        let n = u32::try_from(i).expect("block index under 2^32");
        let h = &self.index.blocks[i];
        let mut buf = vec![0u8; h.len as usize];
        read_exact(&self.file, &self.path, &mut buf, h.offset).await?;
        self.blocks_read.fetch_add(1, AtomicOrdering::Relaxed);
        let b = self.check_block(i, &buf)?;
        self.cache.insert(self.meta.number, n, b.clone());
        Ok(b)
    }

    /// Caches the table's data blocks from `bytes` (the whole file as it was just
    /// written) while the cache has room to spare for them, evicting nothing
    /// ([`BlockCache::insert_if_room`]); how many it cached. A table just flushed or
    /// compacted is what reads will ask for next, and on a cache with spare room its
    /// first reads would otherwise each pay a `pread` and a decode (a read-modify-write
    /// right after a bulk load missed ~0.9 times a commit). The blocks come from memory,
    /// checked like any block read from disk (`Table::check_block`); the file's own
    /// bytes are read and checked when a block is evicted and read again.
    pub fn warm_cache(&self, bytes: &[u8]) -> Result<usize> {
        let mut cached = 0;
        for (i, h) in self.index.blocks.iter().enumerate() {
            let n = u32::try_from(i).expect("block index under 2^32");
            // A decoded block takes about its encoded size plus a little.
            if !self.cache.has_room(self.meta.number, n, h.len as usize) {
                continue;
            }
            let start = usize::try_from(h.offset).expect("a table in memory");
            let block = bytes
                .get(start..start + h.len as usize)
                .ok_or_else(|| corrupt(&self.path, format!("block {i} beyond the table")))?;
            let block = self.check_block(i, block)?;
            cached += usize::from(self.cache.insert_if_room(self.meta.number, n, block));
        }
        Ok(cached)
    }

    /// Verifies and decodes block `i` from its bytes, and checks it against the index.
    fn check_block(&self, i: usize, bytes: &[u8]) -> Result<Block> {
        let h = &self.index.blocks[i];
        let block =
            Block::decode(bytes).map_err(|d| corrupt(&self.path, format!("block {i}: {d}")))?;
        let last = block.get(block.len() - 1);
        let first = block.get(0);
        let prev_ok = match i.checked_sub(1) {
            None => first.key == self.index.smallest_key && first.ts == self.index.smallest_ts,
            Some(p) => {
                let p = &self.index.blocks[p];
                super::codec::cmp_internal(&p.last_key, p.last_ts, first.key, first.ts).is_lt()
            }
        };
        if last.key != h.last_key || last.ts != h.last_ts || !prev_ok {
            return Err(corrupt(
                &self.path,
                format!("block {i} does not match the index"),
            ));
        }
        Ok(block)
    }

    /// The newest version of `key` with ts ≤ `at`. Consults the key span and the bloom
    /// filter first (no I/O, no allocation), then reads at most one data block (from
    /// the cache when it can) and binary-searches it.
    #[cfg(test)]
    pub async fn get(&self, key: &[u8], at: Timestamp) -> Result<Option<Version>> {
        self.get_hashed(key, super::bloom::hash(key), at).await
    }

    /// [`Table::get`] for a key whose filter hash ([`super::bloom::hash`]) is `hash`: a
    /// read that probes several tables hashes the key once.
    pub async fn get_hashed(
        &self,
        key: &[u8],
        hash: u64,
        at: Timestamp,
    ) -> Result<Option<Version>> {
        use super::codec::cmp_keys;
        if cmp_keys(key, &self.meta.smallest).is_lt() || cmp_keys(key, &self.meta.largest).is_gt() {
            return Ok(None);
        }
        self.get_in_span(key, hash, at).await
    }

    /// [`Table::get_hashed`] for a key the caller knows lies in the table's key span
    /// ([`super::table_set::TableSet::table_for`] found the table by it): the filter, then
    /// at most one block.
    pub async fn get_in_span(
        &self,
        key: &[u8],
        hash: u64,
        at: Timestamp,
    ) -> Result<Option<Version>> {
        debug_assert!(self.meta.smallest.as_slice() <= key && key <= self.meta.largest.as_slice());
        if !self.bloom.may_contain_hash(hash) {
            return Ok(None);
        }
        let Some(i) = self.find_block(key, at) else {
            return Ok(None);
        };
        let found = |block: &Block| {
            block.find(key, at).map(|e| Version {
                ts: e.ts,
                value: e.value.map(<[u8]>::to_vec),
            })
        };
        // A hit searches the block in place: no reference count to raise and drop.
        let n = u32::try_from(i).expect("block index under 2^32");
        if let Some(v) = self.cache.with(self.meta.number, n, found) {
            return Ok(v);
        }
        Ok(found(&self.load_block(i).await?))
    }

    /// Every entry in internal order, through a [`TableStream`] (for tests).
    #[cfg(test)]
    pub async fn read_all(&self) -> Result<Vec<super::codec::Entry>> {
        let mut stream = TableStream::new(self);
        let mut out = Vec::with_capacity(self.meta.entries as usize);
        while let Some(e) = stream.next().await? {
            out.push(e);
        }
        // Established by `check_block` (each block against its index rows): a stream
        // yields strict internal order, across blocks too.
        debug_assert!(out
            .windows(2)
            .all(|w| super::codec::cmp_internal(&w[0].key, w[0].ts, &w[1].key, w[1].ts).is_lt()));
        Ok(out)
    }
}

async fn read_exact(file: &sim_fs::File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt(
                path,
                format!("read of {} bytes at {offset} runs past the end", buf.len()),
            )
        } else {
            io("read table", path, e)
        }
    })
}
