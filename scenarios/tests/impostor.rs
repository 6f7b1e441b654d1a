//! The `impostor-cluster` scenario (simulated world): an honest 3-replica cluster with
//! simulated credentials beside an impostor that tries every disguise (no credential,
//! a foreign CA, a client claiming a replica's id, a node outside the group, a client
//! speaking Raft) and forges votes, pre-votes, heartbeats and appends with terms up to
//! 2^64-1, plus commits under another client's id. Before issue 19 a connection was
//! whoever it claimed to be: the negative control below is that world, and there the
//! same impostor takes the cluster's term and gets answers.
#![cfg(madsim)]

use scenarios::runner::record::Reproduce;
use scenarios::runner::run::{plan_for, run_seed};
use scenarios::runner::scenario::{self, Topology};

const REFUSALS: [&str; 4] = [
    "net.auth_refuses_unauthenticated_peer",
    "net.auth_refuses_identity_it_does_not_hold",
    "replicated.raft_message_from_non_voter_dropped",
    "replicated.commit_under_another_client_id_refused",
];

/// Every check holds (register linearizability, durability, Raft safety, liveness, and
/// the `impostor` check: no forged term adopted, no marked entry held or applied, no
/// answer to the impostor) over a sweep, with every kind of refusal counted.
#[test]
fn an_authenticated_cluster_is_unaffected_by_the_impostor() {
    let sc = scenario::find("impostor-cluster").expect("built in");
    assert!(sc.checks().contains(&"impostor"), "{:?}", sc.checks());
    for seed in 0..8 {
        let plan = plan_for(&sc, seed).expect("a plan");
        let r = run_seed(&sc, seed, &plan, 0).record;
        assert!(
            !r.failed(),
            "seed {seed} failed [{:?}]: {}\nreproduce: {}",
            r.failed_check,
            r.message.as_deref().unwrap_or(""),
            r.reproduce()
        );
        for mark in REFUSALS {
            assert!(
                r.marks.get(mark).copied().unwrap_or(0) > 0,
                "seed {seed}: no {mark}; marks {:?}",
                r.marks
            );
        }
        assert!(
            r.acknowledged > 20,
            "seed {seed}: clients progressed ({})",
            r.acknowledged
        );
    }
}

/// The negative control: the same impostor against a cluster without authentication
/// (the code before issue 19) is caught by the `impostor` check, so the check can fail.
#[test]
fn without_authentication_the_impostor_check_fires() {
    let mut sc = scenario::find("impostor-cluster").expect("built in");
    sc.topology = Topology::Impostor {
        nodes: 3,
        authenticated: false,
    };
    for seed in 0..3 {
        let plan = plan_for(&sc, seed).expect("a plan");
        let r = run_seed(&sc, seed, &plan, 0).record;
        assert_eq!(
            r.failed_check.as_deref(),
            Some("impostor"),
            "seed {seed}: {}",
            r.message.as_deref().unwrap_or("")
        );
        eprintln!("seed {seed}: {}", r.message.as_deref().unwrap_or(""));
    }
}
