//! The crash demo's promise over many seeds, and the regression seeds in seeds/.
#![cfg(madsim)]

use scenarios::demo_crash;

fn check_seed(seed: u64) -> demo_crash::Outcome {
    let report = demo_crash::sim_config(seed).run(demo_crash::run);
    let (outcome, _) = report.output.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert!(outcome.promise_held(), "seed {seed}: {outcome:?}");
    outcome
}

#[test]
fn crash_demo_keeps_every_acknowledged_record() {
    let mut torn = 0;
    let mut lost_unsynced = 0;
    for seed in 0..64 {
        let o = check_seed(seed);
        torn += u64::from(o.torn_tail_bytes > 0);
        lost_unsynced += u64::from(o.recovered < o.written);
    }
    // The crash model really bit: some seeds tore the tail, some lost unsynced records.
    assert!(torn > 0, "no seed produced a torn tail");
    assert!(lost_unsynced > 0, "no seed lost an unsynced record");
}

#[test]
fn regression_seeds_replay() {
    let corpus = include_str!("../../seeds/demo-crash.seeds");
    let mut n = 0;
    for line in corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let seed: u64 = line
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad corpus line: {line}"));
        check_seed(seed);
        n += 1;
    }
    assert!(n > 0, "the corpus has seeds");
}
