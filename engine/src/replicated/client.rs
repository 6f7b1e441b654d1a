//! The client of the replicated database: finds the leader, runs interactive
//! transactions, and commits them exactly once.
//!
//! ```ignore
//! let client = ReplicatedClient::connect(ClientConfig::new(id, listen, servers)).await?;
//! let mut t = client.begin().await?;
//! let v = t.get(b"k").await?;
//! t.put(b"k".to_vec(), b"v".to_vec()).await?;
//! match t.commit().await? {
//!     TxnOutcome::Committed { index } => { /* applied at log index `index` */ }
//!     TxnOutcome::Aborted { .. } => { /* a read was overwritten: retry */ }
//! }
//! ```
//!
//! ## Model
//! - Requests go to the node believed to lead; `NotLeader` hints redirect (adding the
//!   hinted node's address to the peer table), timeouts move on to the next node.
//! - A transaction begins on the leader (its snapshot is linearizable), reads through
//!   it, buffers writes, and remembers what it read. `commit` sends the whole
//!   transaction as one command, to whichever node leads by then.
//! - Exactly once: a commit gets the next sequence number of this client (one commit in
//!   flight per client) and is retried with that same number, through timeouts,
//!   redirects and leader changes, until a definite outcome or `commit_deadline`. The
//!   state machine applies a `(client, seq)` at most once and answers copies with the
//!   recorded outcome. If the deadline passes after the command may have been proposed,
//!   the result is [`ClientError::UnknownOutcome`]; if it surely was not, it is
//!   [`ClientError::Unavailable`].
//! - A search for the leader that runs out of time reports what every replica last
//!   did, counted against the quorum (`no quorum: 1 of 3 replicas answered in 10.0s, a
//!   leader needs 2 (node 1: no leader known; nodes 2, 3: no answer)`), not only the
//!   last request that failed (D56).
//! - Read-only transactions commit locally at their snapshot (no log entry).
//!
//! ## Invariants
//! - Client ids are at least [`MIN_CLIENT_ID`] (node ids are below), and must be unique
//!   per client instance: the id is also the client's network node id and its
//!   deduplication key.
//!
//! ## Fault model
//! Lost, duplicated, reordered and late answers; leaders that crash, lose their
//! majority or change; nodes that are unreachable. Only safety depends on the protocol;
//! timeouts only decide when to try elsewhere.
//!
//! ## Non-goals
//! - Several commits in flight from one client (they are serialized).

use sim_runtime::sync::lock;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::Rng;
use sim_net::{Config as NetConfig, Endpoint};
use sim_runtime::sync::Signal;
use sim_runtime::time::{self, Duration, Instant};
use tokio::sync::oneshot;

use crate::raft::{Index, NodeId};
use crate::replicated::command::{CommitCmd, Outcome};
pub use crate::replicated::txn::ReplicatedTxn;
use crate::replicated::{NodeStatus, Request, Response, TxnToken, Wire, DEFAULT_CLUSTER_ID};
use crate::Key;

/// The smallest client id (node ids are below it).
pub const MIN_CLIENT_ID: u64 = 1 << 32;

/// Configuration of a [`ReplicatedClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The cluster's id.
    pub cluster_id: u64,
    /// The cluster's shared secret, if any.
    pub token: Option<String>,
    /// This client's id (≥ [`MIN_CLIENT_ID`], unique per client instance).
    pub client_id: u64,
    /// Where the client's endpoint listens (port 0: any).
    pub listen: SocketAddr,
    /// The replicas: id → address.
    pub servers: BTreeMap<NodeId, SocketAddr>,
    /// How long one request waits for its answer.
    pub request_timeout: Duration,
    /// How long `begin` looks for a leader.
    pub begin_deadline: Duration,
    /// How long a commit is retried before its outcome is reported unknown.
    pub commit_deadline: Duration,
    /// Attempts of one read before the transaction is given up.
    pub read_attempts: usize,
    /// How the client authenticates (a client certificate, a simulated credential,
    /// or insecure: the default).
    pub auth: sim_net::Auth,
}

