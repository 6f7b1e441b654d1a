//! The manifest: which tables make up the tree, and the log position they cover.
//!
//! ## Format
//! A manifest file `MANIFEST-<n>` is a sequence of framed records ([`crate::framing`]:
//! length, CRC32C, payload); each payload is one [`Edit`], a list of [`Change`]s applied
//! atomically. The first record is a snapshot of the whole state; later records are the
//! edits of flushes and compactions, each appended and `sync_data`ed before the store
//! acts on it.
//!
//! `CURRENT` names the live manifest: `MANIFEST-<n>\n<crc32c of that line, hex>\n`. It
//! is replaced atomically: write `CURRENT.tmp`, sync it, rename over `CURRENT`,
//! `sync_dir`. Every open writes a fresh manifest (snapshot of the recovered state),
//! installs it, and deletes the old one, so a manifest is never appended to after a
//! crash.
//!
//! ## Recovery
//! [`recover`] reads `CURRENT`, then the manifest it names, and replays the edits. Only
//! the last record can be legitimately incomplete (a crash while appending it, before
//! its sync returned, so nothing acted on it): it is ignored. Damage anywhere else —
//! a bad first record, or a valid record after a bad one — is
//! [`LsmError::Corruption`](super::LsmError::Corruption). Files the manifest does not name are not part of the
//! tree; the store deletes them.
//!
//! ## Invariant
//! A file is deleted only after a durable manifest edit stops naming it (canary
//! [`crate::canary::Canary::DeleteBeforeManifest`] breaks this on purpose).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::codec::{put_bytes, put_u64, Cursor};
use super::error::{corrupt, io, Result};
use super::sstable::TableMeta;
use crate::framing::{decode_records, encode_record, valid_record_after};
use crate::kv::Timestamp;

/// Name of the pointer file.
pub const CURRENT: &str = "CURRENT";
const CURRENT_TMP: &str = "CURRENT.tmp";

/// The path of manifest `number` in `dir`.
pub fn manifest_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("MANIFEST-{number:016}"))
}

/// One change to the tree's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A table joins `level`.
    AddTable {
        /// The level (0 = newest, overlapping tables).
        level: u8,
        /// The table.
        meta: TableMeta,
    },
    /// Table `number` leaves `level`.
    RemoveTable {
        /// The level it was in.
        level: u8,
        /// Its file number.
        number: u64,
    },
    /// WAL segments numbered below this hold nothing the tables lack.
    LogNumber(u64),
    /// File numbers at and above this are unused.
    NextFile(u64),
    /// Every commit with ts ≤ this is in the tables.
    LastTs(Timestamp),
}

/// Changes applied together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Edit(pub Vec<Change>);

const ADD: u8 = 1;
const REMOVE: u8 = 2;
const LOG: u8 = 3;
const NEXT: u8 = 4;
const LAST: u8 = 5;

impl Edit {
    /// The record payload.
    pub fn encode(&self) -> Vec<u8> {
        // `Edit::decode` refuses an empty edit: a manifest holding one would not reopen.
        assert!(!self.0.is_empty(), "an empty manifest edit");
        let mut out = Vec::new();
        for c in &self.0 {
            match c {
                Change::AddTable { level, meta } => {
                    // The pair of `ManifestState::apply`'s "impossible description".
                    assert!(
                        meta.smallest <= meta.largest
                            && meta.entries > 0
                            && meta.min_ts <= meta.max_ts,
                        "table {} described impossibly",
                        meta.number
                    );
                    out.push(ADD);
                    out.push(*level);
                    put_u64(&mut out, meta.number);
                    put_u64(&mut out, meta.size);
                    put_bytes(&mut out, &meta.smallest);
                    put_bytes(&mut out, &meta.largest);
                    put_u64(&mut out, meta.min_ts.0);
                    put_u64(&mut out, meta.max_ts.0);
                    put_u64(&mut out, meta.entries);
                }
                Change::RemoveTable { level, number } => {
                    out.push(REMOVE);
                    out.push(*level);
                    put_u64(&mut out, *number);
                }
                Change::LogNumber(n) => {
                    out.push(LOG);
                    put_u64(&mut out, *n);
                }
                Change::NextFile(n) => {
                    out.push(NEXT);
                    put_u64(&mut out, *n);
                }
                Change::LastTs(ts) => {
                    out.push(LAST);
                    put_u64(&mut out, ts.0);
                }
            }
        }
        debug_assert_eq!(
            Edit::decode(&out).as_ref(),
            Ok(self),
            "an edit must decode to itself"
        );
        out
    }

