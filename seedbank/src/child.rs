//! Process isolation: each run of a seed in its own process.
//!
//! A fresh thread per seed is not enough. Process-wide state outlives a run and leaks
//! into the next one in the same process — measured here: tokio seeds its per-thread
//! RNG from a process-wide counter, and `tokio::sync::watch` (which sim-net uses) and
//! an unbiased `tokio::select!` draw from it, so the order in which woken tasks run,
//! and with it the whole trace, depended on how many runs the process had made
//! before. Seed 17 inside a sweep then differs from seed 17 replayed alone, and the
//! double-run check fails on code that is deterministic. A user's `static`s and
//! `OnceLock`s do the same.
//!
//! So each run gets a process of its own. With `Isolation::Exec` the harness
//! re-executes the test binary for every run — `<test binary> <name> --exact --test-threads=1` with
//! `SEEDBANK_CHILD_SEED` and `SEEDBANK_CHILD_OUT` set — and the child runs that one
//! seed (still on a fresh thread and runtime, through `Sim::run`) and writes what
//! happened to `SEEDBANK_CHILD_OUT` (postcard). The reproduce command does exactly the
//! same, so a seed replays byte for byte whether it ran in a sweep or alone. With
//! `Isolation::Process` (the default) the same child is started once per worker as a
//! fork server and each run is forked from it (`crate::forkserver`): the same clean
//! slate for the price of a `fork`.

use serde::{Deserialize, Serialize};
use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use sim_runtime::escape::Escape;
use sim_runtime::probe::{ProbeLog, Window};
use sim_runtime::trace::{Checkpoint, Event, EventKind, Trace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The last events of a failing run shown in its report.
pub(crate) const RECENT_EVENTS: usize = 12;
/// Faults (and node crashes, kills, restarts) whose surroundings a report shows: the
/// last ones of the run and the last one of each node, at most this many.
const FAULT_ANCHORS: usize = 6;
/// Events shown before and after each such fault (task polls and spawns not counted).
const AROUND_BEFORE: usize = 3;
const AROUND_AFTER: usize = 5;

/// Environment of a child: the seed to run, where to write the result, whether to
/// send the whole trace (for the double-run comparison).
const ENV_SEED: &str = "SEEDBANK_CHILD_SEED";
const ENV_OUT: &str = "SEEDBANK_CHILD_OUT";
const ENV_FULL: &str = "SEEDBANK_CHILD_FULL_TRACE";
pub(crate) const ENV_SWEEP: &str = "SEEDBANK_CHILD_SWEEP";
/// A probe run over this window of events (`sim_runtime::probe::Window::to_arg`).
const ENV_PROBE: &str = "SEEDBANK_CHILD_PROBE";

thread_local! {
    /// Sweeps this test thread has started: a child runs the test function again, and
    /// must know which of its sweeps the parent asked for.
    static SWEEPS_STARTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts a sweep started on this thread; returns its ordinal (0 for the first).
pub(crate) fn next_sweep_ordinal() -> u32 {
    SWEEPS_STARTED.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    })
}

/// Everything the harness needs from one run, in either isolation mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunOutcome {
    /// Outer `Err`: the run panicked (the message); inner: the body's verdict.
    pub output: Result<Result<(), String>, String>,
    /// Where the panic happened.
    pub panic_location: Option<String>,
    /// An escape recognized in the panic.
    pub escape: Option<Escape>,
    pub faults: BTreeMap<String, u64>,
    /// Coverage marks the run reached (`sim_runtime::cover!`), with hit counts.
    #[serde(default)]
    pub marks: BTreeMap<String, u64>,
    pub fs: Option<FaultConfig>,
    pub net: Option<NetFaultConfig>,
    pub virtual_time: Duration,
    pub digest: u64,
    pub count: u64,
    /// Empty unless the full trace was asked for.
    pub checkpoints: Vec<Checkpoint>,
    /// Empty unless the full trace was asked for.
    pub digests: Vec<u64>,
    /// All kept events if the full trace was asked for, else the recent ones.
    pub events: Vec<Event>,
    /// What a probe run recorded (None: not a probe run).
    pub probe: Option<ProbeLog>,
    /// Escapes noted as they happened (`sim_runtime::sim::RunReport::escapes`).
    pub escapes: Vec<Escape>,
}

impl RunOutcome {
    /// The run's trace, as far as it was sent.
    pub fn trace(&self) -> Trace {
        Trace {
            digest: self.digest,
            count: self.count,
            checkpoints: self.checkpoints.clone(),
            digests: self.digests.clone(),
            events: self.events.clone(),
        }
    }

