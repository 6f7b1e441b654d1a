//! [`ReplicatedTxn`]: an interactive transaction of a [`ReplicatedClient`].
//!
//! Reads go to the leader that began the transaction and are served from its snapshot;
//! writes are buffered here; the read set (keys and ranges) is remembered so the commit
//! can be validated in log order (see [`crate::replicated::state`]). A transaction whose
//! leader is gone is dead ([`ClientError::Aborted`]): nothing of it was proposed.
//!
//! ## Invariants
//! - A key read is recorded only when the value came from the snapshot (not from this
//!   transaction's own buffered write); a scan records its whole range.
//! - After `commit`/`rollback` the handle is finished; after a lost read it is dead.
//!
//! ## Fault model
//! Lost or late answers: a read is retried on the same node a few times, then the
//! transaction is given up (definitely not applied).
//!
//! ## Non-goals
//! - Moving a transaction to another leader (its snapshot lives on the old one).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeBounds};

use crate::raft::{Index, NodeId};
use crate::replicated::client::{ClientError, ReplicatedClient, TxnOutcome};
use crate::replicated::command::{self, CommitCmd, KeySpan, Outcome};
use crate::replicated::{Request, Response, TxnToken};
use crate::{Key, Value};

enum TxnState {
    Open,
    Finished,
    Dead(String),
}

/// An interactive transaction of a [`ReplicatedClient`]. Dropping it rolls it back.
pub struct ReplicatedTxn {
    client: ReplicatedClient,
    node: NodeId,
    token: TxnToken,
    snapshot: Index,
    reads: BTreeSet<Key>,
    ranges: Vec<KeySpan>,
    writes: BTreeMap<Key, Option<Value>>,
    state: TxnState,
}

impl std::fmt::Debug for ReplicatedTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedTxn")
            .field("node", &self.node)
            .field("token", &self.token)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

