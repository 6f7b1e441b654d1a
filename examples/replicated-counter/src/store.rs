//! The node's durable log: fixed-size checksummed records, appended and fsynced in
//! batches, recovered and compacted at every start.
//!
//! ## Record (32 bytes, little-endian)
//! `magic u32 | crc32c u32 of the 24 bytes after it | count u64 | client u64 | seq u64`.
//! `count` is the node's own increment total after this record; `(client, seq)` is the
//! client operation the record applied. Records start at multiples of 32 bytes, so one
//! never straddles a 512-byte sector.
//!
//! ## Durability protocol
//! - **Files**: `<dir>/<name>.log` and, during compaction, `<dir>/<name>.tmp`. `dir` must
//!   already exist durably; the store never creates directories (see below).
//! - **Append**: a batch of records is written at the end of the log in one write;
//!   only after `sync_data` returns Ok is the batch durable, and only then may the node
//!   acknowledge it (`ack-before-fsync` breaks exactly this).
//! - **Any I/O error is fatal** (fail-stop): after a failed `sync_data` the kernel may
//!   have dropped the dirty pages and a retried sync would "succeed" without them
//!   ("fsyncgate"). The node stops; the next start recovers.
//! - **Recovery** keeps the longest prefix of valid records (a torn or garbage tail is
//!   cut), then **compacts**: it writes the recovered state to the `.tmp` file, syncs
//!   it, renames it over the log and syncs the directory. Rewriting matters: after a
//!   failed fsync the page cache may still show records — or a directory entry — that
//!   are not on disk, and a fresh write (or rename) plus a successful sync is the only
//!   way to make what the process read durable.
//!
//! ## Found by the simulator
//! The first version kept each node's log in its own subdirectory, created at start
//! with `create_dir_all` and made durable by syncing the parent. With fsyncs failing,
//! the harness found (seed 27 of `failing_fsyncs_stop_the_node_and_lose_nothing`) a
//! node that acknowledged 41 increments and came back from a power loss with 9: the
//! parent's sync had failed at the very first start, which dropped the pending
//! `mkdir` (fsyncgate for directories); the next start found the directory in the page
//! cache, synced the parent again — successfully, with nothing pending — and the
//! directory was never durable. Syncing again cannot repair a dropped directory
//! operation, and sim-fs cannot rename directories, so the store now lives in a
//! directory that exists durably before the node starts, and its only namespace
//! operation, the compaction's rename, is issued afresh at every start.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

const MAGIC: u32 = 0x4354_5231; // "CTR1"
/// Bytes per record.
pub const RECORD_LEN: usize = 32;

/// One applied increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The node's own total after this increment.
    pub count: u64,
    /// The client that asked for it.
    pub client: u64,
    /// The client's sequence number of the operation.
    pub seq: u64,
}

impl Record {
    /// The record's 32 bytes.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[8..16].copy_from_slice(&self.count.to_le_bytes());
        out[16..24].copy_from_slice(&self.client.to_le_bytes());
        out[24..32].copy_from_slice(&self.seq.to_le_bytes());
        let crc = crc32c::crc32c(&out[8..]);
        out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a record; `None` if the magic or checksum is wrong.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let bytes: &[u8; RECORD_LEN] = bytes.try_into().ok()?;
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let magic = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if magic != MAGIC || crc != crc32c::crc32c(&bytes[8..]) {
            return None;
        }
        Some(Record {
            count: word(8),
            client: word(16),
            seq: word(24),
        })
    }
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The node's own increment total.
    pub count: u64,
    /// Per client, the highest sequence number applied.
    pub last_seq: BTreeMap<u64, u64>,
    /// Bytes cut from the end of the log (a torn or garbage tail).
    pub cut_bytes: u64,
}

