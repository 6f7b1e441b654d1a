//! The database a workload talks to, whatever the topology.
//!
//! Workloads are written once against [`Store`] / [`Tx`] and run against the embedded
//! engine or a Raft cluster (the replicated database's client). Every call's failure
//! is classified the way the durability oracle and the history need it: a definite
//! refusal ([`TxError::Conflict`], [`TxError::Failed`] — nothing was applied) or an
//! unknown outcome ([`TxError::Unknown`] — the commit may or may not have happened).

use engine::replicated::{ClientError, ReplicatedClient, ReplicatedTxn, TxnOutcome};
use engine::{CommitOutcome, Db};
use std::collections::BTreeMap;
use std::fmt;

/// How a transaction attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxError {
    /// The database refused the commit (serialization or write-write conflict): not
    /// applied, the client may retry.
    Conflict(String),
    /// An operation before the commit failed; the transaction was not applied.
    Failed(String),
    /// The commit was sent and its outcome is unknown (I/O failure in the commit
    /// path, a crash, a timeout).
    Unknown(String),
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Conflict(why) => write!(f, "conflict ({why})"),
            TxError::Failed(why) => write!(f, "failed ({why})"),
            TxError::Unknown(why) => write!(f, "outcome unknown ({why})"),
        }
    }
}

/// A handle on the database under test.
#[derive(Clone, Debug)]
pub enum Store {
    /// The embedded engine on this node.
    Embedded(Db),
    /// A replicated cluster, through this client's connection.
    Cluster(ReplicatedClient),
}

impl Store {
    /// Starts a transaction. Only a cluster can refuse (no leader found in time:
    /// [`TxError::Failed`], nothing was applied).
    pub async fn begin(&self) -> Result<Tx, TxError> {
        let inner = match self {
            Store::Embedded(db) => TxInner::Embedded(db.begin()),
            Store::Cluster(client) => TxInner::Cluster(
                client
                    .begin()
                    .await
                    .map_err(|e| TxError::Failed(e.to_string()))?,
            ),
        };
        Ok(Tx {
            inner,
            writes: BTreeMap::new(),
            fail_stop: false,
        })
    }

    /// Starts a transaction that only reads, through the embedded engine's read-only
    /// paths: a read-only transaction ([`Db::begin_read_only`]), or with `untracked`
    /// no transaction at all — each read is [`Db::get`] / [`Db::scan`] at the newest
    /// acknowledged state (so use it for a single read, whose history entry is then
    /// the read's own). A cluster runs an ordinary transaction.
    pub async fn begin_read_only(&self, untracked: bool) -> Result<Tx, TxError> {
        let inner = match self {
            Store::Embedded(db) if untracked => TxInner::EmbeddedUntracked(db.clone()),
            Store::Embedded(db) => TxInner::EmbeddedRead(db.begin_read_only()),
            Store::Cluster(_) => return self.begin().await,
        };
        Ok(Tx {
            inner,
            writes: BTreeMap::new(),
            fail_stop: false,
        })
    }
}

/// One transaction; reads return strings (workload keys and values are UTF-8). It
/// remembers its writes, for the durability oracle.
pub struct Tx {
    inner: TxInner,
    writes: BTreeMap<String, Option<String>>,
    fail_stop: bool,
}

enum TxInner {
    Embedded(engine::Txn),
    /// A read-only transaction.
    EmbeddedRead(engine::ReadTxn),
    /// Reads with no transaction: each one at the newest acknowledged state.
    EmbeddedUntracked(Db),
    Cluster(ReplicatedTxn),
}

fn read_only(what: &str) -> engine::Error {
    engine::Error::Poisoned(format!(
        "{what} in a read-only transaction (a workload bug)"
    ))
}

impl Tx {
    /// What the transaction wrote: key → value, `None` for a delete.
    pub fn writes(&self) -> &BTreeMap<String, Option<String>> {
        &self.writes
    }

    /// Whether a call failed because the database fail-stopped (it must be reopened).
    pub fn saw_fail_stop(&self) -> bool {
        self.fail_stop
    }

    fn note(&mut self, e: &engine::Error) {
        self.fail_stop |= e.is_fail_stop();
    }

    /// A cluster call before the commit failed: the transaction is dead and nothing of
    /// it was applied (reads and writes are buffered until the commit).
    fn cluster_failed(e: ClientError) -> TxError {
        TxError::Failed(e.to_string())
    }

    fn before_commit(&mut self, e: engine::Error) -> TxError {
        self.note(&e);
        match e.conflict() {
            Some(c) => TxError::Conflict(c.kind().to_string()),
            None => TxError::Failed(e.to_string()),
        }
    }
}

fn text(bytes: Vec<u8>) -> Result<String, TxError> {
    String::from_utf8(bytes).map_err(|e| TxError::Failed(format!("a value that is not UTF-8: {e}")))
}