    /// Decodes [`Edit::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Edit, String> {
        let mut c = Cursor::new(bytes);
        let mut changes = Vec::new();
        let bad = || "edit truncated".to_string();
        while !c.is_done() {
            let tag = c.u8().ok_or_else(bad)?;
            changes.push(match tag {
                ADD => {
                    let level = c.u8().ok_or_else(bad)?;
                    let meta = TableMeta {
                        number: c.u64().ok_or_else(bad)?,
                        size: c.u64().ok_or_else(bad)?,
                        smallest: c.bytes().ok_or_else(bad)?.to_vec(),
                        largest: c.bytes().ok_or_else(bad)?.to_vec(),
                        min_ts: Timestamp(c.u64().ok_or_else(bad)?),
                        max_ts: Timestamp(c.u64().ok_or_else(bad)?),
                        entries: c.u64().ok_or_else(bad)?,
                    };
                    Change::AddTable { level, meta }
                }
                REMOVE => Change::RemoveTable {
                    level: c.u8().ok_or_else(bad)?,
                    number: c.u64().ok_or_else(bad)?,
                },
                LOG => Change::LogNumber(c.u64().ok_or_else(bad)?),
                NEXT => Change::NextFile(c.u64().ok_or_else(bad)?),
                LAST => Change::LastTs(Timestamp(c.u64().ok_or_else(bad)?)),
                t => return Err(format!("unknown change tag {t}")),
            });
        }
        if changes.is_empty() {
            return Err("empty edit".into());
        }
        Ok(Edit(changes))
    }
}

/// The tree as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestState {
    /// Per level, its tables by file number.
    pub levels: Vec<BTreeMap<u64, TableMeta>>,
    /// The first WAL segment recovery must replay.
    pub log_number: u64,
    /// The next unused file number.
    pub next_file: u64,
    /// Every commit with ts ≤ this is in the tables.
    pub last_ts: Timestamp,
}

impl ManifestState {
    /// An empty tree with `levels` levels.
    pub fn new(levels: usize) -> ManifestState {
        ManifestState {
            levels: vec![BTreeMap::new(); levels],
            log_number: 0,
            next_file: 1,
            last_ts: Timestamp::ZERO,
        }
    }

    /// Applies `edit`; an edit that does not fit the state (a level out of range, a
    /// table added twice or removed while absent, a number going backwards) is an error.
    pub fn apply(&mut self, edit: &Edit) -> std::result::Result<(), String> {
        for c in &edit.0 {
            match c {
                Change::AddTable { level, meta } => {
                    let l = self
                        .levels
                        .get_mut(*level as usize)
                        .ok_or(format!("level {level} out of range"))?;
                    if meta.smallest > meta.largest
                        || meta.entries == 0
                        || meta.min_ts > meta.max_ts
                    {
                        return Err(format!(
                            "table {} has an impossible description",
                            meta.number
                        ));
                    }
                    if l.insert(meta.number, meta.clone()).is_some() {
                        return Err(format!("table {} added twice", meta.number));
                    }
                }
                Change::RemoveTable { level, number } => {
                    let l = self
                        .levels
                        .get_mut(*level as usize)
                        .ok_or(format!("level {level} out of range"))?;
                    l.remove(number)
                        .ok_or(format!("removing absent table {number} from level {level}"))?;
                }
                Change::LogNumber(n) if *n >= self.log_number => self.log_number = *n,
                Change::NextFile(n) if *n >= self.next_file => self.next_file = *n,
                Change::LastTs(ts) if *ts >= self.last_ts => self.last_ts = *ts,
                c => return Err(format!("{c:?} goes backwards")),
            }
        }
        Ok(())
    }

    /// One edit that rebuilds this state from an empty one.
    pub fn snapshot(&self) -> Edit {
        let mut changes = Vec::new();
        for (level, tables) in self.levels.iter().enumerate() {
            for meta in tables.values() {
                changes.push(Change::AddTable {
                    level: level as u8,
                    meta: meta.clone(),
                });
            }
        }
        changes.push(Change::LogNumber(self.log_number));
        changes.push(Change::NextFile(self.next_file));
        changes.push(Change::LastTs(self.last_ts));
        Edit(changes)
    }

    /// Every table file number named, with its level.
    pub fn tables(&self) -> impl Iterator<Item = (usize, &TableMeta)> + '_ {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(l, t)| t.values().map(move |m| (l, m)))
    }
}

/// The text of `CURRENT` for manifest `number`.
fn current_text(number: u64) -> String {
    let line = format!("MANIFEST-{number:016}");
    let text = format!("{line}\n{:08x}\n", crc32c::crc32c(line.as_bytes()));
    // The pair of `parse_current`, which recovery runs on what this writes.
    debug_assert_eq!(parse_current(text.as_bytes()), Some(number));
    text
}

