//! Authentication and authorization of connections: who a connection *is*, and what it
//! may speak as.
//!
//! ## Model
//! Every connection first establishes a **verified identity** (or none), then its
//! handshake claims a node id, and [`authorize`] decides — with the same code in both
//! worlds — whether that claim is allowed and in which [`Role`]:
//! - real world: mutual TLS (module `tls`): the peer's certificate, checked against the
//!   cluster's CA, names the identity in a DNS subject-alternative name, `node-<id>` or
//!   `client-<name>` ([`Identity::from_name`]);
//! - simulated world: a [`SimCredential`] (identity, CA id and a MAC only that
//!   simulated CA's secret can make) exchanged before the hello, checked by
//!   [`SimAuth::verify`]. No TLS crypto runs in the simulator, so no randomness is drawn
//!   outside the run's seed (DECISIONS D49).
//!
//! ## Invariants (what [`authorize`] enforces)
//! - With authentication on, a connection without a verified identity is refused.
//! - A node identity speaks only as itself: the claimed node id equals the certified
//!   one; and an acceptor takes a node identity only if that node is in its peer table.
//! - A client identity never claims a node id of the peer table (so it can neither
//!   send Raft traffic as a replica nor take a replica's reply route); whatever else it
//!   claims is reported as a [`Role::Client`] connection. The replicated layer refuses
//!   Raft messages from any sender that is not a voter, so a client cannot inject them
//!   even when authentication is off (defence in depth).
//! - `Auth::Insecure` verifies nothing: roles follow the claimed id alone. It exists
//!   for tests and for operators who pass `--insecure`, and says so in a warning.
//!
//! ## Non-goals
//! - Binding a client certificate to one client id: a client identity proves
//!   membership of the cluster's clients, not which client id it uses.
//! - Revocation lists, certificate rotation without restart.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// Who a verified credential names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Identity {
    /// A replica: `node-<id>`.
    Node(u64),
    /// A client: `client-<name>`.
    Client(String),
}

/// Longest client name accepted (a DNS label is at most 63 bytes, `client-` takes 7).
pub const MAX_CLIENT_NAME_BYTES: usize = 56;

impl Identity {
    /// Parses a certificate name: `node-<id>` (decimal, no sign, no leading zero) or
    /// `client-<name>` (lowercase letters, digits and `-`).
    pub fn from_name(name: &str) -> Result<Identity, AuthError> {
        let bad = || AuthError::BadName(name.chars().take(80).collect());
        if let Some(id) = name.strip_prefix("node-") {
            let leading_zero = id.len() > 1 && id.starts_with('0');
            if id.is_empty() || leading_zero || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            return id.parse().map(Identity::Node).map_err(|_| bad());
        }
        if let Some(client) = name.strip_prefix("client-") {
            if client.is_empty()
                || client.len() > MAX_CLIENT_NAME_BYTES
                || !client
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad());
            }
            return Ok(Identity::Client(client.to_string()));
        }
        Err(bad())
    }

    /// The certificate name of this identity (the inverse of [`Identity::from_name`]).
    pub fn name(&self) -> String {
        match self {
            Identity::Node(id) => format!("node-{id}"),
            Identity::Client(name) => format!("client-{name}"),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What an authorized connection may speak as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A replica of the peer table (Raft traffic allowed above).
    Peer,
    /// Anything else: client requests only.
    Client,
}

/// Why a connection was refused by authentication or authorization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Authentication is on and the peer presented no credential.
    #[error("no credential presented (authentication is required)")]
    NoCredential,
    /// The credential is not from our CA, or does not verify.
    #[error("credential not trusted: {0}")]
    Untrusted(String),
    /// A certificate name that is neither `node-<id>` nor `client-<name>`.
    #[error("certificate name {0:?} is neither node-<id> nor client-<name>")]
    BadName(String),
    /// The certificate names several identities, or none.
    #[error("the certificate must name exactly one identity, it names {0}")]
    IdentityCount(usize),
    /// The handshake claims another node id than the credential names.
    #[error("credential names {certified}, but the handshake claims node {claimed}")]
    IdentityMismatch {
        /// The verified identity.
        certified: Identity,
        /// The node id claimed in the hello.
        claimed: u64,
    },
    /// A node identity that is not in the peer table.
    #[error("{0} is not a peer of this node")]
    NotAPeer(Identity),
    /// A client identity that claims a peer's node id.
    #[error(
        "{certified} claims node {claimed}, which is a peer: clients cannot speak as replicas"
    )]
    ClientAsPeer {
        /// The verified (client) identity.
        certified: Identity,
        /// The peer's node id it claimed.
        claimed: u64,
    },
    /// The TLS handshake failed (real world).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// This kind of credential does not exist in this world.
    #[error("{0}")]
    WrongWorld(&'static str),
}

