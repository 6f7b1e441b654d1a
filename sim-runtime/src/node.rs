//! Simulated nodes (simulation only).
//!
//! A node is a madsim node with a name, an IP address and an optional init task that
//! (re)starts it. The operations differ in what survives:
//!
//! | operation   | tasks        | page cache (unsynced writes) | then          |
//! |-------------|--------------|------------------------------|---------------|
//! | [`Node::crash`]   | killed | lost per the crash model (power loss) | down |
//! | [`Node::kill`]    | killed | kept (process death, OS survives)     | down |
//! | [`Node::restart`] | killed if running | kept                     | init runs again |
//! | [`Node::pause`]   | frozen | kept                                  | resume later |
//!
//! madsim's `restart` does not call its plugins' `reset_node` and its `kill` does, so a
//! crash marks the node for power loss and then kills it: sim-fs's plugin sees the
//! `reset_node` call and asks `take_power_loss` whether to apply the crash model.

use crate::state;
use crate::task::Traced;
use crate::trace::{self, EventKind};
use madsim::runtime::{Handle, NodeHandle};
use std::future::Future;
use std::net::IpAddr;

pub use madsim::task::NodeId as MadsimNodeId;

/// The [`NodeId`](crate::NodeId) of madsim's node `id`: the number madsim prints for it
/// (madsim keeps the field private).
pub fn node_id_of(id: MadsimNodeId) -> crate::NodeId {
    id.to_string().parse().unwrap_or(u64::MAX)
}

/// Builds a simulated node.
pub struct NodeBuilder {
    name: String,
    ip: Option<IpAddr>,
    init: Option<InitFn>,
}

type InitFn = std::sync::Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

/// Starts building a node called `name`.
pub fn build(name: impl Into<String>) -> NodeBuilder {
    NodeBuilder {
        name: name.into(),
        ip: None,
        init: None,
    }
}

impl NodeBuilder {
    /// The node's IP address (needed for networking).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// The task that starts the node, run at creation and again at every restart.
    pub fn init<F, Fut>(mut self, init: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.init = Some(std::sync::Arc::new(move || Box::pin(init())));
        self
    }

    /// Creates the node (and starts its init task, if any).
    #[track_caller]
    pub fn create(self) -> Node {
        let handle = Handle::current();
        let mut builder = handle.create_node().name(self.name.clone());
        if let Some(ip) = self.ip {
            builder = builder.ip(ip);
        }
        // The node's number is only known after build(); the init closure reads it from
        // a shared cell filled in right after.
        let number = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let origin = std::panic::Location::caller();
        if let Some(init) = self.init.clone() {
            let number = number.clone();
            let name = self.name.clone();
            builder = builder.init(move || {
                // madsim calls this inside `build()`, before the node's number is known,
                // so read the number when the task first runs (by then it is stored).
                let number = number.clone();
                let init = init.clone();
                let name = name.clone();
                async move {
                    let node = number.load(std::sync::atomic::Ordering::Relaxed);
                    Traced::spawned_from(init(), node, &format!("{name}.init"), origin).await
                }
            });
        }
        let inner = builder.build();
        let n = node_id_of(inner.id());
        number.store(n, std::sync::atomic::Ordering::Relaxed);
        trace::record(
            EventKind::Node,
            format!("create node {n} '{}' ip={:?}", self.name, self.ip),
        );
        Node {
            inner,
            name: self.name,
            ip: self.ip,
            number: n,
            has_init: self.init.is_some(),
        }
    }
}

/// A handle to a simulated node.
#[derive(Clone)]
pub struct Node {
    inner: NodeHandle,
    name: String,
    ip: Option<IpAddr>,
    number: u64,
    has_init: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("number", &self.number)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .finish()
    }
}

impl Node {
    /// madsim's id of this node.
    pub fn id(&self) -> MadsimNodeId {
        self.inner.id()
    }

    /// The node's number (as in traces and fault plans).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's IP address, if it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// Spawns a task on this node.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> madsim::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Look the node up again: after a restart madsim has a new spawner for it, and
        // the handle from creation would spawn onto the dead incarnation.
        let handle = Handle::current()
            .get_node(self.id())
            .unwrap_or_else(|| self.inner.clone());
        handle.spawn(Traced::new(future, self.number, ""))
    }

    /// Power loss: kills every task and drops the page cache per sim-fs's crash model.
    /// The node stays down until [`Node::restart`].
    #[track_caller]
    pub fn crash(&self) {
        self.crash_counted_as("node.crash");
    }

    /// [`Node::crash`], counted in the run's fault counters as `counter` instead of
    /// `node.crash`: for a runner's own power losses (the final one before a recovery
    /// check, say), so `node.crash` counts exactly the faults a plan asked for.
    #[track_caller]
    pub fn crash_counted_as(&self, counter: &'static str) {
        trace::record(
            EventKind::Node,
            format!("crash node {} (power loss)", self.number),
        );
        crate::faults::count(counter);
        state::with(|s| s.power_loss.insert(self.number));
        Handle::current().kill(self.id());
        state::with(|s| s.power_loss.remove(&self.number));
    }

    /// Process death (SIGKILL): kills every task; the page cache survives. The node stays
    /// down until [`Node::restart`].
    #[track_caller]
    pub fn kill(&self) {
        self.kill_counted_as("node.kill");
    }

    /// [`Node::kill`], counted as `counter` instead of `node.kill` (a supervisor's
    /// restart of a node that fail-stopped is not a fault).
    #[track_caller]
    pub fn kill_counted_as(&self, counter: &'static str) {
        trace::record(EventKind::Node, format_args!("kill node {}", self.number));
        crate::faults::count(counter);
        Handle::current().kill(self.id());
    }

    /// Restarts the node: kills its tasks if it is running (page cache kept) and runs
    /// its init task again.
    #[track_caller]
    pub fn restart(&self) {
        trace::record(
            EventKind::Node,
            format_args!("restart node {}", self.number),
        );
        assert!(
            self.has_init,
            "restart of node {} which has no init task",
            self.number
        );
        Handle::current().restart(self.id());
    }

    /// Freezes every task of the node until [`Node::resume`].
    #[track_caller]
    pub fn pause(&self) {
        trace::record(EventKind::Node, format_args!("pause node {}", self.number));
        crate::faults::count("node.pause");
        Handle::current().pause(self.id());
    }

    /// Resumes a paused node.
    #[track_caller]
    pub fn resume(&self) {
        trace::record(EventKind::Node, format_args!("resume node {}", self.number));
        Handle::current().resume(self.id());
    }

    /// Sets the node's clock: `offset` ahead (negative: behind) of global time, running
    /// fast by `drift_ppm` parts per million (negative: slow).
    #[track_caller]
    pub fn set_clock(&self, offset_ns: i64, drift_ppm: i64) {
        trace::record(
            EventKind::Node,
            format!(
                "clock node {} offset={offset_ns}ns drift={drift_ppm}ppm",
                self.number
            ),
        );
        if offset_ns != 0 || drift_ppm != 0 {
            crate::faults::count("node.clock_skew");
        }
        state::with(|s| s.clocks.insert(self.number, (offset_ns, drift_ppm)));
    }

    /// Whether the node is down (crashed, killed, or its init task returned).
    pub fn is_down(&self) -> bool {
        Handle::current().is_exit(self.id())
    }
}

/// For simulator plugins: whether the `reset_node` call being handled for `node` is a
/// power loss ([`Node::crash`]) rather than a process death ([`Node::kill`]).
pub fn is_power_loss(node: MadsimNodeId) -> bool {
    let n = node_id_of(node);
    state::with(|s| s.power_loss.contains(&n))
}
