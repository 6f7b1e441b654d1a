//! Write-ahead log with group commit.
//!
//! ## Format
//! One file per segment, `wal-<seq:016>.log`, a sequence of records in the engine's one
//! record framing, [`crate::framing`] (length, CRC32C, payload), shared with the
//! manifest and the Raft log file.
//!
//! ## Group commit
//! Committers queue their records and wait; a waiter that finds the log idle leads: it
//! writes everything queued with one write and one `sync_data` on its own task and
//! answers every waiter — many transactions, one fsync, and for a lone committer no
//! hand-off to another thread. See the private module `group`.
//!
//! ## Segments
//! The writer can switch to a new segment ([`Wal::rotate`]) in line with the appends:
//! every record submitted before the rotation is written and synced to the old segment
//! before the new one is created (and its directory entry synced), so the records of
//! all segments, read in segment order, are in submission order.
//!
//! ## Preallocation
//! An fdatasync that grows the file must also journal its new size; one that overwrites
//! allocated space need not (about 124 µs against 204 µs on the development VM). So the
//! writer keeps `preallocate` bytes of zeros written and synced ahead of its records:
//! when a batch would run past them, the same write carries the next stretch of zeros
//! (that batch's fsync pays for the size change, once per stretch). A zero header is not
//! a valid record (its checksum is not zero), so the zeros end the log like a torn tail
//! and recovery cuts them the same way. Rotation and close first cut the segment back to
//! its records (`set_len` + `sync_all`), so a fully synced segment never ends in zeros
//! and the strict rule for older segments below stands.
//!
//! ## Recovery
//! [`Wal::recover_segment`] reads a segment from the start and keeps records while they
//! are complete and their checksum holds. In the newest segment the first bad record ends
//! the log: the tail after it — torn by a power loss — is cut off (`set_len` +
//! `sync_all`) before anything new is appended, so a later record can never sit behind
//! garbage. Only the last, unsynced batch can be torn, so a valid record *after* a bad
//! one, or a bad record in an older (fully synced) segment, is damage to durable data:
//! [`WalError::Corrupt`], never a silent cut.
//!
//! ## Failure
//! A failed write or fsync poisons the log: the failing batch and every later append get
//! [`WalError::Poisoned`]; the database must be reopened (fail-stop). Linux may drop the
//! dirty pages of a failed fsync, so a retried fsync could "succeed" without the data.
//!
//! ## Ordering promise
//! Records are written, synced and acknowledged in submission order, and an `Ok` for a
//! record means every record submitted before it is durable too (an earlier failure
//! would have poisoned the log). The database's visibility watermark relies on this.
//!
//! Specified by `specs/WAL.tla` (actions Submit = `Wal::submit`; WriteBatch and Fsync =
//! `Leader::run` / `Writer::write_batch`, one write and one fsync per batch; FsyncFail =
//! `Writer::poison`; Crash and Kill = the sim-fs crash model; Recover =
//! `Wal::recover_segment`); checked by `specs/check`, whose negative controls show
//! why each piece is needed (fsync before the acknowledgement, the torn-tail cut, and
//! recovery rewriting the replayed records instead of appending behind them).

mod group;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::framing::{decode_records, encode_record, valid_record_after, TooLarge};
use group::{Group, Request, Writer};
pub use group::{Hook, WalWait};

/// WAL errors.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WalError {
    /// An I/O error; the log is poisoned from now on.
    #[error("wal i/o error on {path}: {message}")]
    Io { path: String, message: String },
    /// An earlier write or fsync failed; reopen the database.
    #[error("wal poisoned by an earlier failure (fail-stop): {0}")]
    Poisoned(String),
    /// A record larger than [`MAX_RECORD_BYTES`](crate::framing::MAX_RECORD_BYTES).
    #[error("wal record of {0} bytes exceeds the maximum")]
    TooLarge(usize),
    /// The log was closed (or its database dropped): nothing more is written.
    #[error("wal writer stopped")]
    Stopped,
    /// Durable records are damaged (not a torn tail): recovery refuses to guess.
    #[error("wal corruption in {path} at byte {offset}: {detail}")]
    Corrupt {
        path: String,
        offset: u64,
        detail: String,
    },
}

impl From<TooLarge> for WalError {
    fn from(e: TooLarge) -> WalError {
        WalError::TooLarge(e.0)
    }
}

fn io_err(path: &Path, e: std::io::Error) -> WalError {
    WalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    let path = dir.join(format!("wal-{seq:016}.log"));
    // The pair of recovery's listing: the name parses back to its number.
    debug_assert_eq!(parse_segment_name(&path), Some(seq));
    path
}

