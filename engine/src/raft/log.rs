//! The node's view of its log: the persisted [`Storage`] plus an unstable tail (and
//! possibly a received snapshot) not yet handed back through `advance`.
//!
//! Everything before `unstable.offset` is read from storage (or is covered by the
//! unstable snapshot); everything from it on is in `unstable.entries`. A truncation may
//! move `offset` below storage's last index: the stale storage tail is then shadowed
//! until the replacing entries are persisted, which truncates it.

use super::{Entry, Error, Index, Snapshot, Storage, StorageError, Term};

#[derive(Debug, Default)]
struct Unstable {
    /// A snapshot received from the leader and not yet persisted.
    snapshot: Option<Snapshot>,
    /// Index of `entries[0]` (or of the next entry if none).
    offset: Index,
    /// Entries not yet persisted.
    entries: Vec<Entry>,
}

/// Storage + unstable state + commit/apply cursors.
pub(crate) struct RaftLog<S: Storage> {
    pub(crate) storage: S,
    unstable: Unstable,
    /// Highest index known committed.
    pub(crate) commit: Index,
    /// Highest index handed out in a Ready's `committed_entries` (or snapshot).
    pub(crate) applying: Index,
    /// Highest index the application has applied (set by `advance`).
    pub(crate) applied: Index,
}

impl<S: Storage> RaftLog<S> {
    pub(crate) fn new(storage: S, applied: Index) -> Result<RaftLog<S>, Error> {
        let hs = storage.hard_state();
        let snap = storage.snapshot().meta.index;
        let last = storage.last_index();
        // A crash between persisting a received snapshot and the hard state leaves the
        // stored commit behind the snapshot; a snapshot holds only committed entries.
        let commit = hs.commit.max(snap).max(storage.first_index() - 1);
        if commit > last {
            return Err(Error::Corrupt(format!(
                "commit {commit} beyond the last stored index {last} (hard state persisted before its entries?)"
            )));
        }
        let applied = applied.max(snap);
        if applied > commit {
            return Err(Error::Corrupt(format!(
                "applied {applied} beyond commit {commit}"
            )));
        }
        Ok(RaftLog {
            unstable: Unstable {
                snapshot: None,
                offset: last + 1,
                entries: Vec::new(),
            },
            storage,
            commit,
            applying: applied,
            applied,
        })
    }

    /// First index with an entry.
    pub(crate) fn first_index(&self) -> Index {
        match &self.unstable.snapshot {
            Some(s) => s.meta.index + 1,
            None => self.storage.first_index(),
        }
    }

    /// Last index (the snapshot's if the log is empty).
    pub(crate) fn last_index(&self) -> Index {
        // Index 0 is the empty log's compaction point: entries start at 1.
        debug_assert!(self.unstable.offset >= 1);
        self.unstable.offset + self.unstable.entries.len() as Index - 1
    }

    /// Term of the entry at `index` (works for the compaction point).
    pub(crate) fn term(&self, index: Index) -> Result<Term, StorageError> {
        if let Some(s) = &self.unstable.snapshot {
            if index == s.meta.index {
                return Ok(s.meta.term);
            }
            if index < s.meta.index {
                return Err(StorageError::Compacted(index));
            }
        }
        if index >= self.unstable.offset {
            return self
                .unstable
                .entries
                .get((index - self.unstable.offset) as usize)
                .map(|e| e.term)
                .ok_or(StorageError::Unavailable(index));
        }
        self.storage.term(index)
    }

    /// Term of the last entry.
    pub(crate) fn last_term(&self) -> Term {
        // The last index is always in the log or is the compaction point.
        self.term(self.last_index()).unwrap_or(0)
    }

