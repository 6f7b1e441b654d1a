//! An impostor beside an honest cluster: connections with no credential, with a
//! credential from another CA, with a valid *client* credential speaking Raft or
//! claiming a replica's id, each sending forged Raft traffic (RequestVote, PreVote,
//! heartbeats and AppendEntries carrying a marked entry) with absurd and plausible
//! terms, and forged client commits writing a marked key.
//!
//! The same code attacks a simulated cluster (the `impostor-cluster` scenario) and a
//! real one on loopback (`tests/impostor_real.rs`). What the impostor must never
//! achieve, and the checks that would see it:
//! - a replica adopting a term it forged ([`Effects::forged_terms`] against the
//!   replicas' observed terms);
//! - an entry carrying [`MARKER`] appended or applied anywhere, or [`MARKER_KEY`]
//!   readable by a client;
//! - an answer to anything it sent (a vote, an append response, a commit outcome).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::raft::{Body, Entry, Message, MAX_INDEX};
use engine::replicated::command::{self, Command, CommitCmd};
use engine::replicated::{Request, Response, Wire, DEFAULT_CLUSTER_ID};
use sim_net::{Auth, Config, Endpoint};

/// The bytes every forged entry carries.
pub const MARKER: &[u8] = b"impostor-was-here";
/// The key every forged commit writes.
pub const MARKER_KEY: &str = "impostor";
/// The smallest "plausible" forged term is the newest honest term plus this much: far
/// above what elections reach within a run, far below anything a sanity bound on terms
/// would refuse, so only authentication stops it.
pub const PLAUSIBLE_TERM_JUMP: u64 = 1_000;

/// One way in: who the impostor connects as.
#[derive(Debug, Clone)]
pub struct Disguise {
    /// For reports: what this disguise tries.
    pub name: &'static str,
    /// The node id its handshake claims.
    pub claims: u64,
    /// The credential it presents.
    pub auth: Auth,
}

/// What the impostor sent and got back; shared with the checks while it runs.
#[derive(Debug, Default)]
pub struct Effects {
    /// Every term it put in a forged message.
    pub forged_terms: BTreeSet<u64>,
    /// Messages it sent (queued; the honest side may refuse the connection).
    pub sent: u64,
    /// Messages the honest replicas answered, by disguise: any is an effect.
    pub answers: BTreeMap<&'static str, u64>,
}

/// The shared record of an attack.
pub type SharedEffects = Arc<Mutex<Effects>>;

use sim_runtime::sync::lock;

/// A forged entry: the marker, at `index` of `term`.
pub fn marked_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Some(MARKER.to_vec()),
    }
}

/// Whether an entry is one of the impostor's.
pub fn is_marked(entry: &Entry) -> bool {
    entry
        .data
        .as_ref()
        .is_some_and(|d| d.windows(MARKER.len()).any(|w| w == MARKER))
}

/// The Raft messages forged at `term`: a RequestVote and a PreVote for an
/// infinitely long log, a heartbeat claiming a huge commit index, and an append of a
/// marked entry at the log's start and at `at`.
pub fn forged_raft(term: u64, at: u64) -> Vec<Message> {
    let msg = |body| Message { term, body };
    // Absurd numbers (u64::MAX), which Raft's own validation refuses (D52), and the
    // largest it accepts (`MAX_INDEX`, a last term equal to the message's): only
    // authentication stops the second kind, so the negative control sees it land.
    let mut out = Vec::new();
    for (index, last_term) in [(u64::MAX, u64::MAX), (MAX_INDEX, term)] {
        let append = |prev_index: u64, prev_term: u64, entries| {
            msg(Body::Append {
                prev_index,
                prev_term,
                entries,
                commit: index,
            })
        };
        out.extend([
            msg(Body::Vote {
                last_index: index,
                last_term,
            }),
            msg(Body::PreVote {
                last_index: index,
                last_term,
            }),
            append(at, term, Vec::new()),
            append(0, 0, vec![marked_entry(1, term)]),
            append(at, term, vec![marked_entry(at.saturating_add(1), term)]),
        ]);
    }
    out
}

/// A forged client commit writing [`MARKER_KEY`] under client id `client`.
pub fn forged_commit(client: u64, seq: u64) -> Wire {
    let cmd = CommitCmd {
        client,
        seq,
        snapshot: 0,
        reads: Vec::new(),
        ranges: Vec::new(),
        writes: vec![(MARKER_KEY.as_bytes().to_vec(), Some(MARKER.to_vec()))],
    };
    // The marker rides in the encoded command too, so an applied copy is recognisable.
    debug_assert!(command::encode(&Command::Commit(cmd.clone()))
        .windows(MARKER.len())
        .any(|w| w == MARKER));
    Wire::Request {
        id: seq,
        req: Request::Commit { token: None, cmd },
    }
}

/// Whether an answer shows the impostor got somewhere: any Raft message (a vote, an
/// append response), or a transaction served. A refusal (`Error`, `NotLeader`, …) is
/// what a client that authenticated may get; it changes nothing.
pub fn is_effect(msg: &Wire) -> bool {
    match msg {
        Wire::Raft(_) => true,
        Wire::Response { resp, .. } => matches!(
            resp,
            Response::Outcome(_) | Response::Begun { .. } | Response::Value(_) | Response::Rows(_)
        ),
        Wire::Request { .. } => false,
    }
}

/// Runs one disguise: binds an endpoint at `listen`, then `rounds` times sends every
/// replica in `servers` the forged Raft messages (terms from `terms()`, recorded
/// first) and a forged commit under each of `commit_as`, `gap` apart, counting every
/// answer it receives.
pub async fn attack(
    disguise: Disguise,
    listen: SocketAddr,
    servers: BTreeMap<u64, SocketAddr>,
    terms: impl Fn() -> Vec<u64>,
    rounds: u64,
    gap: Duration,
    effects: SharedEffects,
) -> Result<(), String> {
    let cfg = Config::new(DEFAULT_CLUSTER_ID, disguise.claims).with_auth(disguise.auth.clone());
    let ep = Endpoint::<Wire>::bind(listen, cfg)
        .await
        .map_err(|e| format!("impostor {}: bind {listen}: {e}", disguise.name))?;
    // The replica whose id it claims is attacked too, but through the others: a send
    // to its own claimed id would be delivered locally.
    let servers: BTreeMap<u64, SocketAddr> = servers
        .into_iter()
        .filter(|(id, _)| *id != disguise.claims)
        .collect();
    for (&id, &addr) in &servers {
        ep.add_peer(id, addr);
    }
    let listener = ep.clone();
    let counted = effects.clone();
    let name = disguise.name;
    sim_runtime::task::spawn_named("impostor.listen", async move {
        loop {
            let (_from, msg) = listener.recv().await;
            if is_effect(&msg) {
                *lock(&counted).answers.entry(name).or_insert(0) += 1;
            }
        }
    });
    for round in 0..rounds {
        let terms = terms();
        lock(&effects).forged_terms.extend(terms.iter().copied());
        for &to in servers.keys() {
            for &term in &terms {
                for m in forged_raft(term, round) {
                    if ep.send(to, Wire::Raft(m)).is_ok() {
                        lock(&effects).sent += 1;
                    }
                }
            }
            // Under another client's id: a disguise that authenticates as a client may
            // legitimately commit under its own.
            let wire = forged_commit(disguise.claims.wrapping_add(1), round);
            if ep.send(to, wire).is_ok() {
                lock(&effects).sent += 1;
            }
        }
        sim_runtime::time::sleep(gap).await;
    }
    ep.close();
    Ok(())
}
