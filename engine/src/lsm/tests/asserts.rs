//! The write-side assertions of the storage formats (D76) fire: what a reader would
//! refuse as corruption is never written. Each test writes one thing the matching
//! decoder refuses, and expects the assertion's panic. The read side of each pair
//! stays a typed error, pinned by the decoders' own tests and the fuzz targets.

use crate::kv::{Timestamp, WriteSet};
use crate::lsm::block::{BlockBuilder, Index};
use crate::lsm::codec::{encode_commit, Entry};
use crate::lsm::manifest::{Change, Edit};
use crate::lsm::sstable::{TableBuilder, TableMeta};

fn put(key: &[u8], ts: u64) -> Entry {
    Entry {
        key: key.to_vec(),
        ts: Timestamp(ts),
        value: Some(b"v".to_vec()),
    }
}

#[test]
#[should_panic(expected = "across a block boundary")]
fn a_table_refuses_keys_out_of_order_across_blocks() {
    // One-byte blocks: every entry ends its block, so only the table's check sees it.
    let mut b = TableBuilder::new(1, 10);
    b.add(&put(b"b", 1));
    b.add(&put(b"a", 1));
}

#[test]
#[should_panic(expected = "block entries out of order")]
fn a_block_refuses_keys_out_of_order() {
    let mut b = BlockBuilder::new();
    b.add(&put(b"a", 2));
    b.add(&put(b"a", 3)); // same key, newer: sorts before
}

#[test]
#[should_panic(expected = "an empty data block")]
fn an_empty_block_is_never_written() {
    BlockBuilder::new().finish();
}

#[test]
#[should_panic(expected = "an index of no blocks")]
fn an_index_of_no_blocks_is_never_written() {
    Index {
        smallest_key: b"a".to_vec(),
        smallest_ts: Timestamp(1),
        blocks: Vec::new(),
    }
    .encode();
}

#[test]
#[should_panic(expected = "needs a commit timestamp")]
fn a_commit_record_at_ts_zero_is_never_written() {
    encode_commit(Timestamp::ZERO, &WriteSet::new());
}

#[test]
#[should_panic(expected = "an empty manifest edit")]
fn an_empty_manifest_edit_is_never_written() {
    Edit(Vec::new()).encode();
}

#[test]
#[should_panic(expected = "described impossibly")]
fn a_table_described_impossibly_is_never_written() {
    let meta = TableMeta {
        number: 7,
        size: 100,
        smallest: b"z".to_vec(),
        largest: b"a".to_vec(),
        min_ts: Timestamp(1),
        max_ts: Timestamp(2),
        entries: 1,
    };
    Edit(vec![Change::AddTable { level: 1, meta }]).encode();
}
