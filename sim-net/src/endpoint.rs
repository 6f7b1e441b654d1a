//! The endpoint: a node's typed, best-effort message transport.

use crate::auth::{Auth, Identity};
use crate::bounds::Held;
use crate::config::Config;
use crate::conn::{self, Peer, Shared};
use crate::frame::{self, FrameError};
use crate::handshake::MAX_HANDSHAKE_BYTES;
use crate::stats::{bump, NetStats};
use crate::Message;
use sim_runtime::sync::lock;
use sim_runtime::sync::Signal;
use sim_runtime::trace::EventKind;
use sim_runtime::NodeId;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest token accepted in a [`Config`] (it must fit in a handshake frame).
pub const MAX_TOKEN_BYTES: usize = 1024;

// A hello with the longest token must fit the handshake frame bound.
const _: () = assert!(MAX_TOKEN_BYTES + 256 < MAX_HANDSHAKE_BYTES);

/// Why [`Endpoint::send`] refused a message. A message it accepts may still be lost.
#[derive(Debug)]
pub enum SendError {
    /// The node is neither in the peer table nor connected in.
    UnknownPeer(u64),
    /// The connection's queue to that node is full.
    QueueFull(u64),
    /// The message could not be encoded or exceeds the maximum frame size.
    Frame(FrameError),
    /// The endpoint has been closed.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownPeer(n) => write!(f, "node {n} is not a known peer"),
            SendError::QueueFull(n) => write!(f, "send queue to node {n} is full"),
            SendError::Frame(e) => write!(f, "cannot frame the message: {e}"),
            SendError::Closed => write!(f, "the endpoint is closed"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Frame(e) => Some(e),
            _ => None,
        }
    }
}

/// Closes the endpoint when the last handle is dropped.
struct ShutdownGuard(Arc<Signal>);

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// A node's message transport: sends `M`s to other nodes by id and receives theirs.
///
/// Cloning gives another handle to the same endpoint; the endpoint (listener,
/// connections, tasks) shuts down when the last handle is dropped or on
/// [`Endpoint::close`].
pub struct Endpoint<M> {
    shared: Arc<Shared<M>>,
    inbox: Arc<tokio::sync::Mutex<mpsc::Receiver<(u64, M, Held)>>>,
    guard: Arc<ShutdownGuard>,
}

impl<M> Clone for Endpoint<M> {
    fn clone(&self) -> Self {
        Endpoint {
            shared: self.shared.clone(),
            inbox: self.inbox.clone(),
            guard: self.guard.clone(),
        }
    }
}

impl<M> fmt::Debug for Endpoint<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("node_id", &self.shared.config.node_id)
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn validate(config: &Config) -> io::Result<()> {
    if config.max_frame_bytes == 0 || config.max_frame_bytes as u64 > u64::from(u32::MAX) {
        return Err(invalid("max_frame_bytes must be in 1..=u32::MAX"));
    }
    crate::config::validate_bounds(config).map_err(|e| invalid(&e))?;
    if config.send_queue_capacity == 0 || config.inbox_capacity == 0 {
        return Err(invalid(
            "send_queue_capacity and inbox_capacity must be positive",
        ));
    }
    if config
        .token
        .as_ref()
        .is_some_and(|t| t.len() > MAX_TOKEN_BYTES)
    {
        return Err(invalid("token longer than MAX_TOKEN_BYTES"));
    }
    check_own_identity(config)
}

/// Refuses credentials this world cannot use, and credentials that name someone else
/// than the endpoint (a node's must name `node-<its id>`).
fn check_own_identity(config: &Config) -> io::Result<()> {
    let own = match &config.auth {
        Auth::Insecure => return Ok(()),
        #[cfg(not(madsim))]
        Auth::Simulated(_) => {
            return Err(invalid(
                "simulated credentials exist only in the simulated world",
            ))
        }
        #[cfg(madsim)]
        Auth::Simulated(s) => match &s.credential {
            Some(c) => c.identity.clone(),
            None => return Ok(()),
        },
        #[cfg(not(madsim))]
        Auth::Tls(t) => t.identity().clone(),
    };
    match own {
        Identity::Node(id) if id != config.node_id => Err(invalid(&format!(
            "the credential names {own}, but this endpoint is node {}",
            config.node_id
        ))),
        _ => Ok(()),
    }
}

