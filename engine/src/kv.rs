//! Names for the things the transaction layer talks about: timestamps, transaction ids,
//! key ranges, write sets, conflicts, outcomes and errors.

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

/// A transaction's identity, unique for the life of a [`super::TxnManager`]; assigned in
/// `begin` order starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn{}", self.0)
    }
}

/// The byte-wise order of keys (exactly `[u8]::cmp`), eight bytes at a time as
/// big-endian words: short keys (the benchmark's are 16 bytes) compare in a few
/// instructions instead of a call to `memcmp`, which was a quarter of a point read
/// (`crate::lsm`'s searches, and range checks).
#[inline]
pub fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
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
    pub fn new(range: impl RangeBounds<Key>) -> Result<KeyRange, Error> {
        let range = KeyRange {
            start: range.start_bound().cloned(),
            end: range.end_bound().cloned(),
        };
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) =
            (&range.start, &range.end)
        {
            if s > e {
                return Err(Error::InvalidRange);
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

/// Why a transaction was aborted. A conflict is an *outcome* the caller retries, never
/// an [`Error`] of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// First-committer-wins: `key` is in this transaction's write set and another
    /// transaction committed a version of it at `committed`, after this transaction's
    /// snapshot.
    WriteWrite {
        /// The contended key.
        key: Key,
        /// The commit timestamp of the version that won.
        committed: Timestamp,
    },
    /// A dangerous structure `t1 →rw pivot →rw t3` (Cahill et al. 2008), where `t3`
    /// committed first, was found; this transaction is the victim. `t1` may equal `t3`
    /// (plain write skew). `t1 →rw pivot` means `t1` read a version that `pivot`
    /// overwrote (or a range `pivot` wrote into) without seeing `pivot`'s write.
    Serialization {
        /// The reader at the start of the structure.
        t1: TxnId,
        /// The transaction with both an incoming and an outgoing rw-antidependency.
        pivot: TxnId,
        /// The first of the three to commit.
        t3: TxnId,
    },
}

impl Conflict {
    /// A short, stable name for the kind of conflict (`"write-write"`, `"serialization"`),
    /// e.g. for the shell's JSON `reason`.
    pub fn kind(&self) -> &'static str {
        match self {
            Conflict::WriteWrite { .. } => "write-write",
            Conflict::Serialization { .. } => "serialization",
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::WriteWrite { key, committed } => {
                write!(
                    f,
                    "write-write conflict on {} (committed {committed})",
                    show(key)
                )
            }
            Conflict::Serialization { t1, pivot, t3 } => {
                write!(
                    f,
                    "serialization failure: {t1} →rw {pivot} →rw {t3} (pivot {pivot})"
                )
            }
        }
    }
}

/// The result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The transaction committed; its writes are visible to snapshots at or after `ts`.
    Committed {
        /// The commit timestamp.
        ts: Timestamp,
    },
    /// The transaction was aborted and left no trace; retry it.
    Aborted(Conflict),
}

/// An error from the storage below the transaction layer.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Errors of the transaction layer: misuse, storage failure, and operations on a
/// transaction the engine has already aborted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transaction was aborted by the engine (a conflict). `get`/`put`/`delete`/`scan`
    /// report this; `commit` reports the same conflict as [`CommitOutcome::Aborted`].
    /// Retry the whole transaction.
    #[error("transaction aborted: {0}")]
    Aborted(Conflict),
    /// The transaction has already committed or rolled back, or never existed.
    #[error("{0} is not active (already committed, rolled back, or unknown)")]
    NotActive(TxnId),
    /// A write in a transaction begun read-only.
    #[error("{0} is read-only: it cannot write")]
    ReadOnly(TxnId),
    /// A scan range whose start lies after its end.
    #[error("invalid key range: start is after end")]
    InvalidRange,
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An earlier failure while applying a commit left the store in an unknown state;
    /// the database must be reopened (fail-stop).
    #[error("transaction manager poisoned by an earlier failure: {0}")]
    Poisoned(String),
}

impl Error {
    /// The conflict, when this error means "aborted, retry".
    pub fn conflict(&self) -> Option<&Conflict> {
        match self {
            Error::Aborted(c) => Some(c),
            _ => None,
        }
    }
}
