//! Data blocks and the block index of an SSTable.
//!
//! ## Data block
//! ```text
//! entry*  count: u32  crc32c: u32
//! entry = shared: u32  unshared: u32  kind: u8 (0 tombstone, 1 value)  ts: u64
//!         value_len: u32  key suffix: unshared bytes  value: value_len bytes
//! ```
//! Keys are prefix-compressed against the previous key of the block (`shared` bytes
//! reused). Entries are in internal order (key ascending, ts descending) and strictly
//! increasing; the checksum covers everything before it.
//!
//! ## Index block
//! ```text
//! smallest key: u32 len + bytes  smallest ts: u64  count: u32
//! (last key: u32 len + bytes  last ts: u64  offset: u64  len: u32)*  crc32c: u32
//! ```
//! One row per data block: the block's last internal key and where it lies. A lookup
//! for `(key, at)` reads the first block whose last internal key is ≥ `(key, at)`.
//!
//! Decoders check everything (checksum, counts, bounds, order) and return a
//! description of the first failure, never panic.

use std::cmp::Ordering;
use std::sync::Arc;

use super::codec::{
    cmp_internal, cmp_keys, put_bytes, put_u32, put_u64, seal_crc, verify_crc, Cursor, Entry,
};
use crate::kv::{Key, Timestamp};

const TOMBSTONE: u8 = 0;
const VALUE: u8 = 1;

/// Accumulates entries into one data block.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    count: u32,
    last: Option<(Key, Timestamp)>,
}

impl BlockBuilder {
    /// An empty block.
    pub fn new() -> BlockBuilder {
        BlockBuilder::default()
    }

    /// Adds `e`, which must sort strictly after the previous entry.
    pub fn add(&mut self, e: &Entry) {
        let shared = match &self.last {
            Some((k, ts)) => {
                assert_eq!(
                    cmp_internal(k, *ts, &e.key, e.ts),
                    Ordering::Less,
                    "block entries out of order"
                );
                k.iter().zip(&e.key).take_while(|(a, b)| a == b).count()
            }
            None => 0,
        };
        let suffix = &e.key[shared..];
        put_u32(&mut self.buf, shared as u32);
        put_u32(
            &mut self.buf,
            u32::try_from(suffix.len()).expect("key under 4 GiB"),
        );
        match &e.value {
            None => {
                self.buf.push(TOMBSTONE);
                put_u64(&mut self.buf, e.ts.0);
                put_u32(&mut self.buf, 0);
                self.buf.extend_from_slice(suffix);
            }
            Some(v) => {
                self.buf.push(VALUE);
                put_u64(&mut self.buf, e.ts.0);
                put_u32(
                    &mut self.buf,
                    u32::try_from(v.len()).expect("value under 4 GiB"),
                );
                self.buf.extend_from_slice(suffix);
                self.buf.extend_from_slice(v);
            }
        }
        self.count += 1;
        self.last = Some((e.key.clone(), e.ts));
    }

    /// Bytes the block would take if finished now.
    pub fn size(&self) -> usize {
        self.buf.len() + 8
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last internal key added.
    pub fn last(&self) -> Option<&(Key, Timestamp)> {
        self.last.as_ref()
    }

    /// The encoded block (with count and checksum); the builder is reset.
    pub fn finish(&mut self) -> Vec<u8> {
        // `Block::decode` refuses an empty block: a table must never hold one.
        assert!(self.count > 0, "an empty data block");
        let mut out = std::mem::take(&mut self.buf);
        put_u32(&mut out, self.count);
        seal_crc(&mut out);
        self.count = 0;
        self.last = None;
        out
    }
}

/// The first 8 bytes of `key`, big-endian, zero-padded: `key_prefix(a) <
/// key_prefix(b)` implies `a < b`; a tie decides nothing (compare the keys).
pub fn key_prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

/// Where `key` lies against a run of keys that all begin with `common`: `None` if it
/// sorts before all of them (it is below `common`, or a proper prefix of it),
/// `Some(None)` if after all of them, else `Some(Some(rest))` with `rest` the part of
/// `key` after `common` — which orders against the keys' own rests as `key` does
/// against them.
pub fn past_common<'k>(key: &'k [u8], common: &[u8]) -> Option<Option<&'k [u8]>> {
    let n = common.len().min(key.len());
    match cmp_keys(&key[..n], &common[..n]) {
        Ordering::Less => None,
        Ordering::Greater => Some(None),
        Ordering::Equal if key.len() < common.len() => None,
        Ordering::Equal => Some(Some(&key[common.len()..])),
    }
}

