//! Write-ahead log with group commit.
//!
//! ## Format
//! One file per segment, `wal-<seq:016>.log`, a sequence of records:
//!
//! ```text
//! +-----------+-----------+---------------------------+
//! | len: u32  | crc: u32  | payload: len bytes        |
//! +-----------+-----------+---------------------------+
//! ```
//! `crc` is CRC32C of `len` (little-endian bytes) followed by the payload, so a torn
//! length is caught as well as a torn payload. Lengths above [`MAX_RECORD_BYTES`] are
//! invalid.
//!
//! ## Group commit
//! Committers hand their record to the log's writer task and wait. The writer takes
//! everything queued, appends it with one write, issues one `sync_data`, and answers
//! every waiter: many transactions, one fsync.
//!
//! ## Recovery
//! [`Wal::recover`] reads a segment from the start and keeps records while they are
//! complete and their checksum holds; the first bad record ends the log. The tail after
//! it — torn by a power loss — is cut off (`set_len` + `sync_data`) before anything new
//! is appended, so a later record can never sit behind garbage.
//!
//! ## Failure
//! A failed write or fsync poisons the log: the failing batch and every later append get
//! [`WalError::Poisoned`]; the database must be reopened (fail-stop). Linux may drop the
//! dirty pages of a failed fsync, so a retried fsync could "succeed" without the data.
//!
//! Spec: `specs/WAL.tla` — actions Append (`Wal::append`), GroupCommit (`writer_loop`),
//! Crash (sim-fs), Recover (`Wal::recover`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Largest record the log accepts (and believes on recovery).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of framing per record.
pub const HEADER_BYTES: usize = 8;

/// WAL errors.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WalError {
    /// An I/O error; the log is poisoned from now on.
    #[error("wal i/o error on {path}: {message}")]
    Io { path: String, message: String },
    /// An earlier write or fsync failed; reopen the database.
    #[error("wal poisoned by an earlier failure (fail-stop): {0}")]
    Poisoned(String),
    /// A record larger than [`MAX_RECORD_BYTES`].
    #[error("wal record of {0} bytes exceeds the maximum")]
    TooLarge(usize),
    /// The log's writer task is gone (the node is shutting down or crashed).
    #[error("wal writer stopped")]
    Stopped,
}

fn io_err(path: &Path, e: std::io::Error) -> WalError {
    WalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Frames `payload` as one record.
pub fn encode_record(payload: &[u8]) -> Result<Vec<u8>, WalError> {
    if payload.len() > MAX_RECORD_BYTES {
        return Err(WalError::TooLarge(payload.len()));
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32c::crc32c(&len);
    crc = crc32c::crc32c_append(crc, payload);
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// The valid records of a segment image, and the byte offset where they end.
pub fn decode_records(bytes: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while let Some(header) = bytes.get(offset..offset + HEADER_BYTES) {
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD_BYTES {
            break;
        }
        let start = offset + HEADER_BYTES;
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        if crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        offset = start + len;
    }
    (records, offset as u64)
}

/// The path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016}.log"))
}

/// What recovery found in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut off after the last valid record.
    pub cut_bytes: u64,
}

struct Request {
    record: Vec<u8>,
    done: oneshot::Sender<Result<(), WalError>>,
}

/// An open WAL segment accepting appends.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::UnboundedSender<Request>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("path", &self.path).finish()
    }
}

impl Wal {
    /// Reads the segment at `path` (if any), cuts its torn tail durably, and returns its
    /// valid records. Does not open it for appending.
    pub async fn recover(path: &Path) -> Result<Recovered, WalError> {
        if !sim_fs::exists(path).await.map_err(|e| io_err(path, e))? {
            return Ok(Recovered {
                records: Vec::new(),
                cut_bytes: 0,
            });
        }
        let bytes = sim_fs::read(path).await.map_err(|e| io_err(path, e))?;
        let (records, valid_end) = decode_records(&bytes);
        let cut_bytes = bytes.len() as u64 - valid_end;
        if cut_bytes > 0 && !crate::canary::enabled(crate::canary::Canary::KeepTornWalTail) {
            let file = sim_fs::File::open(path).await.map_err(|e| io_err(path, e))?;
            file.set_len(valid_end).await.map_err(|e| io_err(path, e))?;
            file.sync_all().await.map_err(|e| io_err(path, e))?;
            tracing::info!(path = %path.display(), cut_bytes, "cut torn wal tail");
        }
        Ok(Recovered { records, cut_bytes })
    }