/// `range` as a span of keys (`start ≤ end` checked).
fn span_of(range: &impl RangeBounds<Key>) -> Result<KeySpan, ClientError> {
    let after = |k: &Key| [k.as_slice(), &[0]].concat();
    let start = match range.start_bound() {
        Bound::Included(k) => k.clone(),
        Bound::Excluded(k) => after(k),
        Bound::Unbounded => Vec::new(),
    };
    let end = match range.end_bound() {
        Bound::Included(k) => Some(after(k)),
        Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    if end.as_ref().is_some_and(|e| *e < start) {
        return Err(ClientError::InvalidRange);
    }
    Ok(KeySpan { start, end })
}

impl ReplicatedTxn {
    pub(super) fn new(
        client: ReplicatedClient,
        node: NodeId,
        token: TxnToken,
        snapshot: Index,
    ) -> ReplicatedTxn {
        ReplicatedTxn {
            client,
            node,
            token,
            snapshot,
            reads: BTreeSet::new(),
            ranges: Vec::new(),
            writes: BTreeMap::new(),
            state: TxnState::Open,
        }
    }

    /// The applied index this transaction reads at.
    pub fn snapshot(&self) -> Index {
        self.snapshot
    }

    /// The node serving this transaction's reads.
    pub fn node(&self) -> NodeId {
        self.node
    }

    fn live(&self) -> Result<(), ClientError> {
        match &self.state {
            TxnState::Open => Ok(()),
            TxnState::Finished => Err(ClientError::NotActive),
            TxnState::Dead(why) => Err(ClientError::Aborted(why.clone())),
        }
    }

    fn die(&mut self, why: String) -> ClientError {
        self.state = TxnState::Dead(why.clone());
        ClientError::Aborted(why)
    }

    /// Sends a read to the transaction's node, retrying lost answers a few times.
    async fn read(&mut self, req: Request) -> Result<Response, ClientError> {
        for _ in 0..self.client.read_attempts().max(1) {
            match self.client.call(self.node, req.clone()).await {
                None | Some(Response::Retry { .. }) => continue,
                Some(Response::TxnAborted { reason }) => return Err(self.die(reason)),
                Some(Response::NotLeader { .. }) => return Err(self.die("leader changed".into())),
                Some(Response::Error(e)) => return Err(ClientError::Rejected(e)),
                Some(resp) => return Ok(resp),
            }
        }
        self.client.forget_leader(self.node);
        Err(self.die(format!("node {} did not answer", self.node)))
    }

    /// The value of `key` in the snapshot (or as this transaction wrote it).
    pub async fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Value>, ClientError> {
        self.live()?;
        let key = key.as_ref().to_vec();
        command::check_user_key(&key).map_err(ClientError::Rejected)?;
        if let Some(w) = self.writes.get(&key) {
            return Ok(w.clone());
        }
        let req = Request::Get {
            token: self.token,
            key: key.clone(),
        };
        match self.read(req).await? {
            Response::Value(v) => {
                self.reads.insert(key);
                Ok(v)
            }
            other => Err(self.die(format!("unexpected answer to get: {other:?}"))),
        }
    }

    /// The live rows of `range` in the snapshot, merged with this transaction's
    /// writes, in key order. The whole range counts as read.
    pub async fn scan(
        &mut self,
        range: impl RangeBounds<Key>,
    ) -> Result<Vec<(Key, Value)>, ClientError> {
        self.live()?;
        let span = span_of(&range)?;
        let req = Request::Scan {
            token: self.token,
            span: span.clone(),
        };
        let rows = match self.read(req).await? {
            Response::Rows(rows) => rows,
            other => return Err(self.die(format!("unexpected answer to scan: {other:?}"))),
        };
        let mut merged: BTreeMap<Key, Value> = rows.into_iter().collect();
        for (k, v) in self.writes.iter().filter(|(k, _)| span.contains(k)) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        self.ranges.push(span);
        Ok(merged.into_iter().collect())
    }

    /// Buffers a put (visible to this transaction's own reads).
    pub async fn put(
        &mut self,
        key: impl Into<Key>,
        value: impl Into<Value>,
    ) -> Result<(), ClientError> {
        self.live()?;
        let key = key.into();
        command::check_user_key(&key).map_err(ClientError::Rejected)?;
        self.writes.insert(key, Some(value.into()));
        Ok(())
    }

    /// Buffers a delete.
    pub async fn delete(&mut self, key: impl Into<Key>) -> Result<(), ClientError> {
        self.live()?;
        let key = key.into();
        command::check_user_key(&key).map_err(ClientError::Rejected)?;
        self.writes.insert(key, None);
        Ok(())
    }

    /// Commits: a read-only transaction at its snapshot, any other through the log,
    /// exactly once. A conflict is [`TxnOutcome::Aborted`], not an error.
    pub async fn commit(&mut self) -> Result<TxnOutcome, ClientError> {
        self.live()?;
        self.state = TxnState::Finished;
        if self.writes.is_empty() {
            self.client
                .tell(self.node, Request::Rollback { token: self.token });
            return Ok(TxnOutcome::Committed {
                index: self.snapshot,
            });
        }
        let cmd = CommitCmd {
            client: self.client.id(),
            seq: 0,
            snapshot: self.snapshot,
            reads: std::mem::take(&mut self.reads).into_iter().collect(),
            ranges: std::mem::take(&mut self.ranges),
            writes: std::mem::take(&mut self.writes).into_iter().collect(),
        };
        match self.client.commit(cmd, self.token).await? {
            Outcome::Committed { index } => Ok(TxnOutcome::Committed { index }),
            Outcome::Aborted { key, written_at } => Ok(TxnOutcome::Aborted { key, written_at }),
            Outcome::Rejected { why } => Err(ClientError::Rejected(why)),
        }
    }

    /// Rolls back (nothing was sent to the log; the leader forgets the transaction).
    pub async fn rollback(&mut self) -> Result<(), ClientError> {
        if matches!(self.state, TxnState::Finished) {
            return Err(ClientError::NotActive);
        }
        self.state = TxnState::Finished;
        self.client
            .tell(self.node, Request::Rollback { token: self.token });
        Ok(())
    }
}

impl Drop for ReplicatedTxn {
    fn drop(&mut self) {
        if matches!(self.state, TxnState::Open) {
            self.client
                .tell(self.node, Request::Rollback { token: self.token });
        }
    }
}
