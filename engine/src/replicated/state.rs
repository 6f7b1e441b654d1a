//! The state machine: an embedded [`Db`] that applies committed log entries.
//!
//! ## Model
//! [`StateMachine::apply`] turns one log entry into one engine transaction, decided
//! from the engine's state alone (so every replica decides alike):
//! 1. read the client's record `\0client/<id>`: if it holds this `seq` or a later one,
//!    the command is a copy of one already decided — apply nothing, answer with the
//!    recorded outcome (dedup; [`Canary::ApplyRetryTwice`] skips this check);
//! 2. validate (backward OCC): abort iff a read key or a key in a read range has a
//!    last-write index `> snapshot`;
//! 3. on success write the command's writes and their `\0lw/<key>` = index;
//! 4. record `\0client/<id>` = (seq, outcome) and `\0sys/applied` = (index, term);
//! 5. commit (durable before the next entry is applied).
//!
//! No-op entries and undecodable commands only advance `\0sys/applied`.
//!
//! ## Invariants
//! - After `apply(e)` returns, `\0sys/applied = (e.index, e.term)` durably, and the
//!   engine state is the deterministic function of the entries applied so far.
//! - Apply transactions run one at a time, so no engine-level conflict can abort them;
//!   the read-only transactions the leader serves reads from never write, so they can
//!   be neither a pivot nor an out-edge target in SSI. Should the engine abort one
//!   anyway, it is retried from scratch (the decision is a function of the state).
//!
//! ## Fault model
//! An engine error while applying (failed write or fsync, damaged bytes) is returned
//! and stops the node: a replica that cannot apply must not serve.

use std::path::Path;

use crate::canary::{self, Canary};
use crate::raft::{Entry, Index, Snapshot, SnapshotMeta, Term};
use crate::replicated::command::{
    self, decode_applied, decode_client_record, decode_index, encode_applied, encode_client_record,
    encode_index, ClientRecord, Command, CommitCmd, Outcome, APPLIED_KEY, FIRST_USER_KEY,
};
use crate::replicated::NodeError;
use crate::{CommitOutcome, Db, Key, Options, Txn, Value};

/// Version byte of a snapshot's data.
const SNAPSHOT_VERSION: u8 = 1;
/// Engine-level retries of one apply before giving up (they should never happen).
const APPLY_RETRIES: usize = 16;

/// What applying one entry decided, for answering the client that waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The entry's index.
    pub index: Index,
    /// The entry's term.
    pub term: Term,
    /// `(client, seq)` of a commit command.
    pub request: Option<(u64, u64)>,
    /// The outcome to report, if any: the command's own, or for a copy of an already
    /// decided command, the recorded one. `None` for no-ops and for copies of a commit
    /// older than the client's latest (nobody waits for those).
    pub outcome: Option<Outcome>,
}

/// The replicated state: an engine database plus the applied position.
pub struct StateMachine {
    db: Db,
    applied: (Index, Term),
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("applied", &self.applied)
            .finish()
    }
}

/// An engine error while applying: a conflict is retried, anything else is fatal.
enum Step {
    Retry,
    Fatal(NodeError),
}

impl From<crate::Error> for Step {
    fn from(e: crate::Error) -> Step {
        match e {
            crate::Error::Txn(crate::mvcc::Error::Aborted(_)) => Step::Retry,
            e => Step::Fatal(NodeError::Db(e)),
        }
    }
}

impl StateMachine {
    /// Opens (or creates) the engine in `dir` and reads the applied position.
    pub async fn open(dir: &Path, opts: Options) -> Result<StateMachine, NodeError> {
        let db = Db::open(dir, opts).await?;
        let applied = match db.begin().get(APPLIED_KEY).await? {
            None => (0, 0),
            Some(v) => decode_applied(&v)
                .ok_or_else(|| NodeError::corrupt(dir, "undecodable applied index"))?,
        };
        Ok(StateMachine { db, applied })
    }

    /// The `(index, term)` of the last applied entry (`(0, 0)` if none).
    pub fn applied(&self) -> (Index, Term) {
        self.applied
    }

    /// The engine (the leader opens read transactions on it).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Closes the engine.
    pub async fn close(&self) -> Result<(), NodeError> {
        Ok(self.db.close().await?)
    }

