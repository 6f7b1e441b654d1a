//! An in-memory Raft cluster for the goldenscript and randomized tests.
//!
//! Each node's [`MemStorage`] *is* its disk: `advance` is the moment a Ready counts as
//! persisted, and a crash keeps exactly the storage (everything not advanced is lost).
//! The Ready loop is the contract of the module doc: persist → advance → check that
//! every message of that Ready depends only on persisted state
//! ([`check_send_durable`]) → send (possibly much later: `hold`/`persist`) → apply. The safety checker observes every node after every call into it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::raft::safety::{check_send_durable, EntryId, Event, NodeView, SafetyChecker, Violation};
use crate::raft::{
    Config, Entry, Error, Index, MemStorage, Message, NodeId, RawNode, ReadState, Role, Storage,
};

/// Why a cluster operation failed the test.
#[derive(Debug)]
pub(super) enum Failure {
    /// The safety checker found a broken property.
    Safety(Violation, Vec<String>),
    /// A message was sent before what it depends on was persisted.
    Durability(String),
    /// The harness was misused, or the node returned an unexpected error.
    Harness(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Safety(v, recent) => {
                write!(
                    f,
                    "SAFETY VIOLATION: {v}\nlast events:\n  {}",
                    recent.join("\n  ")
                )
            }
            Failure::Durability(d) => write!(f, "persist-before-send broken: {d}"),
            Failure::Harness(h) => write!(f, "{h}"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Harness(format!("raft error: {e}"))
    }
}

pub(super) type Res<T> = Result<T, Failure>;

/// A message in flight.
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
}

/// One node and its surroundings.
pub(super) struct Slot {
    /// `None` while crashed.
    pub node: Option<RawNode<MemStorage>>,
    /// The disk while crashed.
    disk: MemStorage,
    /// The state machine: every applied entry (after the snapshot it was restored from).
    pub sm: Vec<(Index, Option<Vec<u8>>)>,
    sm_index: Index,
    /// Ready processing suspended (`hold`): the node's new state stays unpersisted.
    pub held: bool,
    /// Messages of a persisted Ready not yet sent (`persist` while held).
    pub unsent: Vec<(NodeId, Message)>,
    /// Read states waiting for the state machine to catch up.
    reads: Vec<ReadState>,
    incarnation: u64,
    last: Option<(Role, u64, Option<NodeId>)>,
}

/// The cluster.
pub(super) struct Cluster {
    template: Config,
    seed: u64,
    pub nodes: BTreeMap<NodeId, Slot>,
    pub net: VecDeque<Envelope>,
    /// Directed links that drop everything.
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub checker: SafetyChecker,
    /// Output lines for goldenscripts (collected only when `verbose`).
    pub out: Vec<String>,
    pub verbose: bool,
    /// What happened, by kind (for the randomized test's "did every fault fire" check).
    pub counts: BTreeMap<&'static str, u64>,
}

fn node_rng(seed: u64, id: NodeId, incarnation: u64) -> Box<ChaCha8Rng> {
    let s = seed
        ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ incarnation.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    Box::new(ChaCha8Rng::seed_from_u64(s))
}

/// Snapshot data: `index:hex` (or `index:-` for a no-op), comma-separated.
pub(super) fn encode_sm(sm: &[(Index, Option<Vec<u8>>)]) -> Vec<u8> {
    let parts: Vec<String> = sm
        .iter()
        .map(|(i, d)| match d {
            None => format!("{i}:-"),
            Some(d) => format!(
                "{i}:{}",
                d.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        })
        .collect();
    parts.join(",").into_bytes()
}

fn decode_sm(data: &[u8]) -> Res<Vec<(Index, Option<Vec<u8>>)>> {
    let bad = || Failure::Harness("bad snapshot data".into());
    let text = std::str::from_utf8(data).map_err(|_| bad())?;
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (i, d) = part.split_once(':').ok_or_else(bad)?;
        let i: Index = i.parse().map_err(|_| bad())?;
        let d = if d == "-" {
            None
        } else {
            let bytes: Result<Vec<u8>, _> = (0..d.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(d.get(k..k + 2).unwrap_or("zz"), 16))
                .collect();
            Some(bytes.map_err(|_| bad())?)
        };
        out.push((i, d));
    }
    Ok(out)
}

