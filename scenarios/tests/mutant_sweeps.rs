//! The sweeps as a test command for mutation testing (`scripts/mutants`, which runs
//! cargo-mutants over the engine's modules with these as the test): each test sweeps
//! the scenarios that exercise one layer and fails on the first run any check fails,
//! or when the sweep missed a must-reach mark it ran enough seeds to judge (a mutant
//! that stops a layer from reaching a state — log compaction that never happens — is
//! caught by its coverage). Ignored in the ordinary suites (`--ignored` runs them);
//! the seed count comes from `SEEDBANK_MUTANT_SEEDS` (default 20).
#![cfg(madsim)]

use scenarios::runner::record::missed_marks;
use scenarios::runner::record::Reproduce;
use scenarios::runner::run::{plan_for, run_seed};
use scenarios::runner::scenario;

fn seeds() -> u64 {
    std::env::var("SEEDBANK_MUTANT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn sweep(names: &[&str]) {
    for name in names {
        let sc = scenario::find(name).expect("built in");
        let mut records = Vec::new();
        for seed in 0..seeds() {
            let plan = plan_for(&sc, seed).expect("plan");
            let r = run_seed(&sc, seed, &plan, 0).record;
            assert!(!r.failed(), "{}", r.failure_line());
            records.push(r);
        }
        let missed = missed_marks(&records);
        assert!(
            missed.is_empty(),
            "{name}: must-reach marks missed: {missed:?}"
        );
    }
}

#[test]
#[ignore = "mutation testing's test command (scripts/mutants)"]
fn storage_sweep() {
    // register-cluster too: its deletes over the per-seed deep trees (D87) are where
    // compaction keeps a tombstone because a deeper level holds the key (13% of its
    // seeds); no embedded scenario has enough data for a third level.
    sweep(&[
        "crash-durability",
        "list-append-embedded",
        "bank-embedded",
        "bitrot-embedded",
        "register-cluster",
    ]);
}

#[test]
#[ignore = "mutation testing's test command (scripts/mutants)"]
fn transaction_sweep() {
    // crash-durability too: its 1 KiB list-appends under a fixed crash schedule make
    // the densest overlap of transactions (it alone caught SSI's `dangerous` with the
    // committed-t1 comparison reversed, at seed 1).
    sweep(&[
        "crash-durability",
        "write-skew-embedded",
        "list-append-embedded",
        "register-embedded",
        "bank-embedded",
    ]);
}

#[test]
#[ignore = "mutation testing's test command (scripts/mutants)"]
fn raft_sweep() {
    // Every cluster workload: the leader churn's deposed tails (D88) show up in
    // different scenarios first (bank-cluster and write-skew-cluster for a follower's
    // commit not capped by the append).
    sweep(&[
        "list-append-cluster",
        "register-cluster",
        "write-skew-cluster",
        "bank-cluster",
        "partition-heal",
    ]);
}

#[test]
#[ignore = "mutation testing's test command (scripts/mutants)"]
fn replicated_sweep() {
    sweep(&["bank-cluster", "write-skew-cluster", "register-cluster"]);
}
