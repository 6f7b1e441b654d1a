//! The canary meta-test (the canaries: `engine/src/canary.rs`): with each of the engine's deliberate
//! bugs switched on, a sweep of the named scenario must fail the named check within a
//! stated number of seeds. A harness that cannot fail is worse than none. Run with
//! `cargo simtest -p scenarios --features canary --test canaries`.
#![cfg(all(madsim, feature = "canary"))]

use engine::canary::Canary;
use scenarios::runner::run::{plan_for, run_seed, run_seed_with};
use scenarios::runner::scenario;
use scenarios::runner::shrink::shrink;

/// (canary, scenario, checks that may catch it, seeds allowed).
const CASES: &[(Canary, &str, &[&str], u64)] = &[
    (
        Canary::SkipWalFsync,
        "crash-durability",
        &["durability", "recovery"],
        10,
    ),
    (
        Canary::KeepTornWalTail,
        "crash-durability",
        &["recovery", "durability", "invariant"],
        20,
    ),
    (
        Canary::DeleteBeforeManifest,
        "crash-durability",
        &["recovery"],
        30,
    ),
    (
        Canary::SsiSkipOutConflictCheck,
        "write-skew-embedded",
        &["invariant"],
        30,
    ),
    (
        Canary::SsiSkipOutConflictCheck,
        "list-append-embedded",
        &["elle"],
        30,
    ),
    // (Not bank-cluster: measured with `canary_detection_rates` over 40 seeds it
    // catches this canary on only 2/40 seeds before the leader-led WAL change (D28) and
    // 1/40 after — too rare to promise a limit; list-append-cluster catches it on 8–12.)
    (
        Canary::RaftCommitWithoutQuorum,
        "list-append-cluster",
        &["raft-safety", "durability", "elle"],
        10,
    ),
    (
        Canary::ApplyRetryTwice,
        "list-append-cluster",
        // (Bank transfers write absolute balances: applied twice, they change
        // nothing, so only an append-style workload can see this bug.)
        &["elle", "durability", "invariant"],
        10,
    ),
];

fn first_failing(canary: Canary, name: &str, checks: &[&str], limit: u64) -> (u64, String) {
    let sc = scenario::find(name).expect("built in");
    for seed in 0..limit {
        let plan = plan_for(&sc, seed).expect("plan");
        let r = run_seed_with(&sc, seed, &plan, 0, Some(canary)).record;
        if let Some(check) = &r.failed_check {
            assert!(
                checks.contains(&check.as_str()),
                "{canary:?} on {name} seed {seed} failed an unexpected check [{check}]: {:?}",
                r.message
            );
            return (seed, check.clone());
        }
    }
    panic!(
        "{canary:?} was NOT caught by {name} within {limit} seeds: the harness has no teeth here"
    );
}

#[test]
fn every_canary_is_caught_within_its_stated_seeds() {
    for &(canary, name, checks, limit) in CASES {
        let (seed, check) = first_failing(canary, name, checks, limit);
        eprintln!(
            "{canary:?}: caught by {name} [{check}] at seed {seed} ({} seeds; limit {limit})",
            seed + 1
        );
    }
}

#[test]
fn shrinking_a_canary_failure_leaves_a_handful_of_faults() {
    let canary = Canary::SkipWalFsync;
    let sc = scenario::find("crash-durability").expect("built in");
    let (seed, check) = first_failing(canary, sc.name, &["durability", "recovery"], 10);
    let plan = plan_for(&sc, seed).expect("plan");
    let first = run_seed_with(&sc, seed, &plan, 0, Some(canary)).record;
    let shrunk = shrink(plan.clone(), &check, first, |p| {
        run_seed_with(&sc, seed, p, 0, Some(canary)).record
    });
    eprintln!(
        "shrunk {} -> {} faults, {} -> {} ops in {} runs:\n{}",
        plan.size(),
        shrunk.plan.size(),
        plan.ops,
        shrunk.plan.ops,
        shrunk.runs,
        shrunk.plan
    );
    // Half the plan or less, and a handful (measured: 10 -> 4 at seed 0 before D28;
    // 10 -> 5 at seed 1 after it, four power losses and the fsync-EIO rate).
    assert!(
        shrunk.plan.size() <= 5 && shrunk.plan.size() * 2 <= plan.size(),
        "a handful of faults: {}",
        shrunk.plan
    );
    // (The operation budget shrinks only when the failure does not need the later
    // operations: a crash at t=2.9 s needs clients still running then.)
    // The written plan replays the failure; without the canary the same plan passes.
    let replayed = run_seed_with(&sc, seed, &shrunk.plan, 0, Some(canary)).record;
    assert_eq!(replayed.failed_check.as_deref(), Some(check.as_str()));
    let healthy = run_seed(&sc, seed, &shrunk.plan, 0).record;
    assert!(!healthy.failed(), "{:?}", healthy.message);
}

/// Tool, not a check: the share of seeds on which each case's canary is caught, to
/// set the limits above after a change that reshuffles every schedule.
/// `SEEDBANK_CANARY_SEEDS=40 cargo simtest -p scenarios --features canary --test canaries
/// -- --ignored --nocapture canary_detection_rates`
#[test]
#[ignore]
fn canary_detection_rates() {
    let seeds: u64 = std::env::var("SEEDBANK_CANARY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for &(canary, name, _, limit) in CASES {
        let sc = scenario::find(name).expect("built in");
        let caught: Vec<u64> = (0..seeds)
            .filter(|&seed| {
                let plan = plan_for(&sc, seed).expect("plan");
                run_seed_with(&sc, seed, &plan, 0, Some(canary))
                    .record
                    .failed_check
                    .is_some()
            })
            .collect();
        eprintln!(
            "{canary:?} on {name}: caught on {}/{seeds} seeds (limit {limit}), first {:?}",
            caught.len(),
            caught.first()
        );
    }
}