    /// The events a report shows: around the last faults, and the last ones.
    pub fn recent(&self) -> Vec<Event> {
        notable(&self.events)
    }

    /// Drops the full trace, keeping the events a report shows.
    pub fn slim(&mut self) {
        self.events = notable(&self.events);
        self.digests = Vec::new();
        self.checkpoints = Vec::new();
    }
}

/// What a failure report shows of a run: the last [`RECENT_EVENTS`] events (often the
/// checker's final reads), and — since the fault that caused a failure usually came
/// long before them — the events around the last faults of the run and the last fault
/// of each node. Task polls and spawns are left out; the result is in trace order (a
/// report marks the gaps by index).
pub(crate) fn notable(events: &[Event]) -> Vec<Event> {
    let shown: Vec<&Event> = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Poll | EventKind::Spawn))
        .collect();
    let mut keep = std::collections::BTreeSet::new();
    keep.extend(shown.len().saturating_sub(RECENT_EVENTS)..shown.len());
    let is_fault = |e: &Event| matches!(e.kind, EventKind::Fault | EventKind::Node);
    // The last faults overall, then the last of each node not yet covered.
    let mut anchors: Vec<usize> = Vec::new();
    let mut nodes_seen = std::collections::BTreeSet::new();
    for (i, e) in shown.iter().enumerate().rev() {
        if anchors.len() >= FAULT_ANCHORS {
            break;
        }
        if is_fault(e) && (anchors.len() < 2 || nodes_seen.insert(e.node)) {
            nodes_seen.insert(e.node);
            anchors.push(i);
        }
    }
    for a in anchors {
        let from = a.saturating_sub(AROUND_BEFORE);
        let to = a.saturating_add(AROUND_AFTER + 1).min(shown.len());
        keep.extend(from..to);
    }
    keep.into_iter().map(|i| shown[i].clone()).collect()
}

/// What the parent asked a child for.
pub(crate) struct ChildRequest {
    pub seed: u64,
    pub out: PathBuf,
    pub full_trace: bool,
    /// Which sweep of the test function (0: the first).
    pub sweep: u32,
    /// Run as a probe run over this window.
    pub probe: Option<Window>,
    /// A fork-served run's stdout/stderr file (`None`: a child's own, captured by the
    /// parent).
    pub log: Option<PathBuf>,
}

/// Whether the harness started this process to run seeds (`seedbank::in_child_process`).
pub(crate) fn in_child_process() -> bool {
    std::env::var_os(ENV_SEED).is_some() || std::env::var_os("SEEDBANK_CHILD_SERVE").is_some()
}

/// The sweep ordinal a child or fork server was started for (0: the first).
pub(crate) fn sweep_ordinal_from_env() -> u32 {
    std::env::var(ENV_SWEEP)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A fork server is not itself a one-seed child: whatever request its parent
/// inherited is removed.
pub(crate) fn clear_request_env(command: &mut Command) {
    for var in [ENV_SEED, ENV_OUT, ENV_FULL, ENV_PROBE] {
        command.env_remove(var);
    }
}

/// Reads and decodes a run's outcome file (`None`: missing or undecodable).
pub(crate) fn read_result(path: &Path) -> Option<RunOutcome> {
    #[allow(clippy::disallowed_methods)] // the harness's own result file, outside any simulated run
    let bytes = std::fs::read(path).ok()?;
    postcard::from_bytes(&bytes).ok()
}

/// The last 20 lines of a log file (empty if there is none).
pub(crate) fn tail(path: &Path) -> String {
    #[allow(clippy::disallowed_methods)] // the harness's own log file
    let text = std::fs::read(path).unwrap_or_default();
    last_lines(&String::from_utf8_lossy(&text))
}

/// The last 20 lines of a run's output, for a report of a run that left no result.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(20).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// In a child process: what to run.
pub(crate) fn child_request() -> Option<ChildRequest> {
    Some(ChildRequest {
        seed: std::env::var(ENV_SEED).ok()?.parse().ok()?,
        out: PathBuf::from(std::env::var_os(ENV_OUT)?),
        full_trace: std::env::var_os(ENV_FULL).is_some_and(|v| v == "1"),
        sweep: sweep_ordinal_from_env(),
        probe: std::env::var(ENV_PROBE)
            .ok()
            .and_then(|w| Window::from_arg(&w)),
        log: None,
    })
}

impl RunOutcome {
    /// The outcome of a run that could not happen as asked.
    pub fn refused(message: String) -> Self {
        RunOutcome {
            output: Err(message),
            panic_location: None,
            escape: None,
            faults: BTreeMap::new(),
            marks: BTreeMap::new(),
            fs: None,
            net: None,
            virtual_time: Duration::ZERO,
            digest: 0,
            count: 0,
            checkpoints: Vec::new(),
            digests: Vec::new(),
            events: Vec::new(),
            probe: None,
            escapes: Vec::new(),
        }
    }
}

/// In a child process: writes the outcome for the parent.
pub(crate) fn write_result(path: &Path, outcome: &RunOutcome) {
    let bytes = postcard::to_allocvec(outcome).expect("a run outcome always encodes");
    #[allow(clippy::disallowed_methods)] // the harness's own result file, outside any simulated run
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("seedbank child: cannot write {}: {e}", path.display());
    }
}

