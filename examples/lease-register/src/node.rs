//! One node: follower, candidate or leader (the protocol is in the crate docs).
//!
//! Every timer that matters for safety is a [`Sleep`] made when its interval starts
//! and asked [`Sleep::is_elapsed`] when it is needed: its deadline is in the
//! simulator's global time, so it runs at the node's clock *rate* (drift applies) but
//! a clock jump does not move it, and the answer never waits for a task to be
//! scheduled (a paused node that resumes sees its lease over at once).

use crate::store::{state_records, Record, Store};
use crate::{Msg, Options, State, Versioned, CLIENT_ID_BASE, CLUSTER_ID};
use rand::Rng;
use sim_net::{Config, Endpoint};
use sim_runtime::time::{self, Sleep};
use std::collections::{BTreeMap, BTreeSet};
use std::io;

/// A client's write waiting for its commit.
#[derive(Debug, Clone)]
struct Pending {
    client: u64,
    req: u64,
    seq: u64,
    key: String,
    value: i64,
}

/// A batch on its way to a majority (batch 0 of an epoch: the write-back).
struct Batch {
    id: u64,
    state: State,
    acks: BTreeSet<u64>,
    writes: Vec<Pending>,
}

/// How long one lease round lets the leader serve: a timer, and (for the
/// `Options::lease_by_clock` mistake only) the clock reading it would end at.
struct Lease {
    timer: Sleep,
    clock_end: time::Instant,
}

impl Lease {
    fn new(d: std::time::Duration) -> Lease {
        Lease {
            timer: time::sleep(d),
            clock_end: time::now() + d,
        }
    }

    fn live(&self, by_clock: bool) -> bool {
        if by_clock {
            time::now() < self.clock_end
        } else {
            !self.timer.is_elapsed()
        }
    }
}

struct Leader {
    epoch: u64,
    /// The write-back of the merged state reached a majority: serving.
    ready: bool,
    /// What a majority holds: reads are served from this only.
    committed: State,
    next_version: u64,
    next_batch: u64,
    inflight: Option<Batch>,
    queued: Vec<Pending>,
    next_round: u64,
    /// Lease rounds not yet answered by a majority: their leases, started with them.
    rounds: BTreeMap<u64, (Lease, BTreeSet<u64>)>,
    /// The lease of the newest round a majority answered, and that round.
    lease: Option<(u64, Lease)>,
}

enum Role {
    Follower,
    Candidate {
        epoch: u64,
        votes: BTreeSet<u64>,
        merged: State,
        until: Sleep,
    },
    Leader(Box<Leader>),
}

struct Node {
    opts: Options,
    endpoint: Endpoint<Msg>,
    store: Store,
    /// The highest epoch granted and to whom (durable).
    promised: (u64, u64),
    /// The promise to `promised.1` lasts until this fires.
    promise: Option<Sleep>,
    /// A restarted node grants nothing until this fires (it may have forgotten a
    /// promise it made before the restart).
    quarantine: Sleep,
    /// Everything accepted here (durable).
    state: State,
    max_seen: u64,
    role: Role,
}

/// Runs node `opts.id` until an I/O error stops it (fail-stop: the error is returned
/// and the supervisor restarts the node, which recovers from its log).
pub async fn run(opts: Options) -> io::Result<()> {
    let (store, recovered) = Store::open(&opts.dir, &format!("lease-{}", opts.id)).await?;
    let endpoint = Endpoint::<Msg>::bind(opts.listen(), Config::new(CLUSTER_ID, opts.id)).await?;
    for (i, addr) in opts.peers.iter().enumerate() {
        let id = i as u64 + 1;
        if id != opts.id {
            endpoint.add_peer(id, *addr);
        }
    }
    let mut node = Node {
        quarantine: time::sleep(opts.lease),
        opts,
        endpoint,
        store,
        promised: recovered.promised,
        promise: None,
        state: recovered.state,
        max_seen: recovered.promised.0,
        role: Role::Follower,
    };
    let mut tick = time::sleep(node.opts.renew_every);
    loop {
        tokio::select! {
            biased;
            () = &mut tick => {
                tick = time::sleep(node.opts.renew_every);
                node.on_tick().await?;
            }
            (from, msg) = node.endpoint.recv() => node.handle(from, msg).await?,
        }
    }
}