/// Decides what a connection may speak as; see the module doc. `verified` is the
/// identity its credential proved (None: no credential, or authentication off),
/// `claimed` the node id of its hello, `is_peer` whether a node id is in our peer
/// table, `required` whether authentication is on.
pub fn authorize(
    verified: Option<&Identity>,
    claimed: u64,
    is_peer: impl Fn(u64) -> bool,
    required: bool,
) -> Result<Role, AuthError> {
    match verified {
        None if required => Err(AuthError::NoCredential),
        None if is_peer(claimed) => Ok(Role::Peer),
        None => Ok(Role::Client),
        Some(Identity::Node(id)) if *id != claimed => Err(AuthError::IdentityMismatch {
            certified: Identity::Node(*id),
            claimed,
        }),
        Some(node @ Identity::Node(id)) if !is_peer(*id) => Err(AuthError::NotAPeer(node.clone())),
        Some(Identity::Node(_)) => Ok(Role::Peer),
        Some(client @ Identity::Client(_)) if is_peer(claimed) => Err(AuthError::ClientAsPeer {
            certified: client.clone(),
            claimed,
        }),
        Some(Identity::Client(_)) => Ok(Role::Client),
    }
}

/// A simulated certificate authority: its id and the secret its MACs are keyed with.
/// Only code holding the secret can issue credentials it accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct SimCa {
    id: u64,
    secret: u64,
}

impl fmt::Debug for SimCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCa")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A simulated certificate: an identity, the CA that issued it, and that CA's MAC
/// over both. Sent in the clear (the simulated network has no eavesdroppers to model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCredential {
    /// Who it names.
    pub identity: Identity,
    /// The issuing CA's id.
    pub ca_id: u64,
    /// The CA's MAC over `(ca_id, identity)`.
    pub mac: u64,
}

impl SimCa {
    /// A CA with id `id` whose MACs are keyed with `secret`.
    pub fn new(id: u64, secret: u64) -> SimCa {
        SimCa { id, secret }
    }

    /// This CA's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A credential naming `identity`, signed by this CA.
    pub fn issue(&self, identity: Identity) -> SimCredential {
        let mac = self.mac(&identity);
        SimCredential {
            identity,
            ca_id: self.id,
            mac,
        }
    }

    /// A keyed SipHash (std's `DefaultHasher` with fixed keys, the secret hashed first):
    /// deterministic within a build, and not computable without the secret. A model of
    /// a signature for the simulator, not a cryptographic primitive for the real world.
    fn mac(&self, identity: &Identity) -> u64 {
        let mut h = DefaultHasher::new();
        (self.secret, self.id, identity).hash(&mut h);
        h.finish()
    }

    /// The identity `credential` proves, if this CA issued it.
    pub fn verify(&self, credential: &SimCredential) -> Result<Identity, AuthError> {
        if credential.ca_id != self.id {
            return Err(AuthError::Untrusted(format!(
                "issued by CA {}, expected CA {}",
                credential.ca_id, self.id
            )));
        }
        if credential.mac != self.mac(&credential.identity) {
            return Err(AuthError::Untrusted(format!(
                "the MAC of {} does not verify",
                credential.identity
            )));
        }
        Ok(credential.identity.clone())
    }
}

/// A node's simulated credentials: its own credential (None: it presents none) and
/// the CA it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAuth {
    /// What this endpoint presents.
    pub credential: Option<SimCredential>,
    /// The CA whose credentials it accepts.
    pub trusted: SimCa,
}

impl SimAuth {
    /// The identity a peer's presented credential proves.
    pub fn verify(&self, presented: Option<&SimCredential>) -> Result<Identity, AuthError> {
        match presented {
            None => Err(AuthError::NoCredential),
            Some(c) => self.trusted.verify(c),
        }
    }
}

