//! Replays the regression seed corpus (its format: `seeds/README.md`): every line of every
//! `seeds/<scenario>.seeds` whose scenario the runner knows must pass today.
//! (`demo-crash.seeds` is replayed by tests/demo.rs.)
#![cfg(madsim)]

use scenarios::runner::run::{plan_for, run_seed};
use scenarios::runner::scenario;

/// Parses `<seed>  # note` lines; blank lines and comments are skipped.
fn seeds(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse()
                .unwrap_or_else(|e| panic!("bad seed line {l:?}: {e}"))
        })
        .collect()
}

#[test]
fn every_corpus_seed_of_a_runner_scenario_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let mut replayed = 0;
    for sc in scenario::all() {
        let file = dir.join(format!("{}.seeds", sc.name));
        #[allow(clippy::disallowed_methods)] // the corpus is a test input on the host disk
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for seed in seeds(&text) {
            let plan = plan_for(&sc, seed).expect("plan");
            let r = run_seed(&sc, seed, &plan, 0).record;
            assert!(
                !r.failed(),
                "{} seed {seed} (from {}) fails again: {:?}",
                sc.name,
                file.display(),
                r.message
            );
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} corpus seeds");
}

#[test]
fn corpus_lines_parse() {
    assert_eq!(seeds("4  # a note\n\n# comment\n17\n"), vec![4, 17]);
}
