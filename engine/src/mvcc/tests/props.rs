//! Property tests: random transaction schedules (2–5 transactions of 1–4 operations
//! over five keys, random interleaving, garbage collection at random points) on the
//! in-memory store. Every committed history must be serializable, no serial schedule
//! and no read-only commit may abort, and an aborted transaction must leave no trace
//! in the store, not even as an old version. The generator is seeded (fixed unless
//! `PROPTEST_RNG_SEED` is set), and a canary run asserts the property can fail.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use super::history::{
    check_no_needless_abort, describe, is_serial, run, serial_order, End, Op, Step,
};
use crate::mvcc::{MemStore, SsiCanary, TxnManager};

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// One op template: kind and key indexes; values are filled in per (txn, position).
fn op_strategy() -> impl Strategy<Value = (u8, usize, usize)> {
    (0u8..4, 0..KEYS.len(), 0..KEYS.len())
}

fn build(txn: usize, templates: &[(u8, usize, usize)]) -> Vec<Op> {
    let key = |i: usize| KEYS[i].as_bytes().to_vec();
    templates
        .iter()
        .enumerate()
        .map(|(j, &(kind, k1, k2))| match kind {
            0 => Op::Get(key(k1)),
            1 => Op::Put(key(k1), format!("t{txn}.{j}").into_bytes()),
            2 => Op::Delete(key(k1)),
            _ => {
                let (lo, hi) = (k1.min(k2), k1.max(k2) + 1);
                let end = KEYS
                    .get(hi)
                    .map_or(b"z".to_vec(), |k| k.as_bytes().to_vec());
                Op::Scan(key(lo), end)
            }
        })
        .collect()
}

/// Programs plus a schedule: the schedule is a random sequence of picks, each taking the
/// next step of the chosen transaction, with `Gc` steps sprinkled in.
#[derive(Debug, Clone)]
struct Case {
    programs: Vec<Vec<Op>>,
    schedule: Vec<Step>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    prop::collection::vec(prop::collection::vec(op_strategy(), 1..=4), 2..=5)
        .prop_flat_map(|templates| {
            let programs: Vec<Vec<Op>> = templates
                .iter()
                .enumerate()
                .map(|(i, t)| build(i, t))
                .collect();
            let steps: usize = programs.iter().map(|p| p.len() + 2).sum();
            // A pick is an index into the transactions still having steps; 255 = gc.
            let picks =
                prop::collection::vec(prop_oneof![9 => 0u8..5, 1 => Just(255u8)], steps * 2);
            (Just(programs), picks)
        })
        .prop_map(|(programs, picks)| {
            let mut left: Vec<usize> = programs.iter().map(|p| p.len() + 2).collect();
            let mut schedule = Vec::new();
            let mut picks = picks.into_iter();
            while left.iter().any(|&n| n > 0) {
                let live: Vec<usize> = (0..left.len()).filter(|&i| left[i] > 0).collect();
                let i = match picks.next() {
                    Some(255) => {
                        schedule.push(Step::Gc);
                        continue;
                    }
                    Some(p) => live[p as usize % live.len()],
                    None => live[0],
                };
                left[i] -= 1;
                schedule.push(Step::Txn(i));
            }
            Case { programs, schedule }
        })
}

/// Runs one case; `Err` describes the violation.
fn check_case(case: &Case, canaries: &[SsiCanary], stats: &Stats) -> Result<(), TestCaseError> {
    let mgr = TxnManager::with_canaries(MemStore::new(), canaries.iter().copied());
    let initial = BTreeMap::from([("a", "a0"), ("c", "c0"), ("e", "e0")]);
    let h = run(&mgr, &initial, &case.programs, &case.schedule);
    stats.cases.set(stats.cases.get() + 1);
    let aborts = h
        .txns
        .iter()
        .filter(|t| !matches!(t.end, End::Committed(_)))
        .count();
    stats.aborted_txns.set(stats.aborted_txns.get() + aborts);
    stats.txns.set(stats.txns.get() + h.txns.len());
    let fail =
        |why: String| TestCaseError::fail(format!("{why}\n{}", describe(&h, &case.schedule)));
    if serial_order(&h).is_none() {
        return Err(fail("not serializable".into()));
    }
    check_no_needless_abort(&h, is_serial(&case.schedule)).map_err(fail)?;
    // No trace of aborted transactions anywhere in the store, old versions included.
    let stored: Vec<Vec<u8>> = mgr
        .with_store(|s| {
            s.versions()
                .filter_map(|(_, _, v)| v.map(<[u8]>::to_vec))
                .collect()
        })
        .expect("store");
    for (i, t) in h.txns.iter().enumerate() {
        if matches!(t.end, End::Committed(_)) {
            continue;
        }
        let prefix = format!("t{i}.").into_bytes();
        if stored.iter().any(|v| v.starts_with(&prefix)) {
            return Err(fail(format!("aborted t{i} left a value in the store")));
        }
    }
    // Every transaction finished, so no SSI record may be left behind.
    let state = mgr.state().expect("state");
    prop_assert!(
        state.txns.is_empty() && state.doomed.is_empty(),
        "records left: {state:?}"
    );
    Ok(())
}

/// What the generator produced, so a degenerate generator is noticed.
#[derive(Default, Debug)]
struct Stats {
    cases: std::cell::Cell<usize>,
    txns: std::cell::Cell<usize>,
    aborted_txns: std::cell::Cell<usize>,
}

fn runner(cases: u32) -> TestRunner {
    let mut config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(0x5EED_BA4C);
    }
    TestRunner::new(config)
}

#[test]
fn random_schedules_are_serializable_and_aborts_leave_no_trace() {
    let stats = Stats::default();
    let result = runner(3000).run(&case_strategy(), |case| check_case(&case, &[], &stats));
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!("{stats:?}");
    // Conflicts happen, but most transactions commit.
    assert!(
        stats.aborted_txns.get() * 10 > stats.txns.get(),
        "{stats:?}"
    );
    assert!(stats.aborted_txns.get() * 2 < stats.txns.get(), "{stats:?}");
}

#[test]
fn random_schedules_catch_the_reader_side_canary() {
    // The same property over the same generator must fail when SSI misses writers that
    // committed before the reader read; proptest then shrinks the counterexample.
    let stats = Stats::default();
    let result = runner(3000).run(&case_strategy(), |case| {
        check_case(&case, &[SsiCanary::SkipReaderSideCheck], &stats)
    });
    match result {
        Err(proptest::test_runner::TestError::Fail(why, _)) => {
            eprintln!("canary caught; shrunk to: {why}")
        }
        Err(e) => panic!("{e}"),
        Ok(()) => panic!("SkipReaderSideCheck survived 3000 random schedules"),
    }
}
