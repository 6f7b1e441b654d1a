//! Endpoint configuration.

use crate::auth::Auth;
use sim_runtime::NodeId;
use std::fmt;
use std::time::Duration;

/// Default maximum frame payload: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Configuration of one [`Endpoint`](crate::Endpoint).
///
/// Build it with [`Config::new`] and adjust the public fields. `Debug` never prints
/// the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Cluster id; a handshake carrying another id is refused.
    pub cluster_id: u64,
    /// Shared secret; when set on either side, both sides must carry the same token.
    pub token: Option<String>,
    /// This endpoint's node id, sent in the handshake and reported to receivers as the
    /// sender of every message.
    pub node_id: NodeId,
    /// Largest frame payload accepted or sent (checked before allocating).
    pub max_frame_bytes: usize,
    /// Time allowed for a TCP connect.
    pub connect_timeout: Duration,
    /// Time allowed for the handshake exchange, on both sides.
    pub handshake_timeout: Duration,
    /// First pause before reconnecting after a failed or broken connection.
    pub reconnect_backoff_min: Duration,
    /// Longest pause between reconnect attempts (the pause doubles up to this).
    pub reconnect_backoff_max: Duration,
    /// Frames queued per connection before [`send`](crate::Endpoint::send) refuses.
    pub send_queue_capacity: usize,
    /// Received messages buffered before readers stop reading (back-pressure).
    pub inbox_capacity: usize,
    /// Inbound connections served at once; more are refused on accept (D53).
    pub max_inbound_connections: usize,
    // Bounds on what one peer can hold of a node (issue 19, D53).
    /// Inbound connections from one source IP served at once; more are refused on
    /// accept with a refusal frame naming the cap.
    pub max_inbound_per_ip: usize,
    /// An inbound connection on which no byte arrives for this long after the
    /// handshake is closed. Peers send constantly (Raft heartbeats); a quiet client's
    /// link reconnects with its next message.
    pub idle_timeout: Duration,
    /// Bytes of received frames the endpoint holds at once, across all connections:
    /// frames being read and messages waiting in the inbox. A reader that would exceed
    /// it stops reading (TCP back-pressure). At least `max_frame_bytes`.
    pub max_buffered_bytes: usize,

    // Authentication (issue 19): keep these last, in one block.
    /// How connections authenticate: mutual TLS (real world), simulated credentials
    /// (simulated world), or nothing ([`Auth::Insecure`], the default of
    /// [`Config::new`]; callers facing a network must choose explicitly).
    pub auth: Auth,
}

/// Default [`Config::max_inbound_per_ip`].
pub const DEFAULT_MAX_INBOUND_PER_IP: usize = 256;
/// Default [`Config::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Config::max_buffered_bytes`]: 64 MiB.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// Checks the bounds of D53 (the rest of [`Config`] is checked by the endpoint).
pub(crate) fn validate_bounds(config: &Config) -> Result<(), String> {
    if config.max_inbound_connections == 0 || config.max_inbound_per_ip == 0 {
        return Err("max_inbound_connections and max_inbound_per_ip must be positive".into());
    }
    if config.idle_timeout.is_zero() {
        return Err("idle_timeout must be positive".into());
    }
    if config.max_buffered_bytes < config.max_frame_bytes {
        return Err("max_buffered_bytes must be at least max_frame_bytes".into());
    }
    Ok(())
}

impl Config {
    /// A configuration for node `node_id` of cluster `cluster_id`, no token, defaults
    /// for everything else.
    pub fn new(cluster_id: u64, node_id: NodeId) -> Self {
        Config {
            cluster_id,
            token: None,
            node_id,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(2),
            reconnect_backoff_min: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_secs(1),
            send_queue_capacity: 4096,
            inbox_capacity: 65536,
            max_inbound_connections: 1024,
            max_inbound_per_ip: DEFAULT_MAX_INBOUND_PER_IP,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            auth: Auth::Insecure,
        }
    }

    /// The same configuration authenticating with `auth`.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The same configuration with `token` as the shared secret.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cluster_id", &self.cluster_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("node_id", &self.node_id)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("reconnect_backoff_min", &self.reconnect_backoff_min)
            .field("reconnect_backoff_max", &self.reconnect_backoff_max)
            .field("send_queue_capacity", &self.send_queue_capacity)
            .field("inbox_capacity", &self.inbox_capacity)
            .field("max_inbound_connections", &self.max_inbound_connections)
            .field("max_inbound_per_ip", &self.max_inbound_per_ip)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("auth", &self.auth)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_token() {
        let c = Config::new(1, 2).with_token("hunter2");
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("redacted"), "{s}");
    }
}