/// At most this many bytes of a run's common prefix are kept ([`CommonPrefix`]).
pub const COMMON_INLINE: usize = 23;

/// The bytes every key of a sorted run (a block's keys, a table's index rows) begins
/// with, held inline — a point lookup compares it first, and a pointer to a key
/// elsewhere in memory would cost it a cache miss. Kept to its first
/// [`COMMON_INLINE`] bytes: any prefix of the true common prefix serves the search
/// (a shorter one only makes ties on [`key_prefix`] likelier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommonPrefix {
    len: u8,
    bytes: [u8; COMMON_INLINE],
}

impl CommonPrefix {
    /// The common prefix of a sorted run whose first and last keys are `first` and
    /// `last` (what they share, all between them share), cut to [`COMMON_INLINE`].
    pub fn of(first: &[u8], last: &[u8]) -> CommonPrefix {
        let n = first
            .iter()
            .zip(last)
            .take_while(|(a, b)| a == b)
            .count()
            .min(COMMON_INLINE);
        let mut bytes = [0u8; COMMON_INLINE];
        bytes[..n].copy_from_slice(&first[..n]);
        CommonPrefix {
            len: n as u8,
            bytes,
        }
    }

    /// The prefix.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Its length.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// Decodes and checks a whole data block into owned entries (compaction's path).
#[cfg(test)]
pub fn decode_block(data: &[u8]) -> Result<Vec<Entry>, String> {
    Block::decode(data).map(|b| b.entries().collect())
}

/// A tombstone's `val_len` in a decoded entry.
const TOMBSTONE_LEN: u32 = u32::MAX;
/// Bytes of a decoded entry's header: ts (u64), key length, value length (u32 each).
const ENTRY_HEADER: usize = 16;

/// A verified, decoded data block: what the block cache holds. Immutable, so sharing
/// it between readers cannot change what they read; a point lookup is a binary search
/// with no allocation (the format has no restart points, so the decode, done once per
/// cache miss, is what makes the search possible).
///
/// Laid out for a point lookup's cache misses, which are most of its cost: from the
/// cache slot holding the `Block` (a pointer and the common prefix, inline) to the
/// search array (per row its `key_prefix` past the common prefix, then its entry's
/// offset: a binary search touches a few adjacent lines and no key on a prefix
/// mismatch) to the entry (header, key and value together): three lines where the
/// first layout (a row array, a key buffer, a prefix array behind an `Arc`) took five.
/// Search array and entries share one allocation, so a scan holding a block raises
/// one reference count (an atomic on a cold line) per block, not two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// `len` prefixes; the `len` entries' byte offsets in the entry bytes, two `u32`s
    /// per word (low half first); from word `data_at` on, the entry bytes (native
    /// byte order, so the words' bytes are the entries): ts (u64 LE), key length
    /// (u32 LE), value length (u32 LE, [`TOMBSTONE_LEN`] for a tombstone), the full
    /// key, the value — in internal order.
    words: Arc<[u64]>,
    /// Number of versions (never 0).
    len: usize,
    /// Where the entry bytes begin in `words`.
    data_at: usize,
    /// Leading bytes every key of the block shares, inline.
    common: CommonPrefix,
}

/// A borrowed version of a [`Block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The version's commit ts.
    pub ts: Timestamp,
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

impl EntryRef<'_> {
    /// An owned copy.
    pub fn to_entry(self) -> Entry {
        Entry {
            key: self.key.to_vec(),
            ts: self.ts,
            value: self.value.map(<[u8]>::to_vec),
        }
    }
}

