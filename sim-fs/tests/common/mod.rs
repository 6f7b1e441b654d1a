//! Helpers shared by the simulated-world tests.
#![allow(dead_code)]

use sim_fs::sim::{CrashConfig, FaultConfig};
use sim_fs::{File, SimFs};
use sim_runtime::node::{self, Node};
use sim_runtime::sim::Sim;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

/// Runs one seed with the SimFs plugin; returns the closure's value and the fault
/// counters. Panics (naming the seed) if the run panicked.
pub fn run<F, Fut, T>(seed: u64, f: F) -> (T, BTreeMap<String, u64>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let report = Sim::new(seed).plugin::<SimFs>().run(f);
    match report.output {
        Ok(v) => (v, report.faults),
        Err(e) => panic!("seed {seed}: {e}"),
    }
}

/// The count of fault `kind` in a run's counters.
pub fn fault(faults: &BTreeMap<String, u64>, kind: &str) -> u64 {
    faults.get(kind).copied().unwrap_or(0)
}

/// A node with an init task (so it can be restarted) that never returns (madsim
/// marks a node whose init task returns as exited).
pub fn new_node(name: &str) -> Node {
    node::build(name).init(std::future::pending::<()>).create()
}

/// Runs `f` on `node`'s current incarnation and returns its output.
pub async fn on<F, T>(node: &Node, f: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    // sim-runtime's Node::spawn keeps madsim's spawner of the node's first incarnation,
    // which never runs tasks after a restart; ask madsim for the current one.
    madsim::runtime::Handle::current()
        .get_node(node.id())
        .expect("node exists")
        .spawn(sim_runtime::task::Traced::new(f, node.number(), "test"))
        .await
        .expect("task on node finished")
}

/// Power loss, then restart.
pub fn crash_restart(node: &Node) {
    node.crash();
    node.restart();
}

/// A fault configuration with no injected faults and the given crash model.
pub fn crash_cfg(crash: CrashConfig) -> FaultConfig {
    FaultConfig {
        crash,
        ..FaultConfig::default()
    }
}

/// Creates `path` holding `data` with both its data and its entry durable.
pub async fn durable_file(path: &str, data: &[u8]) -> File {
    let f = File::create(path).await.unwrap();
    f.write_all_at(data, 0).await.unwrap();
    f.sync_data().await.unwrap();
    let parent = Path::new(path).parent().unwrap().to_path_buf();
    sim_fs::sync_dir(parent).await.unwrap();
    f
}

/// Reads a whole file, `None` if it does not exist.
pub async fn read_opt(path: &str) -> Option<Vec<u8>> {
    match sim_fs::read(path).await {
        Ok(v) => Some(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {path}: {e}"),
    }
}

/// Number of differing bits between two equal-length buffers.
pub fn bit_diff(a: &[u8], b: &[u8]) -> Vec<(usize, u32)> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i, (x ^ y).count_ones()))
        .collect()
}
