//! The vocabulary every layer shares: keys, values, commit timestamps, key ranges, write
//! sets and a key's committed versions. It sits below both storage ([`crate::lsm`]) and
//! transactions ([`crate::mvcc`]) and imports neither (DECISIONS.md D66;
//! `scripts/module-graph --check` pins the layering).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, RangeBounds};

/// A key. Keys are ordered bytewise.
pub type Key = Vec<u8>;
/// A value.
pub type Value = Vec<u8>;
/// A transaction's buffered writes: `Some(value)` is a put, `None` a delete (tombstone).
pub type WriteSet = BTreeMap<Key, Option<Value>>;

/// A commit timestamp, and the snapshot timestamp of a transaction (the commit
/// timestamp of the last transaction it sees). Commit timestamps are unique and
/// strictly increasing; `Timestamp::ZERO` is the empty initial database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The state before any commit.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The largest timestamp (reads "everything").
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// The next timestamp. Panics on overflow, which 2^64 commits cannot reach.
    pub fn next(self) -> Timestamp {
        Timestamp(self.0.checked_add(1).expect("timestamp overflow"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// The byte-wise order of keys (exactly `[u8]::cmp`), eight bytes at a time as
/// big-endian words: short keys (the benchmark's are 16 bytes) compare in a few
/// instructions instead of a call to `memcmp`, which was a quarter of a point read
/// (`crate::lsm`'s searches, and range checks).
#[inline]
pub fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    let order = cmp_words(a, b);
    // Tables are written and searched in this order: it must be the byte order.
    debug_assert_eq!(order, a.cmp(b));
    order
}

/// [`cmp_keys`]' word-at-a-time comparison.
#[inline]
fn cmp_words(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let (mut x8, mut y8) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    for (x, y) in (&mut x8).zip(&mut y8) {
        let x = u64::from_be_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(y.try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
    }
    for (x, y) in x8.remainder().iter().zip(y8.remainder()) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// A range of keys, as read by a scan and remembered for phantom detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Key>,
    /// Upper bound.
    pub end: Bound<Key>,
}

/// A bound over versioned entries `(key, Reverse(ts))`, as both the in-memory store and
/// the memtable key them.
pub type VersionBound = Bound<(Key, std::cmp::Reverse<Timestamp>)>;

impl KeyRange {
    /// Bounds covering every version of every key in this range. A key's versions sort
    /// newest first: `(k, Reverse(MAX))` is the first a key can have, `(k, Reverse(ZERO))`
    /// the last.
    pub fn version_bounds(&self) -> (VersionBound, VersionBound) {
        use std::cmp::Reverse;
        let start = match &self.start {
            Bound::Included(s) => Bound::Included((s.clone(), Reverse(Timestamp::MAX))),
            Bound::Excluded(s) => Bound::Excluded((s.clone(), Reverse(Timestamp::ZERO))),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match &self.end {
            Bound::Included(e) => Bound::Included((e.clone(), Reverse(Timestamp::ZERO))),
            Bound::Excluded(e) => Bound::Excluded((e.clone(), Reverse(Timestamp::MAX))),
            Bound::Unbounded => Bound::Unbounded,
        };
        (start, end)
    }

    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Copies any `RangeBounds<Key>` (`a..b`, `a..`, `..`, `a..=b`). Errors if the start
    /// lies after the end (an empty range such as `a..a` is fine).
    pub fn new(range: impl RangeBounds<Key>) -> Result<KeyRange, InvalidRange> {
        let range = KeyRange {
            start: range.start_bound().cloned(),
            end: range.end_bound().cloned(),
        };
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) =
            (&range.start, &range.end)
        {
            if s > e {
                return Err(InvalidRange);
            }
        }
        Ok(range)
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => cmp_keys(key, s).is_ge(),
            Bound::Excluded(s) => cmp_keys(key, s).is_gt(),
            Bound::Unbounded => true,
        };
        !self.beyond_end(key) && after_start
    }

    /// Whether `key` sorts after every key of the range.
    pub fn beyond_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(e) => cmp_keys(key, e).is_gt(),
            Bound::Excluded(e) => cmp_keys(key, e).is_ge(),
            Bound::Unbounded => false,
        }
    }

    /// Whether no key can lie in the range (`a..a`, `(a, a]`, …).
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
            _ => false,
        }
    }
}

/// A `KeyRange` is itself a range (so it can be passed wherever one is taken).
impl RangeBounds<Key> for KeyRange {
    fn start_bound(&self) -> Bound<&Key> {
        self.start.as_ref()
    }

    fn end_bound(&self) -> Bound<&Key> {
        self.end.as_ref()
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.start {
            Bound::Included(s) => write!(f, "[{}", show(s))?,
            Bound::Excluded(s) => write!(f, "({}", show(s))?,
            Bound::Unbounded => write!(f, "(-inf")?,
        }
        match &self.end {
            Bound::Included(e) => write!(f, ", {}]", show(e)),
            Bound::Excluded(e) => write!(f, ", {})", show(e)),
            Bound::Unbounded => write!(f, ", +inf)"),
        }
    }
}

/// Shows bytes as a string when they are printable ASCII, else as hex.
pub fn show(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join("")
            .to_string()
    }
}

/// A key range whose start lies after its end ([`KeyRange::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid key range: start is after end")]
pub struct InvalidRange;

/// One committed version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The commit timestamp that wrote it.
    pub ts: Timestamp,
    /// The value; `None` is a tombstone (the key was deleted).
    pub value: Option<Value>,
}
