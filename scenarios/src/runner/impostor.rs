//! The adversary of the `impostor-cluster` scenario: simulated credentials for the
//! honest cluster, an impostor node that attacks it for the whole run
//! ([`crate::impostor`]), and the check that the impostor had no effect.
//!
//! ## Model
//! With `authenticated`, every replica and honest client presents a credential of the
//! run's simulated CA (its secret drawn from the seed) and requires one; without it
//! (the negative control) everything is insecure, as before issue 19. The impostor
//! runs on its own simulated node, outside the partitions, with five disguises: no
//! credential, a node credential from a foreign CA, a valid client credential
//! claiming replica 2, a valid credential of a node that is not in the group, and a
//! valid client credential that speaks Raft under its own client id.
//!
//! ## Invariants (the `impostor` check)
//! - No replica's observed term is one the impostor forged.
//! - No replica appends an entry carrying the impostor's marker, let alone applies it.
//! - The impostor gets no Raft message and no commit outcome back.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use engine::raft::safety::NodeView;
use engine::raft::{Entry, NodeId};
use engine::replicated::client::MIN_CLIENT_ID;
use engine::replicated::{Observer, SafetyWatch};
use rand::RngCore;
use sim_net::{Auth, Identity, SimAuth, SimCa};
use sim_runtime::time::Duration;

use super::world::{lock, Shared};
use crate::impostor::{self, Disguise, SharedEffects};

/// The impostor's simulated node.
fn impostor_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, 66))
}

/// Rounds of forged traffic, and the pause between them: about 4.5 s of attack, from
/// the start of the run.
const ROUNDS: u64 = 30;
const GAP: Duration = Duration::from_millis(150);

/// How the honest cluster authenticates in this run.
#[derive(Clone)]
pub struct ClusterAuth {
    ca: Option<SimCa>,
}

impl ClusterAuth {
    /// No authentication: every scenario but `impostor-cluster`.
    pub fn insecure() -> ClusterAuth {
        ClusterAuth { ca: None }
    }

    /// A CA whose secret is drawn from the run's seed (call inside the run).
    pub fn simulated() -> ClusterAuth {
        let secret = sim_runtime::rng::stream("scenario.sim_ca").next_u64();
        ClusterAuth {
            ca: Some(SimCa::new(1, secret)),
        }
    }

    fn auth_for(&self, identity: Identity) -> Auth {
        match &self.ca {
            None => Auth::Insecure,
            Some(ca) => Auth::Simulated(SimAuth {
                credential: Some(ca.issue(identity)),
                trusted: ca.clone(),
            }),
        }
    }

    /// Replica `id`'s credentials.
    pub fn node(&self, id: NodeId) -> Auth {
        self.auth_for(Identity::Node(id))
    }

    /// The honest clients' credentials (one client identity for all of them).
    pub fn client(&self) -> Auth {
        self.auth_for(Identity::Client("workload".into()))
    }
}

/// The replicas' observer: the safety watch, plus the `impostor` check on every
/// transition.
pub struct ImpostorWatch {
    inner: Arc<SafetyWatch>,
    world: Shared,
    effects: SharedEffects,
    max_term: AtomicU64,
}

impl ImpostorWatch {
    pub fn new(inner: Arc<SafetyWatch>, world: Shared, effects: SharedEffects) -> ImpostorWatch {
        ImpostorWatch {
            inner,
            world,
            effects,
            max_term: AtomicU64::new(0),
        }
    }

    fn forged(&self, term: u64) -> bool {
        let effects = sim_runtime::sync::lock(&self.effects);
        effects.forged_terms.contains(&term)
    }

    fn effect(&self, what: String) {
        lock(&self.world).violation("impostor", what);
    }
}

