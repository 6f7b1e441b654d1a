//! The simulator's own speed (`seedbank bench --workload sim`, simulated world): seeds
//! per second of one core for a 3-replica cluster scenario with 1,000 client operations
//! and its seed's faults, simulated seconds per wall second, and the cost of the
//! double-run determinism check ([`check_determinism`], what `sweep
//! --check-determinism` runs) against a single run of the same seeds — measured in the
//! same process, so the ratio holds on a noisy machine. The trace's share of a run is
//! measured the same way: each seed also runs with recording off
//! ([`run_seed_untraced`]), and must reach the same verdict.
//!
//! Time is taken around each whole run (thread start and runtime included, as a sweep
//! pays them), the same way for single, untraced and double runs, both by the host's
//! clock and as the process's CPU time (getrusage): on a shared machine the wall figure
//! counts waiting for a core, the CPU figure does not.

use super::record::RunRecord;
use super::run::{check_determinism, plan_for, run_seed, run_seed_untraced};
use super::scenario;
use sim_runtime::sim::Determinism;

/// The scenario measured, and the operations per run.
pub const SCENARIO: &str = "bank-cluster";
pub const OPS: u64 = 1_000;

/// What one measurement found.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSpeed {
    pub scenario: &'static str,
    pub seeds: u64,
    pub ops_per_seed: u64,
    /// Single runs (no trace kept), one core, by the host's clock: on a loaded machine
    /// this counts the time the run waited for a core.
    pub seeds_per_sec: f64,
    /// The same runs by CPU time: seeds per CPU-second (the load on the machine drops
    /// out, except for what it does to caches).
    pub cpu_seeds_per_sec: f64,
    pub simulated_s_per_wall_s: f64,
    pub events_per_seed: u64,
    /// CPU time of the double-run check over single runs of the same seeds.
    pub determinism_ratio: f64,
    /// Seeds whose check found a difference (must be 0).
    pub nondeterministic: u64,
    /// Runs that failed a check (must be 0).
    pub failed: u64,
    /// Single runs with recording off: seeds per CPU-second, and their CPU seconds.
    pub untraced_cpu_seeds_per_sec: f64,
    pub untraced_cpu_s: f64,
    /// The trace's share of a run's CPU time: 1 - (untraced CPU / traced CPU).
    pub trace_share: f64,
    /// Seeds whose untraced run reached another verdict (must be 0: nothing decides
    /// from the trace).
    pub untraced_mismatch: u64,
}

/// Runs `seeds` seeds once each, then the double-run check on the same seeds.
pub fn measure(seeds: u64) -> Result<SimSpeed, String> {
    let sc = scenario::find(SCENARIO).ok_or("the bank-cluster scenario is missing")?;
    let plans = (0..seeds)
        .map(|seed| {
            plan_for(&sc, seed).map(|mut p| {
                p.ops = OPS;
                (seed, p)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (mut virtual_ms, mut events, mut failed) = (0.0, 0u64, 0u64);
    let (mut single, mut untraced, mut double) = (Spent::ZERO, Spent::ZERO, Spent::ZERO);
    let (mut nondeterministic, mut untraced_mismatch) = (0u64, 0u64);
    // Single, untraced and double runs of each seed back to back, so drift over the
    // measurement (other load on the machine, a warming allocator) falls on all alike.
    for (seed, plan) in &plans {
        let started = Spent::now();
        let r = run_seed(&sc, *seed, plan, 0).record;
        single.add_since(started);
        virtual_ms += r.virtual_time_ms;
        events += r.events;
        failed += u64::from(r.failed());
        let started = Spent::now();
        let u = run_seed_untraced(&sc, *seed, plan).record;
        untraced.add_since(started);
        untraced_mismatch += u64::from(verdict(&u) != verdict(&r));
        let started = Spent::now();
        if let (_, Determinism::Differs(_)) = check_determinism(&sc, *seed, plan, 0) {
            nondeterministic += 1;
        }
        double.add_since(started);
    }
    let per_s = |s: f64| seeds as f64 / s.max(1e-9);
    Ok(SimSpeed {
        scenario: SCENARIO,
        seeds,
        ops_per_seed: OPS,
        seeds_per_sec: per_s(single.wall_s),
        cpu_seeds_per_sec: per_s(single.cpu_s),
        simulated_s_per_wall_s: virtual_ms / 1000.0 / single.wall_s.max(1e-9),
        events_per_seed: events / seeds.max(1),
        determinism_ratio: double.cpu_s / single.cpu_s.max(1e-9),
        nondeterministic,
        failed,
        untraced_cpu_seeds_per_sec: per_s(untraced.cpu_s),
        untraced_cpu_s: untraced.cpu_s,
        trace_share: 1.0 - untraced.cpu_s / single.cpu_s.max(1e-9),
        untraced_mismatch,
    })
}

/// Wall and CPU seconds spent.
#[derive(Debug, Clone, Copy)]
struct Spent {
    wall_s: f64,
    cpu_s: f64,
}

impl Spent {
    const ZERO: Spent = Spent {
        wall_s: 0.0,
        cpu_s: 0.0,
    };

    fn now() -> Spent {
        Spent {
            wall_s: wall_s(),
            cpu_s: cpu_s(),
        }
    }

    fn add_since(&mut self, start: Spent) {
        let end = Spent::now();
        self.wall_s += end.wall_s - start.wall_s;
        self.cpu_s += end.cpu_s - start.cpu_s;
    }
}

/// What a run decided, and what it did: everything in its record but the trace's digest,
/// its event count and the wall time.
fn verdict(r: &RunRecord) -> String {
    format!(
        "{} {:?} {:?} ops={} ack={} rej={} ind={} rec={} t={} faults={:?} marks={:?}",
        r.outcome,
        r.failed_check,
        r.message,
        r.operations,
        r.acknowledged,
        r.rejected,
        r.indeterminate,
        r.recoveries,
        r.virtual_time_ms,
        r.faults,
        r.marks,
    )
}

/// Seconds of the host's monotonic clock since the first call.
#[allow(clippy::disallowed_methods)] // a benchmark of the host: wall time, reports only
fn wall_s() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

/// CPU seconds (user and system) of this process, its finished threads included: a run
/// is one thread and the caller waits for it, so this is the run's CPU time, whatever
/// else the machine runs.
fn cpu_s() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given and reads nothing.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: zeroed is a valid `rusage`, and getrusage succeeded.
    let u = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