impl ClientConfig {
    /// Defaults: the default cluster id, no token, 500 ms request timeout, 10 s to
    /// begin, 30 s to commit, 3 attempts per read.
    pub fn new(
        client_id: u64,
        listen: SocketAddr,
        servers: BTreeMap<NodeId, SocketAddr>,
    ) -> ClientConfig {
        ClientConfig {
            cluster_id: DEFAULT_CLUSTER_ID,
            token: None,
            client_id,
            listen,
            servers,
            request_timeout: Duration::from_millis(500),
            begin_deadline: Duration::from_secs(10),
            commit_deadline: Duration::from_secs(30),
            read_attempts: 3,
            auth: sim_net::Auth::Insecure,
        }
    }
}

/// Errors of the client. A serialization conflict is not an error but
/// [`TxnOutcome::Aborted`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The transaction is dead and nothing of it was applied (leader changed, lease
    /// expired, a read could not be served): retry the whole transaction.
    #[error("transaction aborted: {0}; retry it")]
    Aborted(String),
    /// No leader answered in time; nothing was applied.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    /// The commit may or may not have been applied: retries ran out.
    #[error("commit outcome unknown (client {client}, seq {seq}): {why}")]
    UnknownOutcome {
        /// The client id.
        client: u64,
        /// The commit's sequence number.
        seq: u64,
        /// The last thing that went wrong.
        why: String,
    },
    /// The request is invalid (a reserved key, …) or the server refused it.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A scan range whose start lies after its end.
    #[error("invalid key range: start is after end")]
    InvalidRange,
    /// The transaction already committed or rolled back.
    #[error("the transaction is not active")]
    NotActive,
    /// The client's endpoint could not be opened.
    #[error("network: {0}")]
    Net(String),
}

/// A commit's definite outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Applied at log index `index` (for a read-only transaction: its snapshot).
    Committed {
        /// The serialization point.
        index: Index,
    },
    /// `key`, which the transaction read, was written at `written_at`, after its
    /// snapshot: nothing was applied; retry the transaction.
    Aborted {
        /// The conflicting key.
        key: Key,
        /// The conflicting write's index.
        written_at: Index,
    },
}

type Pending = Arc<Mutex<BTreeMap<u64, oneshot::Sender<Response>>>>;

struct State {
    leader: Option<NodeId>,
    servers: BTreeMap<NodeId, SocketAddr>,
    /// Round-robin position when no leader is known.
    next: usize,
    next_req: u64,
    next_seq: u64,
}

struct Inner {
    cfg: ClientConfig,
    ep: Endpoint<Wire>,
    pending: Pending,
    state: Mutex<State>,
    /// One commit in flight per client id.
    committing: tokio::sync::Mutex<()>,
    stop: Arc<Signal>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.raise();
        self.ep.close();
    }
}

/// A client of a replicated cluster. Cheap to clone (clones share the connection,
/// the leader hint and the sequence numbers).
#[derive(Clone)]
pub struct ReplicatedClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReplicatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedClient")
            .field("client_id", &self.inner.cfg.client_id)
            .finish()
    }
}

/// What a replica last did when [`ReplicatedClient::call_leader`] asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// No answer within the request timeout.
    Silent,
    /// It does not lead; the leader it knows of, if any.
    NotLeader(Option<NodeId>),
    /// It leads (or thinks so) but asked to retry, saying why.
    Retry(String),
}

/// Every replica's last [`Answer`] during one search for the leader.
#[derive(Debug, Default)]
struct Heard(BTreeMap<NodeId, Answer>);

