//! Hostile and malformed input against a healthy 3-replica cluster: Raft messages from
//! a node that is not a peer (with a huge term), a response sent to a replica, unknown
//! transaction tokens, reserved keys, a snapshot claim beyond the log. Each must be
//! refused or dropped, nothing may stop a replica, and the cluster must go on serving
//! with its term untouched.

use sim_runtime::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::raft::Entry;
use engine::replicated::client::MIN_CLIENT_ID;
use engine::replicated::{ClientError, ReplicatedClient, Request, Response, TxnOutcome, Wire};
use sim_runtime::node::{self, Node};
use sim_runtime::time::sleep;

use super::harness::{
    client_config, client_ip, lock, servers, sim, start_server, FailStops, Watch,
};

/// Sends `req` from `ep` to `node` and waits a little for the answer.
async fn ask(
    ep: &sim_net::Endpoint<Wire>,
    node: NodeId,
    id: u64,
    req: Request,
) -> Option<Response> {
    let _ = ep.send(node, Wire::Request { id, req });
    sim_runtime::time::timeout(Duration::from_millis(300), async {
        loop {
            if let (_, Wire::Response { id: got, resp }) = ep.recv().await {
                if got == id {
                    return resp;
                }
            }
        }
    })
    .await
    .ok()
}

/// Sends `req` from `ep` to each replica in turn until one that leads answers; returns
/// that replica and its answer.
async fn ask_leader(
    ep: &sim_net::Endpoint<Wire>,
    n: usize,
    id: u64,
    req: Request,
) -> Option<(u64, Response)> {
    for _ in 0..20 {
        for node in 1..=n as u64 {
            match ask(ep, node, id, req.clone()).await {
                Some(Response::NotLeader { .. }) | None => continue,
                Some(resp) => return Some((node, resp)),
            }
        }
        sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A client that commits `a = 1` and then checks the cluster still serves it.
async fn committed_value(client: &ReplicatedClient) -> Result<Option<Vec<u8>>, ClientError> {
    let mut t = client.begin().await?;
    t.get(b"a").await
}

/// The hostile client (see the module doc); returns what went wrong.
async fn hostile(n: usize) -> Vec<String> {
    use engine::raft::{Body, Message};
    use engine::replicated::command::{CommitCmd, KeySpan, Outcome};
    let mut bad = Vec::new();
    let client = match ReplicatedClient::connect(client_config(0, n, 9000)).await {
        Ok(c) => c,
        Err(e) => return vec![format!("connect: {e}")],
    };
    loop {
        let Ok(mut t) = client.begin().await else {
            continue;
        };
        if t.put(b"a".to_vec(), b"1".to_vec()).await.is_ok()
            && matches!(t.commit().await, Ok(TxnOutcome::Committed { .. }))
        {
            break;
        }
    }
    let rogue_id = MIN_CLIENT_ID + 666;
    let net = sim_net::Config::new(engine::replicated::DEFAULT_CLUSTER_ID, rogue_id);
    let ep = match sim_net::Endpoint::<Wire>::bind(SocketAddr::new(client_ip(), 9666), net).await {
        Ok(ep) => ep,
        Err(e) => return vec![format!("bind: {e}")],
    };
    for (id, addr) in servers(n) {
        ep.add_peer(id, addr);
    }
    let huge = 1_000_000;
    for node in 1..=n as u64 {
        let vote = Body::Vote {
            last_index: huge,
            last_term: huge,
        };
        let append = Body::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                index: 1,
                term: huge,
                data: Some(vec![0xff]),
            }],
            commit: 1,
        };
        for body in [vote, append] {
            let _ = ep.send(node, Wire::Raft(Message { term: huge, body }));
        }
        let _ = ep.send(
            node,
            Wire::Response {
                id: 1,
                resp: Response::Done,
            },
        );
    }
    let token = engine::replicated::TxnToken { term: 1, n: 424242 };
    let get = Request::Get {
        token,
        key: b"a".to_vec(),
    };
    match ask_leader(&ep, n, 1, get).await.map(|a| a.1) {
        Some(Response::TxnAborted { .. }) => {}
        other => bad.push(format!("unknown token: answered {other:?}")),
    }
    let cmd = |seq, snapshot, reads: Vec<Vec<u8>>, key: &[u8]| CommitCmd {
        client: rogue_id,
        seq,
        snapshot,
        reads,
        ranges: Vec::new(),
        writes: vec![(key.to_vec(), Some(b"evil".to_vec()))],
    };
    let reserved = Request::Commit {
        token: None,
        cmd: cmd(1, 0, Vec::new(), b"\0sys/applied"),
    };
    match ask_leader(&ep, n, 2, reserved).await.map(|a| a.1) {
        Some(Response::Outcome(Outcome::Rejected { .. })) => {}
        other => bad.push(format!("reserved-key write: answered {other:?}")),
    }
    let future = Request::Commit {
        token: None,
        cmd: cmd(2, u64::MAX / 2, vec![b"a".to_vec()], b"a"),
    };
    match ask_leader(&ep, n, 3, future).await.map(|a| a.1) {
        Some(Response::Outcome(Outcome::Rejected { .. })) => {}
        other => bad.push(format!("snapshot beyond the log: answered {other:?}")),
    }
    match ask_leader(&ep, n, 4, Request::Begin).await {
        Some((leader, Response::Begun { token, .. })) => {
            let get = Request::Get {
                token,
                key: b"\0sys/applied".to_vec(),
            };
            match ask(&ep, leader, 5, get).await {
                Some(Response::Error(_)) => {}
                other => bad.push(format!("reserved-key read: answered {other:?}")),
            }
            let span = KeySpan {
                start: Vec::new(),
                end: None,
            };
            match ask(&ep, leader, 6, Request::Scan { token, span }).await {
                Some(Response::Rows(rows)) if rows.iter().all(|(k, _)| k.first() != Some(&0)) => {}
                other => bad.push(format!("full scan: answered {other:?}")),
            }
        }
        other => bad.push(format!("begin: answered {other:?}")),
    }
    match committed_value(&client).await {
        Ok(Some(v)) if v == b"1" => {}
        other => bad.push(format!("after the hostile input, a = {other:?}")),
    }
    for node in 1..=n as u64 {
        match client.status(node).await {
            Some(s) if s.term < huge => {}
            other => bad.push(format!("node {node} after hostile input: {other:?}")),
        }
    }
    bad
}

