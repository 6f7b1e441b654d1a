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
//!   [`Config::max_frame_bytes`] (default 16 MiB) *before* the payload buffer is
//!   allocated, and the checksum before anything is decoded.
//! - **Handshake** ([`handshake`]): the first frame in each direction is a [`Hello`]
//!   (magic, protocol version, cluster id, token, node id, listen address), at most
//!   [`handshake::MAX_HANDSHAKE_BYTES`]. The acceptor answers only a hello that passes;
//!   the connector also checks that it reached the node it dialled.
//! - **Bounds**: per-connection send queues ([`Config::send_queue_capacity`]; a full
//!   queue refuses the send), a bounded inbox ([`Config::inbox_capacity`]; a full inbox
//!   stops readers, i.e. TCP back-pressure), a cap on inbound connections, timeouts on
//!   connect and handshake.
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
//! ## Non-goals
//! - Reliable or exactly-once delivery, request/response correlation, flow control
//!   beyond the bounded queues: those belong to the protocols above.
//! - Encryption or strong authentication: the token is a shared secret sent in clear,
//!   a guard against mis-wiring clusters, not against attackers on the path.
//! - Peer discovery: peers are configured; the listen address in the handshake is
//!   informational.
//! - Faults on handshakes: partitions and message faults apply to data frames only, so
//!   a one-way partition blocks exactly one direction of messages.

#![warn(missing_docs)]

pub mod bounds;
mod config;
mod conn;
mod endpoint;
mod fault_config;
#[cfg(madsim)]
pub mod faults;
pub mod frame;
pub mod handshake;
mod sink;
mod stats;

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