    /// Applies one committed entry (see the module doc). Entries must come in order.
    pub async fn apply(&mut self, entry: &Entry) -> Result<Applied, NodeError> {
        if entry.index != self.applied.0 + 1 {
            return Err(NodeError::Config(format!(
                "apply out of order: entry {} after applied {}",
                entry.index, self.applied.0
            )));
        }
        // Terms along the log never fall (the leader's log, applied in order).
        debug_assert!(entry.term >= self.applied.1);
        for _ in 0..APPLY_RETRIES {
            match self.try_apply(entry).await {
                Ok(applied) => {
                    self.applied = (entry.index, entry.term);
                    return Ok(applied);
                }
                Err(Step::Retry) => {
                    tracing::warn!(index = entry.index, "apply: engine conflict; retrying");
                }
                Err(Step::Fatal(e)) => return Err(e),
            }
        }
        Err(NodeError::Config(format!(
            "apply of entry {} kept conflicting in the engine",
            entry.index
        )))
    }

    async fn try_apply(&self, entry: &Entry) -> Result<Applied, Step> {
        let mut txn = self.db.begin();
        let mut applied = Applied {
            index: entry.index,
            term: entry.term,
            request: None,
            outcome: None,
        };
        match entry.data.as_deref().map(command::decode) {
            None => {}
            Some(Err(e)) => {
                tracing::error!(index = entry.index, error = %e, "apply: undecodable command; skipped");
                applied.outcome = Some(Outcome::Rejected { why: e.to_string() });
            }
            Some(Ok(Command::Commit(cmd))) => {
                applied.request = Some((cmd.client, cmd.seq));
                applied.outcome = apply_commit(&mut txn, entry.index, &cmd).await?;
            }
        }
        txn.put(
            APPLIED_KEY.to_vec(),
            encode_applied(entry.index, entry.term),
        )
        .await?;
        match txn.commit().await? {
            CommitOutcome::Committed { .. } => Ok(applied),
            CommitOutcome::Aborted(_) => Err(Step::Retry),
        }
    }

    /// Every engine row (bookkeeping included) at the applied index, as snapshot data.
    pub async fn dump(&self) -> Result<(SnapshotMeta, Vec<u8>), NodeError> {
        let mut txn = self.db.begin();
        let rows = txn.scan(..).await?;
        txn.rollback().await?;
        let (index, term) = rows
            .iter()
            .find(|(k, _)| k.as_slice() == APPLIED_KEY)
            .and_then(|(_, v)| decode_applied(v))
            .unwrap_or((0, 0));
        let mut data = vec![SNAPSHOT_VERSION];
        data.extend(postcard::to_allocvec(&rows).unwrap_or_default());
        // The pair of `install`'s decoding on the receiving replica.
        debug_assert_eq!(decode_snapshot(&data).as_ref(), Ok(&rows));
        Ok((SnapshotMeta { index, term }, data))
    }

    /// Replaces the whole state with `snapshot`'s, in one engine transaction.
    pub async fn install(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        let rows = decode_snapshot(&snapshot.data)
            .map_err(|why| NodeError::corrupt(Path::new("<snapshot>"), why))?;
        let recorded = rows
            .iter()
            .find(|(k, _)| k.as_slice() == APPLIED_KEY)
            .and_then(|(_, v)| decode_applied(v));
        let meta = snapshot.meta;
        if recorded != Some((meta.index, meta.term)) {
            return Err(NodeError::corrupt(
                Path::new("<snapshot>"),
                format!(
                    "snapshot {}@{} records applied {recorded:?}",
                    meta.index, meta.term
                ),
            ));
        }
        let mut txn = self.db.begin();
        for (k, _) in txn.scan(..).await? {
            txn.delete(k).await?;
        }
        for (k, v) in rows {
            txn.put(k, v).await?;
        }
        match txn.commit().await? {
            CommitOutcome::Committed { .. } => {
                sim_runtime::cover!("replicated.snapshot_replaced_state_machine");
                self.applied = (meta.index, meta.term);
                Ok(())
            }
            CommitOutcome::Aborted(c) => Err(NodeError::Config(format!(
                "snapshot install conflicted in the engine: {c}"
            ))),
        }
    }
}

