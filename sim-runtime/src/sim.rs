//! Running a seed (simulation only): fresh thread, fresh madsim runtime, a report.
//!
//! ```ignore
//! let report = sim_runtime::sim::Sim::new(42).run(|| async {
//!     sim_runtime::time::sleep(std::time::Duration::from_secs(1)).await;
//!     7
//! });
//! assert_eq!(report.output.unwrap(), 7);
//! ```

use crate::state::{self, RunState};
use crate::task::Traced;
use crate::trace::{self, Event, Trace};
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
}

impl<T> RunReport<T> {
    /// The run's trace digest.
    pub fn digest(&self) -> u64 {
        self.trace.digest
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

    /// Turns buggify on or off for the run (default on).
    pub fn buggify(mut self, on: bool) -> Self {
        self.buggify = on;
        self
    }

    /// Runs `f` on a fresh thread with a fresh madsim runtime and returns the report.
    /// A panic in the run is caught and reported in `output`.
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
        trace::configure(&mut run_state.recorder, self.keep_limit);
        state::install(run_state);

        let subscriber = crate::trace_layer::subscriber();
        let _guard = tracing::subscriber::set_default(subscriber);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async move {
                let out = Traced::new(f(), 0, "main").await;
                (out, crate::time::elapsed())
            })
        }));
        let st = state::take().expect("run state installed above");
        let (output, virtual_time) = match result {
            Ok((out, t)) => (Ok(out), t),
            Err(p) => (
                Err(panic_message(&p)),
                Duration::from_nanos(st.recorder.last_time_ns()),
            ),
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
        }
    }
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

/// The outcome of running one seed twice.
#[derive(Debug, Clone)]
pub enum Determinism {
    /// Both runs produced the same trace.
    Same { digest: u64, events: u64 },
    /// The runs parted; the first divergent event of each side.
    Differs(Box<Divergence>),
}

/// Where two runs of one seed parted.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub seed: u64,
    /// Index of the first event that differs.
    pub index: u64,
    /// The first run's event there (None: the run had ended, or it was past the keep
    /// limit).
    pub first: Option<Event>,
    /// The second run's event there.
    pub second: Option<Event>,
    /// The last event both runs agree on.
    pub last_common: Option<Event>,
    pub digests: (u64, u64),
    pub events: (u64, u64),
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} is NONDETERMINISTIC: the runs part at event #{} (run 1: {} events, digest {:016x}; run 2: {} events, digest {:016x})",
            self.seed, self.index, self.events.0, self.digests.0, self.events.1, self.digests.1
        )?;
        match &self.last_common {
            Some(e) => writeln!(f, "  last common: {e}")?,
            None => writeln!(f, "  last common: (none: the first event differs)")?,
        }
        match &self.first {
            Some(e) => writeln!(f, "  run 1:       {e}")?,
            None => writeln!(
                f,
                "  run 1:       (no event: the run ended or it was not kept)"
            )?,
        }
        match &self.second {
            Some(e) => write!(f, "  run 2:       {e}"),
            None => write!(
                f,
                "  run 2:       (no event: the run ended or it was not kept)"
            ),
        }
    }
}

/// Runs `f` twice for `sim`'s seed, each on a fresh thread and runtime, and compares the
/// traces. Panics in either run are part of the comparison (a panic ends the trace).
pub fn check_determinism<F, Fut, T>(sim: &Sim, f: F) -> Determinism
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    let f1 = f.clone();
    let a = sim.run(move || f1());
    let f2 = f.clone();
    let b = sim.run(move || f2());
    compare(sim.seed, &a.trace, &b.trace)
}

/// Compares two traces of one seed.
pub fn compare(seed: u64, a: &Trace, b: &Trace) -> Determinism {
    match a.first_divergence(b) {
        None => Determinism::Same {
            digest: a.digest,
            events: a.count,
        },
        Some(index) => Determinism::Differs(Box::new(Divergence {
            seed,
            index,
            first: a.event(index).cloned(),
            second: b.event(index).cloned(),
            last_common: index.checked_sub(1).and_then(|i| a.event(i).cloned()),
            digests: (a.digest, b.digest),
            events: (a.count, b.count),
        })),
    }
}
