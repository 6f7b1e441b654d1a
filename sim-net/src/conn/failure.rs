//! How connections fail: why a handshake failed ([`HsError`]) or an established
//! connection ended ([`Close`]), and the one place each failure is logged and counted
//! in the endpoint's [`Stats`] (split from `conn`, which runs the connections).

use super::Shared;
use crate::auth::AuthError;
use crate::frame::FrameError;
use crate::handshake::HandshakeError;
use crate::secure::SecureError;
use crate::stats::{bump, Stats};
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why an established connection ended.
#[derive(Debug)]
pub(crate) enum Close {
    /// The peer closed it.
    Eof,
    /// Our side no longer has anything to send on it (peer removed, endpoint closed).
    QueueClosed,
    /// The endpoint's inbox is gone.
    InboxClosed,
    /// A bad frame arrived.
    Frame(FrameError),
    /// Writing failed.
    Write(io::Error),
    /// Simulation: a connection reset was injected.
    #[cfg_attr(not(madsim), allow(dead_code))]
    InjectedReset,
}

/// Why a handshake failed.
#[derive(Debug)]
pub(super) enum HsError {
    Connect(io::Error),
    Timeout,
    /// The acceptor refused the connection (a cap), saying why.
    Busy(String),
    Closed,
    Frame(FrameError),
    Refused(HandshakeError),
    /// Authentication or authorization refused the peer (see `auth`).
    Auth(AuthError),
}

impl From<SecureError> for HsError {
    fn from(e: SecureError) -> Self {
        match e {
            SecureError::Auth(e) => HsError::Auth(e),
            SecureError::Frame(e) => HsError::Frame(e),
            SecureError::Closed => HsError::Closed,
            SecureError::Refused(why) => HsError::Busy(why),
        }
    }
}

impl From<FrameError> for HsError {
    fn from(e: FrameError) -> Self {
        HsError::Frame(e)
    }
}

impl From<HandshakeError> for HsError {
    fn from(e: HandshakeError) -> Self {
        HsError::Refused(e)
    }
}

impl fmt::Display for HsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsError::Connect(e) => write!(f, "connect failed: {e}"),
            HsError::Timeout => write!(f, "timed out"),
            HsError::Busy(why) => write!(f, "refused by the peer: {why}"),
            HsError::Closed => write!(f, "peer closed the connection during the handshake"),
            HsError::Frame(e) => write!(f, "bad handshake frame: {e}"),
            HsError::Refused(e) => write!(f, "handshake refused: {e}"),
            HsError::Auth(e) => write!(f, "authentication refused: {e}"),
        }
    }
}

/// Counts an authentication refusal: no or untrusted credential, or an identity that
/// may not speak as it claims.
fn count_auth_refusal(stats: &Stats, e: &AuthError) {
    match e {
        AuthError::NoCredential | AuthError::Untrusted(_) | AuthError::Tls(_) => {
            sim_runtime::cover!("net.auth_refuses_unauthenticated_peer");
            bump(&stats.unauthenticated);
        }
        AuthError::IdentityMismatch { .. }
        | AuthError::NotAPeer(_)
        | AuthError::ClientAsPeer { .. }
        | AuthError::BadName(_)
        | AuthError::IdentityCount(_)
        | AuthError::WrongWorld(_) => {
            sim_runtime::cover!("net.auth_refuses_identity_it_does_not_hold");
            bump(&stats.unauthorized);
        }
    }
}

/// Counts a frame-level error in its stat.
fn count_frame_error(stats: &Stats, e: &FrameError) {
    match e {
        FrameError::TooLarge { .. } => bump(&stats.oversized_frame),
        FrameError::BadChecksum { .. } => bump(&stats.bad_checksum),
        FrameError::Truncated { .. } => bump(&stats.truncated_frame),
        FrameError::Decode(_) | FrameError::Encode(_) => bump(&stats.undecodable),
        FrameError::Io(_) => bump(&stats.io_errors),
        FrameError::Idle(_) => bump(&stats.idle_closed),
    }
}

/// Logs and counts a failed handshake. `dialled` is the node an outbound attempt meant
/// to reach (None: inbound).
pub(super) fn handshake_failed<M>(
    shared: &Shared<M>,
    peer: SocketAddr,
    dialled: Option<u64>,
    e: HsError,
) {
    let stats = &shared.stats;
    let node = shared.config.node_id;
    if dialled.is_some() {
        bump(&stats.connect_failures);
    }
    match &e {
        HsError::Auth(a) => {
            count_auth_refusal(stats, a);
            tracing::warn!(node, %peer, ?dialled, error = %e, "sim-net: peer not authenticated or not authorized; closing");
        }
        HsError::Frame(FrameError::Decode(_)) | HsError::Refused(_) => {
            bump(&stats.bad_handshake);
            tracing::warn!(node, %peer, ?dialled, error = %e, "sim-net: handshake failed; closing");
        }
        HsError::Frame(f) => {
            count_frame_error(stats, f);
            if matches!(f, FrameError::Io(_)) {
                tracing::debug!(node, %peer, ?dialled, error = %e, "sim-net: handshake failed");
            } else {
                tracing::warn!(node, %peer, ?dialled, error = %e, "sim-net: handshake failed; closing");
            }
        }
        HsError::Busy(why) => {
            bump(&stats.refused_by_peer);
            tracing::warn!(node, %peer, ?dialled, why, "sim-net: the peer refused the connection");
        }
        HsError::Timeout | HsError::Closed if dialled.is_none() => {
            bump(&stats.bad_handshake);
            tracing::warn!(node, %peer, error = %e, "sim-net: inbound handshake failed; closing");
        }
        HsError::Timeout | HsError::Closed | HsError::Connect(_) => {
            tracing::debug!(node, %peer, ?dialled, error = %e, "sim-net: connect failed");
        }
    }
}

/// Logs and counts the end of an established connection.
pub(super) fn closed<M>(shared: &Shared<M>, remote: u64, peer: SocketAddr, close: Close) {
    let stats = &shared.stats;
    let node = shared.config.node_id;
    bump(&stats.closed);
    match close {
        Close::Frame(FrameError::Io(e)) | Close::Write(e) => {
            bump(&stats.io_errors);
            tracing::debug!(node, remote, %peer, error = %e, "sim-net: connection i/o error");
        }
        Close::Frame(FrameError::Idle(d)) => {
            bump(&stats.idle_closed);
            tracing::debug!(node, remote, %peer, idle = ?d, "sim-net: idle connection closed");
        }
        Close::Frame(e) => {
            count_frame_error(stats, &e);
            tracing::warn!(node, remote, %peer, error = %e, "sim-net: bad frame; closing the connection");
        }
        other => {
            tracing::debug!(node, remote, %peer, reason = ?other, "sim-net: connection closed")
        }
    }
}
