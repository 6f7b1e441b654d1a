//! The durable Raft log and hard state of one node, in its `raft/` directory.
//!
//! ## Format
//! - `raft/log`: a sequence of CRC32C-framed records ([`crate::framing`]:
//!   length, checksum of length and payload, payload). The first record is
//!   [`LogRecord::Start`], the compaction point `(index, term)`; each later one is
//!   [`LogRecord::Entry`], with contiguous indices from `start + 1`.
//! - `raft/hardstate`: two 512-byte slots (one disk sector each), each holding one
//!   framed `(version, term, vote, commit)` record. A save writes the slot the older
//!   version occupies and syncs it; loading picks the valid slot with the higher
//!   version. A torn or lost write damages only the slot being written, whose content
//!   was already superseded, so the last saved state always survives. Opening writes
//!   the state it read (or the initial one) as a whole new file through
//!   `hardstate.tmp` + rename + directory sync, so the file exists under its name only
//!   with a valid slot, and is durable from then on.
//!
//! ## Protocol
//! - *Append* (persisting a Ready's entries): if the first new entry replaces stored
//!   ones, cut the file at that entry (`set_len`) and **sync the cut first**, so no
//!   later crash can resurrect entries past it; then write all new records with one
//!   write and `sync_data`.
//! - *Reset* (compaction, snapshot install): write `raft/log.tmp` with the new start
//!   and the entries kept, `sync_data`, rename it over `raft/log`, `sync_dir`. A crash
//!   leaves either the old or the new log, both valid.
//! - *Recovery*: keep records while they decode and have valid checksums (they must
//!   continue the index sequence); drop a torn tail. Only the last, unsynced write can
//!   be torn, so an intact record *after* a bad one means damage to durable data:
//!   [`NodeError::Corrupt`], never a silent cut. The valid prefix is then rewritten as
//!   a new log (as in *Reset*), so what the node goes on with is durable even if it
//!   was read from a page cache whose fsync had failed in a previous incarnation.
//!
//! ## Invariants
//! - The file holds exactly the persisted part of the Raft log (what `advance` moved
//!   into storage), and the hard-state file the last hard state saved: Figure 2's
//!   "persistent state on all servers", durable before anything depending on it is sent.
//! - A cut is durable before anything is written after it; a rewrite is complete and
//!   durable before it replaces the log.
//!
//! ## Fault model
//! Power loss with lost, torn (with or without garbage) and reordered unsynced writes,
//! lost unsynced directory operations. Every fsync error is returned (the node stops;
//! fail-stop) and never retried.
//!
//! ## Non-goals
//! - Segmented logs: compaction rewrites the (short) kept tail instead.
//! - Surviving damage to durable bytes (bit flips): detected and refused, not repaired.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::framing::{decode_records, encode_record, valid_record_after, HEADER_BYTES};
use crate::raft::{Entry, HardState, Index, NodeId, Term};
use crate::replicated::NodeError;

/// One record of `raft/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRecord {
    /// The compaction point: entries start after `(index, term)`.
    Start {
        /// Index of the last compacted entry (0: none).
        index: Index,
        /// Its term.
        term: Term,
    },
    /// A log entry.
    Entry(Entry),
}

fn frame(rec: &LogRecord) -> Result<Vec<u8>, NodeError> {
    let payload = postcard::to_allocvec(rec)
        .map_err(|e| NodeError::Config(format!("cannot encode a log record: {e}")))?;
    // The pair of `LogFile::open`'s decoding: the record reads back as written.
    debug_assert!(postcard::from_bytes::<LogRecord>(&payload).is_ok_and(|r| r == *rec));
    encode_record(&payload).map_err(|e| NodeError::Config(e.to_string()))
}

/// What recovery found in the log file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRecovery {
    /// Bytes of torn tail cut off.
    pub cut_bytes: u64,
}

/// The open log file.
#[derive(Debug)]
pub struct LogFile {
    dir: PathBuf,
    file: sim_fs::File,
    start: (Index, Term),
    /// Byte offset of each stored entry, in index order from `start.0 + 1`.
    offsets: Vec<u64>,
    /// Term of each stored entry.
    terms: Vec<Term>,
    /// End of the last valid record.
    end: u64,
}

impl LogFile {
    fn path(dir: &Path) -> PathBuf {
        dir.join("log")
    }

