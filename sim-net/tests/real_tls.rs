//! Real-world mutual TLS on loopback: who may connect, and as whom.
//!
//! Every refusal test here fails on the code before issue 19, which had no
//! credentials: any process that reached the port could speak as any node id.
#![cfg(not(madsim))]
#![allow(clippy::disallowed_methods)] // sim-net's own real-world tests: real runtimes and raw TCP are the subject

use serde::{Deserialize, Serialize};
use sim_net::frame;
use sim_net::handshake::{Hello, MAX_HANDSHAKE_BYTES};
use sim_net::tls::{generate_dev_certs, DevCertFile, TlsAuth};
use sim_net::{Auth, Config, Endpoint, Identity, NetStats};
use sim_runtime::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLUSTER: u64 = 0x7115;
const WAIT: Duration = Duration::from_secs(10);
const CLIENT_ID: u64 = 1 << 40;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
}

/// A development CA's files, and a second, unrelated CA's.
struct Pki {
    ours: Vec<DevCertFile>,
    foreign: Vec<DevCertFile>,
}

fn ids() -> Vec<Identity> {
    vec![
        Identity::Node(1),
        Identity::Node(2),
        Identity::Node(9),
        Identity::Client("ops".into()),
    ]
}

impl Pki {
    fn new() -> Pki {
        Pki {
            ours: generate_dev_certs(&ids()).expect("our CA"),
            foreign: generate_dev_certs(&ids()).expect("a foreign CA"),
        }
    }

    fn pem<'a>(files: &'a [DevCertFile], name: &str) -> &'a [u8] {
        let f = files.iter().find(|f| f.name == name);
        f.map(|f| f.pem.as_bytes()).expect("generated file")
    }

    /// `who`'s credentials from `files`, trusting our CA.
    fn auth_from(&self, files: &[DevCertFile], who: &str) -> TlsAuth {
        let cert = Self::pem(files, &format!("{who}.pem"));
        let key = Self::pem(files, &format!("{who}.key"));
        TlsAuth::from_pem(cert, key, Self::pem(&self.ours, "ca.pem")).expect("load credentials")
    }

    fn auth(&self, who: &str) -> Auth {
        Auth::Tls(self.auth_from(&self.ours, who))
    }
}

async fn bind(node: NodeId, auth: Auth) -> Endpoint<Msg> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    Endpoint::bind(addr, Config::new(CLUSTER, node).with_auth(auth))
        .await
        .expect("bind")
}

async fn recv(ep: &Endpoint<Msg>) -> (u64, Msg) {
    sim_runtime::time::timeout(WAIT, ep.recv())
        .await
        .unwrap_or_else(|_| panic!("node {} received nothing", ep.node_id()))
}

