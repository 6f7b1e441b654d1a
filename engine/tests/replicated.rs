//! Simulated tests of the replicated database (run with `--cfg madsim`).
//!
//! 3- and 5-replica clusters on simulated nodes, clients on their own node running
//! register-style transactions (reads, read-modify-writes, blind writes and deletes,
//! range reads with writes), under faults drawn per seed: power loss with torn and
//! lost writes, symmetric and one-way partitions, message drop/duplication/reordering/
//! delay, clock skew and drift. After the heal, every client's outcome must become
//! definite and the replay of the claimed serial order (`checkers::serial`) must hold
//! (serializability by replay, distinct points, real-time order, durability of every
//! acknowledged commit, nothing applied twice), plus the Raft safety checker over every
//! node's transitions.
//!
//! With `--features canary`, `ApplyRetryTwice` and `RaftCommitWithoutQuorum` must each
//! be caught within a stated number of seeds.
#![cfg(madsim)]

mod replicated {
    pub mod harness;
    pub mod hostile;
}

use std::time::Duration;

use replicated::harness::{run_seed, Outcome, Plan};

fn plan(nodes: usize) -> Plan {
    Plan {
        nodes,
        clients: 3,
        chaos: Duration::from_secs(4),
        canary: None,
        sync_eio: 0.0,
    }
}

/// Without injected disk errors nothing may stop a replica (a fail-stop there is a bug).
fn assert_no_fail_stops(name: &str, outs: &[Outcome]) {
    for o in outs {
        assert!(
            o.fail_stop_errors.is_empty(),
            "{name}: a replica stopped without an injected fault: {:?}",
            o.fail_stop_errors
        );
    }
}

/// Runs `seeds`, failing with the first violation (and the seed that reproduces it).
fn sweep(name: &str, seeds: std::ops::Range<u64>, plan: &Plan) -> Vec<Outcome> {
    let mut outs = Vec::new();
    for seed in seeds {
        let out = run_seed(seed, plan.clone());
        if let Some(e) = out
            .fail_stop_errors
            .first()
            .filter(|_| plan.sync_eio == 0.0)
        {
            eprintln!(
                "{name}: seed {seed}: {} replica stops, first: {e}",
                out.fail_stops
            );
        }
        assert!(
            out.violations.is_empty(),
            "{name}: seed {seed} failed:\n{}\n(replay: cargo simtest -p engine --test replicated {name})",
            out.violations.join("\n")
        );
        outs.push(out);
    }
    let total = |f: fn(&Outcome) -> u64| outs.iter().map(f).sum::<u64>();
    let fault = |k: &str| {
        outs.iter()
            .map(|o| o.faults.get(k).copied().unwrap_or(0))
            .sum::<u64>()
    };
    eprintln!(
        "{name}: {} seeds: {} read-write commits, {} read-only, {} aborted, {} failed; \
         {} crashes ({} mid-write), {} fail-stop restarts, {} snapshots installed; faults: torn {} lost {} net.drop {} net.dup {} partition drops {}",
        outs.len(),
        total(|o| o.committed),
        total(|o| o.read_only),
        total(|o| o.aborted),
        total(|o| o.failed),
        total(|o| o.crashes),
        total(|o| o.crashes_mid_write),
        total(|o| o.fail_stops),
        total(|o| o.snapshots_installed),
        fault("fs.torn_write"),
        fault("fs.lost_write"),
        fault("net.drop"),
        fault("net.dup"),
        fault("net.partition_drop"),
    );
    outs
}

fn fault_total(outs: &[Outcome], kind: &str) -> u64 {
    outs.iter()
        .map(|o| o.faults.get(kind).copied().unwrap_or(0))
        .sum()
}