impl Heard {
    /// Why no leader was found among `servers` in `waited`: how many replicas answered
    /// of how many, whether that is short of a quorum, and what each said. E.g.
    /// `no quorum: 1 of 3 replicas answered in 10.0s, a leader needs 2 (node 1: no
    /// leader known; nodes 2, 3: no answer)`.
    fn summary(&self, servers: &[NodeId], waited: Duration) -> String {
        let answered = servers
            .iter()
            .filter(|id| matches!(self.0.get(id), Some(a) if *a != Answer::Silent))
            .count();
        let total = servers.len();
        let quorum = total / 2 + 1;
        let mut said = Vec::new();
        let mut silent = Vec::new();
        let mut unasked = Vec::new();
        for id in servers {
            match self.0.get(id) {
                None => unasked.push(id.to_string()),
                Some(Answer::Silent) => silent.push(id.to_string()),
                Some(Answer::NotLeader(None)) => said.push(format!("node {id}: no leader known")),
                Some(Answer::NotLeader(Some(l))) => {
                    said.push(format!("node {id}: follows node {l}, which did not serve"))
                }
                Some(Answer::Retry(why)) => said.push(format!("node {id}: {why}")),
            }
        }
        let nodes = |ids: &[String]| match ids {
            [one] => format!("node {one}"),
            many => format!("nodes {}", many.join(", ")),
        };
        if !silent.is_empty() {
            said.push(format!("{}: no answer", nodes(&silent)));
        }
        if !unasked.is_empty() {
            said.push(format!("{}: not asked in time", nodes(&unasked)));
        }
        let secs = waited.as_secs_f64();
        if answered < quorum {
            format!(
                "no quorum: {answered} of {total} replicas answered in {secs:.1}s, a leader \
                 needs {quorum} ({})",
                said.join("; ")
            )
        } else {
            format!(
                "no leader: {answered} of {total} replicas answered in {secs:.1}s, none \
                 could serve ({})",
                said.join("; ")
            )
        }
    }
}

/// What a call to the leader ended with, when it did not get an answer to use.
struct Failed {
    why: String,
    /// Whether the request may have been acted on (a timeout, a `Retry`).
    maybe_done: bool,
}

impl ReplicatedClient {
    /// Opens the client's endpoint. Nothing is sent until the first request.
    pub async fn connect(cfg: ClientConfig) -> Result<ReplicatedClient, ClientError> {
        if cfg.client_id < MIN_CLIENT_ID {
            return Err(ClientError::Rejected(format!(
                "client ids start at {MIN_CLIENT_ID}"
            )));
        }
        if cfg.servers.is_empty() {
            return Err(ClientError::Rejected("no servers to connect to".into()));
        }
        let mut net = NetConfig::new(cfg.cluster_id, cfg.client_id);
        net.token = cfg.token.clone();
        net.auth = cfg.auth.clone();
        let ep = Endpoint::<Wire>::bind(cfg.listen, net)
            .await
            .map_err(|e| ClientError::Net(e.to_string()))?;
        for (&id, &addr) in &cfg.servers {
            ep.add_peer(id, addr);
        }
        let pending: Pending = Arc::default();
        let stop = Arc::new(Signal::default());
        sim_runtime::task::spawn_named(
            "replicated.client.recv",
            receive(ep.clone(), pending.clone(), stop.clone()),
        );
        let state = State {
            leader: None,
            servers: cfg.servers.clone(),
            next: 0,
            next_req: 0,
            next_seq: 0,
        };
        Ok(ReplicatedClient {
            inner: Arc::new(Inner {
                cfg,
                ep,
                pending,
                state: Mutex::new(state),
                committing: tokio::sync::Mutex::new(()),
                stop,
            }),
        })
    }

    /// This client's id.
    pub fn id(&self) -> u64 {
        self.inner.cfg.client_id
    }

    /// The replicas this client knows: id → address.
    pub fn servers(&self) -> BTreeMap<NodeId, SocketAddr> {
        lock(&self.inner.state).servers.clone()
    }

    pub(super) fn read_attempts(&self) -> usize {
        self.inner.cfg.read_attempts
    }

    /// The node this client believes leads, if any.
    pub fn leader_hint(&self) -> Option<NodeId> {
        lock(&self.inner.state).leader
    }