fn live(s: &Option<Sleep>) -> bool {
    s.as_ref().is_some_and(|s| !s.is_elapsed())
}

impl Node {
    fn peers(&self) -> impl Iterator<Item = u64> {
        let me = self.opts.id;
        (1..=self.opts.peers.len() as u64).filter(move |p| *p != me)
    }

    fn broadcast(&self, msg: &Msg) {
        for p in self.peers() {
            let _ = self.endpoint.send_ref(p, msg);
        }
    }

    fn send(&self, to: u64, msg: Msg) {
        let _ = self.endpoint.send(to, msg);
    }

    /// Whether this node may grant an epoch to a new candidate (itself included).
    fn can_grant(&self) -> bool {
        matches!(self.role, Role::Follower) && !live(&self.promise) && self.quarantine.is_elapsed()
    }

    /// Whether a majority acknowledged `acks` (the leader counts itself).
    fn quorum(&self, acks: &BTreeSet<u64>) -> bool {
        acks.len() + 1 >= self.opts.majority()
    }

    async fn persist(&mut self, records: &[Record]) -> io::Result<()> {
        self.store.put(records).await
    }

    async fn promise_to(&mut self, epoch: u64, to: u64) -> io::Result<()> {
        self.persist(&[Record::Promise { epoch, to }]).await?;
        self.promised = (epoch, to);
        self.max_seen = self.max_seen.max(epoch);
        Ok(())
    }

    fn step_down(&mut self) {
        if let (Role::Leader(_), Some(hook)) = (&self.role, &self.opts.on_lead) {
            (hook.0)(None);
        }
        self.role = Role::Follower;
    }

    async fn on_tick(&mut self) -> io::Result<()> {
        match &mut self.role {
            Role::Follower => {
                let stream = format!("lease.election/{}", self.opts.id);
                if self.can_grant() && sim_runtime::rng::stream(stream).gen_bool(0.3) {
                    self.start_candidacy().await?;
                }
            }
            Role::Candidate { epoch, until, .. } => {
                if until.is_elapsed() {
                    self.step_down();
                } else {
                    let msg = Msg::Grant { epoch: *epoch };
                    self.broadcast(&msg);
                }
            }
            Role::Leader(l) => {
                let round = l.next_round;
                l.next_round += 1;
                let timer = Lease::new(self.opts.lease.saturating_sub(self.opts.margin));
                l.rounds.insert(round, (timer, BTreeSet::new()));
                // Rounds older than a lease can no longer extend it.
                l.rounds = l.rounds.split_off(&round.saturating_sub(8));
                let (epoch, retransmit) =
                    (l.epoch, l.inflight.as_ref().map(|b| accept(l.epoch, b)));
                self.broadcast(&Msg::Lease { epoch, round });
                if let Some(msg) = retransmit {
                    self.broadcast(&msg);
                }
            }
        }
        Ok(())
    }

    async fn start_candidacy(&mut self) -> io::Result<()> {
        let epoch = self.promised.0.max(self.max_seen) + 1;
        self.promise_to(epoch, self.opts.id).await?;
        self.promise = None;
        self.role = Role::Candidate {
            epoch,
            votes: BTreeSet::new(),
            merged: self.state.clone(),
            until: time::sleep(self.opts.candidacy),
        };
        self.broadcast(&Msg::Grant { epoch });
        Ok(())
    }

    async fn become_leader(&mut self, epoch: u64, merged: State) -> io::Result<()> {
        self.persist(&state_records(&merged)).await?;
        self.state.merge(&merged);
        let writeback = Batch {
            id: 0,
            state: self.state.clone(),
            acks: BTreeSet::new(),
            writes: Vec::new(),
        };
        self.broadcast(&accept(epoch, &writeback));
        if let Some(hook) = &self.opts.on_lead {
            (hook.0)(Some(epoch));
        }
        self.role = Role::Leader(Box::new(Leader {
            epoch,
            ready: false,
            committed: State::default(),
            next_version: 1,
            next_batch: 1,
            inflight: Some(writeback),
            queued: Vec::new(),
            next_round: 0,
            rounds: BTreeMap::new(),
            lease: None,
        }));
        self.on_tick().await
    }

