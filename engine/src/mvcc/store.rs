//! The storage contract below the transaction layer, and an in-memory implementation.
//!
//! A [`VersionedStore`] holds *committed* versions only: `(key, commit ts) → value or
//! tombstone`. It knows nothing of transactions, snapshots in flight or conflicts; the
//! [`super::TxnManager`] decides what to apply and when. [`MemStore`] is the reference
//! implementation the tests run against; the LSM store ([`crate::lsm::LsmStore`])
//! offers the same reads asynchronously, under the same contract.
//!
//! Contract (every implementation):
//! - `apply(ts, writes)` is called with strictly increasing `ts`, all of one commit's
//!   writes at once; afterwards `get(k, at ≥ ts)` sees them.
//! - `get`/`scan` at `at` return, per key, the newest version with commit ts ≤ `at`;
//!   `scan` drops tombstones.
//! - `gc(below)` may drop any version that no read at `at ≥ below` can return: every
//!   version of a key older than its newest version with ts ≤ `below`, and that newest
//!   one too if it is a tombstone. Reads at `at < below` are then undefined; the
//!   manager never issues them.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::types::StoreError;
use crate::kv::{Key, KeyRange, Timestamp, Value, Version, WriteSet};

/// Multi-version committed storage, as the transaction manager needs it.
pub trait VersionedStore {
    /// The newest version of `key` with commit ts ≤ `at` (a value or a tombstone), or
    /// `None` if there is none.
    fn get(&self, key: &[u8], at: Timestamp) -> Result<Option<Version>, StoreError>;

    /// The live `(key, value)` pairs in `range` as of `at`, in key order (tombstoned keys
    /// left out).
    fn scan(&self, range: &KeyRange, at: Timestamp) -> Result<Vec<(Key, Value)>, StoreError>;

    /// The commit ts of the newest version of `key` (value or tombstone), if any. (The
    /// manager does not need it: first-committer-wins is decided from the retained
    /// committed write sets, without a store read.)
    fn latest_commit_ts(&self, key: &[u8]) -> Result<Option<Timestamp>, StoreError>;

    /// The highest commit ts applied so far (`Timestamp::ZERO` when empty); the manager
    /// resumes its clock from here.
    fn last_commit_ts(&self) -> Timestamp;

    /// Applies one committed write set at `ts`, atomically with respect to reads.
    /// `ts` is greater than every timestamp applied before.
    fn apply(&mut self, ts: Timestamp, writes: &WriteSet) -> Result<(), StoreError>;

    /// Drops versions no read at `at ≥ below` can see (see the module contract).
    fn gc(&mut self, below: Timestamp) -> Result<(), StoreError>;
}

/// An in-memory [`VersionedStore`]: one ordered map from `(key, Reverse(ts))` to the
/// value or tombstone, so a key's versions sit together, newest first.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    versions: BTreeMap<(Key, Reverse<Timestamp>), Option<Value>>,
    last_ts: Timestamp,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Every stored version, in key order and newest first within a key.
    pub fn versions(&self) -> impl Iterator<Item = (&[u8], Timestamp, Option<&[u8]>)> + '_ {
        self.versions
            .iter()
            .map(|((k, Reverse(ts)), v)| (k.as_slice(), *ts, v.as_deref()))
    }

    /// The number of stored versions (tombstones included).
    pub fn version_count(&self) -> usize {
        self.versions.len()
    }

    /// Entries of `range`, all versions, as a map range (`range` must not be empty).
    fn raw_range(
        &self,
        range: &KeyRange,
    ) -> impl Iterator<Item = (&(Key, Reverse<Timestamp>), &Option<Value>)> + '_ {
        debug_assert!(!range.is_empty());
        self.versions.range(range.version_bounds())
    }
}

impl VersionedStore for MemStore {
    fn get(&self, key: &[u8], at: Timestamp) -> Result<Option<Version>, StoreError> {
        let from = (key.to_vec(), Reverse(at));
        let to = (key.to_vec(), Reverse(Timestamp::ZERO));
        Ok(self
            .versions
            .range(from..=to)
            .next()
            .map(|((_, Reverse(ts)), value)| Version {
                ts: *ts,
                value: value.clone(),
            }))
    }