impl Cluster {
    /// `n` nodes, ids 1..=n, configured like `template` (its id and voters replaced).
    pub fn new(n: u64, template: Config, seed: u64) -> Res<Cluster> {
        let voters: BTreeSet<NodeId> = (1..=n).collect();
        let mut c = Cluster {
            template: Config {
                voters: voters.clone(),
                ..template
            },
            seed,
            nodes: BTreeMap::new(),
            net: VecDeque::new(),
            blocked: BTreeSet::new(),
            checker: SafetyChecker::new(),
            out: Vec::new(),
            verbose: true,
            counts: BTreeMap::new(),
        };
        for id in voters {
            let node = RawNode::new(c.config(id), MemStorage::new(), node_rng(seed, id, 0))?;
            let slot = Slot {
                node: Some(node),
                disk: MemStorage::new(),
                sm: Vec::new(),
                sm_index: 0,
                held: false,
                unsent: Vec::new(),
                reads: Vec::new(),
                incarnation: 0,
                last: None,
            };
            c.nodes.insert(id, slot);
            c.after(id)?;
        }
        Ok(c)
    }

    fn config(&self, id: NodeId) -> Config {
        Config {
            id,
            ..self.template.clone()
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|s| s.node.is_some())
    }

    pub fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn say(&mut self, line: String) {
        if self.verbose {
            self.out.push(line);
        }
    }

    pub fn node(&self, id: NodeId) -> Res<&RawNode<MemStorage>> {
        self.nodes
            .get(&id)
            .ok_or_else(|| Failure::Harness(format!("no node {id}")))?
            .node
            .as_ref()
            .ok_or_else(|| Failure::Harness(format!("node {id} is down")))
    }

