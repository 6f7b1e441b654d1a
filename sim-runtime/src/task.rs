//! Tasks: spawn with a per-run task id, traced spawns and polls.
//!
//! Every task spawned through [`spawn`] gets an id from a per-run counter (madsim's own
//! task ids come from a process-wide counter and so differ between two runs in one
//! process) and records a `Spawn` event, then a `Poll` event each time it is polled.
//! Events recorded while a task is being polled carry its id and node.

use crate::trace::{self, EventKind};
use crate::NodeId;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use tokio::task::{yield_now, JoinError, JoinHandle};

thread_local! {
    /// (task id, node number) of the traced task being polled on this thread.
    static CURRENT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Id of the traced task being polled (0 outside traced tasks).
pub fn current_id() -> u64 {
    CURRENT.with(|c| c.get().0)
}

/// The node of the traced task being polled (0: the supervisor, or unknown).
pub fn current_node_id() -> crate::NodeId {
    CURRENT.with(|c| c.get().1)
}

/// A future that records its polls and sets the current task while polled.
pub struct Traced<F> {
    id: u64,
    node: NodeId,
    inner: F,
}

impl<F> Traced<F> {
    /// Wraps `inner` as a new task of the current run on `node`, recording the spawn at
    /// the caller's location.
    #[track_caller]
    pub fn new(inner: F, node: NodeId, name: &str) -> Self {
        Self::spawned_from(inner, node, name, std::panic::Location::caller())
    }

    /// [`Traced::new`], with `origin` named as the place the task was spawned from in a
    /// probe run (a node's init task: the `create` call, not the closure madsim calls).
    /// The trace's `Spawn` event still names the caller.
    #[track_caller]
    pub fn spawned_from(
        inner: F,
        node: NodeId,
        name: &str,
        origin: &'static std::panic::Location<'static>,
    ) -> Self {
        let id = crate::state::with(|s| {
            let id = s.next_task_id;
            s.next_task_id += 1;
            id
        });
        let loc = std::panic::Location::caller();
        let parent = current_id();
        crate::state::try_with(|s| {
            if let Some(p) = s.probe.as_mut() {
                p.on_spawn(
                    id,
                    crate::probe::TaskOrigin {
                        name: name.to_string(),
                        node,
                        spawned_at: format!(
                            "{}:{}:{}",
                            origin.file(),
                            origin.line(),
                            origin.column()
                        ),
                    },
                );
            }
        });
        trace::record_at(
            EventKind::Spawn,
            format_args!("task {id} '{name}' on node {node} (parent {parent})"),
            loc.file(),
            loc.line(),
        );
        Traced { id, node, inner }
    }

    /// This task's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned; `id` and `node` are plain data that are
        // never moved out of a pinned `Traced`.
        let this = unsafe { self.get_unchecked_mut() };
        let prev = CURRENT.with(|c| c.replace((this.id, this.node)));
        if crate::SIMULATED {
            trace::record_poll();
        }
        // SAFETY: see above; `inner` is never moved while `self` is pinned.
        let out = unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx);
        if crate::SIMULATED {
            crate::probe::poll_end(out.is_ready());
        }
        CURRENT.with(|c| c.set(prev));
        out
    }
}

/// Spawns a task on the current node.
#[track_caller]
#[allow(clippy::disallowed_methods)] // this is the one sanctioned tokio::spawn
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if crate::SIMULATED {
        let traced = Traced::new(future, current_node_id(), "");
        tokio::spawn(traced)
    } else {
        tokio::spawn(future)
    }
}

/// Spawns a named task on the current node (the name appears in the trace).
#[track_caller]
#[allow(clippy::disallowed_methods)] // this is the one sanctioned tokio::spawn
pub fn spawn_named<F>(name: &str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if crate::SIMULATED {
        let traced = Traced::new(future, current_node_id(), name);
        tokio::spawn(traced)
    } else {
        tokio::spawn(future)
    }
}

/// Polls `f` once with a waker that does nothing: for futures that never wait
/// (decoders over in-memory bytes, tests of bounded buffers). `None` if it is pending.
/// The one no-op waker of the workspace (`std::task::Waker::noop` is newer than the
/// workspace's minimum Rust version).
pub fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    match std::pin::pin!(f).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}