/// The sequence number of a segment file name, if `path` names one.
pub fn parse_segment_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What recovery found in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut off after the last valid record.
    pub cut_bytes: u64,
}

/// An open WAL accepting appends. Cheap to clone (clones share the log).
#[derive(Clone)]
pub struct Wal {
    group: Arc<Group>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("path", &self.path).finish()
    }
}

impl Wal {
    /// Reads the segment at `path`. `newest`: it may end in a torn tail, which is cut
    /// durably; otherwise any bad byte is [`WalError::Corrupt`]. In both cases a valid
    /// record after a bad one is corruption.
    pub async fn recover_segment(path: &Path, newest: bool) -> Result<Recovered, WalError> {
        if !sim_fs::exists(path).await.map_err(|e| io_err(path, e))? {
            return Ok(Recovered {
                records: Vec::new(),
                cut_bytes: 0,
            });
        }
        let bytes = sim_fs::read(path).await.map_err(|e| io_err(path, e))?;
        let (records, valid_end) = decode_records(&bytes);
        let cut_bytes = bytes.len() as u64 - valid_end;
        if cut_bytes > 0 {
            let corrupt = |detail: &str| WalError::Corrupt {
                path: path.display().to_string(),
                offset: valid_end,
                detail: detail.to_string(),
            };
            if !newest {
                return Err(corrupt("damaged record in a fully synced segment"));
            }
            sim_runtime::cover!(
                "lsm.wal_torn_tail_found",
                bytes
                    .get(usize::try_from(valid_end).unwrap_or(usize::MAX)..)
                    .is_some_and(|tail| tail.iter().any(|&b| b != 0))
            );
            if valid_record_after(&bytes, valid_end) {
                return Err(corrupt("damaged record followed by valid ones"));
            }
        }
        if cut_bytes > 0 && !crate::canary::enabled(crate::canary::Canary::KeepTornWalTail) {
            // Torn records or preallocated zeros (see Preallocation): both go.
            let file = sim_fs::File::open(path)
                .await
                .map_err(|e| io_err(path, e))?;
            file.set_len(valid_end).await.map_err(|e| io_err(path, e))?;
            file.sync_all().await.map_err(|e| io_err(path, e))?;
            tracing::info!(path = %path.display(), cut_bytes, "cut torn wal tail");
        }
        Ok(Recovered { records, cut_bytes })
    }

    /// Opens (creating if needed) the segment at `path` for appending, after
    /// [`Wal::recover_segment`] has cut any torn tail. Creating the file syncs its
    /// directory.
    /// `dir` is the segment directory's shared fail-stop syncer (every task that adds
    /// entries to it syncs through the same one: see [`sim_fs::FailStopDir`]).
    /// `preallocate` bytes of zeros are kept synced ahead of the records (see
    /// [Preallocation](self#preallocation)); 0 turns that off.
    pub async fn open(
        path: &Path,
        dir: Arc<sim_fs::FailStopDir>,
        preallocate: u64,
    ) -> Result<Wal, WalError> {
        let writer = Writer::open(path, dir, preallocate, false).await?;
        Ok(Wal {
            group: Group::start(writer),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Appends `payload` durably: returns once an fsync covering it has returned.
    #[cfg(test)]
    pub async fn append(&self, payload: &[u8]) -> Result<(), WalError> {
        self.submit(payload, None)?.wait().await
    }

    /// Queues `payload` without waiting (the order of `submit` calls is the order in
    /// the log). `hook` runs with the outcome, in submission order, in whichever task
    /// leads the batch (module `group`), before the returned [`WalWait`] resolves. Never
    /// blocks: callers queue records under their commit lock.
    pub fn submit(&self, payload: &[u8], hook: Option<Hook>) -> Result<WalWait, WalError> {
        let record = encode_record(payload)?;
        self.group.submit(Request::Append { record, hook })
    }

    /// Queues a switch to a new segment at `path`: records submitted before are synced
    /// to the current segment first; later ones go to the new one. The wait resolves
    /// once the new segment and its directory entry are durable.
    pub fn rotate(&self, path: &Path) -> Result<WalWait, WalError> {
        self.group.submit(Request::Rotate {
            path: path.to_path_buf(),
        })
    }

    /// Bytes written to the log's segments since it opened: records, and the zeros
    /// written ahead of them (see Preallocation). Truncations do not subtract.
    pub fn bytes_written(&self) -> u64 {
        self.group.bytes_written()
    }

    /// Stops the writer after everything submitted so far; later calls get
    /// [`WalError::Stopped`].
    pub async fn close(&self) -> Result<(), WalError> {
        match self.group.submit(Request::Close) {
            Ok(wait) => wait.wait().await,
            Err(WalError::Stopped) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
