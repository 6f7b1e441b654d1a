//! Real-world tests: endpoints on 127.0.0.1 (port 0), real TCP, hostile raw peers.
#![cfg(not(madsim))]
#![allow(clippy::disallowed_methods)] // sim-net's own real-world tests: real runtimes and raw TCP are the subject

use serde::{Deserialize, Serialize};
use sim_net::frame::{self, FrameError, HEADER_LEN};
use sim_net::handshake::{Hello, MAX_HANDSHAKE_BYTES};
use sim_net::{Config, Endpoint, NetStats, SendError};
use sim_runtime::NodeId;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Records the largest single allocation of the test binary, so the oversized-length
/// test can prove the announced length was never allocated.
struct MaxAlloc;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for MaxAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: MaxAlloc = MaxAlloc;

const CLUSTER: u64 = 0xC0FFEE;
const TOKEN: &str = "let-me-in";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Text(String),
    Blob(Vec<u8>),
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal address")
}

fn config(node: NodeId) -> Config {
    Config::new(CLUSTER, node).with_token(TOKEN)
}

async fn endpoint(node: NodeId) -> Endpoint<Msg> {
    Endpoint::bind(loopback(), config(node))
        .await
        .expect("bind 127.0.0.1:0")
}

async fn recv(ep: &Endpoint<Msg>) -> (u64, Msg) {
    sim_runtime::time::timeout(WAIT, ep.recv())
        .await
        .unwrap_or_else(|_| panic!("node {} received nothing within {WAIT:?}", ep.node_id()))
}

