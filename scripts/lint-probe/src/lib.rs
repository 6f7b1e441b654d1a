//! Every line below must be rejected by the workspace's clippy.toml.

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
    map.len() + set.len()
}
