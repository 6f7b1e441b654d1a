//! Running a seed (simulation only): fresh thread, fresh madsim runtime, a report.
//!
//! ```ignore
//! let report = sim_runtime::sim::Sim::new(42).run(|| async {
//!     sim_runtime::time::sleep(std::time::Duration::from_secs(1)).await;
//!     7
//! });
//! assert_eq!(report.output.unwrap(), 7);
//! ```

use crate::escape::{self, PanicAt};
use crate::probe::{Probe, ProbeLog, Window};
use crate::state::{self, RunState};
use crate::task::Traced;
use crate::trace::{self, Trace};
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

type PluginAdder = fn(&madsim::runtime::Runtime);

/// Configuration of one simulated run.
#[derive(Clone)]
pub struct Sim {
    seed: u64,
    config: madsim::Config,
    plugins: Vec<PluginAdder>,
    time_limit: Option<Duration>,
    keep_limit: usize,
    buggify: bool,
    probe: Option<Window>,
    record: bool,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("plugins", &self.plugins.len())
            .field("time_limit", &self.time_limit)
            .finish()
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunReport<T> {
    pub seed: u64,
    /// The closure's value, or the panic message of the run.
    pub output: Result<T, String>,
    pub trace: Trace,
    /// Faults injected during the run, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Coverage marks reached during the run, by name, with their hit counts.
    pub marks: BTreeMap<String, u64>,
    /// Virtual time (ns) of each reached mark's first hit.
    pub mark_first_ns: BTreeMap<String, u64>,
    /// Virtual time when the run ended.
    pub virtual_time: Duration,
    /// Wall-clock time the run took.
    pub wall_time: Duration,
    /// Where the run panicked, and the escape in its panic (None: no panic, or no location).
    pub panic: Option<PanicAt>,
    /// What a probe run recorded (None: not a probe run).
    pub probe: Option<ProbeLog>,
    /// Escapes noted as they happened, with the user's line (kinds: `intercept.rs`).
    pub escapes: Vec<escape::Escape>,
}

impl<T> RunReport<T> {
    /// The run's trace digest.
    pub fn digest(&self) -> u64 {
        self.trace.digest
    }

    /// The escape recognised in the run's panic.
    pub fn escape(&self) -> Option<&escape::Escape> {
        self.panic.as_ref().and_then(|p| p.escape.as_ref())
    }
}

impl Sim {
    /// A run of `seed` with madsim's default network config and no plugins.
    pub fn new(seed: u64) -> Self {
        Sim {
            seed,
            config: madsim::Config::default(),
            plugins: Vec::new(),
            time_limit: None,
            keep_limit: trace::DEFAULT_KEEP_LIMIT,
            buggify: true,
            probe: None,
            record: true,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Same configuration, another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Registers a madsim simulator plugin (sim-fs and sim-net provide theirs).
    pub fn plugin<S: madsim::plugin::Simulator>(mut self) -> Self {
        fn add<S: madsim::plugin::Simulator>(rt: &madsim::runtime::Runtime) {
            rt.add_simulator::<S>();
        }
        self.plugins.push(add::<S>);
        self
    }

    /// madsim's configuration (network latency, TCP buffers).
    pub fn config(mut self, config: madsim::Config) -> Self {
        self.config = config;
        self
    }

    /// Fails the run (as a panic) if virtual time passes `limit`.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Keep at most `limit` events in full (default [`trace::DEFAULT_KEEP_LIMIT`]).
    pub fn keep_events(mut self, limit: usize) -> Self {
        self.keep_limit = limit;
        self
    }

    /// Makes the run a probe run over `window` ([`crate::probe`]): the report's `probe`
    /// holds what each task did there, with the user frames of its stack.
    pub fn probe(mut self, window: Window) -> Self {
        self.probe = Some(window);
        self
    }

    /// Turns buggify on or off for the run (default on).
    pub fn buggify(mut self, on: bool) -> Self {
        self.buggify = on;
        self
    }

    /// Runs `f` on a fresh thread and madsim runtime; a panic is reported in `output`.
    pub fn run<F, Fut, T>(&self, f: F) -> RunReport<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let sim = self.clone();
        let seed = self.seed;
        #[allow(clippy::disallowed_methods)] // each run gets a fresh OS thread by design
        let handle = std::thread::Builder::new()
            .name(format!("sim-seed-{seed}"))
            .stack_size(32 * 1024 * 1024)
            .spawn(move || sim.run_on_this_thread(f))
            .expect("spawn a simulation thread");
        match handle.join() {
            Ok(report) => report,
            Err(panic) => RunReport {
                seed,
                output: Err(panic_message(&panic)),
                trace: Trace::default(),
                faults: BTreeMap::new(),
                marks: BTreeMap::new(),
                mark_first_ns: BTreeMap::new(),
                virtual_time: Duration::ZERO,
                wall_time: Duration::ZERO,
                panic: None,
                probe: None,
                escapes: Vec::new(),
            },
        }
    }

    fn run_on_this_thread<F, Fut, T>(self, f: F) -> RunReport<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + 'static,
    {
        #[allow(clippy::disallowed_methods)] // wall time of the run, for reports only
        let wall_start = std::time::Instant::now();
        let mut rt = madsim::runtime::Runtime::with_seed_and_config(self.seed, self.config.clone());
        if let Some(limit) = self.time_limit {
            rt.set_time_limit(limit);
        }
        for add in &self.plugins {
            add(&rt);
        }
        let mut run_state = RunState::new(self.seed);
        run_state.buggify_enabled = self.buggify;
        run_state.probe = self.probe.map(Probe::new);
        let slot: escape::Slot = Arc::new(std::sync::Mutex::new(None));
        escape::capture_on_this_thread(slot.clone());
        trace::configure(&mut run_state.recorder, self.keep_limit, self.seed);
        run_state.recorder.set_enabled(self.record);
        state::install(run_state);

        let subscriber = crate::trace_layer::subscriber();
        let _guard = tracing::subscriber::set_default(subscriber);
        arm_intercepts();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async move {
                let out = Traced::new(f(), 0, "main").await;
                (out, crate::time::elapsed())
            })
        }));
        let escapes = disarm_intercepts();
        let st = state::take().expect("run state installed above");
        let (output, virtual_time) = match result {
            Ok((out, t)) => (Ok(out), t),
            Err(p) => (
                Err(panic_message(&p)),
                Duration::from_nanos(st.recorder.last_time_ns()),
            ),
        };
        let captured = crate::sync::lock(&slot).take();
        let panic = match (&output, captured) {
            (Err(message), Some(c)) => Some(PanicAt {
                escape: escape::classify(&c, message),
                location: c.location,
            }),
            _ => None,
        };
        RunReport {
            seed: self.seed,
            output,
            trace: st.recorder.finish(),
            faults: st.faults,
            marks: st.marks.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            mark_first_ns: st
                .mark_first_ns
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            virtual_time,
            wall_time: wall_start.elapsed(),
            panic,
            probe: st.probe.map(Probe::finish),
            escapes,
        }
    }
}