/// Waits (bounded) until `cond` holds for `ep`'s stats.
async fn wait_stats(ep: &Endpoint<Msg>, what: &str, cond: impl Fn(&NetStats) -> bool) {
    let deadline = sim_runtime::time::now() + WAIT;
    while !cond(&ep.stats()) {
        assert!(
            sim_runtime::time::now() < deadline,
            "{what} never happened; stats: {:?}",
            ep.stats()
        );
        sim_runtime::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn two_endpoints_exchange_typed_messages_both_ways() {
    let a = endpoint(1).await;
    let b = endpoint(2).await;
    a.add_peer(2, b.local_addr());
    b.add_peer(1, a.local_addr());

    let big = Msg::Blob((0..1_000_000u32).map(|i| (i % 251) as u8).collect());
    let to_b = vec![
        Msg::Ping(1),
        Msg::Text("hello b".into()),
        big.clone(),
        Msg::Ping(2),
    ];
    for m in &to_b {
        a.send(2, m.clone()).expect("send a->b");
    }
    for want in &to_b {
        let (from, got) = recv(&b).await;
        assert_eq!(from, 1);
        assert_eq!(&got, want, "in order, intact");
    }
    let to_a = vec![Msg::Text("hello a".into()), Msg::Ping(3)];
    for m in &to_a {
        b.send(1, m.clone()).expect("send b->a");
    }
    for want in &to_a {
        assert_eq!(recv(&a).await, (2, want.clone()));
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.sent, sa.delivered, sa.connects), (4, 2, 1), "{sa:?}");
    assert_eq!((sb.sent, sb.delivered, sb.connects), (2, 4, 1), "{sb:?}");
    assert_eq!(sb.accepted, 1, "{sb:?}");

    // Sending to ourselves delivers locally; an unknown node is refused.
    a.send(1, Msg::Ping(9)).expect("self send");
    assert_eq!(recv(&a).await, (1, Msg::Ping(9)));
    assert!(matches!(
        a.send(77, Msg::Ping(0)),
        Err(SendError::UnknownPeer(77))
    ));
    // A message over the frame maximum is refused at the sender.
    let small = Endpoint::<Msg>::bind(
        loopback(),
        Config {
            max_frame_bytes: 64,
            ..config(5)
        },
    )
    .await
    .expect("bind");
    small.add_peer(2, b.local_addr());
    assert!(matches!(
        small.send(2, Msg::Blob(vec![0; 100])),
        Err(SendError::Frame(FrameError::TooLarge { .. }))
    ));
}

#[tokio::test]
async fn server_replies_to_a_client_it_does_not_know() {
    let server = endpoint(1).await;
    let client = endpoint(1000).await;
    client.add_peer(1, server.local_addr());
    client.send(1, Msg::Text("request".into())).expect("send");
    assert_eq!(recv(&server).await, (1000, Msg::Text("request".into())));
    assert!(server.peers().is_empty());
    assert_eq!(server.inbound_nodes(), vec![1000]);
    server
        .send(1000, Msg::Text("response".into()))
        .expect("reply over the inbound connection");
    assert_eq!(recv(&client).await, (1, Msg::Text("response".into())));
    // The reply used the client's connection: the server opened none.
    assert_eq!(server.stats().connects, 0);
}

#[tokio::test]
async fn reconnects_after_the_peer_restarts() {
    let a = endpoint(1).await;
    let b = endpoint(2).await;
    let b_addr = b.local_addr();
    a.add_peer(2, b_addr);
    a.send(2, Msg::Ping(1)).expect("send");
    assert_eq!(recv(&b).await, (1, Msg::Ping(1)));
    b.close();
    drop(b);
    // A new endpoint for node 2 on a fresh port; a learns the new address.
    let b2 = endpoint(2).await;
    a.add_peer(2, b2.local_addr());
    let deadline = sim_runtime::time::now() + WAIT;
    let mut n = 100;
    loop {
        // Messages sent while the old connection is broken may be lost: keep sending.
        let _ = a.send(2, Msg::Ping(n));
        if let Ok((from, Msg::Ping(_))) =
            sim_runtime::time::timeout(Duration::from_millis(50), b2.recv()).await
        {
            assert_eq!(from, 1);
            break;
        }
        assert!(
            sim_runtime::time::now() < deadline,
            "never reconnected: {:?}",
            a.stats()
        );
        n += 1;
    }
    assert!(a.stats().connects >= 2, "{:?}", a.stats());
}

#[tokio::test]
async fn frame_round_trip_and_checksum_mismatch() {
    let msg = Msg::Text("round trip".into());
    let encoded = frame::encode_value(&msg, 1 << 20).expect("encode");
    let (payload, used) = frame::decode(&encoded, 1 << 20)
        .expect("valid")
        .expect("complete");
    assert_eq!(used, encoded.len());
    assert_eq!(frame::decode_value::<Msg>(payload).expect("decode"), msg);
    // Over a stream too.
    let (mut w, mut r) = tokio::io::duplex(1 << 16);
    w.write_all(&encoded).await.expect("write");
    let got = frame::read_frame(&mut r, 1 << 20)
        .await
        .expect("read")
        .expect("a frame");
    assert_eq!(frame::decode_value::<Msg>(&got).expect("decode"), msg);

    // One flipped payload bit: the checksum catches it, in memory and on a stream.
    let mut corrupt = encoded.clone();
    corrupt[HEADER_LEN + 3] ^= 0x10;
    assert!(matches!(
        frame::decode(&corrupt, 1 << 20),
        Err(FrameError::BadChecksum { .. })
    ));
    w.write_all(&corrupt).await.expect("write");
    assert!(matches!(
        frame::read_frame(&mut r, 1 << 20).await,
        Err(FrameError::BadChecksum { .. })
    ));
    // A frame cut short, then the end of the stream.
    w.write_all(&encoded[..encoded.len() - 1])
        .await
        .expect("write");
    drop(w);
    assert!(matches!(
        frame::read_frame(&mut r, 1 << 20).await,
        Err(FrameError::Truncated { .. })
    ));
    // Clean end of stream between frames.
    assert!(matches!(frame::read_frame(&mut r, 1 << 20).await, Ok(None)));
    // A length over the maximum is refused.
    assert!(matches!(
        frame::decode(&encoded, encoded.len() - HEADER_LEN - 1),
        Err(FrameError::TooLarge { .. })
    ));
}

// ---- hostile peers -------------------------------------------------------------------

/// A server (node 1) with a well-behaved client (node 2) already talking to it.
struct Fixture {
    server: Endpoint<Msg>,
    good: Endpoint<Msg>,
    rounds: u64,
}

impl Fixture {
    async fn new() -> Self {
        let server = endpoint(1).await;
        let good = endpoint(2).await;
        good.add_peer(1, server.local_addr());
        let mut f = Fixture {
            server,
            good,
            rounds: 0,
        };
        f.round_trip().await;
        f
    }

    /// The good client sends a request and gets the reply over its one connection.
    async fn round_trip(&mut self) {
        self.rounds += 1;
        let n = self.rounds;
        self.good.send(1, Msg::Ping(n)).expect("good send");
        assert_eq!(recv(&self.server).await, (2, Msg::Ping(n)));
        self.server
            .send(2, Msg::Ping(n + 1000))
            .expect("server reply");
        assert_eq!(recv(&self.good).await, (1, Msg::Ping(n + 1000)));
    }

    /// After a bad peer was dealt with: the good client still works, on its original
    /// connection, and nothing else was closed.
    async fn good_peer_unaffected(&mut self) {
        self.round_trip().await;
        let g = self.good.stats();
        assert_eq!(g.connects, 1, "the good connection was never broken: {g:?}");
        assert_eq!(g.closed, 0, "{g:?}");
    }

    async fn raw(&self) -> TcpStream {
        TcpStream::connect(self.server.local_addr())
            .await
            .expect("raw connect")
    }

    /// A raw connection that has completed a valid handshake.
    async fn raw_authenticated(&self) -> TcpStream {
        let mut s = self.raw().await;
        let hello = Hello::new(&config(66), None);
        s.write_all(&frame::encode_value(&hello, MAX_HANDSHAKE_BYTES).expect("hello"))
            .await
            .expect("write hello");
        let answer =
            sim_runtime::time::timeout(WAIT, frame::read_frame(&mut s, MAX_HANDSHAKE_BYTES))
                .await
                .expect("server answers the handshake in time")
                .expect("a valid frame")
                .expect("not closed");
        let answer: Hello = frame::decode_value(&answer).expect("server hello decodes");
        assert_eq!(answer.node_id, 1);
        assert_eq!(answer.cluster_id, CLUSTER);
        wait_stats(&self.server, "accept", |s| s.accepted >= 2).await;
        s
    }
}

/// Asserts the server closes `s` (bounded wait); returns the bytes it sent first.
async fn expect_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match sim_runtime::time::timeout(WAIT, s.read_to_end(&mut got)).await {
        Ok(_) => got, // EOF or reset: closed either way
        Err(_) => panic!("the server kept a bad connection open"),
    }
}

