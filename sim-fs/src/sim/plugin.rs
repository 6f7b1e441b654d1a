//! The madsim plugin that owns every node's simulated disk.
//!
//! madsim calls `create_node` for each node (and for the supervisor, node 0, when the
//! plugin is added) and `reset_node` when a node is killed. sim-runtime's
//! `Node::crash` marks the kill as a power loss first (`is_power_loss`), so a crash
//! applies the crash model and a plain kill only ends the process (page cache kept).
//! madsim's `restart` does not call `reset_node`: restarting a running node keeps its
//! page cache and, since the old process's tasks are dropped, its handles with them.

use crate::sim::crash::CrashReport;
use crate::sim::disk::Disk;
use crate::sim::faults::Dice;
use crate::FaultConfig;
use madsim::plugin::Simulator;
use sim_runtime::node::{node_id_of, MadsimNodeId};
use sim_runtime::trace::{self, EventKind};
use sim_runtime::NodeId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

/// The simulated file system: register it with
/// `sim_runtime::sim::Sim::new(seed).plugin::<sim_fs::SimFs>()`.
pub struct SimFs {
    state: Arc<Mutex<FsState>>,
}

impl std::fmt::Debug for SimFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFs").finish_non_exhaustive()
    }
}

/// Every node's disk and the global fault configuration.
#[derive(Debug, Default)]
pub(crate) struct FsState {
    pub global: FaultConfig,
    pub disks: BTreeMap<u64, Disk>,
    /// The report of each node's most recent power loss.
    pub last_crash: BTreeMap<u64, CrashReport>,
}

thread_local! {
    /// The plugin of the runtime on this thread (a simulated run owns its thread). Weak,
    /// so a dropped runtime leaves nothing behind.
    static REGISTERED: RefCell<Weak<Mutex<FsState>>> = const { RefCell::new(Weak::new()) };
}

const NOT_REGISTERED: &str = "sim-fs: the SimFs plugin is not registered in this simulation. \
Register it when building the run: `sim_runtime::sim::Sim::new(seed).plugin::<sim_fs::SimFs>().run(|| async { ... })` \
(on a raw madsim runtime: `runtime.add_simulator::<sim_fs::SimFs>()` before `block_on`).";

impl Simulator for SimFs {
    fn new(
        _rand: &madsim::rand::GlobalRng,
        _time: &madsim::time::TimeHandle,
        _config: &madsim::Config,
    ) -> Self {
        let state = Arc::new(Mutex::new(FsState::default()));
        REGISTERED.with(|r| *r.borrow_mut() = Arc::downgrade(&state));
        SimFs { state }
    }

    fn create_node(&self, id: MadsimNodeId) {
        let n = node_id_of(id);
        lock(&self.state)
            .disks
            .entry(n)
            .or_insert_with(|| Disk::new(n));
    }

    fn reset_node(&self, id: MadsimNodeId) {
        let n = node_id_of(id);
        let power_loss = sim_runtime::node::is_power_loss(id);
        let mut st = lock(&self.state);
        let cfg = st.config_for(n);
        let Some(disk) = st.disks.get_mut(&n) else {
            return;
        };
        if power_loss {
            let report = disk.power_loss(&mut Dice::new(n, cfg));
            trace::record(EventKind::File, format!("power loss node {n}: {report}"));
            st.last_crash.insert(n, report);
        } else {
            disk.process_death();
            trace::record(
                EventKind::File,
                format!("process death node {n}: page cache kept, handles closed"),
            );
        }
    }
}

use sim_runtime::sync::lock;

impl FsState {
    pub(crate) fn config_for(&self, node: NodeId) -> FaultConfig {
        self.disks
            .get(&node)
            .and_then(|d| d.config.clone())
            .unwrap_or_else(|| self.global.clone())
    }
}

fn registered() -> Option<Arc<Mutex<FsState>>> {
    REGISTERED.try_with(|r| r.borrow().upgrade()).ok().flatten()
}

/// Runs `f` on the file-system state; panics with registration instructions when the
/// plugin is not registered.
pub(crate) fn with_state<R>(f: impl FnOnce(&mut FsState) -> R) -> R {
    let state = registered().unwrap_or_else(|| panic!("{NOT_REGISTERED}"));
    let mut guard = lock(&state);
    f(&mut guard)
}

/// Runs `f` on `node`'s disk with that node's fault dice.
pub(crate) fn with_disk<R>(node: NodeId, f: impl FnOnce(&mut Disk, &mut Dice) -> R) -> R {
    with_state(|st| {
        let cfg = st.config_for(node);
        let disk = st.disks.get_mut(&node).unwrap_or_else(|| {
            panic!("sim-fs: node {node} has no simulated disk (was it created before SimFs was registered?)")
        });
        f(disk, &mut Dice::new(node, cfg))
    })
}

/// Like [`with_disk`] but a no-op when the plugin or the node is gone (for `Drop`).
pub(crate) fn try_with_disk(node: NodeId, f: impl FnOnce(&mut Disk)) {
    if let Some(state) = registered() {
        if let Ok(mut guard) = state.try_lock() {
            if let Some(disk) = guard.disks.get_mut(&node) {
                f(disk);
            }
        }
    }
}

/// The node the current task runs on (0: the supervisor / main task).
pub fn current_node() -> u64 {
    node_id_of(madsim::plugin::node())
}