/// The decoded entry at `off` of `data` (written by [`Block::decode`], so in bounds).
fn entry_at(data: &[u8], off: usize) -> EntryRef<'_> {
    debug_assert!(
        off + ENTRY_HEADER <= data.len(),
        "entry offset {off} beyond the block"
    );
    let word = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
    let ts = u64::from_le_bytes(data[off..off + 8].try_into().expect("8 bytes"));
    let (key_len, val_len) = (word(off + 8) as usize, word(off + 12));
    let key_at = off + ENTRY_HEADER;
    let val_at = key_at + key_len;
    EntryRef {
        key: &data[key_at..val_at],
        ts: Timestamp(ts),
        value: (val_len != TOMBSTONE_LEN).then(|| &data[val_at..val_at + val_len as usize]),
    }
}

impl Block {
    /// Decodes and checks a data block: checksum, entry bounds, kinds, count, strict
    /// internal order, non-empty. The first failure is described, never a panic.
    pub fn decode(data: &[u8]) -> Result<Block, String> {
        let payload = verify_crc(data).ok_or("data block checksum mismatch")?;
        let (body, count) = payload
            .split_at_checked(payload.len().checked_sub(4).ok_or("data block too short")?)
            .ok_or("data block too short")?;
        let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
        let mut c = Cursor::new(body);
        // Entry offsets in `buf`.
        let mut offsets: Vec<u32> = Vec::with_capacity(count.min(body.len() / 21 + 1));
        let mut buf: Vec<u8> = Vec::with_capacity(body.len() + body.len() / 2);
        // The previous entry's key: (offset, len) in `buf`, and its ts.
        let mut prev: Option<(usize, usize, Timestamp)> = None;
        let too_big = || "data block over 4 GiB".to_string();
        while !c.is_done() {
            let n = offsets.len();
            let bad = || format!("data block entry {n} truncated");
            let shared = c.u32().ok_or_else(bad)? as usize;
            let unshared = c.u32().ok_or_else(bad)? as usize;
            let kind = c.u8().ok_or_else(bad)?;
            let ts = Timestamp(c.u64().ok_or_else(bad)?);
            let vlen = c.u32().ok_or_else(bad)?;
            let (prev_off, prev_len) = prev.map_or((0, 0), |(o, l, _)| (o, l));
            if shared > prev_len {
                return Err(format!("entry {n} shares {shared} bytes of a shorter key"));
            }
            let suffix = c.take(unshared).ok_or_else(bad)?;
            let value = match kind {
                TOMBSTONE if vlen == 0 => None,
                VALUE => Some(c.take(vlen as usize).ok_or_else(bad)?),
                _ => return Err(format!("entry {n} has bad kind {kind}/{vlen}")),
            };
            let key_len = shared + unshared;
            let off = buf.len();
            offsets.push(u32::try_from(off).map_err(|_| too_big())?);
            buf.extend_from_slice(&ts.0.to_le_bytes());
            buf.extend_from_slice(&u32::try_from(key_len).map_err(|_| too_big())?.to_le_bytes());
            let val_len = value.map_or(TOMBSTONE_LEN, |v| v.len() as u32);
            buf.extend_from_slice(&val_len.to_le_bytes());
            let key_off = buf.len();
            buf.extend_from_within(prev_off..prev_off + shared);
            buf.extend_from_slice(suffix);
            if let Some(v) = value {
                buf.extend_from_slice(v);
            }
            if let Some((p_off, p_len, p_ts)) = prev {
                let last_key = &buf[p_off..p_off + p_len];
                if cmp_internal(last_key, p_ts, &buf[key_off..key_off + key_len], ts)
                    != Ordering::Less
                {
                    return Err(format!("entry {n} out of order"));
                }
            }
            prev = Some((key_off, key_len, ts));
        }
        if offsets.len() != count {
            return Err(format!(
                "data block holds {} entries, header says {count}",
                offsets.len()
            ));
        }
        if offsets.is_empty() {
            return Err("empty data block".into());
        }
        u32::try_from(buf.len()).map_err(|_| too_big())?;
        let key = |i: usize| entry_at(&buf, offsets[i] as usize).key;
        // Keys are sorted: what the first and last share, all share.
        let common = CommonPrefix::of(key(0), key(offsets.len() - 1));
        let shared = common.len();
        let len = offsets.len();
        let data_at = len + len.div_ceil(2);
        let mut words: Vec<u64> = Vec::with_capacity(data_at + buf.len().div_ceil(8));
        words.extend((0..len).map(|i| key_prefix(&key(i)[shared..])));
        words.extend(
            offsets
                .chunks(2)
                .map(|p| u64::from(p[0]) | u64::from(p.get(1).copied().unwrap_or(0)) << 32),
        );
        words.extend(buf.chunks(8).map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(w)
        }));
        let block = Block {
            words: words.into(),
            len,
            data_at,
            common,
        };
        // The pair of `BlockBuilder::add`'s order check, as the search will see it.
        debug_assert!((1..len).all(|i| {
            let (a, b) = (block.get(i - 1), block.get(i));
            cmp_internal(a.key, a.ts, b.key, b.ts).is_lt()
        }));
        Ok(block)
    }

    /// Number of versions (never 0).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a decoded block holds at least one version.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes this block holds (what the cache charges for it).
    pub fn heap_bytes(&self) -> usize {
        // The `Arc` adds its two counts.
        self.words.len() * 8 + 16
    }

    /// The entry bytes.
    fn data(&self) -> &[u8] {
        use zerocopy::IntoBytes;
        self.words[self.data_at..].as_bytes()
    }

    /// The byte offset of entry `i` in `data`.
    fn offset(&self, i: usize) -> usize {
        let w = self.words[self.len + i / 2];
        (if i % 2 == 0 {
            w as u32
        } else {
            (w >> 32) as u32
        }) as usize
    }

    /// Whether `self` and `other` are the same decoded copy (clones of one decode),
    /// not merely equal (for tests of the cache).
    #[cfg(test)]
    pub(crate) fn is_same_copy(&self, other: &Block) -> bool {
        Arc::ptr_eq(&self.words, &other.words)
    }

    /// Version `i` (`i < len()`).
    pub fn get(&self, i: usize) -> EntryRef<'_> {
        assert!(i < self.len, "version {i} of a block of {}", self.len);
        entry_at(self.data(), self.offset(i))
    }

    /// The position of the first version at or after `(key, at)` in internal order
    /// (`len()` if none): binary search, no allocation. `key` is first compared with
    /// the prefix every key of the block shares; past it, only the rest of each key
    /// counts.
    pub fn seek(&self, key: &[u8], at: Timestamp) -> usize {
        let shared = self.common.len();
        let Some(rest) = past_common(key, self.common.as_slice()) else {
            return 0;
        };
        let Some(rest) = rest else {
            return self.len;
        };
        let p = key_prefix(rest);
        let prefixes = &self.words[..self.len];
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let before = match prefixes[mid].cmp(&p) {
                Ordering::Equal => {
                    let e = self.get(mid);
                    cmp_internal(&e.key[shared..], e.ts, rest, at) == Ordering::Less
                }
                o => o == Ordering::Less,
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The position of the first version of a key after `key` (`len()` if none).
    pub fn seek_past(&self, key: &[u8]) -> usize {
        // (key, ZERO) is the last place a version of `key` can sort; no commit has ts 0,
        // but step over one if a table ever held it.
        let mut p = self.seek(key, Timestamp::ZERO);
        while p < self.len && self.get(p).key == key {
            p += 1;
        }
        p
    }

    /// The newest version of `key` with ts ≤ `at`, if the block holds one.
    pub fn find(&self, key: &[u8], at: Timestamp) -> Option<EntryRef<'_>> {
        let i = self.seek(key, at);
        let found = (i < self.len).then(|| self.get(i)).filter(|e| e.key == key);
        // The search over prefixes past the common bytes lands on a version ≤ `at`.
        debug_assert!(found.map_or(true, |e| e.ts <= at));
        found
    }

    /// The versions from position `from` on, in internal order.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = EntryRef<'_>> {
        (from.min(self.len)..self.len).map(|i| self.get(i))
    }

    /// Every version, owned, in internal order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.iter_from(0).map(EntryRef::to_entry)
    }
}

