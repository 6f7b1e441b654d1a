//! One replica: recovery from its data directory, then the task loop that owns the
//! Raft node (ticks, peer messages, client requests) and honours the persist-then-send
//! contract on every Ready.
//!
//! ## Recovery (after a crash at any point)
//! 1. Open the hard state, the log (cutting a torn tail) and the engine.
//! 2. The engine's applied `(A, term)` must not be before the log's compaction point
//!    (the log is compacted only behind durable applies). If the log does not hold
//!    `A` with that term, a crash interrupted a snapshot install after the engine took
//!    it: finish the install by resetting the log to start at `A`.
//! 3. A crash between persisting a Ready's entries and its hard state leaves entries of
//!    a term newer than the stored term (nothing of that Ready was sent, so no vote was
//!    cast in it): the node adopts that term with no vote. The stored commit index is
//!    raised to `A` (an interrupted snapshot install).
//! 4. Rebuild the in-memory [`MemStorage`] (with a fresh snapshot of the engine when
//!    the log is compacted, so the node can still send one), and start the Raft node
//!    with `applied = A`: entries up to `A` are never applied twice.
//!
//! ## Model
//! One task owns everything: it waits for a tick, a message or shutdown, handles it,
//! then drains every Ready in the contract's order (§5.2 and §5.3 need votes and
//! acknowledgements durable before they are sent): install a received snapshot into the
//! engine and reset the log to it (§7), append entries, save the hard state, `advance`,
//! send, apply committed entries one engine transaction each, serve read states. After
//! the Readies it compacts the log once enough applied entries pile up.
//!
//! ## Invariants
//! - Nothing is sent before the Ready that produced it is durable; nothing is applied
//!   before it is durably committed (hard state saved).
//! - The log's compaction point ≤ the engine's applied index ≤ the stored commit index.
//!
//! ## Fault model
//! A crash at any instruction is recovered by the steps above; any I/O or engine error
//! ends the task (fail-stop). Raft messages from anyone but another voter (a client,
//! a stranger, itself) are dropped with an error log, whether or not the transport
//! authenticated the sender (DECISIONS D50).
//!
//! ## Non-goals
//! - Pipelining persistence with network I/O (each Ready is handled to completion).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use sim_net::{Config as NetConfig, Endpoint};
use sim_runtime::sync::Signal;
use sim_runtime::time;

use crate::raft::safety::NodeView;
use crate::raft::{
    Config as RaftConfig, Entry, HardState, Index, MemStorage, RawNode, Snapshot, SnapshotMeta,
    Storage, Term,
};
use crate::replicated::logfile::{HardStateFile, LogFile};
use crate::replicated::server::Server;
use crate::replicated::state::StateMachine;
use crate::replicated::{NodeConfig, NodeError, Wire};

/// Messages handled per wake-up before the loop persists and sends again.
const MAX_BATCH: usize = 256;
/// Attempts to bind the listen address (it may still be held by a stopped incarnation).
const BIND_ATTEMPTS: usize = 50;

/// Runs replica `cfg.id` until `shutdown` has been raised (returns `Ok` after a clean
/// shutdown; a signal raised before the call counts) or a fail-stop error (returns it:
/// the caller restarts the node, which recovers from disk).
pub async fn run_node(cfg: NodeConfig, shutdown: Arc<Signal>) -> Result<(), NodeError> {
    cfg.validate()?;
    if shutdown.version() > 0 {
        return Ok(());
    }
    let mut node = Node::recover(cfg).await?;
    let result = node.run(&shutdown, 0).await;
    if let Err(e) = &result {
        tracing::error!(node = node.cfg.id, error = %e, "replica stopping (fail-stop)");
    }
    node.server.abandon_all(&node.ep, "the node is stopping");
    node.ep.close();
    // Stop the engine's background work either way: a supervisor may reopen the data
    // directory in this process right away.
    let closed = node.sm.close().await;
    result?;
    closed
}

