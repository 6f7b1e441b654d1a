//! A forged peer against a real 3-node TLS cluster on loopback (`seedbank node`
//! processes started with `--certs` from `seedbank certs`): the same impostor as the
//! simulated `impostor-cluster` scenario, in-process, with no certificate, with a
//! node certificate from another CA, and with a valid *client* certificate that
//! claims replica 2's id or speaks Raft under its own. It forges RequestVote,
//! PreVote, heartbeats and AppendEntries with terms 2^64-1 and newest+1000, and
//! commits of the key `impostor`. It must not join (no answer), vote or append (no
//! term moves to a forged one, commit indexes stay honest) or write (the key stays
//! absent); the cluster keeps serving.
//!
//! Fails on the code before issue 19: there any plaintext connection claiming node 2
//! was believed, and the forged heartbeat gave every node term 2^64-1.
#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use engine::replicated::client::MIN_CLIENT_ID;
use scenarios::impostor::{self, Disguise, SharedEffects};
use sim_net::tls::{generate_dev_certs, TlsAuth};
use sim_net::{Auth, Identity};

#[allow(clippy::disallowed_methods)] // reading the test's own certificate files
fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn disguises(cluster: &Cluster) -> Vec<Disguise> {
    let certs = cluster.certs();
    let ca = read(certs.join("ca.pem"));
    let client = TlsAuth::from_pem(
        &read(certs.join("client-shell.pem")),
        &read(certs.join("client-shell.key")),
        &ca,
    )
    .expect("the cluster's client credentials");
    let foreign = generate_dev_certs(&[Identity::Node(2)]).expect("a foreign CA");
    let pem = |name: &str| {
        let f = foreign.iter().find(|f| f.name == name).expect("generated");
        f.pem.as_bytes().to_vec()
    };
    // Signed by the foreign CA, trusting ours (public): only the server's check stops it.
    let forged = TlsAuth::from_pem(&pem("node-2.pem"), &pem("node-2.key"), &ca).expect("load");
    vec![
        Disguise {
            name: "no-certificate",
            claims: 2,
            auth: Auth::Insecure,
        },
        Disguise {
            name: "foreign-ca",
            claims: 2,
            auth: Auth::Tls(forged),
        },
        Disguise {
            name: "client-claiming-node",
            claims: 2,
            auth: Auth::Tls(client.clone()),
        },
        Disguise {
            name: "client-speaking-raft",
            claims: MIN_CLIENT_ID + 0x1BAD,
            auth: Auth::Tls(client),
        },
    ]
}

fn terms(shell: &mut Shell) -> Vec<u64> {
    (1..=NODES)
        .map(|id| {
            shell.node_status(id)["term"]
                .as_u64()
                .expect("every node answers")
        })
        .collect()
}

#[test]
fn a_forged_peer_cannot_join_vote_append_or_write() {
    let mut cluster = Cluster::new("impostor");
    for id in 1..=NODES {
        cluster.start(id);
    }
    let mut shell = Shell::connect(&cluster);
    shell.put(1);
    let leader = shell.leader();
    let before = terms(&mut shell);
    let newest = before.iter().copied().max().unwrap_or(0);

    let servers: BTreeMap<u64, SocketAddr> = cluster
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64 + 1, SocketAddr::from(([127, 0, 0, 1], *p))))
        .collect();
    let effects = SharedEffects::default();
    #[allow(clippy::disallowed_methods)] // a real-world test of real nodes over TCP
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut attacks = Vec::new();
        for disguise in disguises(&cluster) {
            let (servers, effects) = (servers.clone(), effects.clone());
            let listen: SocketAddr = "127.0.0.1:0".parse().expect("literal");
            let terms = move || vec![u64::MAX, newest + impostor::PLAUSIBLE_TERM_JUMP];
            attacks.push(sim_runtime::task::spawn(impostor::attack(
                disguise,
                listen,
                servers,
                terms,
                10,
                Duration::from_millis(100),
                effects,
            )));
        }
        for a in attacks {
            a.await.expect("attack task").expect("attack ran");
        }
        // Let anything that got through land.
        sim_runtime::time::sleep(Duration::from_millis(500)).await;
    });

    let effects = effects.lock().expect("effects");
    assert!(effects.sent > 0, "the impostor sent nothing");
    assert!(
        effects.answers.is_empty(),
        "the impostor got answers: {:?}",
        effects.answers
    );
    let after = terms(&mut shell);
    for (id, term) in (1..=NODES).zip(&after) {
        assert!(
            !effects.forged_terms.contains(term) && *term < newest + impostor::PLAUSIBLE_TERM_JUMP,
            "node {id} moved to term {term} (before: {before:?})"
        );
    }
    assert_eq!(
        shell.leader(),
        leader,
        "the forged votes and heartbeats unseated the leader"
    );
    let marker = shell.ask(&format!("get {}", impostor::MARKER_KEY));
    assert_eq!(marker["value"], serde_json::Value::Null, "{marker}");
    shell.put(2);
    let status = shell.ask("status");
    for node in status["nodes"].as_array().expect("nodes") {
        let commit = node["commit"].as_u64().unwrap_or(u64::MAX);
        assert!(commit < 100, "a forged commit index took hold: {node}");
    }
}
