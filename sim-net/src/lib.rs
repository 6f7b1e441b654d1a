//! # sim-net — Seedbank's typed message transport
//!
//! An [`Endpoint<M>`] lets a node send values of a serde type `M` to other nodes by node
//! id and receive theirs. The same code runs in both worlds: on tokio's TCP in the real
//! world, and on madsim's simulated TCP under `--cfg madsim`, where the transport also
//! injects Seedbank's network faults (module `faults`, which exists only in that
//! world).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! enum Msg {
//!     Ping(u64),
//! }
//!
//! let listen = "127.0.0.1:0".parse().expect("address");
//! let ep = sim_net::Endpoint::<Msg>::bind(listen, sim_net::Config::new(7, 1)).await?;
//! ep.add_peer(2, "127.0.0.1:7002".parse().expect("address"));
//! let _ = ep.send(2, Msg::Ping(1)); // best effort: Ok means queued, not delivered
//! let (from, msg) = ep.recv().await;
//! # let _ = (from, msg);
//! # Ok(())
//! # }
//! ```
//!
//! ## Model
//! - **Datagram semantics over TCP.** [`Endpoint::send`] is best effort and at most
//!   once: it encodes the message and queues it on the connection to the destination,
//!   which is opened lazily and re-opened (with jittered exponential backoff) after any
//!   failure. A message queued on a connection that breaks is lost; callers that need
//!   delivery (Raft, clients) retransmit. Messages on one healthy connection arrive in
//!   order; nothing is promised across reconnects.
//! - **Routing.** A node in the peer table ([`Endpoint::add_peer`]) is reached over an
//!   outbound connection. Any other node that connected in (a client) is reached over
//!   the newest connection it opened, so servers can reply to clients they do not know.
//!   Every message is reported to [`Endpoint::recv`] with the sender's node id from
//!   that connection's handshake.
//! - **Tasks and time** come from `sim_runtime` (traced spawns, virtual time), and every
//!   send, delivery and drop is recorded in the run trace with sender, receiver and size.
//!
//! ## Invariants
//! - **Framing** ([`frame`]): every frame is `u32 LE payload length`, `u32 LE crc32c of
//!   the payload`, then the postcard-encoded payload. The length is checked against
//!   [`Config::max_frame_bytes`] (default 16 MiB), and the payload buffer then grows
//!   only as bytes arrive, [`frame::READ_CHUNK`] (16 KiB) at a time: a length prefix is
//!   a claim, never an allocation (D53). The checksum is checked before anything is
//!   decoded.
//! - **Authentication** ([`auth`], [`Config::auth`]): before the hello, a connection
//!   proves an identity — mutual TLS in the real world (module `tls`: rustls on *ring*,
//!   certificates naming `node-<id>` or `client-<name>`), a simulated credential in the
//!   simulator — and [`authorize`] then judges the hello's claimed node id with the
//!   same code in both worlds: a node speaks only as its own id and only if it is in
//!   the peer table; a client never as a peer; without an identity, nothing, unless
//!   the endpoint is [`Auth::Insecure`] (the default of [`Config::new`]). A refused
//!   connection is closed before its hello is answered, and counted
//!   ([`NetStats::unauthenticated`], [`NetStats::unauthorized`]).
//! - **Handshake** ([`handshake`]): the first frame in each direction is a [`Hello`]
//!   (magic, protocol version, cluster id, token, node id, listen address), at most
//!   [`handshake::MAX_HANDSHAKE_BYTES`]. The acceptor answers only a hello that passes;
//!   the connector also checks that it reached the node it dialled.
//! - **Bounds** (D53; every number a [`Config`] field, defaults in brackets or parentheses):
//!   - connect and handshake timeouts [2 s each];
//!   - an **idle timeout** on inbound connections after the handshake
//!     ([`Config::idle_timeout`], [30 s]): no byte for that long, or a frame begun and
//!     not finished within it, closes the connection (counted in
//!     [`NetStats::idle_closed`]). Outbound connections carry no idle bound: their peer
//!     answers over its own link. An outbound link reconnects only when it has a
//!     message to send, so a quiet client whose connection was closed as idle
//!     reconnects with its next message, transparently (at most once-delivery is
//!     unchanged); Raft peers heartbeat constantly and never go idle;
//!   - **connection caps**: [`Config::max_inbound_connections`] (default 1024) in total and
//!     [`Config::max_inbound_per_ip`] (default 256) per source IP. A refused connector gets a
//!     refusal frame ([`bounds::REFUSAL_MAGIC`] + the reason) instead of a bare close,
//!     logs it with `tracing::warn!` and counts it in [`NetStats::refused_by_peer`];
//!     the acceptor counts it in [`NetStats::inbound_rejected`];
//!   - a **byte budget per node** ([`Config::max_buffered_bytes`], [64 MiB], at least
//!     `max_frame_bytes`): payload bytes are reserved chunk by chunk before they are
//!     read, and held until [`Endpoint::recv`] hands the message out; a reader that
//!     cannot reserve stops reading (TCP back-pressure). The inbox is also bounded in
//!     messages ([`Config::inbox_capacity`]), and each connection's send queue in
//!     frames ([`Config::send_queue_capacity`]; a full queue refuses the send). A Vec
//!     may double its capacity while growing, so a node's frame memory is at most about
//!     twice the budget plus one chunk per connection.
//! - **Hostile input never crashes a node.** A wrong magic, version, cluster id or
//!   token, a bad checksum, an oversized length, a truncated frame or an undecodable
//!   payload closes *that* connection with a `tracing::warn!` and a counter in
//!   [`NetStats`]; the endpoint keeps serving everyone else. Nothing fed by the network
//!   is unwrapped.
//!
//! ## Fault model (simulated world only)
//! On top of madsim's network (which itself only delays, and stalls TCP under its own
//! clogging), the receiving endpoint decides the fate of each data frame from the
//! sender's IP and its own: link clogging (held until unclogged), symmetric and one-way
//! partitions (dropped), and per-message drop, duplication, reordering, delay and
//! connection reset drawn from the run's [`NetFaultConfig`] with the `net` random
//! stream. Each injected fault is counted (`net.drop`, `net.partition_drop`, `net.dup`,
//! `net.delay`, `net.reorder`, `net.reset`, `net.clog`) and traced; the `faults` module
//! documents the order of the decisions. In the real world none of this is compiled.
//!
//! Limits of these bounds: the budget is spent only after a handshake, but a peer that
//! passed it and starts maximal frames without finishing them holds up to
//! `max_frame_bytes` of the budget per connection for one idle timeout each time; four
//! such connections (with the defaults) hold all of it, and readers that cannot reserve
//! meanwhile time out too. Memory stays bounded; throughput does not. Keeping such a
//! peer out is the handshake's job, not the budget's.
//!
//! ## Non-goals
//! - Reliable or exactly-once delivery, request/response correlation, flow control
//!   beyond the bounded queues: those belong to the protocols above.
//! - Encryption or authentication with [`Auth::Insecure`]: the token is then a shared
//!   secret sent in clear, a guard against mis-wiring clusters, not against attackers.
//! - Binding a client identity to one client node id; certificate revocation.
//! - TLS in the simulated world: simulated credentials model what it proves (who is at
//!   the other end), not its cryptography (DECISIONS D49).
//! - Peer discovery: peers are configured; the listen address in the handshake is
//!   informational.
//! - Faults on handshakes: partitions and message faults apply to data frames only, so
//!   a one-way partition blocks exactly one direction of messages.

#![warn(missing_docs)]

pub mod auth;
pub mod bounds;
mod config;
mod conn;
mod endpoint;
mod fault_config;
#[cfg(madsim)]
pub mod faults;
pub mod frame;
pub mod handshake;
mod secure;
mod sink;
#[cfg(not(madsim))]
mod sniff;
mod stats;
#[cfg(not(madsim))]
pub mod tls;

pub use auth::{authorize, Auth, AuthError, Identity, Role, SimAuth, SimCa, SimCredential};
pub use config::{
    Config, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_INBOUND_PER_IP,
};
pub use endpoint::{Endpoint, SendError, MAX_TOKEN_BYTES};
pub use fault_config::NetFaultConfig;
pub use frame::FrameError;
pub use handshake::{HandshakeError, Hello};
pub use stats::NetStats;

/// What an [`Endpoint`] can carry: any owned serde type that can cross tasks.
pub trait Message: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> Message for T {}
