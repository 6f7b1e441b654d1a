//! Connections: the accept loop, outbound links, the handshake exchange and the
//! per-connection read and write loops.
//!
//! Every established connection, whichever side opened it, runs one read loop (frames
//! in, to the endpoint's inbox) and one write loop (frames from that connection's queue
//! out) until either ends; then both halves are dropped, which closes the connection.
//! An outbound link owns its peer's queue across reconnects; an inbound connection has
//! its own queue, used for replies to nodes not in the peer table. How a handshake or a
//! connection fails, and how each failure is logged and counted, is module `failure`.

use crate::auth::authorize;
use crate::bounds::{self, ByteBudget, Held, InboundCount, Slot};
use crate::config::Config;
use crate::frame::{self, FrameError};
use crate::handshake::{HandshakeError, Hello, MAX_HANDSHAKE_BYTES};
use crate::secure::{self, Stream};
use crate::sink::Sink;
use crate::stats::{bump, Stats};
use crate::Message;
use rand::Rng;
use sim_runtime::sync::lock;
use sim_runtime::sync::Signal;
use sim_runtime::trace::EventKind;
use sim_runtime::NodeId;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

mod failure;
pub(crate) use failure::Close;
use failure::{closed, handshake_failed, HsError};

/// An encoded frame, header included.
pub(crate) type Frame = Vec<u8>;

/// State shared by an endpoint's handles and its tasks.
pub(crate) struct Shared<M> {
    pub config: Config,
    pub local_addr: SocketAddr,
    pub stats: Stats,
    pub inbox: mpsc::Sender<(u64, M, Held)>,
    /// Bytes of received frames held node-wide (D53).
    pub budget: ByteBudget,
    /// The peer table: node id → address and (once the link started) its queue.
    pub peers: Mutex<BTreeMap<u64, Peer>>,
    /// Reply routes: node id → the newest inbound connection from that node.
    pub inbound: Mutex<BTreeMap<u64, Route>>,
    inbound_count: Arc<InboundCount>,
    next_conn: AtomicU64,
    shutdown: Arc<Signal>,
    /// Requests to start a peer's link, served by a task on the endpoint's own node.
    links: mpsc::UnboundedSender<LinkRequest>,
}

/// A peer to keep connected, and its queue.
pub(crate) type LinkRequest = (u64, mpsc::Receiver<Frame>);

/// One entry of the peer table.
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub queue: Option<mpsc::Sender<Frame>>,
}

/// A reply route over an inbound connection.
pub(crate) struct Route {
    conn: u64,
    pub queue: mpsc::Sender<Frame>,
}

impl<M: Message> Shared<M> {
    pub(crate) fn new(
        config: Config,
        local_addr: SocketAddr,
        inbox: mpsc::Sender<(u64, M, Held)>,
        shutdown: Arc<Signal>,
        links: mpsc::UnboundedSender<LinkRequest>,
    ) -> Self {
        Shared {
            budget: ByteBudget::new(config.max_buffered_bytes),
            config,
            local_addr,
            stats: Stats::default(),
            inbox,
            peers: Mutex::new(BTreeMap::new()),
            inbound: Mutex::new(BTreeMap::new()),
            inbound_count: Arc::default(),
            next_conn: AtomicU64::new(1),
            shutdown,
            links,
        }
    }

    /// Has the link task for peer `node` started with `queue`. The task is spawned by
    /// [`link_starter`], so it runs on the endpoint's node whichever task sends (in
    /// simulation a task runs on the node it was spawned from).
    pub(crate) fn start_link(&self, node: NodeId, queue: mpsc::Receiver<Frame>) {
        // Fails only after shutdown, when there is nothing left to connect.
        let _ = self.links.send((node, queue));
    }

    /// Whether the endpoint has been closed.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown.version() > 0
    }
}

/// Spawns `fut` as a task of the endpoint: it ends when the endpoint shuts down.
#[track_caller]
pub(crate) fn spawn_task<M, F>(shared: &Shared<M>, name: &str, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let shutdown = shared.shutdown.clone();
    sim_runtime::task::spawn_named(name, async move {
        tokio::select! {
            biased;
            _ = shutdown.changed(0) => {}
            _ = fut => {}
        }
    });
}