    /// Begins a transaction on the leader.
    pub async fn begin(&self) -> Result<ReplicatedTxn, ClientError> {
        let deadline = time::now() + self.inner.cfg.begin_deadline;
        match self.call_leader(Request::Begin, deadline).await {
            Ok((node, Response::Begun { token, snapshot })) => {
                Ok(ReplicatedTxn::new(self.clone(), node, token, snapshot))
            }
            Ok((_, other)) => Err(ClientError::Rejected(format!(
                "unexpected answer to begin: {other:?}"
            ))),
            Err(f) => Err(ClientError::Unavailable(f.why)),
        }
    }

    /// Node `node`'s status (any node answers), or `None` if it did not in time.
    pub async fn status(&self, node: NodeId) -> Option<NodeStatus> {
        match self.call(node, Request::Status).await {
            Some(Response::Status(s)) => Some(s),
            _ => None,
        }
    }

    /// Sends `req` to `node` and waits for the answer (`None`: no answer in time).
    pub(super) async fn call(&self, node: NodeId, req: Request) -> Option<Response> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = lock(&self.inner.state);
            st.next_req += 1;
            st.next_req
        };
        lock(&self.inner.pending).insert(id, tx);
        let sent = self.inner.ep.send(node, Wire::Request { id, req });
        let answer = match sent {
            Ok(()) => time::timeout(self.inner.cfg.request_timeout, rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(e) => {
                tracing::debug!(client = self.id(), node, error = %e, "request not sent");
                // Do not spin on a refused send (an unknown or saturated peer).
                time::sleep(self.inner.cfg.request_timeout / 10).await;
                None
            }
        };
        lock(&self.inner.pending).remove(&id);
        answer
    }

    /// Sends without waiting (best effort: releasing a transaction).
    pub(super) fn tell(&self, node: NodeId, req: Request) {
        let id = {
            let mut st = lock(&self.inner.state);
            st.next_req += 1;
            st.next_req
        };
        let _ = self.inner.ep.send(node, Wire::Request { id, req });
    }

    /// The node to ask: the known leader, or the next replica in turn.
    fn target(&self) -> NodeId {
        let mut st = lock(&self.inner.state);
        if let Some(l) = st.leader {
            return l;
        }
        let ids: Vec<NodeId> = st.servers.keys().copied().collect();
        st.next = (st.next + 1) % ids.len().max(1);
        ids.get(st.next).copied().unwrap_or(1)
    }

    fn redirect(&self, asked: NodeId, leader: Option<NodeId>, addr: Option<String>) {
        let mut st = lock(&self.inner.state);
        match leader.filter(|&l| l != asked) {
            Some(l) => {
                if let Some(a) = addr.and_then(|a| a.parse::<SocketAddr>().ok()) {
                    if st.servers.get(&l) != Some(&a) {
                        st.servers.insert(l, a);
                        self.inner.ep.add_peer(l, a);
                    }
                }
                st.leader = Some(l);
            }
            None => st.leader = None,
        }
    }

    pub(super) fn forget_leader(&self, node: NodeId) {
        let mut st = lock(&self.inner.state);
        if st.leader == Some(node) {
            st.leader = None;
        }
    }

    async fn backoff(&self, attempt: u32) {
        let base_ms = 10u64 << attempt.min(4);
        let jitter = sim_runtime::rng::stream(format!("replicated.client.{}", self.id()))
            .gen_range(0..=base_ms);
        time::sleep(Duration::from_millis(base_ms + jitter)).await;
    }

    /// Sends `req` to the leader, following redirects and retrying timeouts and
    /// `Retry` answers until `deadline`; returns the first other answer. On failure,
    /// `why` says what every replica last did ([`Heard::summary`]): how many answered,
    /// and whether that is short of a quorum.
    async fn call_leader(
        &self,
        req: Request,
        deadline: Instant,
    ) -> Result<(NodeId, Response), Failed> {
        let started = time::now();
        let mut heard = Heard::default();
        let mut maybe_done = false;
        let mut attempt = 0u32;
        while time::now() < deadline {
            let node = self.target();
            match self.call(node, req.clone()).await {
                None => {
                    heard.0.insert(node, Answer::Silent);
                    maybe_done = true;
                    self.forget_leader(node);
                    attempt += 1;
                }
                Some(Response::NotLeader { leader, addr }) => {
                    heard.0.insert(node, Answer::NotLeader(leader));
                    let hinted = leader.is_some_and(|l| l != node);
                    self.redirect(node, leader, addr);
                    attempt += 1;
                    if !hinted || attempt > 3 {
                        self.backoff(attempt).await;
                    }
                }
                Some(Response::Retry { reason }) => {
                    sim_runtime::cover!("replicated.client_retries_after_retry_answer");
                    heard.0.insert(node, Answer::Retry(reason));
                    maybe_done = true;
                    attempt += 1;
                    self.backoff(attempt).await;
                }
                Some(resp) => return Ok((node, resp)),
            }
        }
        let servers: Vec<NodeId> = lock(&self.inner.state).servers.keys().copied().collect();
        Err(Failed {
            why: heard.summary(&servers, time::now().saturating_duration_since(started)),
            maybe_done,
        })
    }

    /// Commits `cmd` exactly once (see the module doc).
    pub(super) async fn commit(
        &self,
        mut cmd: CommitCmd,
        token: TxnToken,
    ) -> Result<Outcome, ClientError> {
        let _one_at_a_time = self.inner.committing.lock().await;
        cmd.seq = {
            let mut st = lock(&self.inner.state);
            st.next_seq += 1;
            st.next_seq
        };
        let seq = cmd.seq;
        let deadline = time::now() + self.inner.cfg.commit_deadline;
        let req = Request::Commit {
            token: Some(token),
            cmd,
        };
        match self.call_leader(req, deadline).await {
            Ok((_, Response::Outcome(o))) => Ok(o),
            Ok((_, Response::Error(e))) => Err(ClientError::Rejected(e)),
            Ok((_, other)) => Err(ClientError::UnknownOutcome {
                client: self.id(),
                seq,
                why: format!("unexpected answer {other:?}"),
            }),
            Err(f) if f.maybe_done => {
                sim_runtime::cover!("replicated.client_commit_outcome_unknown");
                Err(ClientError::UnknownOutcome {
                    client: self.id(),
                    seq,
                    why: f.why,
                })
            }
            Err(f) => Err(ClientError::Unavailable(f.why)),
        }
    }
}

