//! [`TableBuilder`]: one table encoded in memory (data blocks, filter, index, footer),
//! ready for [`super::write_table`].

use super::{decode_footer, filter_layout, TableMeta, FOOTER_BYTES, FORMAT_VERSION, MAGIC};
use crate::kv::{Key, Timestamp};
use crate::lsm::block::{BlockBuilder, Index, IndexEntry};
use crate::lsm::bloom::Bloom;
use crate::lsm::codec::{cmp_internal, cmp_keys, put_u32, put_u64, seal_crc, Entry};

/// Builds one table in memory.
#[derive(Debug)]
pub struct TableBuilder {
    block_bytes: usize,
    bloom_bits: u32,
    out: Vec<u8>,
    block: BlockBuilder,
    index: Vec<IndexEntry>,
    keys: Vec<Key>,
    first: Option<(Key, Timestamp)>,
    entries: u64,
    min_ts: Timestamp,
    max_ts: Timestamp,
    format_version: u32,
}

impl TableBuilder {
    /// A builder cutting data blocks at about `block_bytes`, with `bloom_bits` filter
    /// bits per key.
    pub fn new(block_bytes: usize, bloom_bits: u32) -> TableBuilder {
        TableBuilder {
            block_bytes,
            bloom_bits,
            out: Vec::new(),
            block: BlockBuilder::new(),
            index: Vec::new(),
            keys: Vec::new(),
            first: None,
            entries: 0,
            min_ts: Timestamp::MAX,
            max_ts: Timestamp::ZERO,
            format_version: FORMAT_VERSION,
        }
    }

    /// A builder writing an older table format `version` (one this code still reads),
    /// for tests that files written before a format change stay readable.
    #[cfg(test)]
    pub(crate) fn with_format_version(mut self, version: u32) -> TableBuilder {
        assert!(
            filter_layout(version).is_some(),
            "format {version} is unknown"
        );
        self.format_version = version;
        self
    }

    /// Adds the next entry (strictly after the previous one in internal order).
    pub fn add(&mut self, e: &Entry) {
        // Within a block the block builder checks the order; across a cut, this does
        // (`Index::decode` and `Table::check_block` refuse a table that breaks it).
        if let (true, Some(prev)) = (self.block.is_empty(), self.index.last()) {
            assert!(
                cmp_internal(&prev.last_key, prev.last_ts, &e.key, e.ts).is_lt(),
                "table entries out of order across a block boundary"
            );
        }
        if self.first.is_none() {
            self.first = Some((e.key.clone(), e.ts));
        }
        if self.keys.last() != Some(&e.key) {
            self.keys.push(e.key.clone());
        }
        self.block.add(e);
        self.entries += 1;
        self.min_ts = self.min_ts.min(e.ts);
        self.max_ts = self.max_ts.max(e.ts);
        if self.block.size() >= self.block_bytes {
            self.cut_block();
        }
    }

    fn cut_block(&mut self) {
        let (last_key, last_ts) = self.block.last().cloned().expect("non-empty block");
        let bytes = self.block.finish();
        // Blocks tile the data region: each starts where the previous one ended.
        debug_assert_eq!(
            self.index.last().map_or(0, |p| p.offset + u64::from(p.len)),
            self.out.len() as u64
        );
        self.index.push(IndexEntry {
            last_key,
            last_ts,
            offset: self.out.len() as u64,
            len: u32::try_from(bytes.len()).expect("block under 4 GiB"),
        });
        self.out.extend_from_slice(&bytes);
    }

    /// Bytes written so far (data blocks only; for cutting output tables).
    pub fn approx_bytes(&self) -> usize {
        self.out.len() + self.block.size()
    }

    /// The user key of the last entry added.
    pub fn last_key(&self) -> Option<&Key> {
        self.keys.last()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The encoded table and its metadata (with `number` and its size).
    pub fn finish(mut self, number: u64) -> (Vec<u8>, TableMeta) {
        assert!(!self.is_empty(), "a table holds at least one entry");
        if !self.block.is_empty() {
            self.cut_block();
        }
        let filter_off = self.out.len() as u64;
        let layout = filter_layout(self.format_version).expect("a known format");
        let mut filter =
            Bloom::build(self.keys.iter().map(Vec::as_slice), self.bloom_bits, layout).encode();
        seal_crc(&mut filter);
        self.out.extend_from_slice(&filter);
        let (smallest, smallest_ts) = self.first.clone().expect("non-empty");
        let index = Index {
            smallest_key: smallest.clone(),
            smallest_ts,
            blocks: std::mem::take(&mut self.index),
        };
        let largest = index.largest_key().to_vec();
        let index_bytes = index.encode();
        let index_off = self.out.len() as u64;
        self.out.extend_from_slice(&index_bytes);
        assert!(
            u32::try_from(index_bytes.len()).is_ok() && u32::try_from(filter.len()).is_ok(),
            "index and filter blocks under 4 GiB (the footer holds u32 lengths)"
        );
        let mut footer = Vec::with_capacity(FOOTER_BYTES);
        put_u64(&mut footer, MAGIC);
        put_u32(&mut footer, self.format_version);
        put_u64(&mut footer, index_off);
        put_u32(&mut footer, index_bytes.len() as u32);
        put_u64(&mut footer, filter_off);
        put_u32(&mut footer, filter.len() as u32);
        put_u64(&mut footer, self.entries);
        put_u64(&mut footer, self.min_ts.0);
        put_u64(&mut footer, self.max_ts.0);
        seal_crc(&mut footer);
        self.out.extend_from_slice(&footer);
        // The pair of `decode_footer`'s checks: the footer describes this file.
        let size = self.out.len() as u64;
        assert!(
            decode_footer(&self.out[self.out.len() - FOOTER_BYTES..], size).is_ok(),
            "a table's footer must describe the table"
        );
        assert!(self.min_ts <= self.max_ts && cmp_keys(&smallest, &largest).is_le());
        let meta = TableMeta {
            number,
            size: self.out.len() as u64,
            smallest,
            largest,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            entries: self.entries,
        };
        (self.out, meta)
    }
}
