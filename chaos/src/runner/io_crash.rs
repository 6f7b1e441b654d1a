//! Executing a power loss timed by file operations ([`Fault::CrashAtIo`]): the node is
//! frozen at sim-fs's op barrier after its next `after_ops` file operations, and the
//! runner that asked cuts its power there. Both runners use it — this crate's over the
//! user's nodes and the bundled database's scenarios.

#[cfg(doc)]
use crate::plan::Fault;
use crate::plan::IO_CRASH_WAIT_MS;
use sim_runtime::node::MadsimNodeId;
use sim_runtime::time::{self, sleep, Duration};

/// Starts the wait of [`frozen_after_ops`] as a task that calls `crash` (which cuts the
/// node's power, the runner's way) once the node is frozen; the runner's plan task
/// awaits the handle before the run's final checks.
pub fn spawn(
    node: MadsimNodeId,
    after_ops: u64,
    crash: impl FnOnce() + Send + 'static,
) -> sim_runtime::task::JoinHandle<()> {
    sim_runtime::task::spawn_named("crash-at-io", async move {
        if frozen_after_ops(node, after_ops).await {
            crash();
        }
    })
}

/// Arms `node`'s op barrier `after_ops` (at least 1) operations from now and waits for
/// the node to reach it: `true` once an operation is held there (the node is frozen
/// between two file operations: power it off now), `false` if it did not get there
/// within [`IO_CRASH_WAIT_MS`] (the limit is lifted and the fault is skipped).
pub async fn frozen_after_ops(node: MadsimNodeId, after_ops: u64) -> bool {
    let node = sim_runtime::node::node_id_of(node);
    let limit = sim_fs::sim::ops_performed(node).saturating_add(after_ops.max(1));
    // Setting a limit starts the held count from zero.
    sim_fs::sim::set_op_limit(node, Some(limit));
    let until = time::now() + Duration::from_millis(IO_CRASH_WAIT_MS);
    loop {
        if sim_fs::sim::ops_held(node) > 0 {
            return true;
        }
        if time::now() >= until {
            break;
        }
        sleep(Duration::from_millis(1)).await;
    }
    // No await since the check above, so no operation is held: lifting the limit
    // leaves nothing frozen.
    sim_fs::sim::set_op_limit(node, None);
    false
}