impl Sim {
    /// Turns the trace off for the run (default on): for measuring what recording costs,
    /// nothing else. The run does the same work and reaches the same verdicts (no
    /// component decides anything from the trace), but its report's trace is empty
    /// (count 0, the empty digest), so it cannot take part in a determinism check, a
    /// probe or a replay's printout.
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
}

#[cfg(target_os = "linux")]
fn arm_intercepts() {
    crate::intercept::arm();
}

#[cfg(target_os = "linux")]
fn disarm_intercepts() -> Vec<escape::Escape> {
    crate::intercept::disarm()
}

#[cfg(not(target_os = "linux"))]
fn arm_intercepts() {}

#[cfg(not(target_os = "linux"))]
fn disarm_intercepts() -> Vec<escape::Escape> {
    Vec::new()
}

/// The message of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

pub use crate::divergence::{
    compare, follow_up, localise, merge_escapes, Determinism, Divergence, Localisation, ProbeRun,
};

/// Runs `f` twice for `sim`'s seed, each on a fresh thread and runtime, and compares the
/// traces. Panics in either run are part of the comparison (a panic ends the trace),
/// except an escape recognised in the first run's panic, which is the verdict. When
/// the runs differ, both are run again with a probe around the divergence
/// ([`follow_up`]), so the verdict names the task that behaved differently and its line.
pub fn check_determinism<F, Fut, T>(sim: &Sim, f: F) -> Determinism
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    let f1 = f.clone();
    let a = sim.run(move || f1());
    if let (Err(message), Some(escape)) = (&a.output, a.escape()) {
        return Determinism::Escaped {
            seed: sim.seed,
            escape: escape.clone(),
            message: message.clone(),
        };
    }
    let f2 = f.clone();
    let b = sim.run(move || f2());
    let mut escapes = a.escapes.clone();
    merge_escapes(&mut escapes, &b.escapes);
    match compare(sim.seed, &a.trace, &b.trace) {
        Determinism::Differs(mut d) => {
            d.escapes = escapes;
            Determinism::Differs(Box::new(follow_up(*d, |window| {
                let probe = sim.clone().probe(window);
                let (f3, f4) = (f.clone(), f.clone());
                let pa = probe.run(move || f3());
                let pb = probe.run(move || f4());
                Some(((pa.trace, pa.probe), (pb.trace, pb.probe)))
            })))
        }
        same => escaped_anyway(sim.seed, same, escapes),
    }
}

/// Two runs that agree but reached outside the simulation are not evidence of
/// determinism: the verdict is the first escape.
pub fn escaped_anyway(
    seed: u64,
    verdict: Determinism,
    escapes: Vec<escape::Escape>,
) -> Determinism {
    match (verdict, escapes.into_iter().next()) {
        (Determinism::Same { .. }, Some(escape)) => Determinism::Escaped {
            seed,
            escape,
            message: "both runs agree, but they reached outside the simulation: another machine, or another moment, may not".to_string(),
        },
        (verdict, _) => verdict,
    }
}