    /// Opens the log in `dir` (created empty if missing): the file, its entries, and
    /// what recovery cut.
    pub async fn open(dir: &Path) -> Result<(LogFile, Vec<Entry>, LogRecovery), NodeError> {
        let path = Self::path(dir);
        let exists = sim_fs::exists(&path)
            .await
            .map_err(|e| NodeError::io("stat", &path, e))?;
        if !exists {
            write_new(dir, (0, 0), &[]).await?;
        }
        let bytes = sim_fs::read(&path)
            .await
            .map_err(|e| NodeError::io("read", &path, e))?;
        let (records, valid) = decode_records(&bytes);
        let mut recs = records.iter().map(|r| postcard::from_bytes::<LogRecord>(r));
        let start = match recs.next() {
            Some(Ok(LogRecord::Start { index, term })) => (index, term),
            other => {
                return Err(NodeError::corrupt(
                    &path,
                    format!("no start record (found {other:?})"),
                ))
            }
        };
        let mut entries = Vec::new();
        let mut offsets = Vec::new();
        let mut terms = Vec::new();
        let mut offset = records.first().map_or(0, |r| frame_len(r.len()));
        for (rec, raw) in recs.zip(records.iter().skip(1)) {
            let entry = match rec {
                Ok(LogRecord::Entry(e)) => e,
                other => {
                    return Err(NodeError::corrupt(
                        &path,
                        format!("record at byte {offset} is not an entry: {other:?}"),
                    ))
                }
            };
            let expect = start.0 + entries.len() as Index + 1;
            let prev_term = terms.last().copied().unwrap_or(start.1);
            if entry.index != expect || entry.term < prev_term {
                return Err(NodeError::corrupt(
                    &path,
                    format!(
                        "entry {}@{} at byte {offset} does not follow {}@{prev_term}",
                        entry.index,
                        entry.term,
                        expect - 1
                    ),
                ));
            }
            offsets.push(offset);
            terms.push(entry.term);
            entries.push(entry);
            offset += frame_len(raw.len());
        }
        let mut recovery = LogRecovery::default();
        if valid < bytes.len() as u64 {
            if valid_record_after(&bytes, valid) {
                return Err(NodeError::corrupt(
                    &path,
                    format!("damaged record at byte {valid} followed by intact ones"),
                ));
            }
            recovery.cut_bytes = bytes.len() as u64 - valid;
            tracing::info!(path = %path.display(), cut = recovery.cut_bytes, "raft log: cutting a torn tail");
        }
        // Rewrite what was read (tmp + fsync + rename + dir sync) rather than trusting
        // it: it cuts a torn tail, and it makes durable anything read from the page
        // cache that a failed fsync of a previous incarnation left undurable.
        let (file, new_offsets, end) = write_new(dir, start, &entries).await?;
        debug_assert_eq!(new_offsets, offsets);
        let log = LogFile {
            dir: dir.to_path_buf(),
            file,
            start,
            offsets: new_offsets,
            terms,
            end,
        };
        Ok((log, entries, recovery))
    }

    /// The compaction point.
    pub fn start(&self) -> (Index, Term) {
        self.start
    }

    /// Index of the last stored entry (the compaction point if none).
    pub fn last_index(&self) -> Index {
        self.start.0 + self.offsets.len() as Index
    }