/// The faults a sweep must have exercised, and enough work done under them.
fn assert_exercised(name: &str, outs: &[Outcome]) {
    let total = |f: fn(&Outcome) -> u64| outs.iter().map(f).sum::<u64>();
    let seeds = outs.len() as u64;
    assert!(
        total(|o| o.committed) > seeds * 30,
        "{name}: the workload did little"
    );
    assert!(
        total(|o| o.aborted) > 0,
        "{name}: validation never aborted anything"
    );
    assert!(
        total(|o| o.read_only) > 0,
        "{name}: no read-only transaction committed"
    );
    assert!(total(|o| o.crashes) > seeds, "{name}: few crashes");
    assert!(
        total(|o| o.crashes_mid_write) > 0,
        "{name}: no crash landed on an unsynced log write"
    );
    assert!(
        total(|o| o.snapshots_installed) > 0,
        "{name}: no snapshot was ever installed"
    );
    for kind in [
        "fs.torn_write",
        "net.drop",
        "net.dup",
        "net.reorder",
        "net.partition_drop",
        "node.clock_skew",
    ] {
        assert!(fault_total(outs, kind) > 0, "{name}: {kind} never fired");
    }
}

#[test]
fn three_replicas_stay_strictly_serializable_under_faults() {
    let outs = sweep("three_replicas", 0..120, &plan(3));
    assert_exercised("three_replicas", &outs);
    assert_no_fail_stops("three_replicas", &outs);
}

#[test]
fn five_replicas_stay_strictly_serializable_under_faults() {
    let outs = sweep("five_replicas", 1000..1090, &plan(5));
    assert_exercised("five_replicas", &outs);
    assert_no_fail_stops("five_replicas", &outs);
}

/// Seeds that once failed (found by `long_sweep`, seeds 10000..12000):
/// 11262 and 11335 power-cut a replica between persisting a Ready's entries and its
/// hard state; the restart then refused the log ("last log term beyond persisted
/// term") and the replica stayed down, retrying forever. Fixed by
/// `recovered_hard_state` (the replica adopts the log's term with no vote).
#[test]
fn regression_seeds() {
    for seed in [11262, 11335] {
        let out = run_seed(seed, plan(3));
        assert!(
            out.violations.is_empty(),
            "seed {seed}: {:?}",
            out.violations
        );
        assert!(
            out.fail_stop_errors.is_empty(),
            "seed {seed}: {:?}",
            out.fail_stop_errors
        );
    }
}

/// Failing fsyncs stop a replica (fail-stop); its supervisor restarts it from disk,
/// and nothing acknowledged is lost.
#[test]
fn failing_fsyncs_stop_replicas_which_recover() {
    let plan = Plan {
        sync_eio: 0.01,
        ..plan(3)
    };
    let outs = sweep("failing_fsyncs", 2000..2020, &plan);
    assert!(
        fault_total(&outs, "fs.fsync_eio") > 10,
        "failing_fsyncs: fsync failures rarely fired"
    );
    let restarts: u64 = outs.iter().map(|o| o.fail_stops).sum();
    assert!(
        restarts > 10,
        "failing_fsyncs: only {restarts} fail-stop restarts"
    );
}

/// Hostile and malformed input is refused or dropped; the cluster keeps serving.
#[test]
fn bad_input_is_refused_and_the_cluster_keeps_serving() {
    for seed in 0..3 {
        let bad = replicated::hostile::run_bad_input(seed);
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
    }
}

/// Issue 19, finding 1 (D52): a Raft message with term 2^64−1 reaches every replica
/// (from endpoints claiming to be their peers); the cluster still elects after its
/// leader crashes and commits. Fails before D52: the term was adopted and persisted.
#[test]
fn a_maximal_term_from_a_forged_peer_does_not_stop_the_cluster() {
    for seed in 0..2 {
        let bad = replicated::hostile::run_maximal_term(seed);
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
    }
}

/// A seed replays exactly: two runs give the same trace, event by event.
#[test]
fn a_seed_replays_identically() {
    match replicated::harness::check_determinism(5, plan(3)) {
        sim_runtime::sim::Determinism::Same { events, .. } => {
            assert!(events > 10_000, "only {events} events traced")
        }
        other => panic!("seed 5 is not deterministic: {other:?}"),
    }
}

