//! `seedbank node --id N --listen ADDR --peers 1=ADDR,2=ADDR,3=ADDR --data DIR
//! (--certs DIR | --cert F --key F --ca F | --insecure)`: one real replica of the
//! replicated database over mutually authenticated TLS (engine::replicated).
//!
//! Runs until SIGTERM or SIGINT (clean shutdown: the replica stops, its engine closes,
//! exit 0). Killed (SIGKILL, power loss), it recovers from `DIR` on the next start. A
//! fail-stop error (a failed fsync, damaged files) ends the process with status 1;
//! whoever supervises it restarts it, and it recovers from disk.

use std::process::ExitCode;

/// Parses `--peers 1=ADDR,2=ADDR,…`.
fn parse_peers(
    list: &str,
) -> Result<std::collections::BTreeMap<u64, std::net::SocketAddr>, String> {
    let mut peers = std::collections::BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((id, addr)) = item.split_once('=') else {
            return Err(format!("'{item}' is not ID=ADDR"));
        };
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("bad node id in '{item}'"))?;
        let addr = scenarios::shell::connect::resolve(addr.trim())?;
        if peers.insert(id, addr).is_some() {
            return Err(format!("node id {id} given twice"));
        }
    }
    Ok(peers)
}

/// The `node` command.
#[cfg(not(madsim))]
pub fn main(
    id: u64,
    listen: &str,
    peers: &str,
    data: &std::path::Path,
    creds: &scenarios::credentials::CredentialArgs,
) -> ExitCode {
    use engine::replicated::{run_node, NodeConfig};
    use scenarios::credentials::{self, Choice};
    use sim_runtime::sync::Signal;
    use std::sync::Arc;

    let usage = |e: String| {
        eprintln!("seedbank node: {e}");
        ExitCode::from(2)
    };
    let listen = match scenarios::shell::connect::resolve(listen) {
        Ok(a) => a,
        Err(e) => return usage(format!("--listen: {e}")),
    };
    let peers = match parse_peers(peers) {
        Ok(p) => p,
        Err(e) => return usage(format!("--peers: {e}")),
    };
    let choice = match creds.choose(&format!("node-{id}")) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    if choice == Choice::Insecure {
        eprintln!("{}", credentials::insecure_warning("seedbank node"));
    }
    let mut cfg = NodeConfig::new(id, listen, peers, data);
    if let Err(e) = cfg.validate() {
        return usage(e.to_string());
    }
    #[allow(clippy::disallowed_methods)] // the real-world node command owns its runtime
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seedbank node: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        cfg.auth = match credentials::load(&choice).await {
            Ok(auth) => auth,
            Err(e) => {
                eprintln!("seedbank node: credentials: {e}");
                return ExitCode::from(2);
            }
        };
        let stop = Arc::new(Signal::default());
        let raise = stop.clone();
        sim_runtime::task::spawn(async move {
            wait_for_signal().await;
            raise.raise();
        });
        eprintln!(
            "seedbank node {id}: listening on {listen}, data in {}",
            data.display()
        );
        match run_node(cfg, stop).await {
            Ok(()) => {
                eprintln!("seedbank node {id}: stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("seedbank node {id}: stopped (fail-stop): {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// SIGTERM or SIGINT.
#[cfg(not(madsim))]
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A real node needs the real world.
#[cfg(madsim)]
pub fn main(
    _id: u64,
    _listen: &str,
    peers: &str,
    _data: &std::path::Path,
    _creds: &scenarios::credentials::CredentialArgs,
) -> ExitCode {
    let _ = parse_peers(peers);
    eprintln!("seedbank node runs in the real world: cargo run --bin seedbank -- node …");
    ExitCode::from(2)
}