    /// Opens (creating if needed) the segment at `path` for appending, after
    /// [`Wal::recover`] has cut any torn tail. Creating the file syncs its directory.
    pub async fn open(path: &Path) -> Result<Wal, WalError> {
        let existed = sim_fs::exists(path).await.map_err(|e| io_err(path, e))?;
        let file = sim_fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(path)
            .await
            .map_err(|e| io_err(path, e))?;
        if !existed {
            if let Some(dir) = path.parent() {
                sim_fs::sync_dir(dir).await.map_err(|e| io_err(path, e))?;
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let path = Arc::new(path.to_path_buf());
        sim_runtime::task::spawn_named("wal.writer", writer_loop(file, path.clone(), rx));
        Ok(Wal { tx, path })
    }

    /// Appends `payload` durably: returns once an fsync covering it has returned.
    pub async fn append(&self, payload: &[u8]) -> Result<(), WalError> {
        let record = encode_record(payload)?;
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { record, done })
            .map_err(|_| WalError::Stopped)?;
        wait.await.map_err(|_| WalError::Stopped)?
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The group-commit loop: one write and one fsync per batch of queued records.
async fn writer_loop(
    file: sim_fs::File,
    path: Arc<PathBuf>,
    mut rx: mpsc::UnboundedReceiver<Request>,
) {
    let mut poisoned: Option<String> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        if let Some(reason) = &poisoned {
            for req in batch {
                let _ = req.done.send(Err(WalError::Poisoned(reason.clone())));
            }
            continue;
        }
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.record.len()).sum());
        for req in &batch {
            buf.extend_from_slice(&req.record);
        }
        let result = async {
            file.append(&buf).await.map_err(|e| io_err(&path, e))?;
            if !crate::canary::enabled(crate::canary::Canary::SkipWalFsync) {
                file.sync_data().await.map_err(|e| io_err(&path, e))?;
            }
            Ok::<(), WalError>(())
        }
        .await;
        if let Err(e) = &result {
            // Fail-stop: never retry an fsync and carry on (the kernel may have dropped
            // the dirty pages it failed to write).
            poisoned = Some(e.to_string());
            tracing::error!(path = %path.display(), error = %e, "wal poisoned");
        }
        for req in batch {
            let _ = req.done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_stop_at_damage() {
        let mut log = Vec::new();
        for i in 0..5u8 {
            log.extend(encode_record(&vec![i; 100 + usize::from(i)]).unwrap());
        }
        let (recs, end) = decode_records(&log);
        assert_eq!(recs.len(), 5);
        assert_eq!(end, log.len() as u64);
        // Torn: any strict prefix of the last record ends the log at record 4.
        let four_end = decode_records(&log[..log.len() - 104 - HEADER_BYTES]).1;
        for cut in four_end as usize..log.len() {
            let (r, e) = decode_records(&log[..cut]);
            assert_eq!(r.len(), 4, "cut at {cut}");
            assert_eq!(e, four_end);
        }
        // A flipped bit anywhere in record 2 ends the log after record 1.
        let two_start = decode_records(&log).0[..2]
            .iter()
            .map(|r| r.len() + HEADER_BYTES)
            .sum::<usize>();
        for bit in [0, 3, 4, 7, 8, 50] {
            let mut damaged = log.clone();
            damaged[two_start + bit] ^= 0x10;
            assert_eq!(decode_records(&damaged).0.len(), 2, "flip at +{bit}");
        }
        // A huge length is rejected without reading past the buffer.
        let mut huge = Vec::new();
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend([0u8; 4]);
        assert_eq!(decode_records(&huge), (vec![], 0));
    }
}