/// (canary, replicas, seeds within which it must be caught). Measured detection rates
/// (`canary_rates`, seeds 0..60, after the block cache changed every schedule):
/// ApplyRetryTwice 27/60 (3 replicas, first at seed 5) and 26/60 (5, first at 1);
/// RaftCommitWithoutQuorum 18/60 (first at 8) and 13/60 (first at 1). The limits leave
/// a miss probability below ~1% at those rates, so a change that merely reshuffles
/// schedules does not trip them (the previous limit of 5 did, at 45% per seed).
#[cfg(feature = "canary")]
const CANARIES: &[(engine::canary::Canary, usize, u64)] = &[
    (engine::canary::Canary::ApplyRetryTwice, 3, 12),
    (engine::canary::Canary::ApplyRetryTwice, 5, 12),
    (engine::canary::Canary::RaftCommitWithoutQuorum, 3, 20),
    (engine::canary::Canary::RaftCommitWithoutQuorum, 5, 25),
];

#[cfg(feature = "canary")]
#[test]
fn canaries_are_caught_within_their_stated_seeds() {
    for &(canary, nodes, limit) in CANARIES {
        let caught = (0..limit).find_map(|seed| {
            let plan = Plan {
                canary: Some(canary),
                ..plan(nodes)
            };
            let out = run_seed(seed, plan);
            out.violations.first().map(|v| (seed, v.clone()))
        });
        match caught {
            Some((seed, v)) => eprintln!(
                "{canary:?} ({nodes} replicas): caught at seed {seed} ({} seeds; limit {limit}): {}",
                seed + 1,
                v.lines().next().unwrap_or("")
            ),
            None => panic!(
                "{canary:?} was NOT caught within {limit} seeds on {nodes} replicas: the harness has no teeth here"
            ),
        }
    }
}

/// Measures how often each canary is caught (for choosing the limits above):
/// `cargo simtest -p engine --features canary --test replicated canary_rates -- --ignored --nocapture`.
#[cfg(feature = "canary")]
#[test]
#[ignore]
fn canary_rates() {
    for &(canary, nodes, _) in CANARIES {
        let caught: Vec<u64> = (0..60)
            .filter(|&seed| {
                let plan = Plan {
                    canary: Some(canary),
                    ..plan(nodes)
                };
                !run_seed(seed, plan).violations.is_empty()
            })
            .collect();
        eprintln!(
            "{canary:?} ({nodes} replicas): caught by {} of 60 seeds: {caught:?}",
            caught.len()
        );
    }
}

/// A longer sweep for soak runs: `SEEDBANK_SEEDS=A..B` (default 0..1000), both sizes:
/// `cargo simtest -p engine --test replicated long_sweep -- --ignored --nocapture`.
#[test]
#[ignore]
fn long_sweep() {
    let seeds = std::env::var("SEEDBANK_SEEDS").unwrap_or_else(|_| "0..1000".into());
    let (a, b) = seeds.split_once("..").expect("SEEDBANK_SEEDS=A..B");
    let range = a.parse::<u64>().expect("A")..b.parse::<u64>().expect("B");
    let outs = sweep("long_three", range.clone(), &plan(3));
    assert_no_fail_stops("long_three", &outs);
    let outs = sweep("long_five", range, &plan(5));
    assert_no_fail_stops("long_five", &outs);
}

/// Debugging aid: prints the trace events of one seed (3 replicas) whose detail
/// contains one of `NEEDLES` (`|`-separated):
/// `SEED=7 NEEDLES='crash|hardstate' cargo simtest -p engine --test replicated trace_dump -- --ignored --nocapture`.
#[test]
#[ignore]
fn trace_dump() {
    let seed: u64 = std::env::var("SEED").expect("SEED").parse().expect("u64");
    let needles: Vec<String> = std::env::var("NEEDLES")
        .expect("NEEDLES")
        .split('|')
        .map(String::from)
        .collect();
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    for line in replicated::harness::trace_of(seed, plan(3), &needles) {
        eprintln!("{line}");
    }
}