/// Commits `key = value`, retrying (leaders may change); false after 50 tries.
async fn commit_one(client: &ReplicatedClient, key: &[u8], value: &[u8]) -> bool {
    for _ in 0..50 {
        if let Ok(mut t) = client.begin().await {
            if t.put(key.to_vec(), value.to_vec()).await.is_ok()
                && matches!(t.commit().await, Ok(TxnOutcome::Committed { .. }))
            {
                return true;
            }
        }
        sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Issue 19, finding 1 (D52): endpoints claiming to be each replica send the others a
/// heartbeat, an append and a vote request with term 2^64−1. Before D52 a replica
/// persisted that term and no election could follow (`term + 1` wrapped); now the
/// messages are dropped, so after the leader crashes the others elect a new leader in
/// a small term and commit.
async fn maximal_term(nodes: Vec<Node>) -> Vec<String> {
    use engine::raft::{Body, Message};
    let mut bad = Vec::new();
    let n = nodes.len();
    let client = match ReplicatedClient::connect(client_config(0, n, 9000)).await {
        Ok(c) => c,
        Err(e) => return vec![format!("connect: {e}")],
    };
    if !commit_one(&client, b"a", b"1").await {
        return vec!["no commit before the forgery".into()];
    }
    let mut forgers = Vec::new();
    for claimed in 1..=n as u64 {
        let net = sim_net::Config::new(engine::replicated::DEFAULT_CLUSTER_ID, claimed);
        let addr = SocketAddr::new(client_ip(), 9700 + claimed as u16);
        let ep = match sim_net::Endpoint::<Wire>::bind(addr, net).await {
            Ok(ep) => ep,
            Err(e) => return vec![format!("bind: {e}")],
        };
        for (id, addr) in servers(n).into_iter().filter(|(id, _)| *id != claimed) {
            ep.add_peer(id, addr);
            let bodies = [
                Body::Heartbeat {
                    commit: 0,
                    read_seq: 0,
                },
                Body::Append {
                    prev_index: 0,
                    prev_term: 0,
                    entries: Vec::new(),
                    commit: 0,
                },
                Body::Vote {
                    last_index: u64::MAX,
                    last_term: u64::MAX,
                },
            ];
            for body in bodies {
                let _ = ep.send(
                    id,
                    Wire::Raft(Message {
                        term: u64::MAX,
                        body,
                    }),
                );
            }
        }
        forgers.push(ep);
    }
    sleep(Duration::from_secs(1)).await;
    let mut leader = None;
    for node in 1..=n as u64 {
        match client.status(node).await {
            Some(s) if s.term >= 1_000 => {
                bad.push(format!("node {node} took a forged term: {s:?}"))
            }
            Some(s) if s.role == "leader" => leader = Some(node),
            _ => {}
        }
    }
    let Some(leader) = leader else {
        bad.push("no leader after the forgery".into());
        return bad;
    };
    nodes[leader as usize - 1].crash();
    if !commit_one(&client, b"b", b"2").await {
        bad.push(format!("no commit after leader {leader} crashed"));
    }
    for node in (1..=n as u64).filter(|&x| x != leader) {
        match client.status(node).await {
            Some(s) if s.term < 1_000 && s.commit > 0 => {}
            other => bad.push(format!("node {node} after the election: {other:?}")),
        }
    }
    nodes[leader as usize - 1].restart();
    drop(forgers);
    bad
}

/// Runs [`maximal_term`] against a fresh 3-replica cluster; returns the violations.
pub fn run_maximal_term(seed: u64) -> Vec<String> {
    let report = sim(seed).run(|| async {
        let watch = Arc::new(Watch::default());
        let fail_stops = FailStops::default();
        let nodes: Vec<Node> = (1..=3)
            .map(|i| start_server(i, 3, watch.clone(), fail_stops.clone()))
            .collect();
        let client_node = node::build("clients").ip(client_ip()).create();
        let mut bad = match client_node.spawn(maximal_term(nodes)).await {
            Ok(b) => b,
            Err(e) => vec![format!("the forging client panicked: {e}")],
        };
        bad.extend(lock(&watch.violations).iter().cloned());
        for e in lock(&fail_stops).iter() {
            bad.push(format!("a replica stopped on a forged term: {e}"));
        }
        bad
    });
    report
        .output
        .unwrap_or_else(|panic| vec![format!("the run panicked: {panic}")])
}

/// Runs [`hostile`] against a fresh 3-replica cluster; returns the violations.
pub fn run_bad_input(seed: u64) -> Vec<String> {
    let report = sim(seed).run(|| async {
        let watch = Arc::new(Watch::default());
        let fail_stops = FailStops::default();
        let _nodes: Vec<Node> = (1..=3)
            .map(|i| start_server(i, 3, watch.clone(), fail_stops.clone()))
            .collect();
        let client_node = node::build("clients").ip(client_ip()).create();
        let mut bad = match client_node.spawn(hostile(3)).await {
            Ok(b) => b,
            Err(e) => vec![format!("the hostile client panicked: {e}")],
        };
        bad.extend(lock(&watch.violations).iter().cloned());
        for e in lock(&fail_stops).iter() {
            bad.push(format!("a replica stopped on bad input: {e}"));
        }
        bad
    });
    report
        .output
        .unwrap_or_else(|panic| vec![format!("the run panicked: {panic}")])
}
