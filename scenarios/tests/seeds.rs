//! Replays the regression seed corpus (its format: `seeds/README.md`): every line of every
//! `seeds/<scenario>.seeds` whose scenario the runner knows must pass today, and every
//! kept plan `seeds/<scenario>.<seed>.json` with its seed.
//! (`demo-crash.seeds` is replayed by tests/demo.rs.)
#![cfg(madsim)]

use scenarios::runner::plan::FaultPlan;
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

/// `<scenario>.<seed>.json` → (scenario, seed); other names → None.
fn plan_file_name(name: &str) -> Option<(&str, u64)> {
    let stem = name.strip_suffix(".json")?;
    let (scenario, seed) = stem.rsplit_once('.')?;
    Some((scenario, seed.parse().ok()?))
}

#[test]
fn every_corpus_plan_passes_with_its_seed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    #[allow(clippy::disallowed_methods)] // the corpus is a test input on the host disk
    let entries = std::fs::read_dir(&dir).expect("seeds/");
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut replayed = 0;
    for name in &names {
        let Some((scenario, seed)) = plan_file_name(name) else {
            continue;
        };
        let sc = scenario::find(scenario)
            .unwrap_or_else(|| panic!("seeds/{name}: no scenario {scenario:?}"));
        #[allow(clippy::disallowed_methods)] // the corpus is a test input on the host disk
        let text = std::fs::read_to_string(dir.join(name)).expect("readable plan");
        let plan = FaultPlan::from_json(&text).unwrap_or_else(|e| panic!("seeds/{name}: {e}"));
        let r = run_seed(&sc, seed, &plan, 0).record;
        assert!(
            !r.failed(),
            "seeds/{name} fails again: [{:?}] {:?}",
            r.failed_check,
            r.message
        );
        replayed += 1;
    }
    assert!(replayed > 0, "no kept plan in seeds/");
    eprintln!("replayed {replayed} kept plans");
}

#[test]
fn plan_file_names_parse() {
    assert_eq!(
        plan_file_name("bank-cluster.6.json"),
        Some(("bank-cluster", 6))
    );
    assert_eq!(plan_file_name("bank-cluster.seeds"), None);
    assert_eq!(plan_file_name("notes.json"), None);
}

#[test]
fn corpus_lines_parse() {
    assert_eq!(seeds("4  # a note\n\n# comment\n17\n"), vec![4, 17]);
}
