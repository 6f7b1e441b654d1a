//! Shrinking: reduce a failing run's fault plan to a smaller one that still fails the
//! same way (Zeller's ddmin over the timed faults, then each probabilistic fault kind
//! switched off, then the operation budget halved). Every candidate is a full
//! deterministic run of the same seed, so "still fails" is a fact, not a guess; what
//! counts as "the same way" is the caller's predicate (the same failed check).

use crate::plan::{FaultPlan, Settings};

/// The result of shrinking: the smallest plan found, the record of its failing run,
/// and how many candidate runs it took.
#[derive(Debug, Clone)]
pub struct Shrunk<T, R> {
    /// The smallest plan that still fails.
    pub plan: FaultPlan<T>,
    /// Its run's record.
    pub record: R,
    /// Candidate runs tried.
    pub runs: u64,
}

/// Shrinks `plan`, whose run produced `failing`; `run(plan)` runs the seed under a
/// candidate plan, and `still_fails(record)` says whether a candidate's run failed the
/// same way (a different failure does not count: the shrunk plan must reproduce the
/// failure being shrunk).
pub fn shrink<T: Settings, R>(
    plan: FaultPlan<T>,
    failing: R,
    mut run: impl FnMut(&FaultPlan<T>) -> R,
    still_fails: impl Fn(&R) -> bool,
) -> Shrunk<T, R> {
    let mut best = Shrunk {
        plan,
        record: failing,
        runs: 0,
    };
    let mut attempt = |candidate: FaultPlan<T>, best: &mut Shrunk<T, R>| -> bool {
        best.runs += 1;
        let r = run(&candidate);
        if still_fails(&r) {
            best.plan = candidate;
            best.record = r;
            true
        } else {
            false
        }
    };

    // 1. ddmin over the timed steps: try dropping chunks, halving the chunk size.
    let mut chunk = best.plan.steps.len().div_ceil(2).max(1);
    while !best.plan.steps.is_empty() {
        let mut removed = false;
        let mut start = 0;
        while start < best.plan.steps.len() {
            let mut candidate = best.plan.clone();
            let end = (start + chunk).min(candidate.steps.len());
            candidate.steps.drain(start..end);
            if attempt(candidate, &mut best) {
                removed = true; // the same `start` now names the next chunk
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        if !removed {
            chunk = chunk.div_ceil(2);
        }
    }

    // 2. Switch off each probabilistic fault kind.
    let offs: [fn(&mut FaultPlan<T>) -> bool; 10] = [
        |p| std::mem::replace(&mut p.disk.read_eio, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.disk.write_eio, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.disk.sync_eio, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.disk.crash_bitflip, 0.0) > 0.0,
        |p| p.disk.capacity_bytes.take().is_some(),
        |p| std::mem::replace(&mut p.net.drop_rate, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.net.dup_rate, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.net.reorder_rate, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.net.delay_rate, 0.0) > 0.0,
        |p| std::mem::replace(&mut p.net.reset_rate, 0.0) > 0.0,
    ];
    for off in offs {
        let mut candidate = best.plan.clone();
        if off(&mut candidate) {
            attempt(candidate, &mut best);
        }
    }

    // 3. Fewer operations: halve while it still fails, then step down by quarters.
    loop {
        let ops = best.plan.ops;
        if ops <= 1 {
            break;
        }
        let mut candidate = best.plan.clone();
        candidate.ops = ops / 2;
        if !attempt(candidate, &mut best) {
            let mut candidate = best.plan.clone();
            candidate.ops = ops - (ops / 4).max(1);
            if !attempt(candidate, &mut best) {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Fault, Step};

    #[test]
    fn shrinking_keeps_exactly_the_faults_the_failure_needs() {
        let mut plan = FaultPlan::<()>::quiet(100);
        plan.disk.sync_eio = 0.01;
        plan.disk.read_eio = 0.01;
        for i in 0..9 {
            plan.steps.push(Step {
                at_ms: i * 10,
                fault: Fault::Crash {
                    node: 1,
                    down_ms: i,
                },
            });
        }
        // The "bug": needs the crashes at 30 ms and 70 ms, fsync EIO, and 20+ operations.
        let fails = |p: &FaultPlan| {
            let has = |t| p.steps.iter().any(|s| s.at_ms == t);
            has(30) && has(70) && p.disk.sync_eio > 0.0 && p.ops >= 20
        };
        let out = shrink(
            plan,
            Some("durability"),
            |p| fails(p).then_some("durability"),
            |r| *r == Some("durability"),
        );
        let times: Vec<u64> = out.plan.steps.iter().map(|s| s.at_ms).collect();
        assert_eq!(times, vec![30, 70]);
        assert_eq!(out.plan.disk.read_eio, 0.0);
        assert!(out.plan.disk.sync_eio > 0.0);
        assert!(
            out.plan.ops >= 20 && out.plan.ops < 40,
            "ops {}",
            out.plan.ops
        );
        assert!(fails(&out.plan));
        assert!(out.runs > 0);
    }

    #[test]
    fn a_different_failure_does_not_count_as_still_failing() {
        let mut plan = FaultPlan::<()>::quiet(10);
        plan.steps.push(Step {
            at_ms: 1,
            fault: Fault::Pause { node: 1, for_ms: 1 },
        });
        // Without the step the run fails a *different* check: keep the step.
        let out = shrink(
            plan,
            "elle",
            |p| {
                if p.steps.is_empty() {
                    "liveness"
                } else {
                    "elle"
                }
            },
            |r| *r == "elle",
        );
        assert_eq!(out.plan.steps.len(), 1);
    }
}
