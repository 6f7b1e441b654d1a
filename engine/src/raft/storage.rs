//! The persisted log: the [`Storage`] trait and its in-memory implementation.
//!
//! `Storage` holds what the caller has made durable: hard state, the latest snapshot
//! and the entries after the compaction point. [`super::RawNode`] reads through it and
//! writes to it only in [`super::RawNode::advance`] (after the caller persisted a
//! Ready) and in [`super::RawNode::snapshot`]/[`super::RawNode::compact`]. A caller
//! with a durable log mirrors it into a [`MemStorage`] (or implements the trait over
//! its own structures) and rebuilds it from disk after a crash.
//!
//! Layout: entries `first_index()..=last_index()` are held; the entry just before
//! `first_index()` is the compaction point, whose term is still known. The snapshot's
//! index is at or after the compaction point (a log can be snapshotted without being
//! compacted, never compacted past its snapshot).

use super::{Entry, HardState, Index, Snapshot, SnapshotMeta, Term};

/// Why a storage read or write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The index is at or before the compaction point (its entry is gone).
    #[error("index {0} is compacted")]
    Compacted(Index),
    /// The index is beyond the last entry.
    #[error("index {0} is not in the log yet")]
    Unavailable(Index),
    /// An append would leave a gap or rewrite compacted entries.
    #[error("append at {first} does not fit a log of {lo}..={hi}")]
    NotContiguous {
        /// First index of the append.
        first: Index,
        /// First index held.
        lo: Index,
        /// Last index held.
        hi: Index,
    },
    /// A snapshot no newer than the one held, or a compaction past the snapshot.
    #[error("snapshot out of date: {0}")]
    OutOfDate(String),
    /// Entries that are not contiguous or whose terms go down.
    #[error("malformed entries: {0}")]
    Malformed(String),
}

/// The persisted part of a Raft log. Reads are `&self`; writes are called by the node
/// only for state the caller has made durable.
pub trait Storage {
    /// The persisted term, vote and commit index.
    fn hard_state(&self) -> HardState;
    /// Index of the first entry held (compaction point + 1).
    fn first_index(&self) -> Index;
    /// Index of the last entry held (the compaction point if none).
    fn last_index(&self) -> Index;
    /// Term of the entry at `index`; works for the compaction point too.
    fn term(&self, index: Index) -> Result<Term, StorageError>;
    /// Entries `lo..hi`.
    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError>;
    /// The latest snapshot (index 0 and no data if none was taken).
    fn snapshot(&self) -> &Snapshot;
    /// Records the hard state.
    fn set_hard_state(&mut self, hard_state: HardState);
    /// Appends `entries`, first replacing every held entry at index ≥ `entries[0].index`.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    /// Replaces the whole log with `snapshot` (received from a leader).
    fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError>;
    /// Records the application's snapshot `data` of its state at `index` (held).
    fn create_snapshot(&mut self, index: Index, data: Vec<u8>) -> Result<(), StorageError>;
    /// Discards entries up to and including `index` (at most the snapshot's index).
    fn compact(&mut self, index: Index) -> Result<(), StorageError>;
}

/// An in-memory [`Storage`]. `Clone` is a crash image: tests clone it to model the
/// disk surviving a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStorage {
    hard_state: HardState,
    snapshot: Snapshot,
    /// The compaction point: the entry just before `entries[0]`.
    compacted: SnapshotMeta,
    entries: Vec<Entry>,
}

impl MemStorage {
    /// An empty log.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    fn check_entries(entries: &[Entry]) -> Result<(), StorageError> {
        for w in entries.windows(2) {
            if w[1].index != w[0].index + 1 || w[1].term < w[0].term {
                return Err(StorageError::Malformed(format!(
                    "{}@{} followed by {}@{}",
                    w[0].index, w[0].term, w[1].index, w[1].term
                )));
            }
        }
        Ok(())
    }
}

impl Storage for MemStorage {
    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn first_index(&self) -> Index {
        self.compacted.index + 1
    }

    fn last_index(&self) -> Index {
        self.compacted.index + self.entries.len() as Index
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        if index < self.compacted.index {
            return Err(StorageError::Compacted(index));
        }
        if index == self.compacted.index {
            return Ok(self.compacted.term);
        }
        let offset = (index - self.compacted.index - 1) as usize;
        self.entries
            .get(offset)
            .map(|e| e.term)
            .ok_or(StorageError::Unavailable(index))
    }

    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError> {
        if lo < self.first_index() {
            return Err(StorageError::Compacted(lo));
        }
        if hi > self.last_index() + 1 {
            return Err(StorageError::Unavailable(hi - 1));
        }
        if lo >= hi {
            return Ok(Vec::new());
        }
        let base = self.first_index();
        Ok(self.entries[(lo - base) as usize..(hi - base) as usize].to_vec())
    }

    fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        Self::check_entries(entries)?;
        let (lo, hi) = (self.first_index(), self.last_index());
        if first.index > hi + 1 {
            return Err(StorageError::NotContiguous {
                first: first.index,
                lo,
                hi,
            });
        }
        // Entries at or before the compaction point are committed and already covered;
        // skip them (a leader may resend what a snapshot now holds).
        let skip = lo.saturating_sub(first.index) as usize;
        let Some(rest) = entries.get(skip..).filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        let keep = (rest[0].index - lo) as usize;
        if let Some(prev) = keep.checked_sub(1).and_then(|k| self.entries.get(k)) {
            if prev.term > rest[0].term {
                return Err(StorageError::Malformed(
                    "term goes down at the append point".into(),
                ));
            }
        }
        self.entries.truncate(keep);
        self.entries.extend_from_slice(rest);
        // Positions and indexes still line up: entry `k` is index `compacted + 1 + k`.
        debug_assert_eq!(self.last_index(), rest[rest.len() - 1].index);
        Ok(())
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        if snapshot.meta.index <= self.snapshot.meta.index.max(self.compacted.index) {
            return Err(StorageError::OutOfDate(format!(
                "have {}, got {}",
                self.snapshot.meta.index, snapshot.meta.index
            )));
        }
        // The follower's log did not contain the snapshot's last entry (otherwise the
        // node would have fast-forwarded instead), so nothing held is kept.
        self.compacted = snapshot.meta;
        self.entries.clear();
        self.snapshot = snapshot;
        Ok(())
    }

    fn create_snapshot(&mut self, index: Index, data: Vec<u8>) -> Result<(), StorageError> {
        if index <= self.snapshot.meta.index {
            return Err(StorageError::OutOfDate(format!(
                "snapshot at {index}, have one at {}",
                self.snapshot.meta.index
            )));
        }
        let term = self.term(index)?;
        self.snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            data,
        };
        Ok(())
    }

    fn compact(&mut self, index: Index) -> Result<(), StorageError> {
        if index > self.snapshot.meta.index {
            return Err(StorageError::OutOfDate(format!(
                "compaction to {index} past the snapshot at {}",
                self.snapshot.meta.index
            )));
        }
        if index <= self.compacted.index {
            return Ok(());
        }
        let term = self.term(index)?;
        let drop = (index - self.compacted.index) as usize;
        self.entries.drain(..drop);
        self.compacted = SnapshotMeta { index, term };
        debug_assert!(self.entries.first().map_or(true, |e| e.index == index + 1));
        Ok(())
    }
}
