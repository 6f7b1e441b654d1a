//! The counter under chaos on the scenario API (`seedbank::chaos`, D85): fault plans
//! drawn per seed, executed by the runner against three counter nodes, the history
//! judged by the durability oracle and the counter's own invariant; a failing plan is
//! shrunk, written to a file, and replays.
//!
//! The scenario and the system are `replicated_counter::chaos_scenario`'s (shared with
//! the `counter-chaos` binary).
#![cfg(madsim)]

use replicated_counter::chaos_scenario::{scenario, system};
use seedbank::chaos::plan::{Fault, FaultPlan};
use seedbank::chaos::runner::{self, Scenario};

const SEEDS: u64 = 16;

/// Sweeps `scenario` with the planted bug, shrinks the failure, writes the shrunk plan
/// to a file and replays it: the same check fails. Returns the check and the plan.
fn find_shrink_replay(scenario: &Scenario) -> (String, FaultPlan) {
    let system = system(true);
    let (runs, failure) = runner::sweep(scenario, &system, 0..SEEDS);
    let failure = failure.unwrap_or_else(|| panic!("ack-before-fsync NOT found in {runs} seeds"));
    let first = failure
        .failed
        .clone()
        .expect("a failed run names its check");
    println!(
        "seed {} failed {}: {}",
        failure.seed, first.check, first.message
    );
    let seed = failure.seed;
    let shrunk = runner::shrink(scenario, &system, failure);
    println!(
        "shrunk in {} runs to {} faults:\n{}",
        shrunk.runs,
        shrunk.plan.size(),
        shrunk.plan
    );
    assert!(
        shrunk.plan.size() <= 5,
        "shrunk to {} faults",
        shrunk.plan.size()
    );
    assert_eq!(shrunk.record.failed_check(), Some(first.check.as_str()));

    let file = format!("counter-plan-{}-{seed}.json", std::process::id());
    let path = std::env::temp_dir().join(file);
    seedbank::chaos::host::write_plan(&path, &shrunk.plan).expect("write the plan file");
    let plan = seedbank::chaos::host::read_plan(&path).expect("read it back");
    assert_eq!(plan, shrunk.plan);
    let replay = runner::run(scenario, &system, seed, &plan);
    assert_eq!(
        replay.failed_check(),
        Some(first.check.as_str()),
        "{:?}",
        replay.failed
    );
    (first.check, plan)
}

/// The runner's final power loss of every node catches acknowledged increments still
/// in the page cache: the durability oracle names the lost write.
#[test]
fn the_planted_bug_is_found_by_the_durability_oracle_shrunk_and_replayed() {
    let (check, _) = find_shrink_replay(&scenario());
    assert_eq!(check, "durability");
}

/// Without the final power loss only the plan's own faults can find it: the shrunk
/// plan keeps a power loss (a kill keeps the page cache, and would not do).
#[test]
fn the_planted_bug_is_found_by_a_planned_power_loss_that_survives_shrinking() {
    let mut scenario = scenario();
    scenario.final_power_loss = false;
    let (check, plan) = find_shrink_replay(&scenario);
    assert!(
        ["durability", "invariant"].contains(&check.as_str()),
        "{check}"
    );
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s.fault, Fault::Crash { .. })),
        "no power loss left in\n{plan}"
    );
}

#[test]
fn without_the_bug_the_same_sweeps_pass() {
    let bug = cfg!(feature = "ack-before-fsync");
    for final_power_loss in [true, false] {
        let mut scenario = scenario();
        scenario.final_power_loss = final_power_loss;
        let (runs, failure) = runner::sweep(&scenario, &system(bug), 0..SEEDS);
        if let Some(f) = failure {
            panic!("seed {} failed: {:?}\n{}", f.seed, f.failed, f.plan);
        }
        assert_eq!(runs, SEEDS);
    }
}