/// The client's receive loop: hands each response to the request waiting for it.
async fn receive(ep: Endpoint<Wire>, pending: Pending, stop: Arc<Signal>) {
    let seen = stop.version();
    loop {
        tokio::select! {
            _ = stop.changed(seen) => return,
            (from, msg) = ep.recv() => match msg {
                Wire::Response { id, resp } => {
                    if let Some(tx) = lock(&pending).remove(&id) {
                        let _ = tx.send(resp);
                    }
                }
                _ => tracing::warn!(from, "client: unexpected message; dropped"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins issue 20's finding: a cluster without a leader was reported by its last
    /// failure alone ("node 1 did not answer"); the summary counts who answered.
    #[test]
    fn a_failed_leader_search_counts_the_replicas_that_answered() {
        let mut heard = Heard::default();
        heard.0.insert(1, Answer::NotLeader(None));
        heard.0.insert(2, Answer::Silent);
        heard.0.insert(3, Answer::Silent);
        assert_eq!(
            heard.summary(&[1, 2, 3], Duration::from_secs(10)),
            "no quorum: 1 of 3 replicas answered in 10.0s, a leader needs 2 \
             (node 1: no leader known; nodes 2, 3: no answer)"
        );
        heard.0.insert(2, Answer::NotLeader(Some(3)));
        assert_eq!(
            heard.summary(&[1, 2, 3, 4], Duration::from_millis(2500)),
            "no quorum: 2 of 4 replicas answered in 2.5s, a leader needs 3 (node 1: no \
             leader known; node 2: follows node 3, which did not serve; node 3: no answer; \
             node 4: not asked in time)"
        );
        heard.0.insert(3, Answer::Retry("not ready".into()));
        assert!(heard
            .summary(&[1, 2, 3], Duration::from_secs(1))
            .starts_with("no leader: 3 of 3 replicas answered in 1.0s, none could serve"));
    }
}
