//! The client-facing half of a replica: interactive transactions on the leader and the
//! requests waiting for Raft (a read index, an apply).
//!
//! ## Model
//! - `Begin` (leader only): a ReadIndex request (thesis §6.4) whose context names the
//!   waiting client; once the read index `r` is confirmed and the state machine has
//!   applied through `r`, the leader opens a local engine transaction and reports its
//!   exact snapshot `A ≥ r` (the `\0sys/applied` it sees). The transaction is kept in a
//!   table under a [`TxnToken`] with a lease.
//! - `Get`/`Scan`: served from that transaction (reserved keys hidden).
//! - `Commit`: proposed as is; the client is answered when an entry with its
//!   `(client, seq)` is applied (the recorded outcome answers copies too).
//! - Leadership lost (or a new term): every transaction is dropped, waiting begins are
//!   refused, waiting commits are told to retry (their outcome is unknown; a retry with
//!   the same sequence number is deduplicated).
//!
//! ## Invariants
//! - A token is served only to the client that began it, only by the leader of the
//!   term that issued it.
//! - Read contexts carry a per-incarnation nonce, so a late answer to a previous
//!   incarnation's read can never release a new one.
//! - Waiting requests and open transactions are bounded in time (`WAIT_LIMIT`, the
//!   transaction lease), so abandoned ones do not pile up.
//!
//! ## Fault model
//! Clients vanish, retry, duplicate requests, send unknown or foreign tokens and
//! reserved keys: each gets a typed answer (or silence), never a panic. A failed engine
//! read that poisons the engine stops the node.
//!
//! ## Non-goals
//! - Serving reads on followers; leases instead of ReadIndex rounds.

use std::collections::BTreeMap;

use rand::RngCore;
use sim_net::Endpoint;
use sim_runtime::time::{self, Duration, Instant};

use crate::raft::{Index, NodeId, ReadState, Role, Term};
use crate::replicated::command::{self, decode_applied, APPLIED_KEY, FIRST_USER_KEY};
use crate::replicated::node::Node;
use crate::replicated::state::Applied;
use crate::replicated::{NodeError, NodeStatus, Request, Response, TxnToken, Wire};
use crate::Txn;

/// How long a request may wait for Raft before it is forgotten (its client has given
/// up and retried by then).
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// A client waiting for an answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiter {
    from: NodeId,
    id: u64,
    deadline: Instant,
}

struct OpenTxn {
    owner: NodeId,
    txn: Txn,
    expires: Instant,
}

/// The request-handling state of a replica.
pub(super) struct Server {
    /// `Some(term)` while this node leads `term`.
    lead_term: Option<Term>,
    txns: BTreeMap<TxnToken, OpenTxn>,
    next_token: u64,
    /// Nonce of this incarnation's read contexts.
    nonce: u64,
    next_read: u64,
    /// Begins waiting for their read index, by context.
    reads: BTreeMap<Vec<u8>, Waiter>,
    /// Begins with a read index, waiting for the apply.
    ready_reads: Vec<(Index, Waiter)>,
    /// Commits waiting for their `(client, seq)` to be applied.
    commits: BTreeMap<(u64, u64), Vec<Waiter>>,
}

fn reply(ep: &Endpoint<Wire>, w: Waiter, resp: Response) {
    if let Err(e) = ep.send(w.from, Wire::Response { id: w.id, resp }) {
        tracing::debug!(to = w.from, error = %e, "response not sent");
    }
}

impl Server {
    pub(super) fn new(id: NodeId) -> Server {
        let nonce = sim_runtime::rng::stream(format!("replicated.read_nonce.{id}")).next_u64();
        Server {
            lead_term: None,
            txns: BTreeMap::new(),
            next_token: 0,
            nonce,
            next_read: 0,
            reads: BTreeMap::new(),
            ready_reads: Vec::new(),
            commits: BTreeMap::new(),
        }
    }

    /// Drops everything waiting or open, telling each waiting client why.
    pub(super) fn abandon_all(&mut self, ep: &Endpoint<Wire>, why: &str) {
        self.txns.clear();
        let begins = self.reads.values().copied();
        let begins: Vec<Waiter> = begins
            .chain(self.ready_reads.iter().map(|(_, w)| *w))
            .collect();
        for w in begins {
            reply(
                ep,
                w,
                Response::Retry {
                    reason: why.to_string(),
                },
            );
        }
        self.reads.clear();
        self.ready_reads.clear();
        for w in std::mem::take(&mut self.commits).into_values().flatten() {
            sim_runtime::cover!("replicated.commit_abandoned_on_leader_change");
            let reason = format!("{why}; the commit's outcome is unknown: retry it");
            reply(ep, w, Response::Retry { reason });
        }
    }