    fn node_mut(&mut self, id: NodeId) -> Res<&mut RawNode<MemStorage>> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| Failure::Harness(format!("no node {id}")))?
            .node
            .as_mut()
            .ok_or_else(|| Failure::Harness(format!("node {id} is down")))
    }

    fn safety(&self, v: Violation) -> Failure {
        Failure::Safety(v, self.checker.recent_events())
    }

    /// The current leaders (by their own account), highest term first.
    pub fn leaders(&self) -> Vec<NodeId> {
        let mut ls: Vec<(u64, NodeId)> = self
            .nodes
            .iter()
            .filter_map(|(&id, s)| {
                s.node
                    .as_ref()
                    .filter(|n| n.role() == Role::Leader)
                    .map(|n| (n.term(), id))
            })
            .collect();
        ls.sort_unstable_by(|a, b| b.cmp(a));
        ls.into_iter().map(|(_, id)| id).collect()
    }

    pub fn tick(&mut self, id: NodeId) -> Res<()> {
        self.node_mut(id)?.tick();
        self.after(id)
    }

    pub fn campaign(&mut self, id: NodeId) -> Res<()> {
        self.node_mut(id)?.campaign();
        self.after(id)
    }

    pub fn propose(&mut self, id: NodeId, data: &[u8]) -> Res<Result<Index, Error>> {
        let r = self.node_mut(id)?.propose(data.to_vec());
        self.after(id)?;
        Ok(r)
    }

    pub fn read(&mut self, id: NodeId, ctx: &[u8]) -> Res<Result<(), Error>> {
        let r = self.node_mut(id)?.read_index(ctx.to_vec());
        self.after(id)?;
        Ok(r)
    }

    /// Delivers one envelope (dropped if its link is blocked or its target is down).
    pub fn deliver(&mut self, env: Envelope) -> Res<()> {
        let Envelope { from, to, msg } = env;
        if self.blocked.contains(&(from, to)) || !self.is_up(to) {
            self.count("message lost to a partition or a down node");
            self.say(format!("n{from}→n{to} {msg} [dropped]"));
            return Ok(());
        }
        self.count("message delivered");
        self.say(format!("n{from}→n{to} {msg}"));
        self.node_mut(to)?.step(from, msg)?;
        self.after(to)
    }

    /// Delivers everything now in flight to `to` (all nodes if empty); messages sent
    /// meanwhile stay queued.
    pub fn deliver_all(&mut self, to: &[NodeId]) -> Res<usize> {
        let (now, later): (VecDeque<Envelope>, VecDeque<Envelope>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|e| to.is_empty() || to.contains(&e.to));
        self.net = later;
        let n = now.len();
        for env in now {
            self.deliver(env)?;
        }
        Ok(n)
    }

    /// Delivers until nothing is in flight.
    pub fn stabilize(&mut self) -> Res<()> {
        for _ in 0..1000 {
            if self.deliver_all(&[])? == 0 {
                return Ok(());
            }
        }
        Err(Failure::Harness(
            "stabilize: still messages in flight after 1000 rounds".into(),
        ))
    }

    /// Observes `id` and, unless held, runs its Ready loop.
    pub fn after(&mut self, id: NodeId) -> Res<()> {
        self.observe(id)?;
        self.report_role(id);
        while !self.nodes.get(&id).is_some_and(|s| s.held) && self.node(id)?.has_ready() {
            let msgs = self.persist(id)?;
            self.send(id, msgs)?;
        }
        Ok(())
    }

    fn observe(&mut self, id: NodeId) -> Res<()> {
        let view = NodeView::of(self.node(id)?);
        self.checker.observe(id, view).map_err(|v| self.safety(v))
    }

    fn report_role(&mut self, id: NodeId) {
        let Some(slot) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(node) = slot.node.as_ref() else {
            return;
        };
        let now = (node.role(), node.term(), node.leader());
        if slot.last == Some(now) {
            return;
        }
        slot.last = Some(now);
        let role = format!("{:?}", now.0).to_lowercase();
        let leader = now
            .2
            .filter(|&l| l != id)
            .map_or(String::new(), |l| format!(" leader={l}"));
        self.say(format!("n{id}: {role} term={}{leader}", now.1));
    }

    /// Takes a Ready, persists it (`advance`), applies it; returns its messages.
    pub fn persist(&mut self, id: NodeId) -> Res<Vec<(NodeId, Message)>> {
        let node = self.node_mut(id)?;
        let mut rd = node.ready()?;
        node.advance(&rd)?;
        // The contract: once its Ready is persisted, every message must depend only on
        // persisted state. (Checked now, not at send time: a message sent later is just
        // delayed, and was true when persisted.)
        for (to, msg) in &rd.messages {
            check_send_durable(node.storage(), *to, msg).map_err(Failure::Durability)?;
        }
        let msgs = std::mem::take(&mut rd.messages);
        if let Some(s) = &rd.snapshot {
            let sm = decode_sm(&s.data)?;
            let slot = self.slot(id)?;
            slot.sm = sm;
            slot.sm_index = s.meta.index;
            self.count("snapshot installed from a leader");
            self.say(format!(
                "n{id}: install snapshot {}@{}",
                s.meta.index, s.meta.term
            ));
            let ev = Event::ApplySnapshot {
                node: id,
                index: s.meta.index,
                term: s.meta.term,
            };
            self.checker.record(ev).map_err(|v| self.safety(v))?;
        }
        for e in &rd.committed_entries {
            self.apply(id, e)?;
        }
        self.slot(id)?.reads.append(&mut rd.read_states);
        self.serve_reads(id)?;
        Ok(msgs)
    }

    fn slot(&mut self, id: NodeId) -> Res<&mut Slot> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| Failure::Harness(format!("no node {id}")))
    }

    fn apply(&mut self, id: NodeId, e: &Entry) -> Res<()> {
        let ev = Event::Apply {
            node: id,
            entry: EntryId::of(e),
        };
        self.checker.record(ev).map_err(|v| self.safety(v))?;
        let slot = self.slot(id)?;
        slot.sm.push((e.index, e.data.clone()));
        slot.sm_index = e.index;
        if e.data.is_some() {
            self.say(format!("n{id}: apply {e}"));
        }
        Ok(())
    }

    fn serve_reads(&mut self, id: NodeId) -> Res<()> {
        let slot = self.slot(id)?;
        let applied = slot.sm_index;
        let (ready, wait): (Vec<ReadState>, Vec<ReadState>) = std::mem::take(&mut slot.reads)
            .into_iter()
            .partition(|r| r.index.map_or(true, |i| i <= applied));
        slot.reads = wait;
        let values = slot.sm.iter().filter_map(|(_, d)| d.as_ref()).count();
        for r in ready {
            let ctx = String::from_utf8_lossy(&r.ctx).to_string();
            match r.index {
                Some(i) => self.say(format!(
                    "n{id}: read {ctx} served at index {i} (applied {applied}, {values} values)"
                )),
                None => self.say(format!("n{id}: read {ctx} refused")),
            }
        }
        Ok(())
    }

    /// Sends `msgs` from `id` (checked against its storage when their Ready was
    /// persisted).
    pub fn send(&mut self, id: NodeId, msgs: Vec<(NodeId, Message)>) -> Res<()> {
        for (to, msg) in msgs {
            self.net.push_back(Envelope { from: id, to, msg });
        }
        Ok(())
    }

    /// Suspends `id`'s Ready processing: new state stays unpersisted, nothing is sent.
    pub fn hold(&mut self, id: NodeId) -> Res<()> {
        self.node(id)?;
        self.slot(id)?.held = true;
        Ok(())
    }

    /// Persists `id`'s pending Ready but keeps its messages unsent.
    pub fn persist_only(&mut self, id: NodeId) -> Res<usize> {
        if !self.node(id)?.has_ready() {
            return Ok(0);
        }
        let msgs = self.persist(id)?;
        let n = msgs.len();
        self.slot(id)?.unsent.extend(msgs);
        Ok(n)
    }

    /// Resumes `id`'s Ready processing, sending what was persisted but unsent.
    pub fn release(&mut self, id: NodeId) -> Res<()> {
        let slot = self.slot(id)?;
        slot.held = false;
        let msgs = std::mem::take(&mut slot.unsent);
        self.send(id, msgs)?;
        self.after(id)
    }

    /// Power loss: keeps only the storage; in-flight messages to it are lost.
    pub fn crash(&mut self, id: NodeId) -> Res<()> {
        let slot = self.slot(id)?;
        let node = slot
            .node
            .take()
            .ok_or_else(|| Failure::Harness(format!("node {id} is already down")))?;
        let lost = if node.has_ready() {
            "crash losing unpersisted state"
        } else {
            "crash"
        };
        let unsent = if slot.unsent.is_empty() {
            None
        } else {
            Some("crash after persisting, before sending")
        };
        slot.disk = node.into_storage();
        slot.held = false;
        slot.unsent.clear();
        slot.reads.clear();
        slot.last = None;
        self.net.retain(|e| e.to != id);
        self.count(lost);
        if let Some(u) = unsent {
            self.count(u);
        }
        self.say(format!("n{id}: crashed"));
        Ok(())
    }

    /// Rebuilds a crashed node from its storage; the state machine restarts from the
    /// storage's snapshot and re-applies the committed log.
    pub fn restart(&mut self, id: NodeId) -> Res<()> {
        let (config, seed) = (self.config(id), self.seed);
        let slot = self.slot(id)?;
        if slot.node.is_some() {
            return Err(Failure::Harness(format!("node {id} is up")));
        }
        slot.incarnation += 1;
        slot.held = false;
        let disk = std::mem::take(&mut slot.disk);
        let snap = disk.snapshot().clone();
        slot.sm = decode_sm(&snap.data)?;
        slot.sm_index = snap.meta.index;
        slot.node = Some(RawNode::new(
            config,
            disk,
            node_rng(seed, id, slot.incarnation),
        )?);
        self.say(format!("n{id}: restarted"));
        self.checker
            .record(Event::Restart { node: id })
            .map_err(|v| self.safety(v))?;
        self.observe(id)?;
        if snap.meta.index > 0 {
            let ev = Event::ApplySnapshot {
                node: id,
                index: snap.meta.index,
                term: snap.meta.term,
            };
            self.checker.record(ev).map_err(|v| self.safety(v))?;
        }
        self.after(id)
    }

    /// The application snapshots its state machine at `index` (default: applied).
    pub fn snapshot(&mut self, id: NodeId, index: Option<Index>) -> Res<Result<Index, Error>> {
        let slot = self.slot(id)?;
        let index = index.unwrap_or(slot.sm_index);
        let prefix: Vec<_> = slot
            .sm
            .iter()
            .filter(|(i, _)| *i <= index)
            .cloned()
            .collect();
        let data = encode_sm(&prefix);
        let r = self.node_mut(id)?.snapshot(index, data).map(|()| index);
        self.after(id)?;
        Ok(r)
    }

    /// Compacts `id`'s log up to its snapshot.
    pub fn compact(&mut self, id: NodeId) -> Res<Result<Index, Error>> {
        let node = self.node_mut(id)?;
        let index = node.storage().snapshot().meta.index;
        let r = node.compact(index).map(|()| index);
        self.after(id)?;
        Ok(r)
    }

    /// Blocks every link between `group` and the other nodes.
    pub fn partition(&mut self, group: &[NodeId]) {
        for a in self.ids() {
            for b in self.ids() {
                if group.contains(&a) != group.contains(&b) {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Observes every live node (the runner does this after every command).
    pub fn check_all(&mut self) -> Res<()> {
        for id in self.ids() {
            if self.is_up(id) {
                self.observe(id)?;
                self.node(id)?
                    .verify_invariants()
                    .map_err(Failure::Harness)?;
            }
        }
        Ok(())
    }

    /// Applied values of `id`'s state machine, as text.
    pub fn values(&self, id: NodeId) -> Vec<String> {
        self.nodes.get(&id).map_or_else(Vec::new, |s| {
            s.sm.iter()
                .filter_map(|(_, d)| d.as_ref().map(|d| String::from_utf8_lossy(d).to_string()))
                .collect()
        })
    }

    /// The state machine's applied index.
    pub fn applied(&self, id: NodeId) -> Index {
        self.nodes.get(&id).map_or(0, |s| s.sm_index)
    }
}