    /// Term of the stored entry at `index` (or of the compaction point).
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.start.0 {
            return Some(self.start.1);
        }
        let k = index.checked_sub(self.start.0 + 1)?;
        self.terms.get(usize::try_from(k).ok()?).copied()
    }

    /// Durably stores `entries`, replacing every stored entry at or after the first
    /// one's index (see the module doc). Entries at or before the compaction point are
    /// already covered and skipped.
    pub async fn append(&mut self, entries: &[Entry]) -> Result<(), NodeError> {
        let path = Self::path(&self.dir);
        let entries: Vec<&Entry> = entries.iter().filter(|e| e.index > self.start.0).collect();
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        if first > self.last_index() + 1 {
            return Err(NodeError::Config(format!(
                "append at {first} leaves a gap after {}",
                self.last_index()
            )));
        }
        // What `open` refuses to read back, never written: indexes one after another,
        // terms never falling (from the entry they follow on).
        debug_assert!(entries
            .windows(2)
            .all(|w| w[1].index == w[0].index + 1 && w[1].term >= w[0].term));
        debug_assert!(self
            .term(first - 1)
            .is_some_and(|prev| prev <= entries[0].term));
        if first <= self.last_index() {
            let keep = (first - self.start.0 - 1) as usize;
            let cut = self.offsets[keep];
            self.file
                .set_len(cut)
                .await
                .map_err(|e| NodeError::io("truncate", &path, e))?;
            self.file
                .sync_all()
                .await
                .map_err(|e| NodeError::io("sync", &path, e))?;
            self.offsets.truncate(keep);
            self.terms.truncate(keep);
            self.end = cut;
        }
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(entries.len());
        for e in &entries {
            offsets.push(self.end + buf.len() as u64);
            buf.extend(frame(&LogRecord::Entry((*e).clone()))?);
        }
        self.file
            .write_all_at(&buf, self.end)
            .await
            .map_err(|e| NodeError::io("write", &path, e))?;
        self.file
            .sync_data()
            .await
            .map_err(|e| NodeError::io("sync", &path, e))?;
        self.end += buf.len() as u64;
        self.offsets.extend(offsets);
        self.terms.extend(entries.iter().map(|e| e.term));
        debug_assert_eq!(self.offsets.len(), self.terms.len());
        debug_assert_eq!(Some(self.last_index()), entries.last().map(|e| e.index));
        Ok(())
    }

    /// Durably replaces the whole log with compaction point `start` and `entries`
    /// (which must follow it).
    pub async fn reset(
        &mut self,
        start: (Index, Term),
        entries: &[Entry],
    ) -> Result<(), NodeError> {
        let (file, offsets, end) = write_new(&self.dir, start, entries).await?;
        self.file = file;
        self.start = start;
        self.offsets = offsets;
        self.terms = entries.iter().map(|e| e.term).collect();
        self.end = end;
        Ok(())
    }
}

fn frame_len(payload: usize) -> u64 {
    (HEADER_BYTES + payload) as u64
}

/// Writes a complete log through `log.tmp` + rename; returns the open file, the entry
/// offsets and the end.
async fn write_new(
    dir: &Path,
    start: (Index, Term),
    entries: &[Entry],
) -> Result<(sim_fs::File, Vec<u64>, u64), NodeError> {
    let tmp = dir.join("log.tmp");
    let path = LogFile::path(dir);
    let mut buf = frame(&LogRecord::Start {
        index: start.0,
        term: start.1,
    })?;
    let mut offsets = Vec::with_capacity(entries.len());
    for (k, e) in entries.iter().enumerate() {
        if e.index != start.0 + k as Index + 1 {
            return Err(NodeError::Config(format!(
                "log reset: entry {} does not follow {}",
                e.index,
                start.0 + k as Index
            )));
        }
        offsets.push(buf.len() as u64);
        buf.extend(frame(&LogRecord::Entry(e.clone()))?);
    }
    let file = replace_durably(dir, &tmp, &path, &buf).await?;
    Ok((file, offsets, buf.len() as u64))
}

