//! Little-endian encoding helpers shared by the on-disk formats, and the order of
//! internal keys (user key ascending, then commit ts descending).

use std::cmp::Ordering;

use crate::kv::{Key, Timestamp, Value};

/// One stored version: the user key, the commit ts that wrote it, and the value or a
/// tombstone (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The user key.
    pub key: Key,
    /// The commit timestamp of the version.
    pub ts: Timestamp,
    /// The value, or `None` for a tombstone.
    pub value: Option<Value>,
}

impl Entry {
    /// Bytes this entry costs in memory and on disk, roughly.
    pub fn approx_bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len) + 16
    }
}

/// The internal order: by user key, then newest (highest ts) first.
pub fn cmp_internal(a_key: &[u8], a_ts: Timestamp, b_key: &[u8], b_ts: Timestamp) -> Ordering {
    cmp_keys(a_key, b_key).then(b_ts.cmp(&a_ts))
}

pub use crate::kv::cmp_keys;

/// Appends `v` as little-endian bytes.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as little-endian bytes.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a u32 length then the bytes. Panics if `b` is 4 GiB or more (callers bound
/// keys and values far below that).
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, u32::try_from(b.len()).expect("field under 4 GiB"));
    out.extend_from_slice(b);
}

/// A bounds-checked cursor over a byte slice. Every getter returns `None` past the end,
/// so decoders turn truncation into a typed error instead of a panic.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        debug_assert!(self.pos <= self.buf.len(), "a cursor never passes its end");
        Some(out)
    }

    /// A byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A u32 length then that many bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything was consumed.
    pub fn is_done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Splits `data` into its payload and trailing CRC32C and checks it; `None` if too short
/// or the checksum does not match.
pub fn verify_crc(data: &[u8]) -> Option<&[u8]> {
    if data.len() < 4 {
        return None;
    }
    let (payload, crc) = data.split_at(data.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    (crc32c::crc32c(payload) == crc).then_some(payload)
}

/// Appends the CRC32C of everything in `out` so far.
pub fn seal_crc(out: &mut Vec<u8>) {
    let crc = crc32c::crc32c(out);
    put_u32(out, crc);
}

/// The WAL payload of one commit: `ts: u64  count: u32  (key, kind: u8, [value])*`,
/// keys and values as u32 length + bytes, kind 0 a delete and 1 a put.
pub fn encode_commit(ts: Timestamp, writes: &crate::kv::WriteSet) -> Vec<u8> {
    // `decode_commit` refuses ts 0 (no commit has it): such a record would be unreadable.
    assert!(
        ts > Timestamp::ZERO,
        "a commit record needs a commit timestamp"
    );
    let mut out = Vec::new();
    put_u64(&mut out, ts.0);
    put_u32(
        &mut out,
        u32::try_from(writes.len()).expect("under 4 G writes"),
    );
    for (k, v) in writes {
        put_bytes(&mut out, k);
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, v);
            }
        }
    }
    // The pair of `decode_commit`'s checks: the record reads back as written.
    debug_assert!(
        decode_commit(&out).is_some_and(|(t, w)| t == ts && &w == writes),
        "a commit record must decode to itself"
    );
    out
}

/// Decodes [`encode_commit`]'s output.
pub fn decode_commit(bytes: &[u8]) -> Option<(Timestamp, crate::kv::WriteSet)> {
    let mut c = Cursor::new(bytes);
    let ts = Timestamp(c.u64()?);
    let n = c.u32()? as usize;
    let mut writes = crate::kv::WriteSet::new();
    for _ in 0..n {
        let k = c.bytes()?.to_vec();
        let v = match c.u8()? {
            0 => None,
            1 => Some(c.bytes()?.to_vec()),
            _ => return None,
        };
        if writes.insert(k, v).is_some() {
            return None;
        }
    }
    (c.is_done() && ts > Timestamp::ZERO).then_some((ts, writes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cmp_keys` is `[u8]::cmp` on every pair of a set of keys of all lengths around
    /// the word size, differing early, late, in the tail, or only in length.
    #[test]
    fn cmp_keys_is_the_byte_order() {
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in [1, 7, 8, 9, 15, 16, 17, 24] {
            let base: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            keys.push(base.clone());
            for at in [0, len / 2, len - 1] {
                for delta in [1u8, 0x80, 0xff] {
                    let mut k = base.clone();
                    k[at] = k[at].wrapping_add(delta);
                    keys.push(k);
                }
            }
            let mut longer = base.clone();
            longer.push(0);
            keys.push(longer);
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(cmp_keys(a, b), a.as_slice().cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn cursor_never_reads_past_the_end() {
        let mut out = Vec::new();
        put_u32(&mut out, 7);
        put_bytes(&mut out, b"abc");
        let mut c = Cursor::new(&out);
        assert_eq!(c.u32(), Some(7));
        assert_eq!(c.bytes(), Some(&b"abc"[..]));
        assert!(c.is_done());
        assert_eq!(c.u8(), None);
        // A length that runs past the end.
        let mut c = Cursor::new(&[9, 0, 0, 0, 1, 2]);
        assert_eq!(c.bytes(), None);
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(c.bytes(), None);
    }

    #[test]
    fn crc_seal_and_verify() {
        let mut b = b"hello".to_vec();
        seal_crc(&mut b);
        assert_eq!(verify_crc(&b), Some(&b"hello"[..]));
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 1;
            assert_eq!(verify_crc(&d), None, "flip at {i}");
        }
        assert_eq!(verify_crc(&[1, 2]), None);
    }

    #[test]
    fn internal_order_is_key_then_newest_first() {
        use std::cmp::Ordering::*;
        assert_eq!(cmp_internal(b"a", Timestamp(1), b"b", Timestamp(9)), Less);
        assert_eq!(cmp_internal(b"a", Timestamp(5), b"a", Timestamp(3)), Less);
        assert_eq!(cmp_internal(b"a", Timestamp(3), b"a", Timestamp(3)), Equal);
    }

    #[test]
    fn commit_records_round_trip_and_reject_nonsense() {
        let mut w = crate::kv::WriteSet::new();
        w.insert(b"a".to_vec(), Some(b"1".to_vec()));
        w.insert(b"b".to_vec(), None);
        let bytes = encode_commit(Timestamp(7), &w);
        assert_eq!(decode_commit(&bytes), Some((Timestamp(7), w)));
        for cut in 0..bytes.len() {
            assert_eq!(decode_commit(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(decode_commit(&extra), None);
        // A record at ts 0 (which `encode_commit` refuses to write) is refused too.
        let mut zero = bytes.clone();
        zero[..8].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(decode_commit(&zero), None);
    }
}
