//! `seedbank shell --connect ADDR[,ADDR…]`: the shell against a replicated cluster.
//!
//! Each item of the list is `ADDR` or `ID=ADDR`; a bare address gets the id of its
//! position (1, 2, 3…), the numbering `seedbank node --peers` uses. The client finds the
//! leader itself, follows redirects (learning addresses from them), and retries a
//! commit of unknown outcome with its client id and sequence number, so a retried
//! commit is never applied twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use engine::raft::NodeId;
use engine::replicated::ReplicatedClient;
use serde_json::json;

/// Parses `ADDR[,ADDR…]` / `ID=ADDR[,…]` into node id → address.
pub fn parse_servers(list: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut out = BTreeMap::new();
    for (pos, item) in list.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let (id, addr) = match item.split_once('=') {
            Some((id, addr)) => {
                let id: NodeId = id
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad node id in '{item}'"))?;
                (id, addr.trim())
            }
            None => (pos as NodeId + 1, item),
        };
        if id == 0 || id >= engine::replicated::client::MIN_CLIENT_ID {
            return Err(format!("node id {id} out of range in '{item}'"));
        }
        let addr = resolve(addr)?;
        if out.insert(id, addr).is_some() {
            return Err(format!("node id {id} given twice"));
        }
    }
    if out.is_empty() {
        return Err("no addresses given".into());
    }
    Ok(out)
}

/// `HOST:PORT` or `IP:PORT` as a socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{addr}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{addr}' resolves to no address"))
}

/// Every known replica's status, as JSON objects (`{"id":N,"error":"unreachable"}` for
/// one that did not answer).
pub async fn status(client: &ReplicatedClient) -> Vec<serde_json::Value> {
    let mut nodes = Vec::new();
    for id in client.servers().into_keys() {
        nodes.push(match client.status(id).await {
            Some(s) => json!({
                "id": s.id,
                "role": s.role,
                "term": s.term,
                "leader": s.leader,
                "commit": s.commit,
                "applied": s.applied,
                "last_index": s.last_index,
                "log_start": s.log_start,
            }),
            None => json!({"id": id, "error": "unreachable"}),
        });
    }
    nodes
}

/// A client id for this shell process: random, mixed with the process id and the
/// clock, so that two shells never share one (they would share deduplication state).
#[cfg(not(madsim))]
fn client_id() -> u64 {
    use rand::RngCore;
    let random = sim_runtime::rng::stream("shell.client").next_u64();
    let clock = sim_runtime::time::system_time()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = random ^ clock.rotate_left(17) ^ (u64::from(std::process::id()) << 40);
    let min = engine::replicated::client::MIN_CLIENT_ID;
    min + mixed % (u64::MAX - min)
}

/// `seedbank shell --connect LIST [--json] [--history FILE]`.
#[cfg(not(madsim))]
pub fn main(list: &str, options: &super::ShellOptions) -> std::process::ExitCode {
    use engine::replicated::ClientConfig;
    let servers = match parse_servers(list) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seedbank shell: --connect: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match super::input::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let any = SocketAddr::from(([0, 0, 0, 0], 0));
        let cfg = ClientConfig::new(client_id(), any, servers);
        let client = match ReplicatedClient::connect(cfg).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("seedbank shell: cannot connect: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let mut session = super::Session::replicated(client);
        super::input::run_stdin(&mut session, options).await
    })
}

/// The shell needs the real world.
#[cfg(madsim)]
pub fn main(_list: &str, _options: &super::ShellOptions) -> std::process::ExitCode {
    eprintln!(
        "seedbank shell runs in the real world: cargo run --bin seedbank -- shell --connect ADDR[,ADDR…]"
    );
    std::process::ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_parse_positionally_or_with_ids() {
        let s = parse_servers("127.0.0.1:7001,127.0.0.1:7002").expect("parse");
        assert_eq!(s.len(), 2);
        assert_eq!(s[&2], "127.0.0.1:7002".parse().expect("addr"));
        let s = parse_servers("3=127.0.0.1:7003, 1=127.0.0.1:7001").expect("parse");
        assert_eq!(s.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert!(parse_servers("").is_err());
        assert!(parse_servers("x=127.0.0.1:1").is_err());
        assert!(parse_servers("0=127.0.0.1:1").is_err());
        assert!(parse_servers("1=127.0.0.1:1,1=127.0.0.1:2").is_err());
        assert!(parse_servers("not an address").is_err());
    }
}