/// The replica's state (fields shared with the request handling in `server.rs`).
pub(super) struct Node {
    pub(super) cfg: NodeConfig,
    pub(super) raw: RawNode<MemStorage>,
    pub(super) log: LogFile,
    pub(super) hs: HardStateFile,
    pub(super) sm: StateMachine,
    pub(super) ep: Endpoint<Wire>,
    pub(super) server: Server,
    voters: BTreeSet<u64>,
    /// The data directory's exclusive lock (D54), held while the node runs.
    _dir_lock: sim_fs::DirLock,
}

async fn sync_dir_best_effort(dir: &Path) {
    if let Err(e) = sim_fs::sync_dir(dir).await {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync directory");
    }
}

impl Node {
    async fn recover(cfg: NodeConfig) -> Result<Node, NodeError> {
        let raft_dir = cfg.data_dir.join("raft");
        let db_dir = cfg.data_dir.join("db");
        sim_fs::create_dir_all(&raft_dir)
            .await
            .map_err(|e| NodeError::io("create_dir", &raft_dir, e))?;
        if let Some(parent) = cfg.data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir_best_effort(parent).await;
        }
        sim_fs::sync_dir(&cfg.data_dir)
            .await
            .map_err(|e| NodeError::io("sync_dir", &cfg.data_dir, e))?;
        // One process per data directory (D54), before anything in it is read or
        // repaired; the state machine's Db locks its own directory too.
        let dir_lock =
            crate::db::lock_dir(&cfg.data_dir, &format!("replicated node {}", cfg.id)).await?;
        let mut hs = HardStateFile::open(&raft_dir).await?;
        let (mut log, mut entries, cut) = LogFile::open(&raft_dir).await?;
        let sm = StateMachine::open(&db_dir, cfg.db_options.clone()).await?;
        let (a, a_term) = sm.applied();
        if a < log.start().0 {
            return Err(NodeError::corrupt(
                &raft_dir,
                format!(
                    "state machine applied {a}, but the log is compacted through {}",
                    log.start().0
                ),
            ));
        }
        if log.term(a) != Some(a_term) {
            sim_runtime::cover!("replicated.recovery_finishes_interrupted_snapshot_install");
            tracing::warn!(
                node = cfg.id,
                applied = a,
                "log does not hold the applied entry: finishing an interrupted snapshot install"
            );
            log.reset((a, a_term), &[]).await?;
            entries.clear();
        }
        let last_term = log.term(log.last_index()).unwrap_or(0);
        let state = match recovered_hard_state(hs.state(), last_term, a) {
            Some(repaired) => {
                sim_runtime::cover!("replicated.recovery_repairs_hard_state");
                tracing::info!(node = cfg.id, stored = ?hs.state(), ?repaired, "hard state repaired");
                hs.save(repaired).await?;
                repaired
            }
            None => hs.state(),
        };
        let storage = build_storage(&log, &entries, &sm).await?;
        let mut storage = storage;
        storage.set_hard_state(state);
        let voters: BTreeSet<u64> = cfg.peers.keys().copied().collect();
        let raft_cfg = RaftConfig {
            election_timeout_ticks: cfg.election_ticks,
            heartbeat_interval_ticks: cfg.heartbeat_ticks,
            max_entries_per_message: cfg.max_entries_per_message,
            probe_from_commit: cfg.probe_from_commit,
            pre_vote: cfg.pre_vote,
            applied: a,
            ..RaftConfig::new(cfg.id, voters.iter().copied())
        };
        let rng = Box::new(sim_runtime::rng::stream(format!(
            "raft.election.{}",
            cfg.id
        )));
        let raw = RawNode::new(raft_cfg, storage, rng)?;
        tracing::info!(
            node = cfg.id,
            term = state.term,
            commit = state.commit,
            applied = a,
            log_start = log.start().0,
            last = log.last_index(),
            cut = cut.cut_bytes,
            "replica recovered"
        );
        let ep = bind(&cfg).await?;
        for (&id, &addr) in &cfg.peers {
            if id != cfg.id {
                ep.add_peer(id, addr);
            }
        }
        if let Some(obs) = &cfg.observer {
            obs.restarted(cfg.id);
            obs.raft_state(cfg.id, NodeView::of(&raw));
            if a > 0 {
                // The state machine holds everything through `a`.
                let meta = SnapshotMeta {
                    index: a,
                    term: a_term,
                };
                obs.snapshot_installed(cfg.id, meta);
            }
        }
        let server = Server::new(cfg.id);
        Ok(Node {
            cfg,
            raw,
            log,
            hs,
            sm,
            ep,
            server,
            voters,
            _dir_lock: dir_lock,
        })
    }

    async fn run(&mut self, shutdown: &Signal, seen: u64) -> Result<(), NodeError> {
        let ep = self.ep.clone();
        let tick = self.cfg.tick;
        let mut next_tick = time::now() + tick;
        // One timer across iterations, re-armed only when it fires: a fresh sleep per
        // message would register a timer per message (D41).
        let mut tick_timer = time::sleep_until(next_tick);
        loop {
            self.process_ready().await?;
            self.after_ready().await?;
            tokio::select! {
                biased;
                _ = shutdown.changed(seen) => return Ok(()),
                () = &mut tick_timer => {
                    let now = time::now();
                    next_tick += tick;
                    if next_tick <= now {
                        next_tick = now + tick;
                    }
                    tick_timer.reset(next_tick);
                    self.raw.tick();
                    self.server.expire(now);
                }
                (from, msg) = ep.recv() => {
                    self.handle(from, msg).await?;
                    for _ in 0..MAX_BATCH {
                        let Some((from, msg)) = ep.try_recv() else { break };
                        self.handle(from, msg).await?;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, from: u64, msg: Wire) -> Result<(), NodeError> {
        match msg {
            Wire::Raft(m) => {
                // Only voters speak Raft: a client (an id ≥ 2^32, or any id outside the
                // group) is dropped here whatever the transport let through — sim-net
                // already refuses clients claiming a voter's id when authentication is on.
                if from == self.cfg.id || !self.voters.contains(&from) {
                    sim_runtime::cover!("replicated.raft_message_from_non_voter_dropped");
                    tracing::error!(
                        node = self.cfg.id,
                        from,
                        "raft message from a node that is not a peer; dropped"
                    );
                    return Ok(());
                }
                if let Err(e) = self.raw.step(from, m) {
                    tracing::warn!(node = self.cfg.id, from, error = %e, "raft refused a message");
                }
                Ok(())
            }
            Wire::Request { id, req } => self.handle_request(from, id, req).await,
            Wire::Response { .. } => {
                tracing::warn!(node = self.cfg.id, from, "unexpected response; dropped");
                Ok(())
            }
        }
    }

    /// Handles every Ready: persist (snapshot, entries, hard state), advance, send,
    /// apply, serve reads.
    async fn process_ready(&mut self) -> Result<(), NodeError> {
        while self.raw.has_ready() {
            let rd = self.raw.ready()?;
            if let Some(s) = &rd.snapshot {
                self.sm.install(s).await?;
                self.log.reset((s.meta.index, s.meta.term), &[]).await?;
            }
            if !rd.entries.is_empty() {
                self.log.append(&rd.entries).await?;
            }
            if let Some(hs) = rd.hard_state {
                // The pair of `RaftLog::new`'s refusal on open ("commit beyond the last
                // stored index"): the entries a commit index covers are durable first.
                debug_assert!(hs.commit <= self.log.last_index());
                self.hs.save(hs).await?;
            }
            self.raw.advance(&rd)?;
            if let Some(obs) = &self.cfg.observer {
                obs.raft_state(self.cfg.id, NodeView::of(&self.raw));
                if let Some(s) = &rd.snapshot {
                    obs.snapshot_installed(self.cfg.id, s.meta);
                }
            }
            for (to, m) in rd.messages {
                if let Err(e) = self.ep.send(to, Wire::Raft(m)) {
                    tracing::debug!(node = self.cfg.id, to, error = %e, "raft send refused");
                }
            }
            for e in &rd.committed_entries {
                let applied = self.sm.apply(e).await?;
                if let Some(obs) = &self.cfg.observer {
                    obs.applied(self.cfg.id, e);
                }
                self.answer_applied(&applied);
            }
            for rs in rd.read_states {
                self.on_read_state(rs);
            }
        }
        self.maybe_snapshot().await
    }

    /// Takes a snapshot and compacts the log once enough applied entries pile up.
    async fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let (applied, _) = self.sm.applied();
        let start = self.log.start().0;
        let have = self.raw.storage().snapshot().meta.index;
        if applied < start + self.cfg.snapshot_threshold || applied <= have {
            return Ok(());
        }
        let (meta, data) = self.sm.dump().await?;
        if meta.index != applied {
            return Err(NodeError::Config(format!(
                "snapshot at {} while applied is {applied}",
                meta.index
            )));
        }
        sim_runtime::cover!("replicated.snapshot_taken_and_log_compacted");
        self.raw.snapshot(meta.index, data)?;
        let to = meta.index - self.cfg.snapshot_keep;
        self.raw.compact(to)?;
        let storage = self.raw.storage();
        let term = storage.term(to).map_err(crate::raft::Error::from)?;
        let kept = storage
            .entries(to + 1, storage.last_index() + 1)
            .map_err(crate::raft::Error::from)?;
        self.log.reset((to, term), &kept).await?;
        tracing::debug!(
            node = self.cfg.id,
            snapshot = meta.index,
            compacted = to,
            "log compacted"
        );
        Ok(())
    }
}

/// The hard state to restart with, if the stored one needs repair (step 3 of the
/// module doc): a log whose last term is newer than the stored term (a crash between
/// persisting a Ready's entries and its hard state: nothing of it was sent, so no vote
/// was cast in that term) adopts that term with no vote; a commit index behind the
/// state machine's applied index `applied` is raised to it.
pub(crate) fn recovered_hard_state(
    stored: HardState,
    last_term: Term,
    applied: Index,
) -> Option<HardState> {
    let mut state = stored;
    if last_term > state.term {
        state.term = last_term;
        state.vote = None;
    }
    state.commit = state.commit.max(applied);
    (state != stored).then_some(state)
}

/// The in-memory mirror of the durable log, with a snapshot of the engine when the
/// log is compacted (the node must be able to send one).
async fn build_storage(
    log: &LogFile,
    entries: &[Entry],
    sm: &StateMachine,
) -> Result<MemStorage, NodeError> {
    let mut st = MemStorage::new();
    let start = log.start();
    if start.0 == 0 {
        st.append(entries).map_err(crate::raft::Error::from)?;
        return Ok(st);
    }
    let (meta, data) = sm.dump().await?;
    let at_start = meta.index == start.0;
    let first = Snapshot {
        meta: SnapshotMeta {
            index: start.0,
            term: start.1,
        },
        data: if at_start { data.clone() } else { Vec::new() },
    };
    st.apply_snapshot(first).map_err(crate::raft::Error::from)?;
    st.append(entries).map_err(crate::raft::Error::from)?;
    if !at_start {
        st.create_snapshot(meta.index, data)
            .map_err(crate::raft::Error::from)?;
    }
    Ok(st)
}

async fn bind(cfg: &NodeConfig) -> Result<Endpoint<Wire>, NodeError> {
    let mut net = NetConfig::new(cfg.cluster_id, cfg.id);
    net.token = cfg.token.clone();
    net.auth = cfg.auth.clone();
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        match Endpoint::<Wire>::bind(cfg.listen, net.clone()).await {
            Ok(ep) => return Ok(ep),
            Err(e) => {
                tracing::warn!(node = cfg.id, listen = %cfg.listen, error = %e, "bind failed; retrying");
                last = Some(e);
                time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Err(NodeError::Net(format!(
        "cannot listen on {}: {}",
        cfg.listen,
        last.map_or_else(String::new, |e| e.to_string())
    )))
}