/// Parses `CURRENT`; `None` if it is not exactly what `current_text` writes.
pub fn parse_current(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (line, rest) = text.split_once('\n')?;
    let crc = rest.strip_suffix('\n')?;
    if u32::from_str_radix(crc, 16).ok()? != crc32c::crc32c(line.as_bytes()) || crc.len() != 8 {
        return None;
    }
    let digits = line.strip_prefix("MANIFEST-")?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Replays a manifest image. The last record may be incomplete (ignored); any other
/// damage is an error.
pub fn replay(path: &Path, bytes: &[u8], levels: usize) -> Result<ManifestState> {
    let (records, valid_end) = decode_records(bytes);
    if records.is_empty() {
        return Err(corrupt(path, "manifest has no valid snapshot record"));
    }
    if valid_record_after(bytes, valid_end) {
        return Err(corrupt(
            path,
            format!("damaged record at byte {valid_end} followed by valid ones"),
        ));
    }
    let mut state = ManifestState::new(levels);
    for (i, r) in records.iter().enumerate() {
        let edit = Edit::decode(r).map_err(|d| corrupt(path, format!("edit {i}: {d}")))?;
        state
            .apply(&edit)
            .map_err(|d| corrupt(path, format!("edit {i}: {d}")))?;
    }
    Ok(state)
}

/// Reads `CURRENT` and the manifest it names. `Ok(None)` when there is no `CURRENT`
/// (a new database). Returns the state and the manifest's number.
pub async fn recover(dir: &Path, levels: usize) -> Result<Option<(ManifestState, u64)>> {
    let cur = dir.join(CURRENT);
    let bytes = match sim_fs::read(&cur).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read CURRENT", &cur, e)),
    };
    let number = parse_current(&bytes).ok_or_else(|| corrupt(&cur, "CURRENT is malformed"))?;
    let path = manifest_path(dir, number);
    let bytes = match sim_fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(corrupt(&path, "the manifest CURRENT names does not exist"))
        }
        Err(e) => return Err(io("read manifest", &path, e)),
    };
    Ok(Some((replay(&path, &bytes, levels)?, number)))
}

/// An open manifest accepting edits.
#[derive(Debug)]
pub struct ManifestWriter {
    file: sim_fs::File,
    path: PathBuf,
}

impl ManifestWriter {
    /// Writes manifest `number` holding a snapshot of `state`, syncs it, and installs it
    /// as `CURRENT` (temp file, sync, rename, `sync_dir`). Does not delete older ones.
    pub async fn create(dir: &Path, number: u64, state: &ManifestState) -> Result<ManifestWriter> {
        let path = manifest_path(dir, number);
        let file = sim_fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io("create manifest", &path, e))?;
        let snapshot = state.snapshot();
        // The pair of `replay`: the snapshot rebuilds exactly this state.
        debug_assert!({
            let mut rebuilt = ManifestState::new(state.levels.len());
            rebuilt.apply(&snapshot).is_ok() && rebuilt == *state
        });
        let record = encode_record(&snapshot.encode())?;
        file.append(&record)
            .await
            .map_err(|e| io("write manifest", &path, e))?;
        file.sync_data()
            .await
            .map_err(|e| io("sync manifest", &path, e))?;
        // The manifest's own directory entry must be durable before CURRENT names it:
        // unsynced directory operations may be lost independently, so a durable rename
        // of CURRENT does not imply the earlier create survived.
        sim_fs::sync_dir(dir)
            .await
            .map_err(|e| io("sync_dir", dir, e))?;
        install_current(dir, number).await?;
        Ok(ManifestWriter { file, path })
    }

    /// Appends `edit` and syncs it: when this returns Ok the edit is durable.
    pub async fn append(&self, edit: &Edit) -> Result<()> {
        let record = encode_record(&edit.encode())?;
        self.file
            .append(&record)
            .await
            .map_err(|e| io("append manifest", &self.path, e))?;
        self.file
            .sync_data()
            .await
            .map_err(|e| io("sync manifest", &self.path, e))
    }
}

