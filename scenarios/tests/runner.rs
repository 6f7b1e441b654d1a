//! The scenario runner end to end (simulated world): every built-in scenario passes
//! its checks over a few seeds with its faults firing; a run is a pure function of
//! (scenario, seed, plan); a plan survives the trip through a file.
#![cfg(madsim)]

use scenarios::runner::plan::{Fault, FaultPlan, Step};
use scenarios::runner::record::Reproduce;
use scenarios::runner::run::{plan_for, run_seed};
use scenarios::runner::scenario;
use std::collections::BTreeMap;

/// Seeds per scenario here; `seedbank sweep --seeds 0..100` is the big sweep.
const SEEDS: u64 = 6;

#[test]
fn every_builtin_scenario_passes_and_its_faults_fire() {
    for sc in scenario::all() {
        let mut faults: BTreeMap<String, u64> = BTreeMap::new();
        let mut acked = 0;
        // Runs a refused corruption ended, as passed, before the final power loss (D63).
        let mut refused = 0;
        for seed in 0..SEEDS {
            let plan = plan_for(&sc, seed).expect("a plan");
            let out = run_seed(&sc, seed, &plan, 0);
            let r = &out.record;
            assert!(
                !r.failed(),
                "{} seed {seed} failed [{:?}]: {}\nplan:\n{plan}\nreproduce: {}",
                sc.name,
                r.failed_check,
                r.message.as_deref().unwrap_or(""),
                r.reproduce()
            );
            if r.corruption_refused.is_none() {
                assert_eq!(r.operations, plan.ops, "{}: the whole budget ran", sc.name);
            } else {
                refused += 1;
            }
            acked += r.acknowledged;
            for (k, n) in &r.faults {
                *faults.entry(k.clone()).or_insert(0) += n;
            }
        }
        eprintln!(
            "{}: {acked} acknowledged, {refused} ended at a refused corruption, faults {faults:?}",
            sc.name
        );
        assert!(
            acked > SEEDS * 20,
            "{}: clients make progress ({acked} acknowledged)",
            sc.name
        );
        // Every run ends with a power loss and a checked recovery, unless a refused
        // corruption ended it first (D63: a typed corruption error after a flip).
        assert!(
            faults
                .get(scenarios::runner::FINAL_POWER_LOSS)
                .copied()
                .unwrap_or(0)
                >= SEEDS - refused,
            "{}: {refused} refused, {faults:?}",
            sc.name
        );
    }
}

#[test]
fn the_fixed_crash_schedule_tears_writes_and_fails_fsyncs() {
    let sc = scenario::find("crash-durability").expect("built in");
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    // A torn write needs a multi-sector write still unsynced at the moment of a power
    // loss: rare per crash, so this test takes more seeds (20 seeds gave 12 torn writes).
    for seed in 0..16 {
        let plan = plan_for(&sc, seed).expect("plan file parses");
        let r = run_seed(&sc, seed, &plan, 0).record;
        assert!(
            !r.failed(),
            "seed {seed}: {:?} {:?}",
            r.failed_check,
            r.message
        );
        assert!(
            r.recoveries >= 5,
            "seed {seed}: {} recoveries",
            r.recoveries
        );
        for (k, n) in &r.faults {
            *faults.entry(k.clone()).or_insert(0) += n;
        }
    }
    eprintln!("crash-durability faults over 16 seeds: {faults:?}");
    for kind in [
        "fs.torn_write",
        "fs.lost_write",
        "fs.fsync_eio",
        "node.crash",
        "node.kill",
    ] {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never fired: {faults:?}"
        );
    }
}

#[test]
fn a_run_is_a_pure_function_of_scenario_seed_and_plan() {
    let sc = scenario::find("list-append-embedded").expect("built in");
    let plan = plan_for(&sc, 3).expect("plan");
    let a = run_seed(&sc, 3, &plan, 1_000_000);
    let b = run_seed(&sc, 3, &plan, 1_000_000);
    assert_eq!(a.record.digest, b.record.digest);
    assert_eq!(a.history.to_jsonl(), b.history.to_jsonl());
    let other = run_seed(&sc, 4, &plan_for(&sc, 4).expect("plan"), 0);
    assert_ne!(a.record.digest, other.record.digest);
    // The plan through its file format replays the same run.
    let back = FaultPlan::from_json(&plan.to_json()).expect("round trip");
    let c = run_seed(&sc, 3, &back, 0);
    assert_eq!(a.record.digest, c.record.digest);
}

