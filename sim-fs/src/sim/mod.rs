//! The simulated world's disk (built with `--cfg madsim` only): the madsim plugin
//! [`SimFs`], and the controls tests and the scenario runner use — fault configuration
//! (global and per node), explicit corruption, inspection of durable versus cached
//! state, and the op barrier ([`set_op_limit`]: freeze a node after its k-th file
//! operation, to crash it exactly there).
//!
//! Nodes are named by their number, as `sim_runtime::node::Node::number()` gives it
//! (0 is the supervisor / main task). Every function here panics with registration
//! instructions when the plugin is not registered.

pub(crate) mod backend;
mod barrier;
mod crash;
mod data;
pub(crate) mod disk;
pub(crate) mod faults;
mod ns;
mod plugin;
mod stats;

pub use crash::CrashReport;
pub use disk::SECTOR_SIZE;
pub use plugin::{current_node, SimFs};
pub use stats::FsStats;

pub use crate::config::{CrashConfig, FaultConfig, LatencyConfig};

use crate::sim::disk::{normalize, Entry};
use plugin::{with_disk, with_state};
use sim_runtime::NodeId;
use std::io;
use std::path::{Path, PathBuf};

fn valid(cfg: &FaultConfig) {
    if let Err(e) = cfg.validate() {
        panic!("sim-fs: invalid FaultConfig: {e}");
    }
}

/// Sets the fault configuration of every node that has no per-node override.
/// Panics if the configuration is invalid.
pub fn set_fault_config(cfg: FaultConfig) {
    valid(&cfg);
    with_state(|st| st.global = cfg);
}

/// Sets `node`'s own fault configuration, overriding the global one.
pub fn set_node_fault_config(node: NodeId, cfg: FaultConfig) {
    valid(&cfg);
    with_disk(node, |d, _| d.config = Some(cfg));
}

/// Removes `node`'s override: it follows the global configuration again.
pub fn clear_node_fault_config(node: NodeId) {
    with_disk(node, |d, _| d.config = None);
}

/// The configuration in force on `node`.
pub fn fault_config(node: NodeId) -> FaultConfig {
    with_state(|st| st.config_for(node))
}

/// Flips one random bit (drawn from the node's fs stream) in sector `sector` (512-byte
/// units from the file's start) of the durable image of the file at `path` on `node`;
/// reads show the flipped byte unless newer unsynced data covers it. Counted as
/// `fs.bitflip`. Returns the byte offset and bit number flipped.
pub fn corrupt_sector(node: NodeId, path: impl AsRef<Path>, sector: u64) -> io::Result<(u64, u8)> {
    let path = normalize(path.as_ref())?;
    let res = with_disk(node, |d, dice| d.corrupt_sector(&path, sector, dice));
    sim_runtime::trace::record(
        sim_runtime::EventKind::File,
        format!(
            "corrupt_sector node {node} {} sector={sector} -> {res:?}",
            path.display()
        ),
    );
    res
}

/// What a power loss that lost every unsynced change would leave at `path` on `node`:
/// the durable image of the file its durable directory entry names (`None`: no durable
/// entry, or a directory).
pub fn durable_contents(node: NodeId, path: impl AsRef<Path>) -> Option<Vec<u8>> {
    let path = normalize(path.as_ref()).ok()?;
    with_disk(node, |d, _| match d.durable_ns.get(&path) {
        Some(Entry::File(ino)) => Some(d.inodes[ino].durable.clone()),
        _ => None,
    })
}

/// The synced image of the file the *cached* namespace names at `path` (its data is
/// durable even if its directory entry is not).
pub fn synced_contents(node: NodeId, path: impl AsRef<Path>) -> Option<Vec<u8>> {
    let path = normalize(path.as_ref()).ok()?;
    with_disk(node, |d, _| match d.cached_ns.get(&path) {
        Some(Entry::File(ino)) => Some(d.inodes[ino].durable.clone()),
        _ => None,
    })
}

/// What the running system reads at `path` on `node` (the page cache).
pub fn cached_contents(node: NodeId, path: impl AsRef<Path>) -> Option<Vec<u8>> {
    let path = normalize(path.as_ref()).ok()?;
    with_disk(node, |d, _| match d.cached_ns.get(&path) {
        Some(Entry::File(ino)) => Some(d.inodes[ino].cached.clone()),
        _ => None,
    })
}