    /// Whether the log holds an entry at `index` with `term`.
    pub(crate) fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Ok(term)
    }

    /// Entries `lo..hi`.
    pub(crate) fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError> {
        if lo < self.first_index() {
            return Err(StorageError::Compacted(lo));
        }
        if hi > self.last_index() + 1 {
            return Err(StorageError::Unavailable(hi - 1));
        }
        let off = self.unstable.offset;
        let mut out = if lo < off {
            self.storage.entries(lo, hi.min(off))?
        } else {
            Vec::new()
        };
        if hi > off {
            let a = (lo.max(off) - off) as usize;
            let b = (hi - off) as usize;
            out.extend_from_slice(&self.unstable.entries[a..b]);
        }
        // What storage handed back (read from its disk) joins the unstable tail
        // seamlessly: exactly `lo..hi`, one index after another.
        debug_assert!(out
            .iter()
            .enumerate()
            .all(|(k, e)| e.index == lo + k as Index));
        debug_assert_eq!(out.len() as Index, hi.saturating_sub(lo));
        Ok(out)
    }

    /// Appends `entries`, replacing every entry at index ≥ `entries[0].index`. The
    /// caller has checked they attach to the log and do not touch committed entries.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        // The caller's checks, asserted where the log changes: the entries attach to
        // the log (no gap), replace nothing committed, follow one another and never
        // lower the term at the attachment point (`MemStorage::append` and the
        // follower's `Message::validate` refuse the same, with typed errors).
        assert!(
            first.index <= self.last_index() + 1,
            "append at {} leaves a gap after {}",
            first.index,
            self.last_index()
        );
        assert!(
            first.index > self.commit,
            "append at {} rewrites committed entries (commit {})",
            first.index,
            self.commit
        );
        debug_assert!(entries
            .windows(2)
            .all(|w| w[1].index == w[0].index + 1 && w[1].term >= w[0].term));
        debug_assert!(self
            .term(first.index - 1)
            .map_or(true, |prev| prev <= first.term));
        let u = &mut self.unstable;
        let end = u.offset + u.entries.len() as Index;
        if first.index == end {
            u.entries.extend_from_slice(entries);
        } else if first.index <= u.offset {
            // Truncation into (or right at the start of) the persisted part: the
            // storage tail from here on is shadowed until these are persisted.
            u.offset = first.index;
            u.entries = entries.to_vec();
        } else {
            u.entries.truncate((first.index - u.offset) as usize);
            u.entries.extend_from_slice(entries);
        }
    }

    /// The first entry of `entries` the log does not already hold (by index and
    /// term), if any (§5.3: "if an existing entry conflicts with a new one…").
    pub(crate) fn find_conflict(&self, entries: &[Entry]) -> Option<Index> {
        entries
            .iter()
            .find(|e| !self.matches(e.index, e.term))
            .map(|e| e.index)
    }

    /// Replaces the log with a snapshot from the leader (§7).
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        // A snapshot holds committed entries only; restoring an older one would lower
        // the commit index.
        assert!(
            snapshot.meta.index > self.commit,
            "snapshot at {} does not pass commit {}",
            snapshot.meta.index,
            self.commit
        );
        self.commit = snapshot.meta.index;
        self.unstable.offset = snapshot.meta.index + 1;
        self.unstable.entries.clear();
        self.unstable.snapshot = Some(snapshot);
    }

    /// Raises the commit index (never lowers it).
    pub(crate) fn commit_to(&mut self, index: Index) {
        if index > self.commit {
            debug_assert!(index <= self.last_index(), "commit beyond the log");
            self.commit = index.min(self.last_index());
        }
    }

    pub(crate) fn unstable_entries(&self) -> &[Entry] {
        &self.unstable.entries
    }

    pub(crate) fn unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.snapshot.as_ref()
    }

    /// Entries up to `(index, term)` were persisted: drop them from the unstable tail
    /// unless a truncation replaced them meanwhile.
    pub(crate) fn stable_to(&mut self, index: Index, term: Term) {
        let u = &mut self.unstable;
        if index < u.offset {
            return;
        }
        let pos = (index - u.offset) as usize;
        if u.entries.get(pos).is_some_and(|e| e.term == term) {
            u.entries.drain(..=pos);
            u.offset = index + 1;
        }
    }

    /// The snapshot at `index` was persisted.
    pub(crate) fn stable_snapshot_to(&mut self, index: Index) {
        if self
            .unstable
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index == index)
        {
            self.unstable.snapshot = None;
        }
    }

    /// Checks the log's structural invariants.
    pub(crate) fn verify(&self, node_term: Term) -> Result<(), String> {
        let u = &self.unstable;
        let last = self.last_index();
        if self.commit > last {
            return Err(format!("commit {} > last index {last}", self.commit));
        }
        if self.applied > self.applying || self.applying > self.commit {
            return Err(format!(
                "need applied {} ≤ applying {} ≤ commit {}",
                self.applied, self.applying, self.commit
            ));
        }
        if self.commit + 1 < self.first_index() {
            return Err(format!(
                "compacted through {} but committed only {}",
                self.first_index() - 1,
                self.commit
            ));
        }
        match &u.snapshot {
            Some(s) if u.offset != s.meta.index + 1 => {
                return Err("unstable entries do not follow the unstable snapshot".into())
            }
            None if u.offset > self.storage.last_index() + 1 => {
                return Err(format!(
                    "gap between storage (last {}) and unstable entries (from {})",
                    self.storage.last_index(),
                    u.offset
                ))
            }
            _ => {}
        }
        let mut prev = self
            .term(u.offset - 1)
            .map_err(|e| format!("term before unstable: {e}"))?;
        for (k, e) in u.entries.iter().enumerate() {
            if e.index != u.offset + k as Index {
                return Err(format!("unstable entry {k} has index {}", e.index));
            }
            if e.term < prev || e.term > node_term {
                return Err(format!(
                    "entry {}@{} after term {prev} (node term {node_term})",
                    e.index, e.term
                ));
            }
            prev = e.term;
        }
        if self.last_term() > node_term {
            return Err(format!(
                "last term {} > node term {node_term}",
                self.last_term()
            ));
        }
        Ok(())
    }
}
