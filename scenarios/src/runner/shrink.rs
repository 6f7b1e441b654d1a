//! Shrinking: reduce a failing run's fault plan to a smaller one that still fails the
//! same check, and write it as a plan file that `replay --plan` reproduces. The
//! algorithm is the generic one (`chaos::shrink`: ddmin over the timed faults, then
//! each probabilistic fault kind off, then the operation budget halved); this module
//! judges "the same check" on the bundled database's run records.

use super::plan::{FaultPlan, Tuning};
use super::record::RunRecord;

/// The result of shrinking (the generic shrinker's, `chaos::shrink`, D85).
pub type Shrunk = chaos::shrink::Shrunk<Tuning, RunRecord>;

/// Shrinks `plan`, which fails check `check` under `run`; `run(plan)` runs the seed. A
/// candidate counts only if it fails the same check.
pub fn shrink(
    plan: FaultPlan,
    check: &str,
    failing: RunRecord,
    run: impl FnMut(&FaultPlan) -> RunRecord,
) -> Shrunk {
    chaos::shrink::shrink(plan, failing, run, |r: &RunRecord| {
        r.failed_check.as_deref() == Some(check)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::plan::{Fault, Step};

    fn record(check: Option<&str>) -> RunRecord {
        let mut r = RunRecord::error("s", 1, "x", String::new());
        r.outcome = if check.is_some() {
            "fail".into()
        } else {
            "pass".into()
        };
        r.failed_check = check.map(str::to_string);
        r
    }

    // The algorithm itself is tested in `chaos::shrink`; here, only what "the same
    // check" means for the bundled database's records.
    #[test]
    fn a_different_failure_does_not_count_as_still_failing() {
        let mut plan = FaultPlan::quiet(10);
        plan.steps.push(Step {
            at_ms: 1,
            fault: Fault::Pause { node: 1, for_ms: 1 },
        });
        // Without the step the run fails a *different* check: keep the step.
        let out = shrink(plan, "elle", record(Some("elle")), |p| {
            record(Some(if p.steps.is_empty() {
                "liveness"
            } else {
                "elle"
            }))
        });
        assert_eq!(out.plan.steps.len(), 1);
    }
}