/// How an endpoint's connections authenticate ([`Config::auth`](crate::Config::auth)).
#[derive(Clone, Default)]
pub enum Auth {
    /// Nothing is verified; the claimed node id is believed. Plaintext in the real world.
    #[default]
    Insecure,
    /// Simulated credentials (simulated world only; `bind` refuses them in the real one).
    Simulated(SimAuth),
    /// Mutual TLS (real world only).
    #[cfg(not(madsim))]
    Tls(crate::tls::TlsAuth),
}

impl Auth {
    /// Whether connections must present a verified identity.
    pub fn required(&self) -> bool {
        !matches!(self, Auth::Insecure)
    }
}

impl PartialEq for Auth {
    fn eq(&self, other: &Auth) -> bool {
        match (self, other) {
            (Auth::Insecure, Auth::Insecure) => true,
            (Auth::Simulated(a), Auth::Simulated(b)) => a == b,
            #[cfg(not(madsim))]
            (Auth::Tls(a), Auth::Tls(b)) => a.same(b),
            _ => false,
        }
    }
}

impl Eq for Auth {}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Insecure => f.write_str("Insecure"),
            Auth::Simulated(s) => f.debug_tuple("Simulated").field(s).finish(),
            #[cfg(not(madsim))]
            Auth::Tls(t) => f.debug_tuple("Tls").field(t).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(id: u64) -> bool {
        (1..=3).contains(&id)
    }

    #[test]
    fn names_round_trip_and_malformed_names_are_refused() {
        for id in [Identity::Node(3), Identity::Client("alice-2".into())] {
            assert_eq!(Identity::from_name(&id.name()), Ok(id));
        }
        for bad in [
            "node-",
            "node-03",
            "node--1",
            "node-1a",
            "node-99999999999999999999",
            "client-",
            "client-Alice",
            "client-a.b",
            "nodes-1",
            "",
            "admin",
        ] {
            assert!(
                matches!(Identity::from_name(bad), Err(AuthError::BadName(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn authorize_enforces_each_rule() {
        let node2 = Identity::Node(2);
        let client = Identity::Client("shell".into());
        assert_eq!(authorize(Some(&node2), 2, peers, true), Ok(Role::Peer));
        assert_eq!(
            authorize(Some(&node2), 3, peers, true),
            Err(AuthError::IdentityMismatch {
                certified: node2.clone(),
                claimed: 3
            })
        );
        assert_eq!(
            authorize(Some(&Identity::Node(9)), 9, peers, true),
            Err(AuthError::NotAPeer(Identity::Node(9)))
        );
        assert_eq!(
            authorize(Some(&client), 1 << 40, peers, true),
            Ok(Role::Client)
        );
        assert_eq!(
            authorize(Some(&client), 2, peers, true),
            Err(AuthError::ClientAsPeer {
                certified: client.clone(),
                claimed: 2
            })
        );
        assert_eq!(
            authorize(None, 2, peers, true),
            Err(AuthError::NoCredential)
        );
        // Insecure: roles by claimed id, nothing refused.
        assert_eq!(authorize(None, 2, peers, false), Ok(Role::Peer));
        assert_eq!(authorize(None, 1 << 40, peers, false), Ok(Role::Client));
    }

    #[test]
    fn a_sim_credential_verifies_only_with_its_own_ca() {
        let ca = SimCa::new(1, 0xfeed);
        let other = SimCa::new(2, 0xbeef);
        let same_id_other_secret = SimCa::new(1, 0xbeef);
        let cred = ca.issue(Identity::Node(2));
        assert_eq!(ca.verify(&cred), Ok(Identity::Node(2)));
        assert!(matches!(other.verify(&cred), Err(AuthError::Untrusted(_))));
        assert!(matches!(
            same_id_other_secret.verify(&cred),
            Err(AuthError::Untrusted(_))
        ));
        // Changing the identity without the secret breaks the MAC.
        let mut forged = cred.clone();
        forged.identity = Identity::Node(3);
        assert!(matches!(ca.verify(&forged), Err(AuthError::Untrusted(_))));
        let auth = SimAuth {
            credential: None,
            trusted: ca,
        };
        assert_eq!(auth.verify(None), Err(AuthError::NoCredential));
        assert!(!format!("{auth:?}").contains(&0xfeed_u64.to_string()));
    }
}