/// Replays a log image: the longest prefix of valid records.
pub fn replay(bytes: &[u8]) -> Recovered {
    let mut state = Recovered::default();
    let mut valid = 0;
    for chunk in bytes.chunks(RECORD_LEN) {
        let Some(r) = Record::decode(chunk) else {
            break;
        };
        state.count = state.count.max(r.count);
        let seq = state.last_seq.entry(r.client).or_insert(0);
        *seq = (*seq).max(r.seq);
        valid += chunk.len();
    }
    state.cut_bytes = (bytes.len() - valid) as u64;
    sim_runtime::cover!("counter.recovery_cuts_a_torn_tail", state.cut_bytes > 0);
    state
}

/// The open log of one node.
#[derive(Debug)]
pub struct Store {
    file: sim_fs::File,
    /// Bytes written but not yet synced.
    dirty: bool,
}

impl Store {
    /// Opens the log `<dir>/<name>.log` (`dir` must exist), recovers it and compacts
    /// it. Every error is fatal for this start of the node.
    pub async fn open(dir: &Path, name: &str) -> io::Result<(Store, Recovered)> {
        let log = dir.join(format!("{name}.log"));
        let recovered = if sim_fs::exists(&log).await? {
            replay(&sim_fs::read(&log).await?)
        } else {
            Recovered::default()
        };
        // Compact: the recovered state, freshly written and synced, replaces the log.
        let tmp = dir.join(format!("{name}.tmp"));
        let file = sim_fs::File::create(&tmp).await?;
        file.write_all_at(&encode_state(&recovered), 0).await?;
        file.sync_data().await?;
        drop(file);
        sim_fs::rename(&tmp, &log).await?;
        sim_fs::sync_dir(dir).await?;
        let file = sim_fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log)
            .await?;
        Ok((Store { file, dirty: false }, recovered))
    }

    /// Writes `records` at the end of the log, in one write, NOT synced.
    pub async fn append(&mut self, records: &[Record]) -> io::Result<()> {
        let bytes: Vec<u8> = records.iter().flat_map(|r| r.encode()).collect();
        self.dirty = true;
        self.file.append(&bytes).await.map(|_| ())
    }

    /// Makes everything appended so far durable. An error is fatal: stop the node.
    pub async fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().await?;
        self.dirty = false;
        Ok(())
    }

    /// Whether there are appended bytes not yet synced.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

/// The compacted image of a recovered state: one record per client (with the total),
/// or one record with client 0 when there are none.
fn encode_state(state: &Recovered) -> Vec<u8> {
    let mut records: Vec<Record> = state
        .last_seq
        .iter()
        .map(|(client, seq)| Record {
            count: state.count,
            client: *client,
            seq: *seq,
        })
        .collect();
    if records.is_empty() {
        records.push(Record {
            count: state.count,
            client: 0,
            seq: 0,
        });
    }
    records.iter().flat_map(|r| r.encode()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_any_flipped_bit() {
        let r = Record {
            count: 42,
            client: 101,
            seq: 7,
        };
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes), Some(r));
        for bit in 0..RECORD_LEN * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Record::decode(&bad), None, "bit {bit}");
        }
    }

    #[test]
    fn replay_keeps_the_valid_prefix_and_cuts_a_torn_tail() {
        let recs: Vec<Record> = (1..=3)
            .map(|i| Record {
                count: i,
                client: 100 + i % 2,
                seq: i,
            })
            .collect();
        let mut bytes: Vec<u8> = recs.iter().flat_map(|r| r.encode()).collect();
        bytes.extend_from_slice(&[0xAB; 20]); // torn, garbage
        let state = replay(&bytes);
        assert_eq!(state.count, 3);
        assert_eq!(state.last_seq, BTreeMap::from([(100, 2), (101, 3)]));
        assert_eq!(state.cut_bytes, 20);
        // A corrupt record in the middle ends the prefix there.
        bytes[RECORD_LEN + 9] ^= 1;
        assert_eq!(replay(&bytes).count, 1);
        assert_eq!(replay(&[]), Recovered::default());
        // The compacted image replays to the same state.
        let state = replay(&recs.iter().flat_map(|r| r.encode()).collect::<Vec<_>>());
        let again = replay(&encode_state(&state));
        assert_eq!(
            (again.count, again.last_seq.clone()),
            (state.count, state.last_seq)
        );
    }
}
