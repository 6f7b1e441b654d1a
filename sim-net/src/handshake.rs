//! The handshake: the first frame on every connection, in each direction.
//!
//! The connecting side sends its [`Hello`]; the accepting side checks it and, only if it
//! passes, answers with its own; the connecting side checks that answer (including that
//! the node it reached is the node it meant to reach). Any mismatch closes the
//! connection. Handshake frames are capped at [`MAX_HANDSHAKE_BYTES`], far below the
//! data frame maximum, so an unauthenticated peer cannot make a node allocate much.

use crate::config::Config;
use serde::{Deserialize, Serialize};
use sim_runtime::NodeId;
use std::fmt;
use std::net::SocketAddr;

/// The four bytes that open every handshake payload.
pub const MAGIC: [u8; 4] = *b"SBNT";
/// The wire protocol version; a peer speaking another is refused.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest handshake frame payload accepted.
pub const MAX_HANDSHAKE_BYTES: usize = 4096;

/// A handshake frame's payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The sender's cluster id.
    pub cluster_id: u64,
    /// The sender's shared secret, if configured.
    pub token: Option<String>,
    /// The sender's node id.
    pub node_id: NodeId,
    /// The address the sender listens on (informational; replies to the sender go back
    /// over the connection it opened unless it is in the receiver's peer table).
    pub listen_addr: Option<SocketAddr>,
}

impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("magic", &self.magic)
            .field("version", &self.version)
            .field("cluster_id", &self.cluster_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("node_id", &self.node_id)
            .field("listen_addr", &self.listen_addr)
            .finish()
    }
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The payload does not start with [`MAGIC`].
    BadMagic([u8; 4]),
    /// The peer speaks another protocol version.
    Version {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The peer belongs to another cluster.
    ClusterId {
        /// Ours.
        ours: u64,
        /// Theirs.
        theirs: u64,
    },
    /// The tokens differ (or only one side has one).
    Token,
    /// The node reached is not the node dialled.
    UnexpectedNode {
        /// The node id in our peer table for that address.
        expected: u64,
        /// The node id the peer announced.
        got: u64,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadMagic(m) => write!(f, "bad magic {m:02x?}"),
            HandshakeError::Version { ours, theirs } => {
                write!(f, "protocol version {theirs}, expected {ours}")
            }
            HandshakeError::ClusterId { ours, theirs } => {
                write!(f, "cluster id {theirs}, expected {ours}")
            }
            HandshakeError::Token => write!(f, "token mismatch"),
            HandshakeError::UnexpectedNode { expected, got } => {
                write!(f, "reached node {got}, expected node {expected}")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

impl Hello {
    /// The hello `config`'s node sends, announcing `listen_addr`.
    pub fn new(config: &Config, listen_addr: Option<SocketAddr>) -> Self {
        let hello = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            cluster_id: config.cluster_id,
            token: config.token.clone(),
            node_id: config.node_id,
            listen_addr,
        };
        // The pair of `check` at the acceptor: a peer configured as we are accepts it.
        debug_assert_eq!(hello.check(config), Ok(()));
        hello
    }

    /// Checks a received hello against our `config`.
    pub fn check(&self, config: &Config) -> Result<(), HandshakeError> {
        if self.magic != MAGIC {
            return Err(HandshakeError::BadMagic(self.magic));
        }
        if self.version != PROTOCOL_VERSION {
            return Err(HandshakeError::Version {
                ours: PROTOCOL_VERSION,
                theirs: self.version,
            });
        }
        if self.cluster_id != config.cluster_id {
            return Err(HandshakeError::ClusterId {
                ours: config.cluster_id,
                theirs: self.cluster_id,
            });
        }
        let tokens_match = match (&config.token, &self.token) {
            (None, None) => true,
            (Some(a), Some(b)) => constant_time_eq(a.as_bytes(), b.as_bytes()),
            _ => false,
        };
        if !tokens_match {
            return Err(HandshakeError::Token);
        }
        Ok(())
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_field() {
        let ours = Config::new(7, 1).with_token("s3cret");
        let good = Hello::new(&Config::new(7, 2).with_token("s3cret"), None);
        assert_eq!(good.check(&ours), Ok(()));

        let mut h = good.clone();
        h.magic = *b"HTTP";
        assert!(matches!(h.check(&ours), Err(HandshakeError::BadMagic(_))));
        let mut h = good.clone();
        h.version += 1;
        assert!(matches!(
            h.check(&ours),
            Err(HandshakeError::Version { .. })
        ));
        let mut h = good.clone();
        h.cluster_id = 8;
        assert!(matches!(
            h.check(&ours),
            Err(HandshakeError::ClusterId { .. })
        ));
        let mut h = good.clone();
        h.token = Some("s3creT".into());
        assert_eq!(h.check(&ours), Err(HandshakeError::Token));
        let mut h = good.clone();
        h.token = None;
        assert_eq!(h.check(&ours), Err(HandshakeError::Token));
        // A tokenless node refuses a peer that has one.
        assert_eq!(good.check(&Config::new(7, 1)), Err(HandshakeError::Token));
        assert!(!format!("{good:?}").contains("s3cret"));
    }
}