    /// Forgets expired transactions and requests nobody waits for any more.
    pub(super) fn expire(&mut self, now: Instant) {
        self.txns.retain(|_, t| t.expires > now);
        self.reads.retain(|_, w| w.deadline > now);
        self.ready_reads.retain(|(_, w)| w.deadline > now);
        self.commits.retain(|_, ws| {
            ws.retain(|w| w.deadline > now);
            !ws.is_empty()
        });
    }
}

impl Node {
    fn respond(&self, from: NodeId, id: u64, resp: Response) {
        let deadline = time::now();
        reply(&self.ep, Waiter { from, id, deadline }, resp);
    }

    fn not_leader(&self) -> Response {
        let leader = self.raw.leader().filter(|&l| l != self.cfg.id);
        Response::NotLeader {
            leader,
            addr: leader
                .and_then(|l| self.cfg.peers.get(&l))
                .map(|a| a.to_string()),
        }
    }

    fn status(&self) -> NodeStatus {
        let s = self.raw.status();
        let role = match s.role {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::PreCandidate => "pre-candidate",
        };
        NodeStatus {
            id: s.id,
            role: role.to_string(),
            term: s.term,
            leader: s.leader,
            commit: s.commit,
            applied: self.sm.applied().0,
            last_index: s.last_index,
            log_start: s.first_index.saturating_sub(1),
        }
    }

    /// Whether this node leads the term it led when the server state was set up; if
    /// leadership changed, everything of the old term is dropped.
    fn check_leadership(&mut self) {
        let leading = (self.raw.role() == Role::Leader).then(|| self.raw.term());
        if leading != self.server.lead_term {
            if self.server.lead_term.is_some() {
                tracing::info!(
                    node = self.cfg.id,
                    "leadership changed: dropping transactions"
                );
            }
            self.server.abandon_all(&self.ep, "leader changed");
            self.server.lead_term = leading;
        }
    }

    pub(super) async fn handle_request(
        &mut self,
        from: NodeId,
        id: u64,
        req: Request,
    ) -> Result<(), NodeError> {
        self.check_leadership();
        let lead_term = self.server.lead_term;
        let now = time::now();
        let waiter = Waiter {
            from,
            id,
            deadline: now + WAIT_LIMIT,
        };
        match req {
            Request::Status => self.respond(from, id, Response::Status(self.status())),
            Request::Rollback { token } => {
                if self
                    .server
                    .txns
                    .get(&token)
                    .is_some_and(|t| t.owner == from)
                {
                    self.server.txns.remove(&token);
                }
                self.respond(from, id, Response::Done);
            }
            Request::Begin => {
                if lead_term.is_none() {
                    self.respond(from, id, self.not_leader());
                    return Ok(());
                }
                let s = &mut self.server;
                s.next_read += 1;
                let ctx = [s.nonce.to_le_bytes(), s.next_read.to_le_bytes()].concat();
                match self.raw.read_index(ctx.clone()) {
                    Ok(()) => {
                        self.server.reads.insert(ctx, waiter);
                    }
                    Err(_) => self.respond(from, id, self.not_leader()),
                }
            }
            Request::Get { token, key } => {
                let resp = match self.open_txn(from, token, now) {
                    Err(resp) => resp,
                    Ok(txn) => match command::check_user_key(&key) {
                        Err(why) => Response::Error(why),
                        Ok(()) => match txn.get(&key).await {
                            Ok(v) => Response::Value(v),
                            Err(e) => read_failure(e)?,
                        },
                    },
                };
                self.respond(from, id, resp);
            }
            Request::Scan { token, span } => {
                let resp = match self.open_txn(from, token, now) {
                    Err(resp) => resp,
                    Ok(txn) => {
                        let start = span.start.clone().max(FIRST_USER_KEY.to_vec());
                        let rows = match span.end {
                            Some(end) if end <= start => Ok(Vec::new()),
                            Some(end) => txn.scan(start..end).await,
                            None => txn.scan(start..).await,
                        };
                        match rows {
                            Ok(rows) => Response::Rows(rows),
                            Err(e) => read_failure(e)?,
                        }
                    }
                };
                self.respond(from, id, resp);
            }
            Request::Commit { token, cmd } => {
                // A client commits only under its own id: another's `(client, seq)`
                // would let it answer, or suppress as a duplicate, that client's commit.
                if cmd.client != from {
                    sim_runtime::cover!("replicated.commit_under_another_client_id_refused");
                    tracing::warn!(
                        node = self.cfg.id,
                        from,
                        claimed = cmd.client,
                        "commit under another client's id; refused"
                    );
                    let why = format!(
                        "commit names client {}, but the sender is {from}",
                        cmd.client
                    );
                    self.respond(from, id, Response::Error(why));
                    return Ok(());
                }
                if let Some(t) = token {
                    if self.server.txns.get(&t).is_some_and(|t| t.owner == from) {
                        self.server.txns.remove(&t);
                    }
                }
                if lead_term.is_none() {
                    self.respond(from, id, self.not_leader());
                    return Ok(());
                }
                let key = (cmd.client, cmd.seq);
                let data = command::encode(&command::Command::Commit(cmd));
                match self.raw.propose(data) {
                    Ok(_) => self.server.commits.entry(key).or_default().push(waiter),
                    Err(_) => self.respond(from, id, self.not_leader()),
                }
            }
        }
        Ok(())
    }

