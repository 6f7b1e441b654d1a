//! The durable log of one node: one record per line, `crc32c(json) json\n`.
//!
//! Recovery keeps the longest valid prefix (a torn or lost unsynced tail is cut; a
//! record is only ever acknowledged after its fsync, so what is cut was never
//! promised). Every start rewrites the recovered state into a fresh file, fsyncs it,
//! renames it over the log and fsyncs the directory, so the next append never follows
//! garbage and the one namespace operation is made durable afresh by each start.

use crate::{State, Versioned};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The node granted `epoch` to node `to`.
    Promise { epoch: u64, to: u64 },
    /// Register `key` holds `v` (if newer than what it held).
    Reg { key: String, v: Versioned },
    /// Client `client`'s write `seq` was applied.
    Seen { client: u64, seq: u64 },
}

/// What a log holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The highest epoch granted, and to whom (`(0, 0)`: none).
    pub promised: (u64, u64),
    /// Registers and applied sequence numbers.
    pub state: State,
    /// Bytes cut from the end (a torn or garbage tail).
    pub cut_bytes: usize,
}

impl Recovered {
    /// Applies one record.
    pub fn apply(&mut self, r: &Record) {
        match r {
            Record::Promise { epoch, to } => {
                if *epoch > self.promised.0 {
                    self.promised = (*epoch, *to);
                }
            }
            Record::Reg { key, v } => {
                let mut one = State::default();
                one.regs.insert(key.clone(), *v);
                self.state.merge(&one);
            }
            Record::Seen { client, seq } => {
                let mut one = State::default();
                one.seen.insert(*client, *seq);
                self.state.merge(&one);
            }
        }
    }

    /// The records that rebuild this state.
    pub fn records(&self) -> Vec<Record> {
        let mut out = vec![Record::Promise {
            epoch: self.promised.0,
            to: self.promised.1,
        }];
        out.extend(state_records(&self.state));
        out
    }
}

/// The records of a state.
pub fn state_records(state: &State) -> Vec<Record> {
    let regs = state.regs.iter().map(|(key, v)| Record::Reg {
        key: key.clone(),
        v: *v,
    });
    let seen = state.seen.iter().map(|(c, s)| Record::Seen {
        client: *c,
        seq: *s,
    });
    regs.chain(seen).collect()
}

/// One record's line.
pub fn encode(r: &Record) -> Vec<u8> {
    let json = serde_json::to_string(r).unwrap_or_default();
    format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes())).into_bytes()
}

fn decode(line: &[u8]) -> Option<Record> {
    let text = std::str::from_utf8(line).ok()?;
    let (crc, json) = text.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc != crc32c::crc32c(json.as_bytes()) {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Replays a log's bytes: the valid prefix, up to the first bad or unterminated line.
pub fn replay(bytes: &[u8]) -> Recovered {
    let mut rec = Recovered::default();
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|b| *b == b'\n') {
        let Some(r) = decode(&bytes[at..at + nl]) else {
            break;
        };
        rec.apply(&r);
        at += nl + 1;
    }
    rec.cut_bytes = bytes.len() - at;
    rec
}

/// The open log of one node.
#[derive(Debug)]
pub struct Store {
    file: sim_fs::File,
}

impl Store {
    /// Opens `<dir>/<name>.log` (`dir` must exist), recovers and rewrites it. Every
    /// error is fatal for this start of the node.
    pub async fn open(dir: &Path, name: &str) -> io::Result<(Store, Recovered)> {
        let log = dir.join(format!("{name}.log"));
        let recovered = if sim_fs::exists(&log).await? {
            replay(&sim_fs::read(&log).await?)
        } else {
            Recovered::default()
        };
        let tmp = dir.join(format!("{name}.tmp"));
        let file = sim_fs::File::create(&tmp).await?;
        let bytes: Vec<u8> = recovered.records().iter().flat_map(encode).collect();
        file.write_all_at(&bytes, 0).await?;
        file.sync_data().await?;
        drop(file);
        sim_fs::rename(&tmp, &log).await?;
        sim_fs::sync_dir(dir).await?;
        let file = sim_fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log)
            .await?;
        Ok((Store { file }, recovered))
    }

    /// Appends `records` and fsyncs them. An error is fatal: stop the node.
    pub async fn put(&mut self, records: &[Record]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = records.iter().flat_map(encode).collect();
        self.file.append(&bytes).await?;
        self.file.sync_data().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(key: &str, epoch: u64, version: u64, value: i64) -> Record {
        Record::Reg {
            key: key.into(),
            v: Versioned {
                epoch,
                version,
                value,
            },
        }
    }

    #[test]
    fn replay_keeps_the_newest_register_and_cuts_a_torn_tail() {
        let mut bytes: Vec<u8> = [
            Record::Promise { epoch: 2, to: 3 },
            reg("a", 2, 2, 20),
            reg("a", 1, 9, 10), // older epoch: loses
            Record::Seen {
                client: 101,
                seq: 4,
            },
        ]
        .iter()
        .flat_map(encode)
        .collect();
        let whole = bytes.len();
        bytes.extend_from_slice(&encode(&reg("a", 3, 1, 30))[..10]); // torn
        let r = replay(&bytes);
        assert_eq!(r.promised, (2, 3));
        assert_eq!(r.state.regs["a"].value, 20);
        assert_eq!(r.state.seen[&101], 4);
        assert_eq!(r.cut_bytes, bytes.len() - whole);
    }

    #[test]
    fn a_flipped_bit_ends_the_valid_prefix() {
        let mut bytes = encode(&reg("a", 1, 1, 1));
        bytes.extend(encode(&reg("b", 1, 2, 2)));
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        let r = replay(&bytes);
        assert!(r.state.regs.contains_key("a"));
        assert!(!r.state.regs.contains_key("b"));
    }

    #[test]
    fn records_rebuild_the_state() {
        let mut r = Recovered::default();
        for rec in [Record::Promise { epoch: 4, to: 1 }, reg("k", 4, 1, 7)] {
            r.apply(&rec);
        }
        let bytes: Vec<u8> = r.records().iter().flat_map(encode).collect();
        assert_eq!(replay(&bytes).state, r.state);
        assert_eq!(replay(&bytes).promised, (4, 1));
    }
}
