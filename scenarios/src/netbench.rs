//! `seedbank bench-net`: what mutual TLS costs, measured against plaintext in the same
//! run (real world, loopback, in one process).
//!
//! - **Handshakes**: a server endpoint (node 1) and, per connection, a fresh client
//!   endpoint that binds, connects, completes the handshake (TLS 1.3 with client
//!   certificates, or plaintext), sends one message and waits for the server to receive
//!   it; reported as connections per second, sequential, one at a time.
//! - **Replicated commits**: three replicas (`run_node`) in fresh temp directories and
//!   `clients` concurrent clients doing autocommit single-key puts for `secs` seconds;
//!   reported as commits per second. Each commit is an fsync on a majority, so this
//!   mostly measures the disk; the difference is what TLS adds on top.
//!
//! The two modes alternate (plaintext, TLS, plaintext, TLS) and each figure is the
//! better of its two runs, so a disk or CPU hiccup hurts neither side alone. One
//! machine, one run: read differences under ~10% as noise on a shared 2-core VM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::replicated::client::MIN_CLIENT_ID;
use engine::replicated::{run_node, ClientConfig, NodeConfig, ReplicatedClient, TxnOutcome};
use sim_net::tls::{generate_dev_certs, DevCertFile, TlsAuth};
use sim_net::{Auth, Config, Endpoint, Identity};
use sim_runtime::sync::Signal;
use sim_runtime::time;

const CLUSTER: u64 = 0xBE7C;

/// The two modes compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plaintext,
    Tls,
}

/// The credentials of both modes.
struct Creds {
    files: Vec<DevCertFile>,
}

impl Creds {
    fn auth(&self, mode: Mode, who: &Identity) -> Result<Auth, String> {
        if mode == Mode::Plaintext {
            return Ok(Auth::Insecure);
        }
        let pem = |name: String| {
            self.files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.pem.as_bytes())
                .ok_or(format!("no {name}"))
        };
        let name = who.name();
        TlsAuth::from_pem(
            pem(format!("{name}.pem"))?,
            pem(format!("{name}.key"))?,
            pem("ca.pem".into())?,
        )
        .map(Auth::Tls)
        .map_err(|e| e.to_string())
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Connections per second: fresh client endpoints, one at a time, for `secs`.
async fn handshakes(creds: &Creds, mode: Mode, secs: f64) -> Result<f64, String> {
    let server_auth = creds.auth(mode, &Identity::Node(1))?;
    let server = Endpoint::<u64>::bind(loopback(), Config::new(CLUSTER, 1).with_auth(server_auth))
        .await
        .map_err(|e| e.to_string())?;
    let client_auth = creds.auth(mode, &Identity::Client("bench".into()))?;
    let start = time::now();
    let mut n: u64 = 0;
    while (time::now() - start).as_secs_f64() < secs {
        let cfg = Config::new(CLUSTER, MIN_CLIENT_ID + n).with_auth(client_auth.clone());
        let client = Endpoint::<u64>::bind(loopback(), cfg)
            .await
            .map_err(|e| e.to_string())?;
        client.add_peer(1, server.local_addr());
        client.send(1, n).map_err(|e| e.to_string())?;
        match time::timeout(Duration::from_secs(5), server.recv()).await {
            Ok((_, got)) if got == n => {}
            Ok((_, got)) => return Err(format!("expected message {n}, got {got}")),
            Err(_) => return Err(format!("{mode:?}: connection {n} never delivered")),
        }
        client.close();
        n += 1;
    }
    Ok(n as f64 / (time::now() - start).as_secs_f64())
}

fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "seedbank-netbench-{tag}-{}-{n}",
        std::process::id()
    ))
}

