//! The simulator's own speed (`seedbank bench --workload sim`, simulated world): seeds
//! per second of one core for a 3-replica cluster scenario with 1,000 client operations
//! and its seed's faults, simulated seconds per wall second, and the cost of the
//! double-run determinism check ([`check_determinism`], what `sweep
//! --check-determinism` runs) against a single run of the same seeds — measured in the
//! same process, so the ratio holds on a noisy machine. The trace's share of a run is
//! measured the same way: each seed also runs with recording off
//! ([`run_seed_untraced`]), and must reach the same verdict.
//!
//! Wall time is the host's clock around each whole run (thread start and runtime
//! included, as a sweep pays them), the same way for single and double runs.

use super::run::{check_determinism, plan_for, run_seed, run_seed_untraced};
use super::record::RunRecord;
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
    /// Single runs (no trace kept), one core.
    pub seeds_per_sec: f64,
    pub simulated_s_per_wall_s: f64,
    pub events_per_seed: u64,
    /// Wall time of the double-run check over single runs of the same seeds.
    pub determinism_ratio: f64,
    /// Seeds whose check found a difference (must be 0).
    pub nondeterministic: u64,
    /// Runs that failed a check (must be 0).
    pub failed: u64,
    /// Single runs with recording off: seeds per second of one core.
    pub untraced_seeds_per_sec: f64,
    /// The trace's share of a run's wall time: 1 - (untraced time / traced time).
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
    let (mut single_ms, mut virtual_ms, mut events, mut failed) = (0.0, 0.0, 0u64, 0u64);
    let (mut double_ms, mut nondeterministic) = (0.0, 0u64);
    let (mut untraced_ms, mut untraced_mismatch) = (0.0, 0u64);
    // Single and double runs of each seed back to back, so drift over the measurement
    // (other load on the machine, a warming allocator) falls on both alike.
    for (seed, plan) in &plans {
        let started = wall();
        let r = run_seed(&sc, *seed, plan, 0).record;
        single_ms += started.elapsed().as_secs_f64() * 1000.0;
        virtual_ms += r.virtual_time_ms;
        events += r.events;
        failed += u64::from(r.failed());
        let started = wall();
        let u = run_seed_untraced(&sc, *seed, plan).record;
        untraced_ms += started.elapsed().as_secs_f64() * 1000.0;
        untraced_mismatch += u64::from(verdict(&u) != verdict(&r));
        let started = wall();
        if let (_, Determinism::Differs(_)) = check_determinism(&sc, *seed, plan, 0) {
            nondeterministic += 1;
        }
        double_ms += started.elapsed().as_secs_f64() * 1000.0;
    }
    let secs = (single_ms / 1000.0).max(1e-9);
    Ok(SimSpeed {
        scenario: SCENARIO,
        seeds,
        ops_per_seed: OPS,
        seeds_per_sec: seeds as f64 / secs,
        simulated_s_per_wall_s: virtual_ms / single_ms.max(1e-9),
        events_per_seed: events / seeds.max(1),
        determinism_ratio: double_ms / single_ms.max(1e-9),
        nondeterministic,
        failed,
        untraced_seeds_per_sec: seeds as f64 / (untraced_ms / 1000.0).max(1e-9),
        trace_share: 1.0 - untraced_ms / single_ms.max(1e-9),
        untraced_mismatch,
    })
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

#[allow(clippy::disallowed_methods)] // a benchmark of the host: wall time, reports only
fn wall() -> std::time::Instant {
    std::time::Instant::now()
}