/// Records a message event in the run trace (simulation only).
#[track_caller]
pub(crate) fn trace_msg(kind: EventKind, from: u64, to: u64, size: usize, note: &str) {
    if sim_runtime::SIMULATED {
        sim_runtime::trace::record(kind, format_args!("net {from}->{to} {size}B{note}"));
    }
}

/// A message event's note led by the message's variant path (` Raft(AppendEntries)`),
/// so a trace says what was sent, not only its size. Simulation only, and only while
/// the run records: nothing is computed where nothing is traced.
pub(crate) fn msg_note<M: serde::Serialize>(msg: &M, note: &str) -> String {
    if !sim_runtime::SIMULATED || !sim_runtime::trace::is_recording() {
        return String::new();
    }
    let what = sim_runtime::summary::summary(msg);
    if what.is_empty() {
        note.to_string()
    } else {
        format!(" {what}{note}")
    }
}

/// Hands a received message to `recv`.
pub(crate) async fn push<M: Message>(
    shared: &Shared<M>,
    from: u64,
    msg: M,
    held: Held,
    size: usize,
    note: &str,
) -> Result<(), Close> {
    let note = msg_note(&msg, note);
    shared
        .inbox
        .send((from, msg, held))
        .await
        .map_err(|_| Close::InboxClosed)?;
    bump(&shared.stats.delivered);
    trace_msg(EventKind::Deliver, from, shared.config.node_id, size, &note);
    Ok(())
}

async fn write_frame<W: AsyncWrite + Unpin>(wr: &mut W, frame: &[u8]) -> io::Result<()> {
    // Only whole frames go out (`frame::encode_*` built them): a reader's `decode`
    // accepts each as exactly one frame.
    debug_assert!(matches!(
        frame::decode(frame, usize::MAX),
        Ok(Some((_, used))) if used == frame.len()
    ));
    wr.write_all(frame).await?;
    // madsim's TCP sends on flush; real TCP is unbuffered here, so this is cheap.
    wr.flush().await
}

async fn read_hello(rd: &mut ReadHalf<Stream>) -> Result<Hello, HsError> {
    match frame::read_frame(rd, MAX_HANDSHAKE_BYTES).await? {
        Some(payload) => match bounds::parse_refusal(&payload) {
            Some(why) => Err(HsError::Busy(why)),
            None => Ok(frame::decode_value(&payload)?),
        },
        None => Err(HsError::Closed),
    }
}

/// An established connection.
struct Conn {
    rd: ReadHalf<Stream>,
    wr: WriteHalf<Stream>,
    local: SocketAddr,
    peer: SocketAddr,
}

/// A fresh TCP stream's addresses, with Nagle off.
fn addrs(stream: &TcpStream) -> io::Result<(SocketAddr, SocketAddr)> {
    // Latency matters more than throughput for small protocol messages.
    let _ = stream.set_nodelay(true);
    Ok((stream.local_addr()?, stream.peer_addr()?))
}

fn split(stream: Stream, (local, peer): (SocketAddr, SocketAddr)) -> Conn {
    let (rd, wr) = tokio::io::split(stream);
    Conn {
        rd,
        wr,
        local,
        peer,
    }
}

/// Whether `node` is in the peer table (the node identities allowed to connect in).
fn is_peer<M>(shared: &Shared<M>, node: NodeId) -> bool {
    lock(&shared.peers).contains_key(&node)
}

/// Starts the link tasks [`Shared::start_link`] asks for, until the endpoint shuts down.
pub(crate) async fn link_starter<M: Message>(
    shared: Arc<Shared<M>>,
    mut requests: mpsc::UnboundedReceiver<LinkRequest>,
) {
    while let Some((node, queue)) = requests.recv().await {
        spawn_task(&shared, "net.link", run_link(shared.clone(), node, queue));
    }
}

/// Accepts connections until the endpoint shuts down.
pub(crate) async fn accept_loop<M: Message>(shared: Arc<Shared<M>>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(node = shared.config.node_id, error = %e, "sim-net: accept failed");
                sim_runtime::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let cfg = &shared.config;
        let slot = match shared.inbound_count.admit(
            peer.ip(),
            cfg.max_inbound_connections,
            cfg.max_inbound_per_ip,
        ) {
            Ok(slot) => slot,
            Err(why) => {
                bump(&shared.stats.inbound_rejected);
                tracing::warn!(node = cfg.node_id, %peer, why, "sim-net: refusing an inbound connection");
                refuse(&shared, stream, why);
                continue;
            }
        };
        let s = shared.clone();
        spawn_task(&shared, "net.inbound", serve_inbound(s, stream, slot));
    }
}

