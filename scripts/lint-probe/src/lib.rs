//! Every line below must be rejected by the workspace's clippy.toml and lint levels
//! (scripts/check-lint names each one), except the unwrap in the test module, which
//! clippy.toml's `allow-unwrap-in-tests` lets through.

use std::time::Duration;

pub fn probe() -> usize {
    let map: std::collections::HashMap<u8, u8> = Default::default();
    let set: std::collections::HashSet<u8> = Default::default();
    let _clock = std::time::Instant::now();
    let _wall = std::time::SystemTime::now();
    let _draw: u8 = rand::random();
    let _rng = rand::thread_rng();
    let _file = std::fs::read("probe");
    let _thread = std::thread::spawn(|| ());
    let _watch = tokio::sync::watch::channel(0u8);
    let _unwrapped: u8 = "7".parse().unwrap();
    map.len() + set.len()
}

/// The tokio items the docs (docs/getting-started.md) say to replace.
pub async fn tokio_probe() {
    let _task = tokio::spawn(async {});
    let _named = tokio::task::spawn(async {});
    let _blocking = tokio::task::spawn_blocking(|| ());
    let at = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1)).await;
    tokio::time::sleep_until(at).await;
    let _late = tokio::time::timeout(Duration::from_millis(1), async {}).await;
    let _tick = tokio::time::interval(Duration::from_millis(1));
    let _tick_at = tokio::time::interval_at(at, Duration::from_millis(1));
    let _tcp = tokio::net::TcpStream::connect("127.0.0.1:1").await;
    let _listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
    let _udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await;
    let _multi = tokio::runtime::Builder::new_multi_thread();
    let _current = tokio::runtime::Builder::new_current_thread();
    let _runtime = tokio::runtime::Runtime::new();
}

/// The same items by their madsim paths: what `tokio::…` means under --cfg madsim.
#[cfg(madsim)]
pub async fn madsim_probe() {
    let _task = madsim::task::spawn(async {});
    let _local = madsim::task::spawn_local(async {});
    #[allow(deprecated)] // madsim deprecates it too; the ban must fire all the same
    let _blocking = madsim::task::spawn_blocking(|| ());
    let at = madsim::time::Instant::now();
    madsim::time::sleep(Duration::from_millis(1)).await;
    madsim::time::sleep_until(at).await;
    let _late = madsim::time::timeout(Duration::from_millis(1), async {}).await;
    let _tick = madsim::time::interval(Duration::from_millis(1));
    let _tick_at = madsim::time::interval_at(at, Duration::from_millis(1));
    let _tcp = madsim::net::TcpStream::connect("127.0.0.1:1").await;
    let _listener = madsim::net::TcpListener::bind("127.0.0.1:0").await;
    let _udp = madsim::net::UdpSocket::bind("127.0.0.1:0").await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn tests_may_unwrap() {
        let seven: u8 = "7".parse().unwrap(); // <- allowed: a test
        assert_eq!(seven, 7);
    }
}
