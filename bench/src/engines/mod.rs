//! The engines behind one synchronous interface, [`Engine`], which worker threads call
//! concurrently. Every write goes through a durable transaction: when a write method
//! returns `Ok`, the engine has promised the write survives a crash (in the sense of
//! [`mode`]'s `durability`). A transaction the engine refuses with a serialization
//! conflict is retried here, and the retries are counted.

use crate::spec::{EngineKind, KEY_LEN};
use std::path::Path;
use std::time::{Duration, Instant};

mod seedbank;

#[cfg(feature = "peers")]
mod fjall_peer;
#[cfg(feature = "peers")]
mod redb_peer;
#[cfg(feature = "peers")]
mod rocksdb_peer;
#[cfg(feature = "peers")]
mod sled_peer;

/// An engine's failure, for the user.
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {op}: {message}")]
pub struct EngineError {
    pub engine: &'static str,
    pub op: &'static str,
    pub message: String,
}

impl EngineError {
    pub(crate) fn new(engine: &'static str, op: &'static str, e: impl std::fmt::Display) -> Self {
        EngineError {
            engine,
            op,
            message: e.to_string(),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// A committed write transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Attempts refused with a serialization conflict (or a lock timeout) before the
    /// one that committed.
    pub retries: u32,
}

/// One attempt at a write transaction.
pub(crate) enum Attempt {
    Committed,
    /// Refused by concurrency control; nothing was written; try again.
    Conflict,
}

/// How long a transaction keeps retrying before it is an error (a stuck engine should
/// fail the run, not hang it).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// The wait before retry `n` (1-based): 50 µs doubling to at most 5 ms. An engine with
/// optimistic concurrency (Seedbank, fjall) refuses a write that conflicts with a
/// commit still in flight; retrying at once would just spin until that commit's fsync
/// publishes it, so the client backs off, as an application would.
pub fn backoff(n: u32) -> Duration {
    let us = 50u64 << n.saturating_sub(1).min(7);
    Duration::from_micros(us.min(5_000))
}

/// Runs `attempt` until it commits, backing off between conflicts.
pub(crate) fn retry(
    engine: &'static str,
    op: &'static str,
    mut attempt: impl FnMut() -> EngineResult<Attempt>,
) -> EngineResult<Committed> {
    let mut retries = 0;
    let mut first_conflict = None;
    loop {
        match attempt()? {
            Attempt::Committed => return Ok(Committed { retries }),
            Attempt::Conflict => {
                let since = *first_conflict.get_or_insert_with(Instant::now);
                if since.elapsed() > GIVE_UP_AFTER {
                    return Err(EngineError::new(
                        engine,
                        op,
                        format!("still conflicting after {retries} retries in {GIVE_UP_AFTER:?}"),
                    ));
                }
                retries += 1;
                std::thread::sleep(backoff(retries));
            }
        }
    }
}

/// Longest [`Engine::settle`] waits before the workload runs anyway (and says so): an
/// engine whose compactions never end should not hang the run.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// What [`Engine::settle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Background work is done (as far as the engine lets us see).
    Idle,
    /// Still busy after [`SETTLE_LIMIT`]: the next workload competes with it.
    GaveUp,
    /// The engine has no background work to wait for, or no way to ask ([`Mode::settle`]
    /// says which).
    NotApplicable,
}

/// Polls `idle` every `every` until it has held for `quiet` polls in a row (an engine
/// may start a compaction just after its flush ends, so one idle look is not enough),
/// or until `limit` has passed. (Only peers poll; Seedbank waits on its own signal.)
#[cfg(any(test, feature = "peers"))]
pub(crate) fn poll_until_quiet(
    mut idle: impl FnMut() -> bool,
    quiet: u32,
    every: Duration,
    limit: Duration,
) -> Settled {
    let start = Instant::now();
    let mut in_a_row = 0;
    loop {
        in_a_row = if idle() { in_a_row + 1 } else { 0 };
        if in_a_row >= quiet {
            return Settled::Idle;
        }
        if start.elapsed() >= limit {
            return Settled::GaveUp;
        }
        std::thread::sleep(every);
    }
}

/// A key as the workloads make it.
pub type Key = [u8; KEY_LEN];

/// Computes the new value from the old in a read-modify-write.
pub type Modify<'a> = &'a (dyn Fn(Option<&[u8]>) -> Vec<u8> + Sync);

/// The operations the workloads need. Called from many threads at once.
pub trait Engine: Send + Sync {
    /// Writes every pair in one durable transaction.
    fn put_batch(&self, pairs: &[(Key, Vec<u8>)]) -> EngineResult<Committed>;
    /// One durable transaction: read `key`, write `modify(old)`.
    fn read_modify_write(&self, key: &[u8], modify: Modify<'_>) -> EngineResult<Committed>;
    /// One durable transaction writing `value` to `key` without reading it.
    fn write(&self, key: &[u8], value: &[u8]) -> EngineResult<Committed>;
    /// A point read of the latest committed state; the value's length if present.
    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>>;
    /// Reads every row in `start..end` (a consistent snapshot where the engine has
    /// one); the number of rows.
    fn scan(&self, start: &[u8], end: &[u8]) -> EngineResult<usize>;
    /// Waits (up to [`SETTLE_LIMIT`]) until the engine's background flushes and
    /// compactions are done, so the next workload is not measured against the previous
    /// one's leftovers. Not measured. [`Mode::settle`] says what each engine waits on.
    fn settle(&self) -> EngineResult<Settled>;
    /// Bytes the engine itself counts as written to its files since it opened, where
    /// it keeps such a counter (`None`: it does not; only `/proc/self/io` measures it).
    fn bytes_written(&self) -> Option<u64> {
        None
    }
    /// Shuts the engine down cleanly.
    fn close(self: Box<Self>) -> EngineResult<()>;
}

/// How an engine runs: what makes a commit durable, and which API the workloads use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub durability: &'static str,
    pub api: &'static str,
    /// A caveat for reading its figures, if any.
    pub note: Option<&'static str>,
    /// What [`Engine::settle`] waits on before each timed workload.
    pub settle: &'static str,
}

/// The mode each engine runs in.
pub fn mode(kind: EngineKind) -> Mode {
    match kind {
        EngineKind::Seedbank => Mode {
            durability: "WAL fdatasync before commit returns (group commit)",
            api: "writes: Db::begin, Txn::get/put, commit (SSI); reads: Db::get (untracked \
                  point read) and Db::scan_each (read-only, untracked at a safe snapshot, \
                  else tracked; rows lent to a closure, as iterators lend them); async \
                  API entered with \
                  Runtime::block_on from each worker thread (2 runtime workers)",
            note: None,
            settle: "Db::wait_idle: no frozen memtable, no compaction running or due",
        },
        EngineKind::Fjall => Mode {
            durability: "journal PersistMode::SyncData (fdatasync) per commit",
            api: "TxKeyspace (feature ssi_tx: optimistic, conflict-checked write txns), \
                  read_tx for reads and scans",
            note: Some("fjall persists each commit under its journal lock: no group commit"),
            settle: "polls Keyspace::active_compactions() == 0 and journal_count() == 1 (no \
                     sealed journal awaiting its flush) until both hold 5 times 20 ms apart; \
                     fjall does not expose compactions that are due but not started",
        },
        EngineKind::Redb => Mode {
            durability: "Durability::Immediate (fsync per commit)",
            api: "begin_write/commit (one writer at a time), begin_read for reads and scans",
            note: None,
            settle: "none needed: a B-tree written in place at commit, no background work",
        },
        EngineKind::Sled => Mode {
            durability: "Tree::transaction with TransactionalTree::flush (flush on commit)",
            api: "Tree::transaction for writes, Tree::get/range for reads",
            note: Some(
                "sled's durable flush is sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER), \
                 not fdatasync: it does not flush the drive cache or file metadata, so its \
                 durable-write figures are flattered",
            ),
            settle: "none: sled exposes no background-work status (its flusher has \
                     nothing left after durable commits; its segment cleaning runs inline)",
        },
        EngineKind::Rocksdb => Mode {
            durability: "WriteOptions::sync = true (fdatasync of the WAL; group commit)",
            api: "TransactionDB (pessimistic): get_for_update/put/commit; DB::get and \
                  iterators for reads and scans",
            note: Some("Debian's librocksdb 7.8.3, linked dynamically, default options"),
            settle: "none available: the rocksdb crate 0.20.1 has no property API on \
                     TransactionDB (rocksdb.num-running-compactions etc. are only on DB), \
                     so its background compactions may still run",
        },
    }
}

/// Opens (creating) the engine's database in `dir`.
pub fn open(kind: EngineKind, dir: &Path) -> EngineResult<Box<dyn Engine>> {
    match kind {
        EngineKind::Seedbank => Ok(Box::new(seedbank::Seedbank::open(dir)?)),
        #[cfg(feature = "peers")]
        EngineKind::Fjall => Ok(Box::new(fjall_peer::Fjall::open(dir)?)),
        #[cfg(feature = "peers")]
        EngineKind::Redb => Ok(Box::new(redb_peer::Redb::open(dir)?)),
        #[cfg(feature = "peers")]
        EngineKind::Sled => Ok(Box::new(sled_peer::Sled::open(dir)?)),
        #[cfg(feature = "peers")]
        EngineKind::Rocksdb => Ok(Box::new(rocksdb_peer::Rocks::open(dir)?)),
        #[cfg(not(feature = "peers"))]
        other => Err(EngineError::new(
            other.name(),
            "open",
            crate::spec::SpecError::NeedsPeersFeature(other),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_50us_to_a_5ms_cap() {
        let waits: Vec<u64> = (1..=10).map(|n| backoff(n).as_micros() as u64).collect();
        assert_eq!(
            waits,
            [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
    }

    #[test]
    fn settling_needs_quiet_polls_in_a_row_and_gives_up_at_the_limit() {
        // Busy, idle, busy, then idle for good: the third idle look in a row settles.
        let looks = [false, true, false, true, true, true, true];
        let mut n = 0;
        let got = poll_until_quiet(
            || {
                n += 1;
                looks[n - 1]
            },
            3,
            Duration::ZERO,
            Duration::from_secs(3600),
        );
        assert_eq!((got, n), (Settled::Idle, 6));
        let mut polls = 0;
        let never = poll_until_quiet(
            || {
                polls += 1;
                false
            },
            3,
            Duration::ZERO,
            Duration::ZERO,
        );
        assert_eq!((never, polls), (Settled::GaveUp, 1));
    }

    #[test]
    fn retry_counts_conflicts_until_the_commit() {
        let mut left = 3;
        let done = retry("test", "op", || {
            if left == 0 {
                Ok(Attempt::Committed)
            } else {
                left -= 1;
                Ok(Attempt::Conflict)
            }
        })
        .unwrap();
        assert_eq!(done, Committed { retries: 3 });
        let failed = retry("test", "op", || Err(EngineError::new("test", "op", "boom")));
        assert_eq!(failed.unwrap_err().to_string(), "test: op: boom");
    }
}