/// Unsynced data operations (writes and `set_len`s) of the file at `path` on `node`.
pub fn pending_data_ops(node: NodeId, path: impl AsRef<Path>) -> Option<usize> {
    let path = normalize(path.as_ref()).ok()?;
    with_disk(node, |d, _| match d.cached_ns.get(&path) {
        Some(Entry::File(ino)) => Some(d.inodes[ino].pending.len()),
        _ => None,
    })
}

/// Unsynced directory operations on `node`.
pub fn pending_dir_ops(node: NodeId) -> usize {
    with_disk(node, |d, _| d.pending_dir.len())
}

/// Every path (files and directories) of `node`'s durable namespace, sorted.
pub fn durable_paths(node: NodeId) -> Vec<PathBuf> {
    with_disk(node, |d, _| d.durable_ns.keys().cloned().collect())
}

/// `node`'s operation counters.
pub fn stats(node: NodeId) -> FsStats {
    with_disk(node, |d, _| {
        let mut s = d.stats.clone();
        s.inodes = d.inodes.len() as u64;
        s
    })
}

/// What `node`'s most recent power loss did (`None`: it has not lost power).
pub fn last_crash_report(node: NodeId) -> Option<CrashReport> {
    with_state(|st| st.last_crash.get(&node).cloned())
}

/// Checks `node`'s disk-model invariants (debug builds also check them after every
/// mutation, panicking): the cached image equals the durable image plus the pending ops
/// replayed (unless a failed sync dropped some), namespaces and pending directory ops
/// only name existing inodes, cached entries have parent directories, and no inode
/// lingers that nothing refers to.
pub fn verify_invariants(node: NodeId) -> Result<(), String> {
    with_disk(node, |d, _| d.verify_invariants())
}

/// Draws a fault configuration from the run's `fs.config` stream (for runners that
/// pick one per seed).
pub fn random_fault_config() -> FaultConfig {
    FaultConfig::random(&mut sim_runtime::rng::stream("fs.config"))
}

/// Freezes `node` after its `limit`-th file operation of the run: once
/// [`ops_performed`] reaches `limit`, every further operation on the node is held — it
/// never runs and its future never completes — while the node's other tasks run on
/// until they too wait for I/O. `None` lifts the limit for operations issued from then
/// on (ones already held stay held until the process ends). A power loss or process
/// death of the node clears the limit, so the restarted node runs freely.
///
/// What counts as one operation: every call of the file API that reaches the disk
/// model, successful or not — open/create, `read_at`, `write_all_at`, `append`,
/// `set_len`, `len`, `sync_data`/`sync_all`, `rename`, `remove_file`,
/// `create_dir_all`, `read_dir`, `sync_dir`, `metadata`, `exists` (composites count
/// their parts: [`crate::read`] is open + `len` + `read_at`). Closing a handle, invalid
/// open options and unparsable paths (refused before the disk) and these controls do
/// not count. An operation is counted when it executes, after its injected latency, so
/// with a limit of `k` exactly `k` operations have completed when the node freezes.
///
/// Since a run is a pure function of its seed, the same seed performs the same
/// operations in the same order: run it once without a limit to learn the count `N`,
/// then once per `k` in `1..=N` with `set_op_limit(node, Some(base + k))`, crash the
/// node once [`ops_held`] shows it froze, and check recovery.
pub fn set_op_limit(node: NodeId, limit: Option<u64>) {
    with_disk(node, |d, _| d.barrier.set_limit(limit));
    sim_runtime::trace::record(
        sim_runtime::EventKind::File,
        format!("op limit node {node}: {limit:?}"),
    );
}

/// File operations `node` has executed in this run, across restarts (see
/// [`set_op_limit`] for what counts).
pub fn ops_performed(node: NodeId) -> u64 {
    with_disk(node, |d, _| d.barrier.performed)
}

/// Operations the barrier has held on `node` since the limit was last set (`0`: the
/// node has not reached its limit). A crash clears the limit but not this count.
pub fn ops_held(node: NodeId) -> u64 {
    with_disk(node, |d, _| d.barrier.held)
}