#[test]
fn a_plan_executes_exactly_its_steps() {
    let sc = scenario::find("register-embedded").expect("built in");
    let mut plan = FaultPlan::quiet(60);
    plan.steps = vec![
        Step {
            at_ms: 20,
            fault: Fault::Crash {
                node: 1,
                down_ms: 5,
            },
        },
        Step {
            at_ms: 60,
            fault: Fault::Kill {
                node: 1,
                down_ms: 5,
            },
        },
        Step {
            at_ms: 90,
            fault: Fault::Pause {
                node: 1,
                for_ms: 30,
            },
        },
    ];
    let r = run_seed(&sc, 1, &plan, 0).record;
    assert!(!r.failed(), "{:?}", r.message);
    assert_eq!(r.faults.get("node.kill"), Some(&1), "{:?}", r.faults);
    assert_eq!(r.faults.get("node.pause"), Some(&1), "{:?}", r.faults);
    // Exactly the plan's faults under the plan's names; the runner's own final power
    // loss is counted apart (a plan of one crash used to report node.crash=2).
    assert_eq!(r.faults.get("node.crash"), Some(&1), "{:?}", r.faults);
    assert_eq!(
        r.faults.get(scenarios::runner::FINAL_POWER_LOSS),
        Some(&1),
        "{:?}",
        r.faults
    );
    assert!(r.recoveries >= 4, "boot + 3 restarts: {}", r.recoveries);
}

#[test]
fn the_timeline_is_one_self_contained_page_with_lanes_faults_and_operations() {
    let sc = scenario::find("register-embedded").expect("built in");
    let mut plan = FaultPlan::quiet(40);
    plan.steps = vec![Step {
        at_ms: 15,
        fault: Fault::Crash {
            node: 1,
            down_ms: 5,
        },
    }];
    let out = run_seed(&sc, 2, &plan, 1_000_000);
    let html = scenarios::runner::timeline::render(&out);
    assert!(html.starts_with("<!doctype html>"));
    // The page's script draws the model; what it is given (tests/timeline_browser.rs
    // checks what a browser shows).
    let model = scenarios::runner::timeline::model::build(&out);
    let lanes: Vec<&str> = model.lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(lanes, ["db", "supervisor"], "lanes");
    let marks = |k: &str| model.marks.iter().filter(|m| m.kind == k).count();
    assert!(
        marks("power-loss") >= 2,
        "the planned and the final power loss"
    );
    assert!(marks("restart") >= 2);
    assert!(
        model.spans.iter().any(|s| s.kind == "down"),
        "the power loss's down time"
    );
    assert!(
        model.ops.len() >= 20,
        "client operations: {}",
        model.ops.len()
    );
    assert!(
        [
            "src=",
            "<link",
            "@import",
            "fetch(",
            "XMLHttpRequest",
            "url(http"
        ]
        .iter()
        .all(|f| !html.contains(f)),
        "no fetches: the page works offline"
    );
    assert!(html.contains("replay register-embedded --seed 2"));
}

#[test]
fn partition_then_heal_serves_again_after_every_partition() {
    let sc = scenario::find("partition-heal").expect("built in");
    for seed in 0..3 {
        let plan = plan_for(&sc, seed).expect("plan file parses");
        let r = run_seed(&sc, seed, &plan, 0).record;
        assert!(
            !r.failed(),
            "seed {seed}: {:?} {:?}",
            r.failed_check,
            r.message
        );
        // The plan outlasts the partitions: operations were still running at the heal
        // and the healed cluster acknowledged some (the check that fails otherwise).
        assert!(
            r.acknowledged_after_heal > 0,
            "seed {seed}: nothing acknowledged after the heal: {r:?}"
        );
        let fired = |k: &str| r.faults.get(k).copied().unwrap_or(0);
        assert_eq!(fired("net.partition"), 3, "{:?}", r.faults);
        assert_eq!(fired("net.partition_one_way"), 2, "{:?}", r.faults);
        assert_eq!(fired("net.clog_link"), 2, "{:?}", r.faults);
        assert!(
            fired("net.partition_drop") > 0,
            "partitions dropped frames: {:?}",
            r.faults
        );
    }
}

#[test]
fn a_cluster_plan_executes_exactly_its_steps() {
    let sc = scenario::find("register-cluster").expect("built in");
    let mut plan = FaultPlan::quiet(80);
    let step = |at_ms, fault| Step { at_ms, fault };
    plan.steps = vec![
        step(
            50,
            Fault::Partition {
                side: vec![1],
                for_ms: 400,
            },
        ),
        step(
            100,
            Fault::Clog {
                from: 2,
                to: 3,
                for_ms: 300,
            },
        ),
        step(
            150,
            Fault::Crash {
                node: 2,
                down_ms: 100,
            },
        ),
        step(
            300,
            Fault::Kill {
                node: 3,
                down_ms: 50,
            },
        ),
        step(
            500,
            Fault::PartitionOneWay {
                from: vec![3],
                to: vec![1, 2],
                for_ms: 300,
            },
        ),
        step(
            600,
            Fault::Pause {
                node: 1,
                for_ms: 100,
            },
        ),
        step(
            700,
            Fault::ClockSkew {
                node: 2,
                offset_ms: 500,
                drift_ppm: 1000,
            },
        ),
    ];
    let r = run_seed(&sc, 1, &plan, 0).record;
    assert!(!r.failed(), "{:?} {:?}", r.failed_check, r.message);
    let fired = |k: &str| r.faults.get(k).copied().unwrap_or(0);
    assert_eq!(fired("node.kill"), 1, "{:?}", r.faults);
    assert_eq!(fired("node.pause"), 1, "{:?}", r.faults);
    assert_eq!(fired("node.clock_skew"), 1, "{:?}", r.faults);
    // The planned power loss; the final one of all three replicas at once is the
    // runner's own, counted apart.
    assert_eq!(fired("node.crash"), 1, "{:?}", r.faults);
    assert_eq!(
        fired(scenarios::runner::FINAL_POWER_LOSS),
        3,
        "{:?}",
        r.faults
    );
    assert!(fired("net.partition_drop") > 0, "{:?}", r.faults);
    assert_eq!(r.operations, 80);
    assert!(r.recoveries >= 5, "restarts: {}", r.recoveries);
}