/// Points `CURRENT` at manifest `number`, durably and atomically.
pub async fn install_current(dir: &Path, number: u64) -> Result<()> {
    let tmp = dir.join(CURRENT_TMP);
    let f = sim_fs::File::create(&tmp)
        .await
        .map_err(|e| io("create CURRENT.tmp", &tmp, e))?;
    f.write_all_at(current_text(number).as_bytes(), 0)
        .await
        .map_err(|e| io("write CURRENT.tmp", &tmp, e))?;
    f.sync_all()
        .await
        .map_err(|e| io("sync CURRENT.tmp", &tmp, e))?;
    drop(f);
    let cur = dir.join(CURRENT);
    sim_fs::rename(&tmp, &cur)
        .await
        .map_err(|e| io("rename CURRENT", &cur, e))?;
    sim_fs::sync_dir(dir)
        .await
        .map_err(|e| io("sync_dir", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n: u64, lo: &str, hi: &str) -> TableMeta {
        TableMeta {
            number: n,
            size: 100 + n,
            smallest: lo.as_bytes().to_vec(),
            largest: hi.as_bytes().to_vec(),
            min_ts: Timestamp(1),
            max_ts: Timestamp(n),
            entries: 3,
        }
    }

    /// A manifest image of three edits, the states after each, and the byte offset where
    /// the last edit's record starts.
    pub(crate) fn sample() -> (Vec<u8>, Vec<ManifestState>, usize) {
        let mut s = ManifestState::new(4);
        s.apply(&Edit(vec![Change::LogNumber(2), Change::NextFile(3)]))
            .unwrap();
        let edits = [
            s.snapshot(),
            Edit(vec![
                Change::AddTable {
                    level: 0,
                    meta: meta(3, "a", "m"),
                },
                Change::LogNumber(4),
                Change::NextFile(5),
                Change::LastTs(Timestamp(10)),
            ]),
            Edit(vec![
                Change::AddTable {
                    level: 1,
                    meta: meta(5, "a", "m"),
                },
                Change::RemoveTable {
                    level: 0,
                    number: 3,
                },
                Change::NextFile(6),
            ]),
        ];
        let mut bytes = Vec::new();
        let mut states = Vec::new();
        let mut last_start = 0;
        let mut st = ManifestState::new(4);
        for e in &edits {
            last_start = bytes.len();
            bytes.extend(encode_record(&e.encode()).unwrap());
            st.apply(e).unwrap();
            states.push(st.clone());
        }
        (bytes, states, last_start)
    }

    #[test]
    fn edits_round_trip_and_replay() {
        let (bytes, states, _) = sample();
        let p = Path::new("m");
        assert_eq!(replay(p, &bytes, 4).unwrap(), states[2]);
        assert_eq!(states[2].tables().count(), 1);
        assert_eq!(states[2].log_number, 4);
        let snap = states[2].snapshot();
        assert_eq!(Edit::decode(&snap.encode()).unwrap(), snap);
        let mut again = ManifestState::new(4);
        again.apply(&snap).unwrap();
        assert_eq!(again, states[2]);
    }

    #[test]
    fn edits_that_do_not_fit_are_rejected() {
        let mut s = ManifestState::new(2);
        assert!(s
            .apply(&Edit(vec![Change::RemoveTable {
                level: 0,
                number: 9
            }]))
            .is_err());
        assert!(s
            .apply(&Edit(vec![Change::AddTable {
                level: 5,
                meta: meta(1, "a", "b")
            }]))
            .is_err());
        assert!(s
            .apply(&Edit(vec![Change::AddTable {
                level: 0,
                meta: meta(1, "z", "b")
            }]))
            .is_err());
        s.apply(&Edit(vec![Change::LogNumber(5)])).unwrap();
        assert!(s.apply(&Edit(vec![Change::LogNumber(4)])).is_err());
        assert!(Edit::decode(&[]).is_err());
        assert!(Edit::decode(&[99]).is_err());
        assert!(Edit::decode(&[LOG, 1, 2]).is_err());
    }

    #[test]
    fn every_byte_flip_is_an_error_or_drops_only_the_last_edit() {
        let (bytes, states, last_start) = sample();
        let (mut errors, mut cuts) = (0, 0);
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut d = bytes.clone();
                d[i] ^= bit;
                match replay(Path::new("m"), &d, 4) {
                    Err(e) => {
                        assert!(e.is_corruption(), "{e}");
                        errors += 1;
                    }
                    Ok(s) => {
                        assert!(
                            i >= last_start,
                            "flip at {i} in an earlier edit was accepted"
                        );
                        assert_eq!(s, states[1], "flip at {i} gave a state that never existed");
                        cuts += 1;
                    }
                }
            }
        }
        assert!(errors > 0 && cuts > 0, "{errors} errors, {cuts} cuts");
        // Torn: every strict prefix ending inside the last record drops just that edit.
        for cut in last_start..bytes.len() {
            assert_eq!(replay(Path::new("m"), &bytes[..cut], 4).unwrap(), states[1]);
        }
        // A manifest without its snapshot record is corrupt, not empty.
        assert!(replay(Path::new("m"), &bytes[..10], 4).is_err());
    }

    #[test]
    fn current_round_trip_and_every_flip_rejected() {
        let text = current_text(42);
        assert_eq!(parse_current(text.as_bytes()), Some(42));
        for i in 0..text.len() {
            for bit in [0x01u8, 0x02, 0x10, 0x80] {
                let mut d = text.clone().into_bytes();
                d[i] ^= bit;
                assert_eq!(parse_current(&d), None, "flip {bit:#x} at {i}");
            }
        }
        assert_eq!(parse_current(b""), None);
        assert_eq!(parse_current(&text.as_bytes()[..text.len() - 1]), None);
    }
}