impl Observer for ImpostorWatch {
    fn restarted(&self, node: NodeId) {
        self.inner.restarted(node);
    }
    fn raft_state(&self, node: NodeId, view: NodeView) {
        self.max_term.fetch_max(view.term, Ordering::SeqCst);
        if self.forged(view.term) {
            self.effect(format!(
                "replica {node} adopted the forged term {}",
                view.term
            ));
        }
        let marked = view.entries.iter().any(|e| self.forged(e.term));
        if marked {
            self.effect(format!("replica {node} holds an entry of a forged term"));
        }
        self.inner.raft_state(node, view);
    }
    fn applied(&self, node: NodeId, entry: &Entry) {
        if impostor::is_marked(entry) {
            self.effect(format!(
                "replica {node} applied the impostor's entry {}",
                entry.index
            ));
        }
        self.inner.applied(node, entry);
    }
    fn snapshot_installed(&self, node: NodeId, meta: engine::raft::SnapshotMeta) {
        self.inner.snapshot_installed(node, meta);
    }
}

/// The five disguises, given the honest cluster's CA (None: insecure cluster, where
/// the impostor's "valid" credentials come from a CA nobody checks).
fn disguises(auth: &ClusterAuth) -> Vec<Disguise> {
    let foreign = SimCa::new(2, 0x1BAD_CAFE);
    let ours = auth.ca.clone().unwrap_or_else(|| foreign.clone());
    let with = |ca: &SimCa, identity: Identity| {
        Auth::Simulated(SimAuth {
            credential: Some(ca.issue(identity)),
            trusted: ca.clone(),
        })
    };
    let client = || with(&ours, Identity::Client("impostor".into()));
    let mut out = vec![
        Disguise {
            name: "no-credential",
            claims: 2,
            auth: Auth::Insecure,
        },
        Disguise {
            name: "foreign-ca",
            claims: 2,
            auth: with(&foreign, Identity::Node(2)),
        },
        Disguise {
            name: "client-claiming-node",
            claims: 2,
            auth: client(),
        },
        Disguise {
            name: "stranger-node",
            claims: 9,
            auth: with(&ours, Identity::Node(9)),
        },
        Disguise {
            name: "client-speaking-raft",
            claims: MIN_CLIENT_ID + 0x1BAD,
            auth: client(),
        },
    ];
    if auth.ca.is_none() {
        // Nobody checks credentials: present none (a credential of a CA the endpoint
        // does not trust itself would make it refuse the replicas' answers).
        for d in &mut out {
            d.auth = Auth::Insecure;
        }
    }
    out
}

/// Starts the impostor's node and its attacks; returns what it records.
pub fn start(
    world: Shared,
    auth: &ClusterAuth,
    servers: BTreeMap<NodeId, SocketAddr>,
    watch: Arc<ImpostorWatch>,
    effects: SharedEffects,
) {
    let node = sim_runtime::node::build("impostor")
        .ip(impostor_ip())
        .create();
    for (k, disguise) in disguises(auth).into_iter().enumerate() {
        let listen = SocketAddr::new(impostor_ip(), 7100 + k as u16);
        let (servers, watch, effects, world) = (
            servers.clone(),
            watch.clone(),
            effects.clone(),
            world.clone(),
        );
        node.spawn(async move {
            let terms = move || {
                let newest = watch.max_term.load(Ordering::SeqCst);
                vec![
                    u64::MAX,
                    newest.saturating_add(impostor::PLAUSIBLE_TERM_JUMP),
                ]
            };
            let attacked = impostor::attack(disguise, listen, servers, terms, ROUNDS, GAP, effects);
            if let Err(e) = attacked.await {
                lock(&world).violation("runner", e);
            }
        });
    }
}

/// The end-of-run part of the `impostor` check: nothing came back to the impostor.
pub fn check_answers(world: &Shared, effects: &SharedEffects) {
    let effects = sim_runtime::sync::lock(effects);
    if effects.sent == 0 {
        lock(world).violation("runner", "the impostor sent nothing");
    }
    for (disguise, n) in &effects.answers {
        lock(world).violation(
            "impostor",
            format!("the replicas answered the impostor's {disguise} disguise {n} times"),
        );
    }
}
