//! The shell against a cluster without a quorum (real world, in process): one replica
//! of three runs on loopback, the other two addresses have nobody listening.
#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::replicated::client::MIN_CLIENT_ID;
use engine::replicated::{run_node, ClientConfig, NodeConfig, ReplicatedClient};
use scenarios::shell::{Reply, Session};
use sim_runtime::sync::Signal;

/// A loopback address that was free a moment ago.
fn free_addr() -> SocketAddr {
    #[allow(clippy::disallowed_methods)] // the real world's port allocator, in a real-world test
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    l.local_addr().expect("local addr")
}

/// Pins issue 20 item 8: a cluster without a quorum was reported by the client's last
/// failed request alone ("cluster unavailable: node 3 did not answer"), which reads as
/// one broken node. The answer now counts the replicas that answered against the
/// quorum and says what each did.
#[test]
fn a_cluster_without_quorum_is_reported_with_who_answered() {
    #[allow(clippy::disallowed_methods)] // a real-world test of real nodes over TCP
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("seedbank-noquorum-{}", std::process::id()));
    let peers: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let reply = rt.block_on(async {
        let stop = Arc::new(Signal::default());
        let node = sim_runtime::task::spawn(run_node(
            NodeConfig::new(1, peers[&1], peers.clone(), &dir),
            stop.clone(),
        ));
        let mut cfg = ClientConfig::new(MIN_CLIENT_ID + 1, free_addr(), peers.clone());
        cfg.begin_deadline = Duration::from_secs(2);
        let client = ReplicatedClient::connect(cfg)
            .await
            .expect("client endpoint");
        let mut session = Session::replicated(client);
        let reply = session.execute(b"get x").await.expect("an answer");
        stop.raise();
        let _ = node.await;
        reply
    });
    #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
    let _ = std::fs::remove_dir_all(&dir);
    assert!(reply.is_failure());
    let Reply::Failed(message) = &reply else {
        panic!("not an error answer: {reply:?}");
    };
    assert!(
        message.starts_with("cluster unavailable: no quorum: 1 of 3 replicas answered in"),
        "{message}"
    );
    assert!(
        message.ends_with("a leader needs 2 (node 1: no leader known; nodes 2, 3: no answer)"),
        "{message}"
    );
}