impl<M: Message> Endpoint<M> {
    /// Listens on `listen` (port 0: any free port; see [`Endpoint::local_addr`]) and
    /// starts accepting connections. Must be called inside a runtime (in simulation,
    /// on the node that owns the endpoint).
    pub async fn bind(listen: SocketAddr, config: Config) -> io::Result<Self> {
        validate(&config)?;
        #[allow(clippy::disallowed_methods)] // sim-net is the one place that opens sockets
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let (inbox_tx, inbox_rx) = mpsc::channel(config.inbox_capacity);
        let shutdown = Arc::new(Signal::default());
        let (links_tx, links_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(
            config,
            local_addr,
            inbox_tx,
            shutdown.clone(),
            links_tx,
        ));
        conn::spawn_task(
            &shared,
            "net.links",
            conn::link_starter(shared.clone(), links_rx),
        );
        conn::spawn_task(
            &shared,
            "net.accept",
            conn::accept_loop(shared.clone(), listener),
        );
        tracing::debug!(node = shared.config.node_id, %local_addr, "sim-net: listening");
        Ok(Endpoint {
            shared,
            inbox: Arc::new(tokio::sync::Mutex::new(inbox_rx)),
            guard: Arc::new(ShutdownGuard(shutdown)),
        })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This endpoint's node id.
    pub fn node_id(&self) -> u64 {
        self.shared.config.node_id
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Adds `node_id` at `addr` to the peer table, or changes its address (the next
    /// connection attempt uses the new one). Nothing connects until the first send.
    pub fn add_peer(&self, node_id: NodeId, addr: SocketAddr) {
        lock(&self.shared.peers)
            .entry(node_id)
            .and_modify(|p| p.addr = addr)
            .or_insert(Peer { addr, queue: None });
    }

    /// Removes `node_id` from the peer table; its link closes and unsent messages are
    /// dropped. Returns whether it was there.
    pub fn remove_peer(&self, node_id: NodeId) -> bool {
        lock(&self.shared.peers).remove(&node_id).is_some()
    }

    /// The peer table: node id → address.
    pub fn peers(&self) -> BTreeMap<u64, SocketAddr> {
        lock(&self.shared.peers)
            .iter()
            .map(|(id, p)| (*id, p.addr))
            .collect()
    }

    /// Node ids currently connected in (the ones [`Endpoint::send`] can reply to even
    /// when they are not in the peer table).
    pub fn inbound_nodes(&self) -> Vec<u64> {
        lock(&self.shared.inbound).keys().copied().collect()
    }

    /// Sends `msg` to node `to`. See [`Endpoint::send_ref`].
    #[track_caller]
    pub fn send(&self, to: u64, msg: M) -> Result<(), SendError> {
        self.send_ref(to, &msg)
    }

    /// Sends `msg` to node `to`, best effort and at most once: the message is encoded
    /// and queued on the connection to `to` (opened lazily, reopened after failures)
    /// and may be lost if that connection breaks. A node in the peer table is reached
    /// through an outbound connection; any other node through the newest connection it
    /// opened to us. Sending to ourselves delivers locally. Connections are made by the
    /// endpoint's own tasks, so in simulation any task may send (they still connect
    /// from the endpoint's node).
    #[track_caller]
    pub fn send_ref(&self, to: u64, msg: &M) -> Result<(), SendError> {
        let shared = &self.shared;
        let me = shared.config.node_id;
        let result = self.try_send_ref(to, msg);
        match &result {
            Ok(size) => {
                bump(&shared.stats.sent);
                conn::trace_msg(EventKind::Send, me, to, *size, &conn::msg_note(msg, ""));
            }
            Err(e) => {
                bump(&shared.stats.send_rejected);
                conn::trace_msg(EventKind::Drop, me, to, 0, &format!(" refused: {e}"));
            }
        }
        result.map(|_| ())
    }

    fn try_send_ref(&self, to: u64, msg: &M) -> Result<usize, SendError> {
        let shared = &self.shared;
        if shared.is_shut_down() {
            return Err(SendError::Closed);
        }
        let frame =
            frame::encode_value(msg, shared.config.max_frame_bytes).map_err(SendError::Frame)?;
        let size = frame.len() - frame::HEADER_LEN;
        if to == shared.config.node_id {
            let copy: M =
                frame::decode_value(&frame[frame::HEADER_LEN..]).map_err(SendError::Frame)?;
            let note = conn::msg_note(&copy, " local");
            return match shared.inbox.try_send((to, copy, Held::none())) {
                Ok(()) => {
                    bump(&shared.stats.delivered);
                    conn::trace_msg(EventKind::Deliver, to, to, size, &note);
                    Ok(size)
                }
                Err(mpsc::error::TrySendError::Full(_)) => Err(SendError::QueueFull(to)),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
            };
        }
        let queue = self.queue_to(to)?;
        match queue.try_send(frame) {
            Ok(()) => Ok(size),
            Err(mpsc::error::TrySendError::Full(_)) => Err(SendError::QueueFull(to)),
            Err(mpsc::error::TrySendError::Closed(_)) if shared.is_shut_down() => {
                Err(SendError::Closed)
            }
            // An inbound connection that ended between the lookup and now.
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::UnknownPeer(to)),
        }
    }

    /// The queue of the connection that reaches `to`, starting its link if needed.
    fn queue_to(&self, to: u64) -> Result<mpsc::Sender<conn::Frame>, SendError> {
        let shared = &self.shared;
        {
            let mut peers = lock(&shared.peers);
            if let Some(peer) = peers.get_mut(&to) {
                if let Some(q) = peer.queue.as_ref().filter(|q| !q.is_closed()) {
                    return Ok(q.clone());
                }
                let (tx, rx) = mpsc::channel(shared.config.send_queue_capacity);
                peer.queue = Some(tx.clone());
                drop(peers);
                shared.start_link(to, rx);
                return Ok(tx);
            }
        }
        lock(&shared.inbound)
            .get(&to)
            .map(|r| r.queue.clone())
            .ok_or(SendError::UnknownPeer(to))
    }

    /// Waits for the next message; returns its sender's node id and the message.
    pub async fn recv(&self) -> (u64, M) {
        let mut inbox = self.inbox.lock().await;
        match inbox.recv().await {
            // The message's share of the byte budget is released here.
            Some((from, msg, _held)) => (from, msg),
            // Unreachable while this handle lives (the endpoint holds a sender).
            None => std::future::pending().await,
        }
    }

    /// The next message if one is waiting (None also while another task is in
    /// [`Endpoint::recv`]).
    pub fn try_recv(&self) -> Option<(u64, M)> {
        let (from, msg, _held) = self.inbox.try_lock().ok()?.try_recv().ok()?;
        Some((from, msg))
    }

    /// Counters of this endpoint.
    pub fn stats(&self) -> NetStats {
        self.shared.stats.snapshot()
    }

    /// Shuts the endpoint down now: stops listening, closes every connection and ends
    /// its tasks. Later sends fail with [`SendError::Closed`]; messages already
    /// received can still be read.
    pub fn close(&self) {
        self.guard.0.raise();
    }
}
