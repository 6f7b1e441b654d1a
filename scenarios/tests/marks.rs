//! Coverage marks as a promise: every must-reach mark a scenario declares is reached by
//! one of its first `within` seeds. A sweep that silently stops reaching the states
//! its checks are for (a fault plan that no longer crashes a leader mid-commit, a
//! workload that no longer writes) fails here instead of reporting "0 failures".
//! Run with `cargo simtest -p scenarios --test marks`.
#![cfg(madsim)]

use scenarios::runner::record::Reproduce;
use scenarios::runner::record::{missed_marks, RunRecord};
use scenarios::runner::run::{plan_for, run_seed};
use scenarios::runner::scenario;
use std::collections::BTreeMap;

#[test]
fn every_must_reach_mark_is_reached_within_its_stated_seeds() {
    let mut declared = 0;
    for sc in scenario::all() {
        let Some(limit) = sc.must_reach.iter().map(|m| m.within).max() else {
            continue;
        };
        declared += sc.must_reach.len();
        let mut first: BTreeMap<String, u64> = BTreeMap::new();
        for seed in 0..limit {
            if sc.must_reach.iter().all(|m| first.contains_key(m.mark)) {
                break;
            }
            let plan = plan_for(&sc, seed).expect("plan");
            let r = run_seed(&sc, seed, &plan, 0).record;
            assert!(!r.failed(), "{}", r.failure_line());
            for m in r.marks.keys() {
                first.entry(m.clone()).or_insert(seed);
            }
        }
        for m in sc.must_reach {
            let seed = first.get(m.mark);
            assert!(
                seed.is_some_and(|s| *s < m.within),
                "{}: must-reach mark {} not reached within {} seeds (first: {seed:?})",
                sc.name,
                m.mark,
                m.within
            );
            println!(
                "{:<22} {:<62} first seed {:>3} (stated: within {})",
                sc.name,
                m.mark,
                seed.unwrap_or(&0),
                m.within
            );
        }
    }
    assert!(
        declared >= 20,
        "the scenarios declare their must-reach marks: {declared}"
    );
}

#[test]
fn a_sweep_that_never_reaches_a_must_reach_mark_is_told_so() {
    let sc = scenario::all()
        .into_iter()
        .find(|s| !s.must_reach.is_empty())
        .expect("a scenario with must-reach marks");
    let m = sc.must_reach[0];
    let runs: Vec<RunRecord> = (0..m.within)
        .map(|seed| {
            let mut r = RunRecord::error(sc.name, seed, "x", String::new());
            r.outcome = "pass".into();
            r
        })
        .collect();
    let missed = missed_marks(&runs);
    assert!(
        missed
            .iter()
            .any(|(name, x)| name == sc.name && x.mark == m.mark),
        "{missed:?}"
    );
    // One run fewer than stated cannot judge.
    assert!(
        !missed_marks(&runs[1..])
            .iter()
            .any(|(_, x)| x.mark == m.mark),
        "fewer runs than stated cannot judge"
    );
}
