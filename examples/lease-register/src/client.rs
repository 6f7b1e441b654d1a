//! A client: one operation at a time. It sends the operation to a node; a
//! [`Msg::NotLeader`] answer means nothing happened there, so it follows the hint (or
//! the next node) and tries again, up to once per node. No answer within the timeout
//! leaves the outcome unknown; a write is never re-sent after that.

use crate::{Msg, CLUSTER_ID};
use sim_net::{Config, Endpoint};
use sim_runtime::time::{self, Duration};
use std::io;
use std::net::SocketAddr;

/// What became of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<T> {
    /// It happened, with this result.
    Ok(T),
    /// It did not happen (no node would serve it).
    Failed,
    /// Nobody knows.
    Unknown,
}

/// A client endpoint talking to the nodes at `peers` (node `i` at index `i - 1`).
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint<Msg>,
    nodes: u64,
    next_seq: u64,
    next_req: u64,
    timeout: Duration,
}

impl Client {
    /// Binds client `id` (above [`crate::CLIENT_ID_BASE`]) at `listen`.
    pub async fn connect(
        id: u64,
        listen: SocketAddr,
        peers: &[SocketAddr],
        timeout: Duration,
    ) -> io::Result<Client> {
        let endpoint = Endpoint::bind(listen, Config::new(CLUSTER_ID, id)).await?;
        for (i, addr) in peers.iter().enumerate() {
            endpoint.add_peer(i as u64 + 1, *addr);
        }
        Ok(Client {
            endpoint,
            nodes: peers.len() as u64,
            next_seq: 1,
            next_req: 1,
            timeout,
        })
    }

    /// Reads `key`, starting at node `first`.
    pub async fn read(&mut self, first: u64, key: &str) -> Outcome<Option<i64>> {
        let key = key.to_string();
        self.call(first, |req| Msg::Read {
            req,
            key: key.clone(),
        })
        .await
        .map(|m| match m {
            Msg::ReadOk { value, .. } => value,
            _ => None,
        })
    }

    /// Writes `value` to `key`, starting at node `first`.
    pub async fn write(&mut self, first: u64, key: &str, value: i64) -> Outcome<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = key.to_string();
        self.call(first, |req| Msg::Write {
            req,
            seq,
            key: key.clone(),
            value,
        })
        .await
        .map(|_| ())
    }

    async fn call(&mut self, first: u64, msg: impl Fn(u64) -> Msg) -> Outcome<Msg> {
        let mut node = first;
        for _ in 0..self.nodes {
            let req = self.next_req;
            self.next_req += 1;
            if self.endpoint.send(node, msg(req)).is_err() {
                return Outcome::Unknown;
            }
            match self.answer(req).await {
                Some(Msg::NotLeader { hint, .. }) => {
                    node = hint
                        .filter(|h| *h != node && (1..=self.nodes).contains(h))
                        .unwrap_or(node % self.nodes + 1);
                }
                Some(m) => return Outcome::Ok(m),
                None => return Outcome::Unknown,
            }
        }
        Outcome::Failed
    }

    /// The answer to `req` within the timeout; others are dropped (late answers).
    async fn answer(&self, req: u64) -> Option<Msg> {
        let deadline = time::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(time::now());
            match time::timeout(left, self.endpoint.recv()).await {
                Ok((_, m)) if answers(&m, req) => return Some(m),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

fn answers(m: &Msg, req: u64) -> bool {
    match m {
        Msg::ReadOk { req: r, .. } | Msg::WriteOk { req: r } | Msg::NotLeader { req: r, .. } => {
            *r == req
        }
        _ => false,
    }
}

impl<T> Outcome<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(t) => Outcome::Ok(f(t)),
            Outcome::Failed => Outcome::Failed,
            Outcome::Unknown => Outcome::Unknown,
        }
    }
}
