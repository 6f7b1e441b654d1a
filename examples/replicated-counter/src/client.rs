//! A client: one operation at a time, each with a timeout. An increment either comes
//! back acknowledged (durable) or its outcome is unknown (it may or may not have been
//! applied); clients never retry, so an unknown increment is applied at most once.

use crate::{Msg, CLUSTER_ID};
use sim_net::{Config, Endpoint};
use sim_runtime::time::{self, Duration};
use sim_runtime::NodeId;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;

/// What became of an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrOutcome {
    /// The node acknowledged it: it must survive anything.
    Acked,
    /// No answer in time: applied or not, nobody knows.
    Unknown,
}

/// A client endpoint talking to the nodes at `peers` (node `i` at index `i - 1`).
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint<Msg>,
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
            next_seq: 1,
            next_req: 1,
            timeout,
        })
    }

    /// The sequence number the next increment will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Sends the next increment to `node` and waits for its acknowledgement.
    pub async fn incr(&mut self, node: NodeId) -> IncrOutcome {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.endpoint.send(node, Msg::Incr { seq }).is_err() {
            return IncrOutcome::Unknown;
        }
        let acked = self
            .wait_for(|m| matches!(m, Msg::IncrOk { seq: s } if *s == seq))
            .await;
        if acked.is_some() {
            IncrOutcome::Acked
        } else {
            IncrOutcome::Unknown
        }
    }

    /// Asks `node` for its view of every slot.
    pub async fn read(&mut self, node: NodeId) -> Option<Vec<u64>> {
        let req = self.next_req;
        self.next_req += 1;
        self.endpoint.send(node, Msg::Read { req }).ok()?;
        match self
            .wait_for(|m| matches!(m, Msg::ReadOk { req: r, .. } if *r == req))
            .await?
        {
            Msg::ReadOk { slots, .. } => Some(slots),
            _ => None,
        }
    }

    /// Asks `node` for the last operation it applied per client: `client → seq`.
    pub async fn applied(&mut self, node: NodeId) -> Option<BTreeMap<u64, u64>> {
        let req = self.next_req;
        self.next_req += 1;
        self.endpoint.send(node, Msg::Applied { req }).ok()?;
        match self
            .wait_for(|m| matches!(m, Msg::AppliedOk { req: r, .. } if *r == req))
            .await?
        {
            Msg::AppliedOk { last, .. } => Some(last.into_iter().collect()),
            _ => None,
        }
    }

    /// The first message matching `want` within the timeout; others are dropped (late
    /// answers to earlier operations).
    async fn wait_for(&self, want: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let deadline = time::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(time::now());
            match time::timeout(left, self.endpoint.recv()).await {
                Ok((_, msg)) if want(&msg) => return Some(msg),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}
