//! Simulated world: the idle timeout (D53) closes a quiet client's inbound connection,
//! and the client's next message reopens it transparently; peers that talk steadily
//! are never closed.
#![cfg(madsim)]

use serde::{Deserialize, Serialize};
use sim_net::{Config, Endpoint};
use sim_runtime::node;
use sim_runtime::sim::Sim;
use sim_runtime::time::{sleep, timeout, Duration};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Pong(u64),
}

const CLUSTER: u64 = 9;

fn config(id: u64) -> Config {
    Config {
        idle_timeout: Duration::from_secs(1),
        ..Config::new(CLUSTER, id)
    }
}

/// Issue 19, finding 2 (D53): a client quiet for longer than the idle timeout has its
/// connection closed by the server, and its next ping is answered all the same (the
/// link reconnects with the message). A peer pinging every 100 ms is never closed.
/// Fails before D53: nothing was ever closed as idle.
#[test]
fn a_quiet_client_is_closed_as_idle_and_reconnects_with_its_next_message() {
    let report = Sim::new(3).run(|| async {
        let server_ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let server = node::build("server").ip(server_ip).create();
        let stats = server.spawn(async move {
            let ep = Endpoint::<Msg>::bind(SocketAddr::new(server_ip, 7000), config(1))
                .await
                .expect("bind");
            let serve = ep.clone();
            sim_runtime::task::spawn_named("echo", async move {
                loop {
                    let (from, msg) = serve.recv().await;
                    if let Msg::Ping(n) = msg {
                        let _ = serve.send(from, Msg::Pong(n));
                    }
                }
            });
            sleep(Duration::from_secs(30)).await;
            ep.stats()
        });
        let ask = |name: &str, ip: &str, id: u64, pause: Duration, rounds: u64| {
            let ip: IpAddr = ip.parse().expect("ip");
            node::build(name).ip(ip).create().spawn(async move {
                let ep = Endpoint::<Msg>::bind(SocketAddr::new(ip, 7000), config(id))
                    .await
                    .expect("bind");
                ep.add_peer(1, SocketAddr::new("10.0.0.1".parse().expect("ip"), 7000));
                let mut answered = 0;
                for n in 0..rounds {
                    let _ = ep.send(1, Msg::Ping(n));
                    if let Ok((1, Msg::Pong(m))) = timeout(Duration::from_secs(2), ep.recv()).await
                    {
                        answered += u64::from(m == n);
                    }
                    sleep(pause).await;
                }
                (answered, ep.stats())
            })
        };
        let quiet = ask("quiet", "10.0.0.2", 2, Duration::from_secs(3), 4);
        let chatty = ask("chatty", "10.0.0.3", 3, Duration::from_millis(100), 100);
        let (quiet, chatty, server) = (
            quiet.await.expect("quiet client"),
            chatty.await.expect("chatty client"),
            stats.await.expect("server"),
        );
        (quiet, chatty, server)
    });
    let ((quiet_answered, quiet), (chatty_answered, chatty), server) =
        report.output.expect("the run panicked");
    assert_eq!(
        quiet_answered, 4,
        "every ping of the quiet client answered: {quiet:?}"
    );
    assert!(
        quiet.connects >= 4,
        "the quiet client reconnected each time: {quiet:?}"
    );
    assert_eq!(chatty_answered, 100, "{chatty:?}");
    assert_eq!(
        chatty.connects, 1,
        "the chatty client was never closed: {chatty:?}"
    );
    assert!(server.idle_closed >= 3, "{server:?}");
}