    /// Sends the queued writes as the next batch, if none is in flight.
    async fn next_batch(&mut self) -> io::Result<()> {
        let Role::Leader(l) = &mut self.role else {
            return Ok(());
        };
        if l.inflight.is_some() || l.queued.is_empty() || !l.ready {
            return Ok(());
        }
        let writes = std::mem::take(&mut l.queued);
        let mut delta = State::default();
        for w in &writes {
            let v = Versioned {
                epoch: l.epoch,
                version: l.next_version,
                value: w.value,
            };
            l.next_version += 1;
            delta.regs.insert(w.key.clone(), v);
            delta.seen.insert(w.client, w.seq);
        }
        let batch = Batch {
            id: l.next_batch,
            state: delta,
            acks: BTreeSet::new(),
            writes,
        };
        l.next_batch += 1;
        let msg = accept(l.epoch, &batch);
        let records = state_records(&batch.state);
        l.inflight = Some(batch);
        self.persist(&records).await?;
        if let Role::Leader(l) = &self.role {
            if let Some(b) = &l.inflight {
                self.state.merge(&b.state);
            }
        }
        self.broadcast(&msg);
        Ok(())
    }

    fn serving(&self) -> Option<&Leader> {
        match &self.role {
            Role::Leader(l) if l.ready => {
                let by_clock = self.opts.lease_by_clock;
                let lease_live = l.lease.as_ref().is_some_and(|(_, s)| s.live(by_clock));
                (lease_live || self.opts.stale_reads).then_some(&**l)
            }
            _ => None,
        }
    }

    fn hint(&self) -> Option<u64> {
        live(&self.promise).then_some(self.promised.1)
    }