    fn scan(&self, range: &KeyRange, at: Timestamp) -> Result<Vec<(Key, Value)>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows: Vec<(Key, Value)> = Vec::new();
        let mut last_key: Option<&Key> = None;
        for ((key, Reverse(ts)), value) in self.raw_range(range) {
            // Take the first (newest) version ≤ `at` of each key, skip the rest.
            if *ts > at || last_key == Some(key) {
                continue;
            }
            last_key = Some(key);
            if let Some(value) = value {
                rows.push((key.clone(), value.clone()));
            }
        }
        debug_assert!(
            rows.windows(2).all(|w| w[0].0 < w[1].0),
            "scan out of order"
        );
        Ok(rows)
    }

    fn latest_commit_ts(&self, key: &[u8]) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.get(key, Timestamp::MAX)?.map(|v| v.ts))
    }

    fn last_commit_ts(&self) -> Timestamp {
        self.last_ts
    }

    fn apply(&mut self, ts: Timestamp, writes: &WriteSet) -> Result<(), StoreError> {
        assert!(
            ts > self.last_ts,
            "apply at {ts} after {}: timestamps must increase",
            self.last_ts
        );
        for (key, value) in writes {
            let old = self
                .versions
                .insert((key.clone(), Reverse(ts)), value.clone());
            debug_assert!(old.is_none(), "two versions of one key at one timestamp");
        }
        self.last_ts = ts;
        Ok(())
    }

    fn gc(&mut self, below: Timestamp) -> Result<(), StoreError> {
        let before = self.versions.len();
        let mut drop_keys: Vec<(Key, Reverse<Timestamp>)> = Vec::new();
        let mut current: Option<&Key> = None;
        let mut kept_base = false; // the key's newest version ≤ below has been seen
        for ((key, Reverse(ts)), value) in &self.versions {
            if current != Some(key) {
                current = Some(key);
                kept_base = false;
            }
            if *ts > below {
                continue; // visible to some snapshot ≥ below: keep
            }
            if kept_base {
                drop_keys.push((key.clone(), Reverse(*ts))); // shadowed for every reader
            } else {
                kept_base = true;
                if value.is_none() {
                    drop_keys.push((key.clone(), Reverse(*ts))); // a tombstone hides nothing now
                }
            }
        }
        for k in &drop_keys {
            self.versions.remove(k);
        }
        debug_assert_eq!(self.versions.len() + drop_keys.len(), before);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound;

    fn ws(pairs: &[(&str, Option<&str>)]) -> WriteSet {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    fn k(s: &str) -> Key {
        s.as_bytes().to_vec()
    }

    #[test]
    fn reads_see_newest_version_at_or_below_snapshot() {
        let mut s = MemStore::new();
        s.apply(Timestamp(1), &ws(&[("a", Some("1")), ("b", Some("1"))]))
            .unwrap();
        s.apply(Timestamp(2), &ws(&[("a", Some("2"))])).unwrap();
        s.apply(Timestamp(3), &ws(&[("a", None)])).unwrap();
        assert_eq!(s.get(b"a", Timestamp(0)).unwrap(), None);
        assert_eq!(
            s.get(b"a", Timestamp(1)).unwrap().unwrap().value,
            Some(k("1"))
        );
        assert_eq!(
            s.get(b"a", Timestamp(2)).unwrap().unwrap().value,
            Some(k("2"))
        );
        assert_eq!(
            s.get(b"a", Timestamp(9)).unwrap().unwrap(),
            Version {
                ts: Timestamp(3),
                value: None
            }
        );
        assert_eq!(s.latest_commit_ts(b"a").unwrap(), Some(Timestamp(3)));
        assert_eq!(s.latest_commit_ts(b"z").unwrap(), None);
        let all = KeyRange::all();
        assert_eq!(
            s.scan(&all, Timestamp(2)).unwrap(),
            vec![(k("a"), k("2")), (k("b"), k("1"))]
        );
        assert_eq!(s.scan(&all, Timestamp(3)).unwrap(), vec![(k("b"), k("1"))]);
        let excl = KeyRange::new((Bound::Excluded(k("a")), Bound::Included(k("b")))).unwrap();
        assert_eq!(s.scan(&excl, Timestamp(1)).unwrap(), vec![(k("b"), k("1"))]);
        let empty = KeyRange::new(k("b")..k("b")).unwrap();
        assert!(empty.is_empty());
        assert_eq!(s.scan(&empty, Timestamp(9)).unwrap(), vec![]);
        assert!(KeyRange::new(k("b")..k("a")).is_err());
    }

    #[test]
    fn gc_keeps_exactly_what_snapshots_at_or_above_horizon_can_see() {
        let mut s = MemStore::new();
        s.apply(
            Timestamp(1),
            &ws(&[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))]),
        )
        .unwrap();
        s.apply(Timestamp(2), &ws(&[("a", Some("2")), ("b", None)]))
            .unwrap();
        s.apply(Timestamp(4), &ws(&[("a", Some("4")), ("c", Some("4"))]))
            .unwrap();
        let before: Vec<_> = (2..=5)
            .map(|t| s.scan(&KeyRange::all(), Timestamp(t)).unwrap())
            .collect();
        s.gc(Timestamp(2)).unwrap();
        let after: Vec<_> = (2..=5)
            .map(|t| s.scan(&KeyRange::all(), Timestamp(t)).unwrap())
            .collect();
        assert_eq!(before, after);
        // a@1 shadowed, b@1 shadowed and b@2 a tombstone: three versions gone.
        let left: Vec<_> = s.versions().map(|(k, ts, _)| (k.to_vec(), ts.0)).collect();
        assert_eq!(
            left,
            vec![(k("a"), 4), (k("a"), 2), (k("c"), 4), (k("c"), 1)]
        );
    }
}