/// The rows of a snapshot's data.
pub fn decode_snapshot(data: &[u8]) -> Result<Vec<(Key, Value)>, String> {
    match data.split_first() {
        Some((&SNAPSHOT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((&v, _)) => Err(format!("unknown snapshot version {v}")),
        None => Err("empty snapshot".into()),
    }
}

/// Steps 1–4 of the module doc for a commit command; returns the outcome to report.
async fn apply_commit(
    txn: &mut Txn,
    index: Index,
    cmd: &CommitCmd,
) -> Result<Option<Outcome>, Step> {
    let client_key = command::client_key(cmd.client);
    let record = match txn.get(&client_key).await? {
        Some(v) => Some(decode_client_record(&v).ok_or_else(|| {
            Step::Fatal(NodeError::corrupt(
                Path::new("<engine>"),
                "undecodable client record",
            ))
        })?),
        None => None,
    };
    if let Some(rec) = record.filter(|r| r.seq >= cmd.seq) {
        if !canary::enabled(Canary::ApplyRetryTwice) {
            // A copy of a command already decided (a client retry, a duplicated
            // request): not applied again.
            sim_runtime::cover!("replicated.duplicate_commit_not_reapplied");
            return Ok((rec.seq == cmd.seq).then_some(rec.outcome));
        }
    }
    let outcome = match validate(txn, index, cmd).await? {
        Err(outcome) => outcome,
        Ok(()) => {
            for (k, v) in &cmd.writes {
                match v {
                    Some(v) => txn.put(k.clone(), v.clone()).await?,
                    None => txn.delete(k.clone()).await?,
                }
                txn.put(command::last_write_key(k), encode_index(index))
                    .await?;
            }
            Outcome::Committed { index }
        }
    };
    let rec = ClientRecord {
        seq: cmd.seq,
        outcome: outcome.clone(),
    };
    txn.put(client_key, encode_client_record(&rec)).await?;
    Ok(Some(outcome))
}

/// `Ok(Ok(()))` if the command may apply, `Ok(Err(outcome))` if it aborts or is invalid.
async fn validate(txn: &Txn, index: Index, cmd: &CommitCmd) -> Result<Result<(), Outcome>, Step> {
    let reject = |why: String| Ok(Err(Outcome::Rejected { why }));
    if cmd.snapshot >= index {
        return reject(format!(
            "snapshot {} is not before the command's index {index}",
            cmd.snapshot
        ));
    }
    let keys = cmd
        .reads
        .iter()
        .chain(cmd.writes.iter().map(|(k, _)| k))
        .chain(cmd.ranges.iter().map(|r| &r.start));
    if let Some(bad) = keys
        .into_iter()
        .find(|k| command::check_user_key(k).is_err())
    {
        return reject(format!("reserved key {bad:?}"));
    }
    let last_write = |v: &[u8]| {
        decode_index(v).ok_or_else(|| {
            Step::Fatal(NodeError::corrupt(
                Path::new("<engine>"),
                "undecodable last-write index",
            ))
        })
    };
    for key in &cmd.reads {
        if let Some(v) = txn.get(command::last_write_key(key)).await? {
            let written_at = last_write(&v)?;
            if written_at > cmd.snapshot {
                sim_runtime::cover!("replicated.commit_aborted_read_overwritten");
                let key = key.clone();
                return Ok(Err(Outcome::Aborted { key, written_at }));
            }
        }
    }
    for span in &cmd.ranges {
        let start = if span.start.as_slice() < FIRST_USER_KEY {
            FIRST_USER_KEY.to_vec()
        } else {
            span.start.clone()
        };
        if span.end.as_ref().is_some_and(|e| *e <= start) {
            continue;
        }
        let (lo, hi) = command::last_write_span(&command::KeySpan {
            start,
            end: span.end.clone(),
        });
        for (k, v) in txn.scan(lo..hi).await? {
            let written_at = last_write(&v)?;
            if written_at > cmd.snapshot {
                sim_runtime::cover!("replicated.commit_aborted_range_phantom");
                let key = k[command::LAST_WRITE_PREFIX.len()..].to_vec();
                return Ok(Err(Outcome::Aborted { key, written_at }));
            }
        }
    }
    Ok(Ok(()))
}
