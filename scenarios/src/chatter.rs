//! `chatter`: a small 3-node workload with file and network traffic under faults.
//!
//! Each node binds a sim-net endpoint, sends numbered messages to peers chosen by the
//! seed, and appends every message it receives to a log file it fsyncs every few
//! records. The supervisor turns on network faults (drop, duplication, delay, reorder,
//! reset) and sim-fs faults (latency), partitions one node away for a while, and
//! power-cycles another. It exists to prove determinism across everything observable
//! (`tests/determinism.rs`) and to measure the simulator's own speed
//! (`benches/sim_speed.rs`); it checks nothing about the messages themselves.

/// Shape of a chatter run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Messages each node sends.
    pub messages_per_node: u64,
    /// Virtual time the supervisor lets the run go on for, in milliseconds.
    pub duration_ms: u64,
    /// Whether to inject faults.
    pub faults: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            messages_per_node: 200,
            duration_ms: 5_000,
            faults: true,
        }
    }
}

/// What a chatter run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub sent: u64,
    pub received: u64,
    pub logged_bytes: u64,
}

#[cfg(madsim)]
pub use sim::run;

#[cfg(madsim)]
mod sim {
    use super::{Params, Summary};
    use rand::Rng;
    use serde::{Deserialize, Serialize};
    use sim_runtime::time::{self, Duration};
    use sim_runtime::{node, rng};
    use std::net::{IpAddr, SocketAddr};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const CLUSTER: u64 = 0xC4A7;
    const PORT: u16 = 7000;

    #[derive(Debug, Serialize, Deserialize)]
    struct Ping {
        from: u64,
        seq: u64,
        body: Vec<u8>,
    }

    #[derive(Default)]
    struct Counters {
        sent: AtomicU64,
        received: AtomicU64,
        logged: AtomicU64,
    }

    fn ip(i: u64) -> IpAddr {
        format!("10.0.1.{i}").parse().expect("literal address")
    }

    async fn node_main(me: u64, n: u64, params: Params, counters: Arc<Counters>) {
        let config = sim_net::Config::new(CLUSTER, me);
        let Ok(endpoint) =
            sim_net::Endpoint::<Ping>::bind(SocketAddr::new(ip(me), PORT), config).await
        else {
            return;
        };
        for peer in (1..=n).filter(|&p| p != me) {
            endpoint.add_peer(peer, SocketAddr::new(ip(peer), PORT));
        }
        let endpoint = Arc::new(endpoint);
        let receiver = {
            let endpoint = endpoint.clone();
            let counters = counters.clone();
            sim_runtime::task::spawn_named("chatter.recv", async move {
                let dir = format!("/chatter/{me}");
                if sim_fs::create_dir_all(&dir).await.is_err() {
                    return;
                }
                let path = format!("{dir}/received.log");
                let Ok(file) = sim_fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .open(&path)
                    .await
                else {
                    return;
                };
                let _ = sim_fs::sync_dir(&dir).await;
                let mut unsynced = 0;
                loop {
                    let (from, ping) = endpoint.recv().await;
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    let line = format!("{from} {} {}\n", ping.from, ping.seq);
                    if file.append(line.as_bytes()).await.is_ok() {
                        counters
                            .logged
                            .fetch_add(line.len() as u64, Ordering::Relaxed);
                    }
                    unsynced += 1;
                    if unsynced == 8 {
                        unsynced = 0;
                        // A failed fsync ends this node's logging (fail-stop).
                        if file.sync_data().await.is_err() {
                            return;
                        }
                    }
                }
            })
        };
        for seq in 0..params.messages_per_node {
            let peer = loop {
                let p = rng::stream("chatter").gen_range(1..=n);
                if p != me {
                    break p;
                }
            };
            let len = rng::stream("chatter").gen_range(16..256);
            let body = vec![me as u8; len];
            if endpoint
                .send(
                    peer,
                    Ping {
                        from: me,
                        seq,
                        body,
                    },
                )
                .is_ok()
            {
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            let pause = rng::stream("chatter").gen_range(1..20);
            time::sleep(Duration::from_millis(pause)).await;
        }
        time::sleep(Duration::from_secs(3600)).await;
        drop(receiver);
    }

    /// Runs the workload on 3 nodes inside a simulated run (register `sim_fs::SimFs`).
    pub async fn run(params: Params) -> Summary {
        let n = 3;
        if params.faults {
            sim_net::faults::set_config(sim_net::NetFaultConfig {
                drop_rate: 0.05,
                dup_rate: 0.02,
                reorder_rate: 0.05,
                delay_rate: 0.05,
                delay_min: Duration::from_millis(1),
                delay_max: Duration::from_millis(50),
                reset_rate: 0.005,
                ..Default::default()
            });
            sim_fs::sim::set_fault_config(sim_fs::FaultConfig {
                latency: sim_fs::LatencyConfig {
                    probability: 0.5,
                    min_us: 50,
                    max_us: 2_000,
                },
                ..Default::default()
            });
        }
        let counters = Arc::new(Counters::default());
        let mut nodes = Vec::new();
        for me in 1..=n {
            let c = counters.clone();
            nodes.push(
                node::build(format!("chatter{me}"))
                    .ip(ip(me))
                    .init(move || node_main(me, n, params, c.clone()))
                    .create(),
            );
        }
        let step = Duration::from_millis(params.duration_ms / 5);
        time::sleep(step).await;
        if params.faults {
            sim_net::faults::partition(&[ip(1)], &[ip(2), ip(3)]);
        }
        time::sleep(step).await;
        if params.faults {
            sim_net::faults::heal();
            nodes[1].crash();
        }
        time::sleep(step).await;
        if params.faults {
            nodes[1].restart();
        }
        time::sleep(step * 2).await;
        Summary {
            sent: counters.sent.load(Ordering::Relaxed),
            received: counters.received.load(Ordering::Relaxed),
            logged_bytes: counters.logged.load(Ordering::Relaxed),
        }
    }
}
