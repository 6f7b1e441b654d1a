//! Per-endpoint counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one endpoint's counters (see [`Endpoint::stats`](crate::Endpoint::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages accepted by `send` (queued for a connection or delivered locally).
    pub sent: u64,
    /// Messages `send` refused (unknown peer, full queue, too large).
    pub send_rejected: u64,
    /// Messages handed to `recv` (duplicates injected in simulation count twice).
    pub delivered: u64,
    /// Outbound connections that completed the handshake.
    pub connects: u64,
    /// Outbound connection attempts that failed before completing the handshake.
    pub connect_failures: u64,
    /// Inbound connections that completed the handshake.
    pub accepted: u64,
    /// Inbound connections refused on accept (a refusal frame says which cap: total or
    /// per source IP).
    pub inbound_rejected: u64,
    /// Outbound connection attempts the peer refused with a refusal frame.
    pub refused_by_peer: u64,
    /// Inbound connections closed because nothing arrived for the idle timeout.
    pub idle_closed: u64,
    /// Connections closed for a refused or malformed handshake.
    pub bad_handshake: u64,
    /// Connections closed for a frame whose checksum did not match.
    pub bad_checksum: u64,
    /// Connections closed for a frame longer than the maximum.
    pub oversized_frame: u64,
    /// Connections closed because the stream ended inside a frame.
    pub truncated_frame: u64,
    /// Connections closed for a payload that did not decode.
    pub undecodable: u64,
    /// Connections closed by an i/o error.
    pub io_errors: u64,
    /// Established connections closed, for any reason.
    pub closed: u64,
    /// Connections refused for presenting no credential, or one not from our CA (a
    /// failed TLS handshake included).
    pub unauthenticated: u64,
    /// Connections refused whose credential verified but does not allow what the
    /// handshake claims (another node's id, a client claiming a peer's id, a node that
    /// is not a peer).
    pub unauthorized: u64,
}

macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        /// Live counters; [`Stats::snapshot`] copies them into a [`NetStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Stats {
            $(pub(crate) $field: AtomicU64,)*
        }

        impl Stats {
            pub(crate) fn snapshot(&self) -> NetStats {
                NetStats { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    sent,
    send_rejected,
    delivered,
    connects,
    connect_failures,
    accepted,
    inbound_rejected,
    refused_by_peer,
    idle_closed,
    bad_handshake,
    bad_checksum,
    oversized_frame,
    truncated_frame,
    undecodable,
    io_errors,
    closed,
    unauthenticated,
    unauthorized,
);

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