fn header(len: u32, crc: u32) -> Vec<u8> {
    let mut h = len.to_le_bytes().to_vec();
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

#[tokio::test]
async fn garbage_bytes_close_only_that_connection() {
    let mut f = Fixture::new().await;
    let mut s = f.raw().await;
    // Read as a frame header, "GET " announces a 542 MB handshake: refused unread.
    s.write_all(b"GET / HTTP/1.1\r\nHost: seedbank\r\n\r\n")
        .await
        .expect("write");
    assert!(
        expect_closed(s).await.is_empty(),
        "no handshake answer to garbage"
    );
    wait_stats(&f.server, "oversized count", |s| s.oversized_frame == 1).await;
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn oversized_length_prefix_is_refused_without_allocating_it() {
    let mut f = Fixture::new().await;
    let mut s = f.raw_authenticated().await;
    s.write_all(&header(0xFFFF_FFF0, 0))
        .await
        .expect("write header");
    expect_closed(s).await;
    wait_stats(&f.server, "oversized count", |s| s.oversized_frame == 1).await;
    let largest = LARGEST_ALLOC.load(Ordering::Relaxed);
    assert!(
        largest < 64 << 20,
        "largest allocation {largest} bytes: the length was allocated"
    );
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn wrong_cluster_id_is_refused() {
    let mut f = Fixture::new().await;
    let mut s = f.raw().await;
    let hello = Hello::new(&Config::new(CLUSTER + 1, 66).with_token(TOKEN), None);
    s.write_all(&frame::encode_value(&hello, MAX_HANDSHAKE_BYTES).expect("hello"))
        .await
        .expect("write");
    assert!(
        expect_closed(s).await.is_empty(),
        "refused without an answer"
    );
    wait_stats(&f.server, "bad handshake count", |s| s.bad_handshake == 1).await;
    assert_eq!(
        f.server.stats().accepted,
        1,
        "only the good client was accepted"
    );
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let mut f = Fixture::new().await;
    for token in [Some("let-me-inn"), None] {
        let mut s = f.raw().await;
        let mut cfg = Config::new(CLUSTER, 66);
        cfg.token = token.map(str::to_string);
        let hello = Hello::new(&cfg, None);
        s.write_all(&frame::encode_value(&hello, MAX_HANDSHAKE_BYTES).expect("hello"))
            .await
            .expect("write");
        assert!(
            expect_closed(s).await.is_empty(),
            "refused without an answer"
        );
    }
    wait_stats(&f.server, "bad handshake count", |s| s.bad_handshake == 2).await;
    assert_eq!(f.server.stats().accepted, 1);
    // An endpoint with the wrong token cannot get a message through either.
    let intruder = Endpoint::<Msg>::bind(loopback(), Config::new(CLUSTER, 9).with_token("nope"))
        .await
        .expect("bind");
    intruder.add_peer(1, f.server.local_addr());
    intruder.send(1, Msg::Ping(666)).expect("queued");
    wait_stats(&intruder, "connect failure", |s| s.connect_failures >= 1).await;
    assert!(f.server.try_recv().is_none());
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn truncated_frame_closes_only_that_connection() {
    let mut f = Fixture::new().await;
    let mut s = f.raw_authenticated().await;
    let mut partial = header(100, 0);
    partial.extend_from_slice(&[7u8; 10]);
    s.write_all(&partial).await.expect("write");
    s.shutdown().await.expect("half-close");
    expect_closed(s).await;
    wait_stats(&f.server, "truncated count", |s| s.truncated_frame == 1).await;
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn bad_checksum_closes_only_that_connection() {
    let mut f = Fixture::new().await;
    let mut s = f.raw_authenticated().await;
    let mut bad = frame::encode_value(&Msg::Ping(5), 1 << 20).expect("encode");
    let last = bad.len() - 1;
    bad[last] ^= 1;
    s.write_all(&bad).await.expect("write");
    expect_closed(s).await;
    wait_stats(&f.server, "checksum count", |s| s.bad_checksum == 1).await;
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn undecodable_payload_closes_only_that_connection() {
    let mut f = Fixture::new().await;
    let mut s = f.raw_authenticated().await;
    // A well-formed frame (right length, right checksum) whose payload names enum
    // variant 200 of a 3-variant enum.
    let bad = frame::encode_payload(&[0xC8, 0x01, 0x00], 1 << 20).expect("frame");
    s.write_all(&bad).await.expect("write");
    expect_closed(s).await;
    wait_stats(&f.server, "undecodable count", |s| s.undecodable == 1).await;
    assert!(f.server.try_recv().is_none(), "nothing was delivered");
    f.good_peer_unaffected().await;
}

#[tokio::test]
async fn silent_peer_is_dropped_after_the_handshake_timeout() {
    let server = Endpoint::<Msg>::bind(
        loopback(),
        Config {
            handshake_timeout: Duration::from_millis(200),
            ..config(1)
        },
    )
    .await
    .expect("bind");
    let s = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert!(expect_closed(s).await.is_empty());
    wait_stats(&server, "bad handshake count", |s| s.bad_handshake == 1).await;
}