async fn wait_stats(ep: &Endpoint<Msg>, what: &str, cond: impl Fn(&NetStats) -> bool) {
    let deadline = sim_runtime::time::now() + WAIT;
    while !cond(&ep.stats()) {
        assert!(
            sim_runtime::time::now() < deadline,
            "{what} never happened: {:?}",
            ep.stats()
        );
        sim_runtime::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Node 1 with TLS, node 2 in its peer table (at a dead address: only inbound matters).
async fn server(pki: &Pki) -> Endpoint<Msg> {
    let server = bind(1, pki.auth("node-1")).await;
    server.add_peer(2, "127.0.0.1:9".parse().expect("literal"));
    server
}

/// Sends from `intruder` to node 1 until node 1 counts a refusal; nothing is delivered.
async fn refused(
    server: &Endpoint<Msg>,
    intruder: Endpoint<Msg>,
    what: &str,
    unauthenticated: bool,
) {
    intruder.add_peer(1, server.local_addr());
    let _ = intruder.send(1, Msg::Ping(666));
    wait_stats(server, what, |s| {
        if unauthenticated {
            s.unauthenticated >= 1
        } else {
            s.unauthorized >= 1
        }
    })
    .await;
    sim_runtime::time::sleep(Duration::from_millis(50)).await;
    assert!(server.try_recv().is_none(), "{what}: a message got through");
    assert_eq!(
        server.stats().accepted,
        0,
        "{what}: the connection was accepted"
    );
}

#[tokio::test]
async fn tls_peers_and_clients_exchange_messages() {
    let pki = Pki::new();
    let a = bind(1, pki.auth("node-1")).await;
    let b = bind(2, pki.auth("node-2")).await;
    a.add_peer(2, b.local_addr());
    b.add_peer(1, a.local_addr());
    a.send(2, Msg::Ping(1)).expect("send");
    assert_eq!(recv(&b).await, (1, Msg::Ping(1)));
    b.send(1, Msg::Ping(2)).expect("send");
    assert_eq!(recv(&a).await, (2, Msg::Ping(2)));
    // A client certificate, a client id: the server replies over its connection.
    let client = bind(CLIENT_ID, pki.auth("client-ops")).await;
    client.add_peer(1, a.local_addr());
    client.send(1, Msg::Ping(3)).expect("send");
    assert_eq!(recv(&a).await, (CLIENT_ID, Msg::Ping(3)));
    a.send(CLIENT_ID, Msg::Ping(4)).expect("reply");
    assert_eq!(recv(&client).await, (1, Msg::Ping(4)));
    assert_eq!(a.stats().unauthenticated + a.stats().unauthorized, 0);
}

#[tokio::test]
async fn a_peer_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let server = server(&pki).await;
    let plain = bind(2, Auth::Insecure).await;
    refused(&server, plain, "plaintext peer claiming node 2", true).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let server = server(&pki).await;
    // node-2's certificate, but signed by a CA node 1 does not trust.
    let forged = Auth::Tls(pki.auth_from(&pki.foreign, "node-2"));
    refused(&server, bind(2, forged).await, "foreign CA", true).await;
}

#[tokio::test]
async fn a_client_certificate_cannot_speak_as_a_peer() {
    let pki = Pki::new();
    let server = server(&pki).await;
    refused(
        &server,
        bind(2, pki.auth("client-ops")).await,
        "client as node 2",
        false,
    )
    .await;
}

#[tokio::test]
async fn a_node_certificate_of_a_non_peer_is_refused() {
    let pki = Pki::new();
    let server = server(&pki).await;
    refused(&server, bind(9, pki.auth("node-9")).await, "node 9", false).await;
}

#[tokio::test]
async fn an_endpoint_refuses_a_certificate_naming_another_node() {
    let pki = Pki::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let cfg = Config::new(CLUSTER, 3).with_auth(pki.auth("node-2"));
    let err = Endpoint::<Msg>::bind(addr, cfg)
        .await
        .expect_err("bind must refuse");
    assert!(err.to_string().contains("node-2"), "{err}");
}

/// The hello must claim the node id the certificate names: a raw TLS connection with
/// node-2's (valid) certificate whose hello claims node 3 — also a peer — is refused
/// before anything reaches `recv`.
#[tokio::test]
async fn the_node_id_claimed_in_the_hello_must_match_the_certificate() {
    let pki = Pki::new();
    let server = server(&pki).await;
    server.add_peer(3, "127.0.0.1:9".parse().expect("literal"));
    let node2 = |claim: u64| {
        let pki = &pki;
        let addr = server.local_addr();
        async move {
            let cert = Pki::pem(&pki.ours, "node-2.pem");
            let key = Pki::pem(&pki.ours, "node-2.key");
            let chain = rustls::pki_types::pem::PemObject::pem_slice_iter(cert)
                .collect::<Result<Vec<rustls::pki_types::CertificateDer>, _>>()
                .expect("chain");
            let key: rustls::pki_types::PrivateKeyDer =
                rustls::pki_types::pem::PemObject::from_pem_slice(key).expect("key");
            let mut roots = rustls::RootCertStore::empty();
            let ca = Pki::pem(&pki.ours, "ca.pem");
            for c in rustls::pki_types::pem::PemObject::pem_slice_iter(ca) {
                roots.add(c.expect("ca")).expect("root");
            }
            #[allow(deprecated)]
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .expect("client auth");
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from("node-1").expect("name");
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                .connect(name, tcp)
                .await
                .expect("TLS handshake: the certificate itself is valid");
            let hello = Hello::new(&Config::new(CLUSTER, claim), None);
            let bytes = frame::encode_value(&hello, MAX_HANDSHAKE_BYTES).expect("hello");
            tls.write_all(&bytes).await.expect("write hello");
            tls.flush().await.expect("flush");
            let mut answer = Vec::new();
            let _ = sim_runtime::time::timeout(WAIT, tls.read_to_end(&mut answer)).await;
            answer
        }
    };
    let answer = node2(3).await;
    assert!(
        answer.is_empty(),
        "node 1 answered a hello claiming node 3 over node-2's certificate"
    );
    wait_stats(&server, "identity mismatch refusal", |s| {
        s.unauthorized == 1
    })
    .await;
    assert_eq!(server.stats().accepted, 0);
    assert!(server.try_recv().is_none());
}

/// A TLS client refused at the acceptor's per-source cap is told why: the acceptor
/// answers before any handshake with a plaintext refusal frame, which the connector
/// finds where the TLS answer was due (`sniff`) and counts as a refusal with its
/// reason, instead of an unexplained TLS decoding error.
#[tokio::test]
async fn a_tls_client_refused_at_a_cap_is_told_why() {
    let pki = Pki::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let server = Endpoint::<Msg>::bind(
        addr,
        Config {
            max_inbound_per_ip: 1,
            ..Config::new(CLUSTER, 1).with_auth(pki.auth("node-1"))
        },
    )
    .await
    .expect("bind");
    // One connection from 127.0.0.1 takes the only slot (it says nothing; the backlog
    // is accepted in order, and its handshake timeout, 2 s, outlasts what follows).
    let _held = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let client = bind(CLIENT_ID, pki.auth("client-ops")).await;
    client.add_peer(1, server.local_addr());
    let _ = client.send(1, Msg::Ping(1));
    wait_stats(&client, "the refusal told", |s| s.refused_by_peer >= 1).await;
    assert_eq!(client.stats().unauthenticated, 0, "{:?}", client.stats());
    assert!(server.stats().inbound_rejected >= 1, "{:?}", server.stats());
}