#[test]
fn a_cluster_run_is_a_pure_function_of_its_seed() {
    let sc = scenario::find("bank-cluster").expect("built in");
    let plan = plan_for(&sc, 2).expect("plan");
    let a = run_seed(&sc, 2, &plan, 0);
    let b = run_seed(&sc, 2, &plan, 0);
    assert_eq!(a.record.digest, b.record.digest);
    assert_eq!(a.history.to_jsonl(), b.history.to_jsonl());
}

#[test]
fn the_liveness_check_fails_a_cluster_that_does_not_finish_in_time() {
    // The partition-heal schedule with an impossible bound: operations are still
    // running when the last fault heals, and cannot all finish within 1 ms.
    let mut sc = scenario::find("partition-heal").expect("built in");
    sc.liveness = std::time::Duration::from_millis(1);
    let plan = plan_for(&sc, 0).expect("plan");
    let r = run_seed(&sc, 0, &plan, 0).record;
    assert_eq!(
        r.failed_check.as_deref(),
        Some("liveness"),
        "{:?}",
        r.message
    );
}

/// The README's walk-through: the demo scenario's planted client bug (an unknown
/// commit outcome counted as acknowledged) is caught by the durability oracle, while
/// the same scenario with the honest client passes the same seeds and plans — so the
/// failure is the plant's, not the engine's.
#[test]
fn the_demo_plant_fails_durability_and_the_honest_client_passes() {
    let demo = scenario::find("demo-unknown-as-acked").expect("a demo scenario");
    assert!(
        scenario::all().iter().all(|s| s.name != demo.name),
        "a demo is not in the scenarios a full sweep runs"
    );
    let honest = scenario::Scenario {
        workload: || Box::new(scenarios::workload::list_append::ListAppend::padded(1024)),
        ..scenario::find("demo-unknown-as-acked").expect("a demo scenario")
    };
    let mut failed = 0;
    for seed in 0..6 {
        let plan = plan_for(&demo, seed).expect("a plan");
        let r = run_seed(&demo, seed, &plan, 0).record;
        if r.failed() {
            assert_eq!(r.failed_check.as_deref(), Some("durability"), "seed {seed}");
            failed += 1;
        }
        let h = run_seed(&honest, seed, &plan, 0).record;
        assert!(
            !h.failed(),
            "the honest client fails seed {seed}: {:?}",
            h.message
        );
    }
    assert!(
        failed >= 3,
        "the plant is caught on most seeds ({failed} of 6)"
    );
}

/// The bit-rot scenario: refusing damaged bytes after an injected flip of synced data
/// ends a run as passed; the same "corruption" without any flip is a failure (the
/// engine misreading its own bytes), so the allowance cannot hide a torn-tail bug.
#[test]
fn refused_bit_rot_passes_and_corruption_without_a_flip_fails() {
    let sc = scenario::find("bitrot-embedded").expect("built in");
    let mut refused = 0;
    for seed in 0..40 {
        let plan = plan_for(&sc, seed).expect("a plan");
        let r = run_seed(&sc, seed, &plan, 0).record;
        assert!(
            !r.failed(),
            "seed {seed}: {:?} {:?}",
            r.failed_check,
            r.message
        );
        if let Some(why) = &r.corruption_refused {
            assert!(
                r.faults.get("fs.bitflip").copied().unwrap_or(0) > 0,
                "{why}"
            );
            assert!(why.contains("corruption"), "{why}");
            refused += 1;
        }
    }
    assert!(refused > 0, "some seed's flip hit bytes the engine reads");
    // A world whose plan does not rot bits never excuses a corruption error.
    let mut w = scenarios::runner::world::World::new(
        std::sync::Arc::new(scenarios::workload::register::Register::new()),
        1,
    );
    assert!(!w.corruption_refused("recovery: corruption in /data/x"));
    // Nor does one that may rot bits when no bit was flipped (this thread's counters
    // are empty): the corruption is the engine's own doing.
    w.media_faults = true;
    assert!(!w.corruption_refused("recovery: corruption in /data/x"));
    assert!(!w.stop && w.corruption_refused.is_none());
}
