//! Record framing: the one on-disk envelope of the write-ahead log's segments, the
//! manifest and the Raft log file (and the hard-state file's slots). A file in this
//! framing is a sequence of records:
//!
//! ```text
//! +-----------+-----------+---------------------------+
//! | len: u32  | crc: u32  | payload: len bytes        |
//! +-----------+-----------+---------------------------+
//! ```
//! `crc` is CRC32C of `len` (little-endian bytes) followed by the payload, so a torn
//! length is caught as well as a torn payload. Lengths above [`MAX_RECORD_BYTES`] are
//! invalid. A zero header is not a valid record (its checksum is not zero), so
//! preallocated zeros end a file like a torn tail.
//!
//! Readers keep the valid prefix ([`decode_records`]) and tell a torn tail from damage
//! to durable bytes by whether an intact record follows the first bad one
//! ([`valid_record_after`]); what a bad record means (cut it or refuse) is each file's
//! own rule, stated in its module. The format is pinned by the byte-level tests below
//! and by the fuzz target over [`decode_records`] (D55); it predates this module, which
//! only gathered the code (DECISIONS.md D68).

/// Largest payload a record may carry (and that a reader believes).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of framing per record.
pub const HEADER_BYTES: usize = 8;

/// A payload larger than [`MAX_RECORD_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record of {0} bytes exceeds the maximum")]
pub struct TooLarge(pub usize);

/// Frames `payload` as one record.
pub fn encode_record(payload: &[u8]) -> Result<Vec<u8>, TooLarge> {
    if payload.len() > MAX_RECORD_BYTES {
        return Err(TooLarge(payload.len()));
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32c::crc32c(&len);
    crc = crc32c::crc32c_append(crc, payload);
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    // The pair of `record_at`'s checks: what is written reads back as the payload.
    debug_assert_eq!(record_at(&out, 0), Some(payload), "a record must read back");
    Ok(out)
}

/// The record starting at `offset` of `bytes`, if one starts there and is intact.
fn record_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let header = bytes.get(offset..offset.checked_add(HEADER_BYTES)?)?;
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let start = offset + HEADER_BYTES;
    let payload = bytes.get(start..start + len)?;
    (crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) == crc).then_some(payload)
}

/// The valid records of a segment image, and the byte offset where they end.
pub fn decode_records(bytes: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while let Some(payload) = record_at(bytes, offset) {
        records.push(payload.to_vec());
        offset += HEADER_BYTES + payload.len();
    }
    debug_assert!(
        offset <= bytes.len(),
        "the valid prefix lies within the image"
    );
    (records, offset as u64)
}

/// Whether an intact record starts anywhere after `bad` (the offset where
/// [`decode_records`] stopped). A torn tail never holds one; damage to durable records
/// usually does.
pub fn valid_record_after(bytes: &[u8], bad: u64) -> bool {
    let bad = bad as usize;
    // `bad` comes from `decode_records` over the same image, not from the disk.
    debug_assert!(
        bad <= bytes.len(),
        "offset {bad} beyond an image of {}",
        bytes.len()
    );
    (bad + 1..bytes.len().saturating_sub(HEADER_BYTES - 1)).any(|o| record_at(bytes, o).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_length_crc_payload() {
        let rec = encode_record(b"abc").unwrap();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&3u32.to_le_bytes()), b"abc");
        let mut want = 3u32.to_le_bytes().to_vec();
        want.extend(crc.to_le_bytes());
        want.extend(b"abc");
        assert_eq!(rec, want);
        assert_eq!(
            encode_record(&vec![0; MAX_RECORD_BYTES + 1]),
            Err(TooLarge(MAX_RECORD_BYTES + 1))
        );
        assert!(!valid_record_after(&[0u8; 64], 0), "zeros hold no record");
    }

    #[test]
    fn records_round_trip_and_stop_at_damage() {
        let mut log = Vec::new();
        for i in 0..5u8 {
            log.extend(encode_record(&vec![i; 100 + usize::from(i)]).unwrap());
        }
        let (recs, end) = decode_records(&log);
        assert_eq!(recs.len(), 5);
        assert_eq!(end, log.len() as u64);
        // Torn: any strict prefix of the last record ends the log at record 4.
        let four_end = decode_records(&log[..log.len() - 104 - HEADER_BYTES]).1;
        for cut in four_end as usize..log.len() {
            let (r, e) = decode_records(&log[..cut]);
            assert_eq!(r.len(), 4, "cut at {cut}");
            assert_eq!(e, four_end);
        }
        // A flipped bit anywhere in record 2 ends the log after record 1.
        let two_start = decode_records(&log).0[..2]
            .iter()
            .map(|r| r.len() + HEADER_BYTES)
            .sum::<usize>();
        for bit in [0, 3, 4, 7, 8, 50] {
            let mut damaged = log.clone();
            damaged[two_start + bit] ^= 0x10;
            assert_eq!(decode_records(&damaged).0.len(), 2, "flip at +{bit}");
        }
        // A huge length is rejected without reading past the buffer.
        let mut huge = Vec::new();
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend([0u8; 4]);
        assert_eq!(decode_records(&huge), (vec![], 0));
    }
}