fn free_port() -> Result<u16, String> {
    #[allow(clippy::disallowed_methods)] // the real world's port allocator, real world only
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Commits per second of a fresh 3-replica cluster with `clients` clients.
async fn commits(creds: &Creds, mode: Mode, clients: u64, secs: f64) -> Result<f64, String> {
    let peers: BTreeMap<u64, SocketAddr> = (1..=3)
        .map(|id| free_port().map(|p| (id, SocketAddr::from(([127, 0, 0, 1], p)))))
        .collect::<Result<_, _>>()?;
    let dir = temp_dir(&format!("{mode:?}").to_lowercase());
    let stop = Arc::new(Signal::default());
    let mut nodes = Vec::new();
    for (&id, &addr) in &peers {
        let mut cfg = NodeConfig::new(id, addr, peers.clone(), dir.join(format!("node{id}")));
        cfg.cluster_id = CLUSTER;
        cfg.auth = creds.auth(mode, &Identity::Node(id))?;
        nodes.push(sim_runtime::task::spawn(run_node(cfg, stop.clone())));
    }
    let client_auth = creds.auth(mode, &Identity::Client("bench".into()))?;
    let committed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    let deadline_secs = secs;
    // Warm-up: one commit elects a leader before the clock starts.
    let warm = client(&peers, MIN_CLIENT_ID + 1_000_000, &client_auth).await?;
    put(&warm, 0, 0).await?;
    let start = time::now();
    for c in 0..clients {
        let cli = client(&peers, MIN_CLIENT_ID + c, &client_auth).await?;
        let committed = committed.clone();
        workers.push(sim_runtime::task::spawn(async move {
            let mut i = 0;
            while (time::now() - start).as_secs_f64() < deadline_secs {
                if put(&cli, c, i).await.is_ok() {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let rate = committed.load(Ordering::Relaxed) as f64 / (time::now() - start).as_secs_f64();
    stop.raise();
    for n in nodes {
        let _ = n.await;
    }
    #[allow(clippy::disallowed_methods)] // removing this command's own temp dir
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

async fn client(
    peers: &BTreeMap<u64, SocketAddr>,
    id: u64,
    auth: &Auth,
) -> Result<ReplicatedClient, String> {
    let mut cfg = ClientConfig::new(id, loopback(), peers.clone());
    cfg.cluster_id = CLUSTER;
    cfg.auth = auth.clone();
    ReplicatedClient::connect(cfg)
        .await
        .map_err(|e| e.to_string())
}

async fn put(client: &ReplicatedClient, c: u64, i: u64) -> Result<(), String> {
    let mut txn = client.begin().await.map_err(|e| e.to_string())?;
    let key = format!("c{c}/k{}", i % 64);
    txn.put(key.into_bytes(), i.to_le_bytes().to_vec())
        .await
        .map_err(|e| e.to_string())?;
    match txn.commit().await.map_err(|e| e.to_string())? {
        TxnOutcome::Committed { .. } => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// `seedbank bench-net [--secs S] [--clients N]`.
pub fn main(secs: f64, clients: u64) -> std::process::ExitCode {
    let files = match generate_dev_certs(&[
        Identity::Node(1),
        Identity::Node(2),
        Identity::Node(3),
        Identity::Client("bench".into()),
    ]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("seedbank bench-net: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let creds = Creds { files };
    let rt = match crate::shell::input::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let mut best: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for round in 0..2 {
            for mode in [Mode::Plaintext, Mode::Tls] {
                let label = if mode == Mode::Tls {
                    "tls"
                } else {
                    "plaintext"
                };
                let hs = handshakes(&creds, mode, secs).await;
                let cm = commits(&creds, mode, clients, secs).await;
                match (hs, cm) {
                    (Ok(hs), Ok(cm)) => {
                        println!(
                            "round {round} {label:>9}: {hs:8.1} connections/s, {cm:8.1} commits/s"
                        );
                        let h = best.entry(("connections/s", label)).or_insert(0.0);
                        *h = h.max(hs);
                        let c = best.entry(("commits/s", label)).or_insert(0.0);
                        *c = c.max(cm);
                    }
                    (hs, cm) => {
                        eprintln!("seedbank bench-net: {label}: {hs:?} {cm:?}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
        }
        println!("best of 2 ({secs} s each, {clients} clients):");
        for what in ["connections/s", "commits/s"] {
            let plain = best.get(&(what, "plaintext")).copied().unwrap_or(0.0);
            let tls = best.get(&(what, "tls")).copied().unwrap_or(0.0);
            let ratio = if plain > 0.0 { tls / plain } else { 0.0 };
            println!(
                "  {what:>14}: plaintext {plain:8.1}  tls {tls:8.1}  tls/plaintext {ratio:.2}"
            );
        }
        std::process::ExitCode::SUCCESS
    })
}