    /// The open transaction `token` of client `from`, its lease renewed; or the answer
    /// explaining why there is none.
    fn open_txn(&mut self, from: NodeId, token: TxnToken, now: Instant) -> Result<&Txn, Response> {
        if self.server.lead_term.is_none() {
            return Err(Response::TxnAborted {
                reason: "this node does not lead (leader changed)".into(),
            });
        }
        let lease = self.cfg.txn_lease;
        match self.server.txns.get_mut(&token) {
            Some(t) if t.owner == from => {
                t.expires = now + lease;
                Ok(&t.txn)
            }
            _ => Err(Response::TxnAborted {
                reason: "unknown transaction (leader changed, lease expired, or never begun)"
                    .into(),
            }),
        }
    }

    /// A read index arrived (or was refused).
    pub(super) fn on_read_state(&mut self, rs: ReadState) {
        let Some(w) = self.server.reads.remove(&rs.ctx) else {
            return;
        };
        match rs.index {
            Some(index) => self.server.ready_reads.push((index, w)),
            None => {
                let resp = self.not_leader();
                reply(&self.ep, w, resp);
            }
        }
    }

    /// Answers the clients waiting for `applied`'s command.
    pub(super) fn answer_applied(&mut self, applied: &Applied) {
        let Some(key) = applied.request else { return };
        let Some(waiters) = self.server.commits.remove(&key) else {
            return;
        };
        let resp = match &applied.outcome {
            Some(o) => Response::Outcome(o.clone()),
            None => Response::Error(format!(
                "commit {} of client {} was superseded by a later one",
                key.1, key.0
            )),
        };
        for w in waiters {
            reply(&self.ep, w, resp.clone());
        }
    }

    /// After a round of Readies: drop state of a lost leadership, and open the
    /// transactions whose read index is now applied.
    pub(super) async fn after_ready(&mut self) -> Result<(), NodeError> {
        self.check_leadership();
        let Some(term) = self.server.lead_term else {
            return Ok(());
        };
        let applied = self.sm.applied().0;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.server.ready_reads)
            .into_iter()
            .partition(|(i, _)| *i <= applied);
        self.server.ready_reads = waiting;
        for (_, w) in due {
            let txn = self.sm.db().begin();
            let snapshot = match txn.get(APPLIED_KEY).await {
                Ok(v) => v.as_deref().and_then(decode_applied).map_or(0, |(i, _)| i),
                Err(e) => {
                    reply(&self.ep, w, read_failure(e)?);
                    continue;
                }
            };
            self.server.next_token += 1;
            let token = TxnToken {
                term,
                n: self.server.next_token,
            };
            let expires = time::now() + self.cfg.txn_lease;
            self.server.txns.insert(
                token,
                OpenTxn {
                    owner: w.from,
                    txn,
                    expires,
                },
            );
            reply(&self.ep, w, Response::Begun { token, snapshot });
        }
        Ok(())
    }
}

/// A failed engine read: fail-stop errors stop the node; anything else ends the
/// client's transaction.
fn read_failure(e: crate::Error) -> Result<Response, NodeError> {
    if e.is_fail_stop() || e.is_corruption() {
        return Err(NodeError::Db(e));
    }
    Ok(Response::TxnAborted {
        reason: format!("read failed: {e}"),
    })
}
