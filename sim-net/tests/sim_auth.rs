//! Simulated-world authentication: the same `authorize` rules as the real world's
//! mutual TLS, with simulated credentials. Each refusal is counted by the endpoint
//! that refused it, and nothing of the refused connection is delivered. (Before issue
//! 19 there were no credentials: every one of these connections was accepted.)
#![cfg(madsim)]

use sim_net::{Auth, Config, Endpoint, Identity, NetStats, SimAuth, SimCa};
use sim_runtime::node;
use sim_runtime::sim::Sim;
use sim_runtime::time::{sleep, Duration};
use std::net::{IpAddr, SocketAddr};

const PORT: u16 = 7000;
const CLUSTER: u64 = 42;

fn ca() -> SimCa {
    SimCa::new(1, 0x5ec2e7)
}

fn auth(issuer: &SimCa, identity: Identity) -> Auth {
    Auth::Simulated(SimAuth {
        credential: Some(issuer.issue(identity)),
        trusted: ca(),
    })
}

/// Starts node `id` at `ip` with `auth` (on its own simulated node) and returns its
/// endpoint; it knows node 1 at 10.0.0.1 and node 2 at 10.0.0.2 as peers.
async fn endpoint(name: &str, id: u64, ip: &str, auth: Auth) -> Endpoint<u64> {
    let ip: IpAddr = ip.parse().expect("ip literal");
    let n = node::build(name).ip(ip).create();
    n.spawn(async move {
        let cfg = Config::new(CLUSTER, id).with_auth(auth);
        let ep = Endpoint::<u64>::bind(SocketAddr::new(ip, PORT), cfg)
            .await
            .expect("bind");
        for (peer, addr) in [(1, "10.0.0.1"), (2, "10.0.0.2")] {
            if peer != id {
                let addr: IpAddr = addr.parse().expect("ip literal");
                ep.add_peer(peer, SocketAddr::new(addr, PORT));
            }
        }
        ep
    })
    .await
    .expect("node task")
}

/// Node 1 (trusting [`ca`]) receives the honest node 2's message and nothing from an
/// intruder with id `intruder_id` and credentials `intruder`, and counts the refusal
/// in `refused`.
fn attempt(seed: u64, intruder_id: u64, intruder: Auth, refused: fn(&NetStats) -> u64) {
    let report = Sim::new(seed)
        .time_limit(Duration::from_secs(60))
        .run(move || async move {
            let server = endpoint("server", 1, "10.0.0.1", auth(&ca(), Identity::Node(1))).await;
            let honest = endpoint("honest", 2, "10.0.0.2", auth(&ca(), Identity::Node(2))).await;
            let bad = endpoint("intruder", intruder_id, "10.0.0.66", intruder).await;
            bad.send(1, 666).expect("queued");
            honest.send(1, 7).expect("queued");
            sleep(Duration::from_secs(1)).await;
            assert_eq!(
                server.try_recv(),
                Some((2, 7)),
                "the honest peer gets through"
            );
            assert_eq!(
                server.try_recv(),
                None,
                "the intruder's message was delivered"
            );
            let stats = server.stats();
            assert!(refused(&stats) >= 1, "refusal not counted: {stats:?}");
            assert_eq!(
                stats.accepted, 1,
                "only the honest peer was accepted: {stats:?}"
            );
        });
    if let Err(e) = report.output {
        panic!("seed {seed}: {e}");
    }
}

#[test]
fn no_credential_is_refused() {
    attempt(1, 2, Auth::Insecure, |s| s.unauthenticated);
}

#[test]
fn a_credential_from_another_ca_is_refused() {
    let foreign = SimCa::new(9, 0xbad);
    attempt(2, 2, auth(&foreign, Identity::Node(2)), |s| {
        s.unauthenticated
    });
}

#[test]
fn a_client_credential_claiming_a_peer_is_refused() {
    attempt(3, 2, auth(&ca(), Identity::Client("c".into())), |s| {
        s.unauthorized
    });
}

/// A valid node credential, but of a node outside the peer table. (A credential whose
/// node differs from the hello's claim cannot even be bound to an endpoint; the
/// acceptor's check of that is `authorize`'s unit test and `real_tls.rs`.)
#[test]
fn a_node_credential_of_a_non_peer_is_refused() {
    attempt(4, 3, auth(&ca(), Identity::Node(3)), |s| s.unauthorized);
}
