//! Localising a divergence: a re-run of a seed that records, over a window of events
//! around the point where two runs parted, what each task did and the user frames of
//! its stack when it did it.
//!
//! The trace names the event where a difference became *visible*: a file operation
//! recorded inside sim-fs, or a bare `Poll` of whichever task the scheduler picked next.
//! A leak planted the way real code leaks (a value from OS entropy steering a branch)
//! has no event of its own. A probe run sees finer: besides every trace event it records
//! probe points that are not in the trace — the gateway calls that steer scheduling
//! (sleeps, timeouts, spawns) and the end of every traced poll (pending or ready) — and
//! for each, inside the window, a backtrace cut down to the frames of the user's code.
//! Comparing two probe runs entry by entry gives the first thing a task did differently,
//! with the line of the user's code it was at, and the last place that task reached
//! while the runs still agreed.
//!
//! Cost: nothing unless a probe is installed (one `Option` test per event); in a probe
//! run, one unresolved backtrace per entry inside the window, and symbol resolution for
//! those entries only, after the run. The trace (and its digest) is the same with or
//! without a probe.
#![cfg_attr(not(madsim), allow(dead_code))] // the real world has no probe runs

use crate::escape::{self, Frame};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

thread_local! {
    /// Whether this thread's run is a probe run: the hooks on hot paths (every poll,
    /// every sleep) test this and nothing else in an ordinary run.
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// Events before the divergence index a probe run captures.
pub const WINDOW_BEFORE: u64 = 128;
/// Events after it (a pair of probe runs need not part exactly where the first pair did).
pub const WINDOW_AFTER: u64 = 32;

/// Which events a probe run captures: those with index in `from..=to`, and the probe
/// points recorded while the event count is in that range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: u64,
    pub to: u64,
}

impl Window {
    /// The window for a divergence at event `index`.
    pub fn around(index: u64) -> Self {
        Window {
            from: index.saturating_sub(WINDOW_BEFORE),
            to: index.saturating_add(WINDOW_AFTER),
        }
    }

    /// Whether event `at` is inside the window.
    pub fn contains(&self, at: u64) -> bool {
        self.from <= at && at <= self.to
    }

    /// `from..=to` as text (what a child process receives).
    pub fn to_arg(&self) -> String {
        format!("{}..={}", self.from, self.to)
    }

    /// Parses [`Window::to_arg`]'s text.
    pub fn from_arg(text: &str) -> Option<Self> {
        let (a, b) = text.split_once("..=")?;
        Some(Window {
            from: a.trim().parse().ok()?,
            to: b.trim().parse().ok()?,
        })
    }
}

/// A task of a probe run: how it was spawned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOrigin {
    pub name: String,
    pub node: NodeId,
    /// `file:line` of the spawn (the caller of `task::spawn`, `Node::spawn`, a node's
    /// init, or the run's main task).
    pub spawned_at: String,
}

/// One thing a task did in a probe run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Events recorded before it (for a trace event: its own index).
    pub at: u64,
    /// A trace event (rather than a probe point outside the trace).
    pub event: bool,
    /// What happened: the event's kind and detail, or the probe point.
    pub what: String,
    pub task: u64,
    pub node: NodeId,
    pub time_ns: u64,
    /// The `file:line` the event names (empty for a probe point or a poll).
    pub recorded_at: String,
    /// The user's frames of the stack at that moment, innermost first.
    pub frames: Vec<String>,
}

impl Entry {
    /// The innermost user frame: the line of the user's code the task was at.
    pub fn place(&self) -> Option<&str> {
        self.frames.first().map(String::as_str)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t={}.{:09}s node={} task={} {}{}",
            self.time_ns / 1_000_000_000,
            self.time_ns % 1_000_000_000,
            self.node,
            self.task,
            if self.event {
                format!("#{} ", self.at)
            } else {
                String::new()
            },
            self.what
        )?;
        if !self.recorded_at.is_empty() {
            write!(f, " (recorded at {})", self.recorded_at)?;
        }
        Ok(())
    }
}

/// What a probe run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeLog {
    pub window: Option<Window>,
    pub entries: Vec<Entry>,
    /// Every task spawned through sim-runtime in the run, by id.
    pub tasks: BTreeMap<u64, TaskOrigin>,
    /// Each task's last probe point before the window, with its stack: a sleep begun
    /// long before the runs part is often the step that made them part.
    pub before: BTreeMap<u64, Entry>,
}

/// An entry before its backtrace is resolved.
struct Raw {
    entry: Entry,
    backtrace: Option<Backtrace>,
}

/// A probe installed in a run's state.
pub(crate) struct Probe {
    window: Window,
    raw: Vec<Raw>,
    tasks: BTreeMap<u64, TaskOrigin>,
    before: BTreeMap<u64, Raw>,
}