/// Where a data block lies in the file, and its last internal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The block's last user key.
    pub last_key: Key,
    /// The ts of the block's last entry.
    pub last_ts: Timestamp,
    /// Byte offset of the block.
    pub offset: u64,
    /// Length of the block, checksum included.
    pub len: u32,
}

/// The block index of a table, with the table's smallest internal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The first entry's key.
    pub smallest_key: Key,
    /// The first entry's ts.
    pub smallest_ts: Timestamp,
    /// One row per data block, in order.
    pub blocks: Vec<IndexEntry>,
}

impl Index {
    /// The encoded index block.
    pub fn encode(&self) -> Vec<u8> {
        // What `Index::decode` checks, asserted where it is written: at least one
        // block, blocks tiling the data from offset 0, rows in strict internal order.
        assert!(!self.blocks.is_empty(), "an index of no blocks");
        debug_assert_eq!(self.blocks[0].offset, 0);
        debug_assert!(self.blocks.windows(2).all(|w| {
            w[0].offset + u64::from(w[0].len) == w[1].offset
                && cmp_internal(&w[0].last_key, w[0].last_ts, &w[1].last_key, w[1].last_ts).is_lt()
        }));
        let mut out = Vec::new();
        put_bytes(&mut out, &self.smallest_key);
        put_u64(&mut out, self.smallest_ts.0);
        put_u32(&mut out, self.blocks.len() as u32);
        for b in &self.blocks {
            put_bytes(&mut out, &b.last_key);
            put_u64(&mut out, b.last_ts.0);
            put_u64(&mut out, b.offset);
            put_u32(&mut out, b.len);
        }
        seal_crc(&mut out);
        out
    }

