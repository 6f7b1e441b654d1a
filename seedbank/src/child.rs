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
//! So by default (`Isolation::Process`) the harness re-executes the test binary for
//! every run — `<test binary> <name> --exact --test-threads=1` with
//! `SEEDBANK_CHILD_SEED` and `SEEDBANK_CHILD_OUT` set — and the child runs that one
//! seed (still on a fresh thread and runtime, through `Sim::run`) and writes what
//! happened to `SEEDBANK_CHILD_OUT` (postcard). The reproduce command does exactly the
//! same, so a seed replays byte for byte whether it ran in a sweep or alone.

use serde::{Deserialize, Serialize};
use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use sim_runtime::escape::Escape;
use sim_runtime::probe::{ProbeLog, Window};
use sim_runtime::trace::{Checkpoint, Event, EventKind, Trace};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Events of a failing run shown in its report.
pub(crate) const RECENT_EVENTS: usize = 12;

/// Environment of a child: the seed to run, where to write the result, whether to
/// send the whole trace (for the double-run comparison).
const ENV_SEED: &str = "SEEDBANK_CHILD_SEED";
const ENV_OUT: &str = "SEEDBANK_CHILD_OUT";
const ENV_FULL: &str = "SEEDBANK_CHILD_FULL_TRACE";
const ENV_SWEEP: &str = "SEEDBANK_CHILD_SWEEP";
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

    /// The last events other than task polls and spawns.
    pub fn recent(&self) -> Vec<Event> {
        recent(&self.events)
    }

    /// Drops the full trace, keeping the recent events.
    pub fn slim(&mut self) {
        self.events = recent(&self.events);
        self.digests = Vec::new();
        self.checkpoints = Vec::new();
    }
}

fn recent(events: &[Event]) -> Vec<Event> {
    let mut recent: Vec<Event> = events
        .iter()
        .rev()
        .filter(|e| !matches!(e.kind, EventKind::Poll | EventKind::Spawn))
        .take(RECENT_EVENTS)
        .cloned()
        .collect();
    recent.reverse();
    recent
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
}

/// In a child process: what to run.
pub(crate) fn child_request() -> Option<ChildRequest> {
    Some(ChildRequest {
        seed: std::env::var(ENV_SEED).ok()?.parse().ok()?,
        out: PathBuf::from(std::env::var_os(ENV_OUT)?),
        full_trace: std::env::var_os(ENV_FULL).is_some_and(|v| v == "1"),
        sweep: std::env::var(ENV_SWEEP)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        probe: std::env::var(ENV_PROBE)
            .ok()
            .and_then(|w| Window::from_arg(&w)),
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
pub(crate) fn write_result(path: &PathBuf, outcome: &RunOutcome) {
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
    if std::env::var_os("SEEDBANK_TRACE").is_some_and(|v| v == "1") {
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
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "the child process for seed {seed} ({} {name} --exact) left no result (exit status {}); \
             the end of its stderr:\n{}",
            exe.display(),
            output.status,
            tail.join("\n")
        ));
    };
    postcard::from_bytes(&bytes).map_err(|e| format!("cannot decode the child's result: {e}"))
}