impl Probe {
    pub(crate) fn new(window: Window) -> Self {
        PROBING.with(|p| p.set(true));
        Probe {
            window,
            raw: Vec::new(),
            tasks: BTreeMap::new(),
            before: BTreeMap::new(),
        }
    }

    /// Called for each trace event (`index`) as it is recorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_event(
        &mut self,
        index: u64,
        what: fmt::Arguments<'_>,
        task: u64,
        node: NodeId,
        time_ns: u64,
        file: &str,
        line: u32,
        poll: bool,
    ) {
        if !self.window.contains(index) {
            return;
        }
        let mut what = what.to_string();
        what.truncate(what.trim_end().len());
        self.raw.push(Raw {
            entry: Entry {
                at: index,
                event: true,
                what,
                task,
                node,
                time_ns,
                recorded_at: if file.is_empty() {
                    String::new()
                } else {
                    format!("{file}:{line}")
                },
                frames: Vec::new(),
            },
            // At the start of a poll the stack is the executor's: nothing to learn.
            backtrace: (!poll).then(Backtrace::force_capture),
        });
    }

    pub(crate) fn on_spawn(&mut self, id: u64, origin: TaskOrigin) {
        self.tasks.insert(id, origin);
    }

    /// Resolves the captured backtraces into user frames.
    pub(crate) fn finish(self) -> ProbeLog {
        PROBING.with(|p| p.set(false));
        fn resolve(raw: Raw) -> Entry {
            let mut entry = raw.entry;
            if let Some(bt) = raw.backtrace {
                entry.frames = escape::user_frames(&bt.to_string())
                    .iter()
                    .map(Frame::describe)
                    .collect();
            }
            entry
        }
        ProbeLog {
            window: Some(self.window),
            entries: self.raw.into_iter().map(resolve).collect(),
            tasks: self.tasks,
            before: self
                .before
                .into_iter()
                .map(|(task, raw)| (task, resolve(raw)))
                .collect(),
        }
    }
}

/// Records a probe point (not a trace event) when a probe run is inside its window:
/// `what` with the task, node, time and the user frames of the caller's stack. A no-op
/// (one thread-local test) otherwise, and always in the real world.
#[track_caller]
pub fn point(what: fmt::Arguments<'_>) {
    push_point(what, Some(std::panic::Location::caller()));
}

/// The end of a traced task's poll (no stack to learn from: the poll has returned).
pub(crate) fn poll_end(ready: bool) {
    push_point(
        format_args!("poll ends: {}", if ready { "ready" } else { "pending" }),
        None,
    );
}

/// `caller`: where the point was called from (None: no stack worth keeping). Inside
/// the window the point keeps a full backtrace; before it, each task's last point keeps
/// only `caller` — a backtrace at every sleep of a long run cost a probe run eight times
/// an ordinary one.
fn push_point(what: fmt::Arguments<'_>, caller: Option<&'static std::panic::Location<'static>>) {
    if !PROBING.with(Cell::get) {
        return;
    }
    let capture = caller.is_some();
    #[cfg(madsim)]
    {
        let Some(Some(at)) = crate::state::try_with(|s| {
            let at = s.recorder.count();
            s.probe.as_ref().and_then(|p| {
                (p.window.contains(at) || (capture && at < p.window.from)).then_some(at)
            })
        }) else {
            return;
        };
        let (node, time_ns) = crate::trace::context_now();
        let before =
            crate::state::try_with(|s| s.probe.as_ref().is_some_and(|p| at < p.window.from))
                .unwrap_or(false);
        let caller = caller
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .filter(|l| !escape::is_framework(l));
        let entry = Entry {
            at,
            event: false,
            what: what.to_string(),
            task: crate::task::current_id(),
            node,
            time_ns,
            recorded_at: String::new(),
            frames: if before {
                caller.into_iter().collect()
            } else {
                Vec::new()
            },
        };
        let backtrace = (capture && !before).then(Backtrace::force_capture);
        crate::state::try_with(|s| {
            if let Some(p) = s.probe.as_mut() {
                let raw = Raw { entry, backtrace };
                if at < p.window.from {
                    p.before.insert(raw.entry.task, raw);
                } else {
                    p.raw.push(raw);
                }
            }
        });
    }
    #[cfg(not(madsim))]
    let _ = (what, capture);
}

/// Whether a probe is installed in the current run.
pub fn active() -> bool {
    PROBING.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_trip_as_text() {
        let w = Window::around(200);
        assert_eq!(w, Window { from: 72, to: 232 });
        assert_eq!(
            Window::around(1000),
            Window {
                from: 872,
                to: 1032
            }
        );
        assert_eq!(Window::from_arg(&w.to_arg()), Some(w));
        assert_eq!(Window::around(3).from, 0);
        assert_eq!(Window::from_arg("x..=3"), None);
    }
}