/// Runs `seed` of test `name` in a fresh process of the current test binary.
pub(crate) fn run_in_child(
    name: &str,
    sweep: u32,
    seed: u64,
    full_trace: bool,
    probe: Option<Window>,
) -> Result<RunOutcome, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let out = std::env::temp_dir().join(format!(
        "seedbank-{}-{}-{seed}.result",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut command = Command::new(&exe);
    command
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ENV_SEED, seed.to_string())
        .env(ENV_OUT, &out)
        .env(ENV_FULL, if full_trace { "1" } else { "0" })
        .env(ENV_SWEEP, sweep.to_string());
    match probe {
        Some(w) => command.env(ENV_PROBE, w.to_arg()),
        None => command.env_remove(ENV_PROBE),
    };
    if std::env::var_os("SEEDBANK_TRACE").is_some_and(|v| v == "1" || v == "all") {
        // The trace goes to the child's stderr: let the user see it.
        command.stderr(Stdio::inherit());
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    #[allow(clippy::disallowed_methods)] // the harness's own result file, outside any simulated run
    let bytes = std::fs::read(&out);
    #[allow(clippy::disallowed_methods)]
    let _ = std::fs::remove_file(&out);
    let Ok(bytes) = bytes else {
        return Err(format!(
            "the child process for seed {seed} ({} {name} --exact) left no result (exit status {}); \
             the end of its stderr:\n{}",
            exe.display(),
            output.status,
            last_lines(&String::from_utf8_lossy(&output.stderr))
        ));
    };
    postcard::from_bytes(&bytes).map_err(|e| format!("cannot decode the child's result: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn event(index: u64, node: sim_runtime::NodeId, kind: EventKind) -> Event {
        Event {
            index,
            time_ns: index * 1_000,
            node,
            task: 1,
            kind,
            detail: format!("e{index}"),
            file: Cow::Borrowed("x.rs"),
            line: 1,
        }
    }

    /// A report used to show only the last 12 events (the checker's final reads); the
    /// fault that caused the failure came long before. Now it shows the surroundings
    /// of the last faults and of each node's last fault too, without polls.
    #[test]
    fn a_report_shows_the_events_around_each_nodes_last_fault_and_the_last_events() {
        let mut events = Vec::new();
        for i in 0..400u64 {
            let kind = match i {
                50 => EventKind::Fault, // node 2's last fault, long before the end
                200 => EventKind::Node, // node 3 crashes
                _ if i % 2 == 0 => EventKind::Poll,
                _ => EventKind::Custom,
            };
            let node = match i {
                50 => 2,
                200 => 3,
                _ => 1,
            };
            events.push(event(i, node, kind));
        }
        let shown = notable(&events);
        let indexes: Vec<u64> = shown.iter().map(|e| e.index).collect();
        assert!(
            indexes.windows(2).all(|w| w[0] < w[1]),
            "trace order: {indexes:?}"
        );
        assert!(
            shown.iter().all(|e| e.kind != EventKind::Poll),
            "polls hidden"
        );
        for fault in [50, 200] {
            assert!(indexes.contains(&fault), "fault {fault} shown: {indexes:?}");
        }
        // Three non-poll events before each fault, five after.
        assert!(
            indexes.contains(&45) && indexes.contains(&59),
            "{indexes:?}"
        );
        assert!(
            !indexes.contains(&43) && !indexes.contains(&61),
            "{indexes:?}"
        );
        // And the last 12 non-poll events.
        assert_eq!(indexes.iter().filter(|&&i| i >= 376).count(), RECENT_EVENTS);
        assert_eq!(indexes.len(), 9 + 9 + RECENT_EVENTS);
    }
}