impl Tx {
    pub async fn get(&mut self, key: &str) -> Result<Option<String>, TxError> {
        let r = match &mut self.inner {
            TxInner::Embedded(t) => t.get(key.as_bytes()).await,
            TxInner::EmbeddedRead(t) => t.get(key.as_bytes()).await,
            TxInner::EmbeddedUntracked(db) => db.get(key.as_bytes()).await,
            TxInner::Cluster(t) => return opt_text(t.get(key).await.map_err(Tx::cluster_failed)?),
        };
        match r.map_err(|e| self.before_commit(e))? {
            Some(v) => text(v).map(Some),
            None => Ok(None),
        }
    }

    /// Rows with `start <= key < end`, in key order.
    pub async fn scan(&mut self, start: &str, end: &str) -> Result<Vec<(String, String)>, TxError> {
        let range = start.as_bytes().to_vec()..end.as_bytes().to_vec();
        let r = match &mut self.inner {
            TxInner::Embedded(t) => t.scan(range).await,
            TxInner::EmbeddedRead(t) => t.scan(range).await,
            TxInner::EmbeddedUntracked(db) => db.scan(range).await,
            TxInner::Cluster(t) => Ok(t.scan(range).await.map_err(Tx::cluster_failed)?),
        };
        let rows = r.map_err(|e| self.before_commit(e))?;
        rows.into_iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect()
    }

    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), TxError> {
        let r = match &mut self.inner {
            TxInner::Embedded(t) => {
                t.put(key.as_bytes().to_vec(), value.as_bytes().to_vec())
                    .await
            }
            TxInner::EmbeddedRead(_) | TxInner::EmbeddedUntracked(_) => Err(read_only("a put")),
            TxInner::Cluster(t) => {
                t.put(key.as_bytes().to_vec(), value.as_bytes().to_vec())
                    .await
                    .map_err(Tx::cluster_failed)?;
                Ok(())
            }
        };
        r.map_err(|e| self.before_commit(e))?;
        self.writes.insert(key.to_string(), Some(value.to_string()));
        Ok(())
    }

    pub async fn delete(&mut self, key: &str) -> Result<(), TxError> {
        let r = match &mut self.inner {
            TxInner::Embedded(t) => t.delete(key.as_bytes().to_vec()).await,
            TxInner::EmbeddedRead(_) | TxInner::EmbeddedUntracked(_) => Err(read_only("a delete")),
            TxInner::Cluster(t) => {
                t.delete(key.as_bytes().to_vec())
                    .await
                    .map_err(Tx::cluster_failed)?;
                Ok(())
            }
        };
        r.map_err(|e| self.before_commit(e))?;
        self.writes.insert(key.to_string(), None);
        Ok(())
    }

    /// Commits: `Ok(())` only when the commit is durable and acknowledged.
    pub async fn commit(&mut self) -> Result<(), TxError> {
        let r = match &mut self.inner {
            TxInner::Embedded(t) => t.commit().await,
            TxInner::EmbeddedRead(t) => t.commit().await.map(|()| CommitOutcome::Committed {
                ts: engine::Timestamp::ZERO,
            }),
            TxInner::EmbeddedUntracked(_) => return Ok(()),
            TxInner::Cluster(t) => return cluster_commit(t.commit().await),
        };
        match r {
            Ok(CommitOutcome::Committed { .. }) => Ok(()),
            Ok(CommitOutcome::Aborted(c)) => Err(TxError::Conflict(c.kind().to_string())),
            // The engine validates before it logs: an abort error is definite.
            Err(e) if e.conflict().is_some() => Err(self.before_commit(e)),
            // Poisoned, storage or I/O trouble while logging: the record may be on
            // disk, so the outcome is unknown until a recovery shows it.
            Err(e) => {
                self.note(&e);
                Err(TxError::Unknown(e.to_string()))
            }
        }
    }

    /// Abandons the transaction (best effort: a failure here changes nothing).
    pub async fn rollback(&mut self) {
        match &mut self.inner {
            TxInner::Embedded(t) => {
                let _ = t.rollback().await;
            }
            TxInner::EmbeddedRead(t) => {
                let _ = t.commit().await;
            }
            TxInner::EmbeddedUntracked(_) => {}
            TxInner::Cluster(t) => {
                let _ = t.rollback().await;
            }
        }
    }
}

fn opt_text(value: Option<Vec<u8>>) -> Result<Option<String>, TxError> {
    value.map(text).transpose()
}

/// A cluster commit's answer, classified: only [`ClientError::UnknownOutcome`] leaves
/// the outcome open (the command may be in some replica's log and commit later); every
/// other error means the leader never accepted it.
fn cluster_commit(r: Result<TxnOutcome, ClientError>) -> Result<(), TxError> {
    match r {
        Ok(TxnOutcome::Committed { .. }) => Ok(()),
        Ok(TxnOutcome::Aborted { key, written_at }) => Err(TxError::Conflict(format!(
            "{} was written at index {written_at}, after the snapshot",
            String::from_utf8_lossy(&key)
        ))),
        Err(e @ ClientError::UnknownOutcome { .. }) => Err(TxError::Unknown(e.to_string())),
        Err(e) => Err(TxError::Failed(e.to_string())),
    }
}