    /// Decodes and checks an index block: checksum, order, and that the blocks tile
    /// `[0, data_end)` exactly.
    pub fn decode(data: &[u8], data_end: u64) -> Result<Index, String> {
        let payload = verify_crc(data).ok_or("index block checksum mismatch")?;
        let mut c = Cursor::new(payload);
        let bad = || "index block truncated".to_string();
        let smallest_key = c.bytes().ok_or_else(bad)?.to_vec();
        let smallest_ts = Timestamp(c.u64().ok_or_else(bad)?);
        let count = c.u32().ok_or_else(bad)? as usize;
        if count == 0 || count > c.remaining() / 24 {
            return Err(format!("index block claims {count} blocks"));
        }
        let mut blocks: Vec<IndexEntry> = Vec::with_capacity(count);
        let mut next_offset = 0u64;
        for i in 0..count {
            let e = IndexEntry {
                last_key: c.bytes().ok_or_else(bad)?.to_vec(),
                last_ts: Timestamp(c.u64().ok_or_else(bad)?),
                offset: c.u64().ok_or_else(bad)?,
                len: c.u32().ok_or_else(bad)?,
            };
            if e.offset != next_offset || e.len < 8 {
                return Err(format!("index row {i} points at {}+{}", e.offset, e.len));
            }
            next_offset = e.offset + u64::from(e.len);
            let prev = blocks
                .last()
                .map_or((&smallest_key, smallest_ts), |p| (&p.last_key, p.last_ts));
            let order = cmp_internal(prev.0, prev.1, &e.last_key, e.last_ts);
            if order == Ordering::Greater || (i > 0 && order == Ordering::Equal) {
                return Err(format!("index row {i} out of order"));
            }
            blocks.push(e);
        }
        if !c.is_done() {
            return Err("index block has trailing bytes".into());
        }
        if next_offset != data_end {
            return Err(format!(
                "data blocks end at {next_offset}, footer says {data_end}"
            ));
        }
        Ok(Index {
            smallest_key,
            smallest_ts,
            blocks,
        })
    }

    /// The index of the first block that can hold `(key, at)` or a later internal key.
    pub fn find(&self, key: &[u8], at: Timestamp) -> Option<usize> {
        let i = self
            .blocks
            .partition_point(|b| cmp_internal(&b.last_key, b.last_ts, key, at) == Ordering::Less);
        (i < self.blocks.len()).then_some(i)
    }

    /// The table's largest user key.
    pub fn largest_key(&self) -> &[u8] {
        &self.blocks.last().expect("an index has blocks").last_key
    }
}

#[cfg(test)]
mod tests;