/// Tells a refused connector why (a refusal frame), then closes. The write is bounded
/// by the handshake timeout, so a connector that never reads holds nothing for long.
fn refuse<M>(shared: &Shared<M>, stream: TcpStream, why: String) {
    let wait = shared.config.handshake_timeout;
    spawn_task(shared, "net.refuse", async move {
        let frame = bounds::refusal_frame(&why);
        let _ = sim_runtime::time::timeout(wait, bounds::refuse_politely(stream, &frame)).await;
    });
}

/// Serves one inbound connection: handshake, then read and write loops.
async fn serve_inbound<M: Message>(shared: Arc<Shared<M>>, stream: TcpStream, slot: Slot) {
    let _slot = slot;
    let cfg = &shared.config;
    let addrs = match addrs(&stream) {
        Ok(a) => a,
        Err(e) => {
            bump(&shared.stats.io_errors);
            tracing::debug!(node = cfg.node_id, error = %e, "sim-net: inbound socket unusable");
            return;
        }
    };
    let peer = addrs.1;
    let exchange = async {
        let (stream, verified) = secure::accept(stream, &cfg.auth).await?;
        let mut conn = split(stream, addrs);
        let theirs = read_hello(&mut conn.rd).await?;
        theirs.check(cfg)?;
        let required = cfg.auth.required();
        authorize(
            verified.as_ref(),
            theirs.node_id,
            |n| is_peer(shared.as_ref(), n),
            required,
        )
        .map_err(HsError::Auth)?;
        let ours = frame::encode_value(
            &Hello::new(cfg, Some(shared.local_addr)),
            MAX_HANDSHAKE_BYTES,
        )?;
        write_frame(&mut conn.wr, &ours)
            .await
            .map_err(|e| HsError::Frame(FrameError::Io(e)))?;
        Ok::<(Hello, Conn), HsError>((theirs, conn))
    };
    let (hello, mut conn) = match sim_runtime::time::timeout(cfg.handshake_timeout, exchange).await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return handshake_failed(&shared, peer, None, e),
        Err(_) => return handshake_failed(&shared, peer, None, HsError::Timeout),
    };
    bump(&shared.stats.accepted);
    let remote = hello.node_id;
    tracing::debug!(node = cfg.node_id, remote, %peer, "sim-net: accepted");
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel(cfg.send_queue_capacity);
    lock(&shared.inbound).insert(
        remote,
        Route {
            conn: id,
            queue: tx,
        },
    );
    let idle = Some(cfg.idle_timeout);
    let close = run_connection(&shared, &mut conn, remote, &mut rx, idle, None).await;
    {
        let mut inbound = lock(&shared.inbound);
        if inbound.get(&remote).is_some_and(|r| r.conn == id) {
            inbound.remove(&remote);
        }
    }
    closed(&shared, remote, peer, close);
}

/// Keeps a connection to peer `node` while its queue is open: connects, handshakes,
/// runs the connection, and after any failure waits a growing, jittered backoff. It
/// connects only with a frame to send, so a quiet link whose peer closed it as idle
/// (D53) is reopened by the next message, not at once.
pub(crate) async fn run_link<M: Message>(
    shared: Arc<Shared<M>>,
    node: NodeId,
    mut queue: mpsc::Receiver<Frame>,
) {
    let cfg = &shared.config;
    let min = cfg.reconnect_backoff_min.max(Duration::from_millis(1));
    let max = cfg.reconnect_backoff_max.max(min);
    let mut backoff = min;
    let mut pending: Option<Frame> = None;
    loop {
        if pending.is_none() {
            match queue.recv().await {
                Some(f) => pending = Some(f),
                None => return,
            }
        }
        let Some(addr) = lock(&shared.peers).get(&node).map(|p| p.addr) else {
            return;
        };
        match connect(&shared, node, addr).await {
            Ok(mut conn) => {
                bump(&shared.stats.connects);
                tracing::debug!(node = cfg.node_id, remote = node, %addr, "sim-net: connected");
                backoff = min;
                let first = pending.take();
                let close = run_connection(&shared, &mut conn, node, &mut queue, None, first).await;
                let done = matches!(close, Close::QueueClosed | Close::InboxClosed);
                closed(&shared, node, addr, close);
                if done {
                    return;
                }
            }
            Err(e) => handshake_failed(&shared, addr, Some(node), e),
        }
        let jitter_ns = sim_runtime::rng::stream("net").gen_range(0..=backoff.as_nanos() / 2);
        let pause = backoff + Duration::from_nanos(u64::try_from(jitter_ns).unwrap_or(0));
        sim_runtime::time::sleep(pause).await;
        backoff = (backoff * 2).min(max);
    }
}

