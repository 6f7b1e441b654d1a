//! Tests of the block and index formats: round trips, seeks against a linear search,
//! and damage detection.

use super::*;

fn e(k: &str, ts: u64, v: Option<&str>) -> Entry {
    Entry {
        key: k.as_bytes().to_vec(),
        ts: Timestamp(ts),
        value: v.map(|v| v.as_bytes().to_vec()),
    }
}

fn sample() -> Vec<Entry> {
    vec![
        e("apple", 9, Some("red")),
        e("apple", 4, None),
        e("apricot", 7, Some("")),
        e("banana", 2, Some("yellow")),
    ]
}

#[test]
fn block_round_trip_with_prefix_compression() {
    let mut b = BlockBuilder::new();
    for x in sample() {
        b.add(&x);
    }
    assert_eq!(b.last(), Some(&(b"banana".to_vec(), Timestamp(2))));
    let bytes = b.finish();
    assert!(b.is_empty());
    assert_eq!(decode_block(&bytes).unwrap(), sample());
    // Prefix compression saved the shared "ap"/"apple" bytes.
    let raw: usize = sample().iter().map(|x| x.key.len()).sum();
    let stored = bytes.len()
        - sample()
            .iter()
            .map(|x| 21 + x.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
        - 8;
    assert!(stored < raw, "{stored} key bytes stored for {raw}");
}

#[test]
fn seek_and_find_agree_with_a_linear_search() {
    // Keys that tie on their 8-byte prefix, are shorter than it, or end in zeros.
    let keys: [&[u8]; 8] = [
        b"",
        b"a",
        b"a\0",
        b"abcdefgh",
        b"abcdefgh\0",
        b"abcdefgh1",
        b"abcdefgh2",
        b"abcdefgi",
    ];
    let mut b = BlockBuilder::new();
    let mut all = Vec::new();
    for k in keys {
        for ts in [9, 5, 1] {
            let x = Entry {
                key: k.to_vec(),
                ts: Timestamp(ts),
                value: (ts != 5).then(|| vec![ts as u8; ts as usize]),
            };
            b.add(&x);
            all.push(x);
        }
    }
    let block = Block::decode(&b.finish()).unwrap();
    assert_eq!(block.entries().collect::<Vec<_>>(), all);
    let probes: [&[u8]; 6] = [
        b"\0",
        b"abc",
        b"abcdefgh0",
        b"abcdefgh3",
        b"b",
        b"abcdefgh\0\0",
    ];
    for k in keys.iter().chain(&probes) {
        for at in [0, 1, 4, 5, 9, 10] {
            let at = Timestamp(at);
            let want = all.partition_point(|e| cmp_internal(&e.key, e.ts, k, at).is_lt());
            assert_eq!(block.seek(k, at), want, "seek {k:?} at {at}");
            let found = all.get(want).filter(|e| e.key == *k).cloned();
            assert_eq!(block.find(k, at).map(EntryRef::to_entry), found);
        }
    }
}

#[test]
fn every_byte_flip_of_a_block_is_an_error() {
    let mut b = BlockBuilder::new();
    for x in sample() {
        b.add(&x);
    }
    let bytes = b.finish();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut d = bytes.clone();
            d[i] ^= bit;
            assert!(
                decode_block(&d).is_err(),
                "flip {bit:#x} at {i} went unnoticed"
            );
        }
    }
    for cut in 0..bytes.len() {
        assert!(decode_block(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn decoder_rejects_well_checksummed_nonsense() {
    // Valid checksum, but a shared prefix longer than the previous key.
    let mut body = Vec::new();
    put_u32(&mut body, 3);
    put_u32(&mut body, 1);
    body.push(VALUE);
    put_u64(&mut body, 1);
    put_u32(&mut body, 0);
    body.push(b'a');
    put_u32(&mut body, 1);
    seal_crc(&mut body);
    assert!(decode_block(&body).unwrap_err().contains("shorter key"));
    // Valid checksum, zero entries.
    let mut empty = Vec::new();
    put_u32(&mut empty, 0);
    seal_crc(&mut empty);
    assert!(decode_block(&empty).is_err());
}

#[test]
fn index_round_trip_find_and_checks() {
    let idx = Index {
        smallest_key: b"a".to_vec(),
        smallest_ts: Timestamp(5),
        blocks: vec![
            IndexEntry {
                last_key: b"c".to_vec(),
                last_ts: Timestamp(3),
                offset: 0,
                len: 100,
            },
            IndexEntry {
                last_key: b"f".to_vec(),
                last_ts: Timestamp(1),
                offset: 100,
                len: 50,
            },
        ],
    };
    let bytes = idx.encode();
    assert_eq!(Index::decode(&bytes, 150).unwrap(), idx);
    assert!(
        Index::decode(&bytes, 151).is_err(),
        "blocks must tile the data region"
    );
    assert_eq!(idx.find(b"a", Timestamp::MAX), Some(0));
    assert_eq!(idx.find(b"c", Timestamp(3)), Some(0));
    assert_eq!(idx.find(b"c", Timestamp(2)), Some(1));
    assert_eq!(idx.find(b"d", Timestamp(9)), Some(1));
    assert_eq!(idx.find(b"g", Timestamp(9)), None);
    assert_eq!(idx.largest_key(), b"f");
    for i in 0..bytes.len() {
        let mut d = bytes.clone();
        d[i] ^= 0x04;
        assert!(Index::decode(&d, 150).is_err(), "flip at {i}");
    }
}

/// Seeks and finds in a block of `keys` (two versions each) agree with a linear
/// search over its entries, for every key and every probe, at several read points.
fn check_seek_against_linear_search(keys: &[Vec<u8>], probes: &[&[u8]]) -> Block {
    let mut b = BlockBuilder::new();
    let mut all = Vec::new();
    for k in keys {
        for ts in [8, 3] {
            let x = Entry {
                key: k.clone(),
                ts: Timestamp(ts),
                value: Some(vec![ts as u8]),
            };
            b.add(&x);
            all.push(x);
        }
    }
    let block = Block::decode(&b.finish()).unwrap();
    for k in keys.iter().map(Vec::as_slice).chain(probes.iter().copied()) {
        for at in [0, 3, 5, 8, 9] {
            let at = Timestamp(at);
            let want = all.partition_point(|e| cmp_internal(&e.key, e.ts, k, at).is_lt());
            assert_eq!(block.seek(k, at), want, "seek {k:?} at {at}");
            let found = all.get(want).filter(|e| e.key == k).cloned();
            assert_eq!(block.find(k, at).map(EntryRef::to_entry), found);
        }
    }
    block
}

/// Keys that share a long prefix (as the benchmark's `key0000000…` do): the seek skips
/// it and compares the rest, and must still agree with a linear search for probes
/// below, above, inside and shorter than the shared prefix.
#[test]
fn seek_past_a_shared_prefix_agrees_with_a_linear_search() {
    let keys: Vec<Vec<u8>> = [
        "key000000012340",
        "key000000012341",
        "key0000000123410",
        "key000000012399",
    ]
    .iter()
    .map(|k| k.as_bytes().to_vec())
    .collect();
    let probes: [&[u8]; 10] = [
        b"",
        b"key",
        b"key0000000123",
        b"key00000001234",
        b"key0000000122",
        b"key00000001229999",
        b"key0000000124",
        b"key000000012340\0",
        b"key0000000123411",
        b"l",
    ];
    let block = check_seek_against_linear_search(&keys, &probes);
    assert_eq!(block.common.as_slice(), b"key0000000123");
}

/// Keys sharing more than [`COMMON_INLINE`] bytes: the block keeps only that much of
/// the common prefix inline, so its 8-byte prefixes tie more often and the search
/// falls back to the rows' keys; it must still agree with a linear search.
#[test]
fn seek_with_a_common_prefix_longer_than_kept_inline() {
    let stem = "tenant/0000000042/table/users/row/";
    assert!(stem.len() > COMMON_INLINE + 8);
    let keys: Vec<Vec<u8>> = ["000", "001", "0010", "01", "9"]
        .iter()
        .map(|k| format!("{stem}{k}").into_bytes())
        .collect();
    let below = stem.to_string();
    let between = format!("{stem}0005");
    let above = format!("{stem}99");
    let short = &stem[..COMMON_INLINE + 3];
    let probes: [&[u8]; 5] = [
        below.as_bytes(),
        between.as_bytes(),
        above.as_bytes(),
        short.as_bytes(),
        b"tenant/1",
    ];
    let block = check_seek_against_linear_search(&keys, &probes);
    assert_eq!(block.common.as_slice(), &stem.as_bytes()[..COMMON_INLINE]);
}