    async fn handle(&mut self, from: u64, msg: Msg) -> io::Result<()> {
        match msg {
            Msg::Read { req, key } if from > CLIENT_ID_BASE => {
                let reply = match self.serving() {
                    Some(l) => Msg::ReadOk {
                        req,
                        value: l.committed.regs.get(&key).map(|v| v.value),
                    },
                    None => Msg::NotLeader {
                        req,
                        hint: self.hint(),
                    },
                };
                self.send(from, reply);
            }
            Msg::Write {
                req,
                seq,
                key,
                value,
            } if from > CLIENT_ID_BASE => {
                let hint = self.hint();
                match &mut self.role {
                    Role::Leader(l) if l.ready => {
                        let done = l.committed.seen.get(&from).is_some_and(|s| *s >= seq);
                        let waiting = l
                            .queued
                            .iter()
                            .chain(l.inflight.iter().flat_map(|b| &b.writes));
                        let dup = done || waiting.clone().any(|w| w.client == from && w.seq == seq);
                        if !dup {
                            l.queued.push(Pending {
                                client: from,
                                req,
                                seq,
                                key,
                                value,
                            });
                            self.next_batch().await?;
                        }
                    }
                    _ => self.send(from, Msg::NotLeader { req, hint }),
                }
            }
            Msg::Grant { epoch } => {
                if self.promised == (epoch, from) {
                    self.promise = Some(time::sleep(self.opts.lease));
                } else if epoch > self.promised.0 && self.can_grant() {
                    self.promise_to(epoch, from).await?;
                    self.promise = Some(time::sleep(self.opts.lease));
                } else {
                    let granted = self.promised.0;
                    self.send(from, Msg::Refused { granted });
                    return Ok(());
                }
                let state = self.state.clone();
                self.send(from, Msg::GrantOk { epoch, state });
            }
            Msg::GrantOk { epoch, state } => {
                let majority = self.opts.majority();
                if let Role::Candidate {
                    epoch: mine,
                    votes,
                    merged,
                    ..
                } = &mut self.role
                {
                    if *mine == epoch {
                        votes.insert(from);
                        merged.merge(&state);
                        if votes.len() + 1 >= majority {
                            let merged = std::mem::take(merged);
                            self.become_leader(epoch, merged).await?;
                        }
                    }
                }
            }
            Msg::Refused { granted } => {
                self.max_seen = self.max_seen.max(granted);
                let mine = match &self.role {
                    Role::Follower => None,
                    Role::Candidate { epoch, .. } => Some(*epoch),
                    Role::Leader(l) => Some(l.epoch),
                };
                if mine.is_some_and(|e| e < granted) {
                    self.step_down();
                }
            }
            Msg::Accept { epoch, id, state } => {
                if !self.follow(epoch, from).await? {
                    return Ok(());
                }
                let mut delta = State::default();
                for (k, v) in &state.regs {
                    if self
                        .state
                        .regs
                        .get(k)
                        .map_or(true, |m| v.order() > m.order())
                    {
                        delta.regs.insert(k.clone(), *v);
                    }
                }
                for (c, s) in &state.seen {
                    if self.state.seen.get(c).map_or(true, |m| s > m) {
                        delta.seen.insert(*c, *s);
                    }
                }
                self.persist(&state_records(&delta)).await?;
                self.state.merge(&delta);
                self.send(from, Msg::AcceptOk { epoch, id });
            }
            Msg::AcceptOk { epoch, id } => self.accepted(epoch, id, from).await?,
            Msg::Lease { epoch, round } => {
                if self.follow(epoch, from).await? {
                    self.promise = Some(time::sleep(self.opts.lease));
                    self.send(from, Msg::LeaseOk { epoch, round });
                }
            }
            Msg::LeaseOk { epoch, round } => {
                let majority = self.opts.majority();
                if let Role::Leader(l) = &mut self.role {
                    if l.epoch == epoch {
                        if let Some((_, acks)) = l.rounds.get_mut(&round) {
                            acks.insert(from);
                            let newer = l.lease.as_ref().map_or(true, |(r, _)| round > *r);
                            if acks.len() + 1 >= majority && newer {
                                if let Some((timer, _)) = l.rounds.remove(&round) {
                                    l.lease = Some((round, timer));
                                }
                            }
                        }
                    }
                }
            }
            Msg::Read { .. }
            | Msg::Write { .. }
            | Msg::ReadOk { .. }
            | Msg::WriteOk { .. }
            | Msg::NotLeader { .. } => {}
        }
        Ok(())
    }

    /// A message of leader `from` for `epoch`: whether to follow it. An epoch above
    /// ours was granted by a majority: we step down and promise it too (durably). One
    /// below what we granted is refused.
    async fn follow(&mut self, epoch: u64, from: u64) -> io::Result<bool> {
        if epoch < self.promised.0 {
            let granted = self.promised.0;
            self.send(from, Msg::Refused { granted });
            return Ok(false);
        }
        if epoch > self.promised.0 {
            self.step_down();
            self.promise_to(epoch, from).await?;
        }
        Ok(self.promised == (epoch, from))
    }

    async fn accepted(&mut self, epoch: u64, id: u64, from: u64) -> io::Result<()> {
        let Role::Leader(l) = &mut self.role else {
            return Ok(());
        };
        let Some(b) = l
            .inflight
            .as_mut()
            .filter(|b| l.epoch == epoch && b.id == id)
        else {
            return Ok(());
        };
        b.acks.insert(from);
        let acks = b.acks.clone();
        if !self.quorum(&acks) {
            return Ok(());
        }
        let Role::Leader(l) = &mut self.role else {
            return Ok(());
        };
        let Some(b) = l.inflight.take() else {
            return Ok(());
        };
        l.committed.merge(&b.state);
        l.ready = true;
        for w in &b.writes {
            let _ = self.endpoint.send(w.client, Msg::WriteOk { req: w.req });
        }
        self.next_batch().await
    }
}

fn accept(epoch: u64, b: &Batch) -> Msg {
    Msg::Accept {
        epoch,
        id: b.id,
        state: b.state.clone(),
    }
}