/// Writes `bytes` to `tmp`, syncs it, renames it over `path` and syncs `dir`: `path`
/// then names the complete new contents durably (a crash leaves the old file or the
/// new one). Returns `path` opened.
async fn replace_durably(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<sim_fs::File, NodeError> {
    let f = sim_fs::File::create(tmp)
        .await
        .map_err(|e| NodeError::io("create", tmp, e))?;
    f.write_all_at(bytes, 0)
        .await
        .map_err(|e| NodeError::io("write", tmp, e))?;
    f.sync_data()
        .await
        .map_err(|e| NodeError::io("sync", tmp, e))?;
    drop(f);
    sim_fs::rename(tmp, path)
        .await
        .map_err(|e| NodeError::io("rename", tmp, e))?;
    sim_fs::sync_dir(dir)
        .await
        .map_err(|e| NodeError::io("sync_dir", dir, e))?;
    sim_fs::File::open(path)
        .await
        .map_err(|e| NodeError::io("open", path, e))
}

/// Size of one hard-state slot (one disk sector).
const SLOT_BYTES: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct HardStateRecord {
    version: u64,
    term: Term,
    vote: Option<NodeId>,
    commit: Index,
}

/// The hard-state file (two alternating slots; see the module doc).
#[derive(Debug)]
pub struct HardStateFile {
    path: PathBuf,
    file: sim_fs::File,
    version: u64,
    state: HardState,
}

impl HardStateFile {
    /// Opens `dir/hardstate` (the initial state if it is missing).
    ///
    /// Whatever it read, it writes the file anew through `hardstate.tmp` (synced),
    /// a rename and a directory sync before the node may act on the state: the file
    /// only ever appears under its name holding a valid slot, so a missing file means
    /// a node that never saved anything, and an existing one without a valid slot is
    /// damage to durable bytes ([`NodeError::Corrupt`]). Rewriting on every open also
    /// makes the state durable even if an earlier incarnation's writes or syncs failed
    /// with the page cache kept (a fail-stop restart in the same process): a fresh
    /// rename is a fresh directory entry to sync. (Found by the runner's
    /// `bank-cluster` sweep: a failed first save left a file with no valid slot, which
    /// every restart then refused as corrupt; DECISIONS.md D20.)
    pub async fn open(dir: &Path) -> Result<HardStateFile, NodeError> {
        let path = dir.join("hardstate");
        let exists = sim_fs::exists(&path)
            .await
            .map_err(|e| NodeError::io("stat", &path, e))?;
        let (version, state) = if exists {
            let bytes = sim_fs::read(&path)
                .await
                .map_err(|e| NodeError::io("read", &path, e))?;
            let best = (0..2u64)
                .filter_map(|slot| {
                    let lo = usize::try_from(slot * SLOT_BYTES).ok()?;
                    let hi = bytes.len().min(lo + SLOT_BYTES as usize);
                    let (recs, _) = decode_records(bytes.get(lo..hi)?);
                    postcard::from_bytes::<HardStateRecord>(recs.first()?).ok()
                })
                .max_by_key(|r| r.version)
                .ok_or_else(|| NodeError::corrupt(&path, "no valid hard-state slot"))?;
            let state = HardState {
                term: best.term,
                vote: best.vote,
                commit: best.commit,
            };
            (best.version, state)
        } else {
            (0, HardState::default())
        };
        // Both slots hold the state (versions v+1 and v+2), so damage to either
        // leaves it readable, as before the rewrite.
        let mut bytes = vec![0u8; 2 * SLOT_BYTES as usize];
        let mut version = version;
        for _ in 0..2 {
            version = version
                .checked_add(1)
                .ok_or_else(|| NodeError::corrupt(&path, "hard-state version overflows"))?;
            let framed = slot_record(version, state)?;
            let at = ((version % 2) * SLOT_BYTES) as usize;
            bytes[at..at + framed.len()].copy_from_slice(&framed);
        }
        let file = replace_durably(dir, &dir.join("hardstate.tmp"), &path, &bytes).await?;
        Ok(HardStateFile {
            path,
            file,
            version,
            state,
        })
    }

    /// The last saved state.
    pub fn state(&self) -> HardState {
        self.state
    }

    /// Durably saves `hs`.
    pub async fn save(&mut self, hs: HardState) -> Result<(), NodeError> {
        // Figure 2's persistent state only moves forward: the term never falls, a vote
        // once cast is not changed within its term, the commit index never falls.
        let old = self.state;
        debug_assert!(hs.term >= old.term, "term {} after {}", hs.term, old.term);
        debug_assert!(
            hs.term > old.term || old.vote.is_none() || hs.vote == old.vote,
            "second vote in term {}",
            hs.term
        );
        debug_assert!(
            hs.commit >= old.commit,
            "commit {} after {}",
            hs.commit,
            old.commit
        );
        let version = self
            .version
            .checked_add(1)
            .ok_or_else(|| NodeError::corrupt(&self.path, "hard-state version overflows"))?;
        let framed = slot_record(version, hs)?;
        self.file
            .write_all_at(&framed, (version % 2) * SLOT_BYTES)
            .await
            .map_err(|e| NodeError::io("write", &self.path, e))?;
        self.file
            .sync_data()
            .await
            .map_err(|e| NodeError::io("sync", &self.path, e))?;
        self.version = version;
        self.state = hs;
        Ok(())
    }
}

/// One slot's framed record.
fn slot_record(version: u64, hs: HardState) -> Result<Vec<u8>, NodeError> {
    let rec = HardStateRecord {
        version,
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
    };
    let payload = postcard::to_allocvec(&rec)
        .map_err(|e| NodeError::Config(format!("cannot encode the hard state: {e}")))?;
    let framed = encode_record(&payload).map_err(|e| NodeError::Config(e.to_string()))?;
    if framed.len() as u64 > SLOT_BYTES {
        return Err(NodeError::Config(format!(
            "a hard-state record of {} bytes does not fit a {SLOT_BYTES}-byte slot",
            framed.len()
        )));
    }
    Ok(framed)
}