/// Opens a connection to `addr` and exchanges hellos, expecting node `node`.
async fn connect<M: Message>(
    shared: &Shared<M>,
    node: NodeId,
    addr: SocketAddr,
) -> Result<Conn, HsError> {
    let cfg = &shared.config;
    #[allow(clippy::disallowed_methods)] // sim-net is the one place that opens sockets
    let stream =
        match sim_runtime::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(HsError::Connect(e)),
            Err(_) => return Err(HsError::Timeout),
        };
    let addrs = addrs(&stream).map_err(HsError::Connect)?;
    let exchange = async {
        let (stream, verified) = secure::connect(stream, &cfg.auth, node).await?;
        let mut conn = split(stream, addrs);
        let ours = frame::encode_value(
            &Hello::new(cfg, Some(shared.local_addr)),
            MAX_HANDSHAKE_BYTES,
        )?;
        write_frame(&mut conn.wr, &ours)
            .await
            .map_err(|e| HsError::Frame(FrameError::Io(e)))?;
        let theirs = read_hello(&mut conn.rd).await?;
        theirs.check(cfg)?;
        if theirs.node_id != node {
            return Err(HsError::Refused(HandshakeError::UnexpectedNode {
                expected: node,
                got: theirs.node_id,
            }));
        }
        // The node we dialled is a peer by definition; its credential must name it.
        let required = cfg.auth.required();
        authorize(verified.as_ref(), theirs.node_id, |n| n == node, required)
            .map_err(HsError::Auth)?;
        Ok(conn)
    };
    match sim_runtime::time::timeout(cfg.handshake_timeout, exchange).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(HsError::Timeout),
    }
}

/// Runs an established connection until its read or write loop ends.
/// `idle`: the idle bound on reads (inbound connections only: on an outbound one the
/// peer sends nothing back, its messages come over its own link). `first`: a frame to
/// send before the queue's.
async fn run_connection<M: Message>(
    shared: &Arc<Shared<M>>,
    conn: &mut Conn,
    remote: u64,
    queue: &mut mpsc::Receiver<Frame>,
    idle: Option<Duration>,
    first: Option<Frame>,
) -> Close {
    let (local, peer) = (conn.local, conn.peer);
    tokio::select! {
        biased;
        close = read_loop(shared, &mut conn.rd, remote, local, peer, idle) => close,
        close = write_loop(&mut conn.wr, queue, first) => close,
    }
}

async fn write_loop(
    wr: &mut WriteHalf<Stream>,
    queue: &mut mpsc::Receiver<Frame>,
    first: Option<Frame>,
) -> Close {
    if let Some(frame) = first {
        if let Err(e) = write_frame(wr, &frame).await {
            return Close::Write(e);
        }
    }
    while let Some(frame) = queue.recv().await {
        if let Err(e) = write_frame(wr, &frame).await {
            return Close::Write(e);
        }
    }
    Close::QueueClosed
}

async fn read_loop<M: Message>(
    shared: &Arc<Shared<M>>,
    rd: &mut ReadHalf<Stream>,
    remote: u64,
    local: SocketAddr,
    peer: SocketAddr,
    idle: Option<Duration>,
) -> Close {
    let max = shared.config.max_frame_bytes;
    let mut sink = Sink::new(shared.clone(), remote, local, peer);
    let mut budget = shared.budget.reader();
    loop {
        let payload = match frame::read_frame_paced(rd, max, idle, &mut budget).await {
            Ok(Some(p)) => p,
            Ok(None) => return Close::Eof,
            Err(e) => return Close::Frame(e),
        };
        let msg: M = match frame::decode_value(&payload) {
            Ok(m) => m,
            Err(e) => return Close::Frame(e),
        };
        if let Err(close) = sink.accept(payload, msg, budget.take()).await {
            return close;
        }
    }
}
