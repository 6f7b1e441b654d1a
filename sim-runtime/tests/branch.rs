//! Branching a run (`rng::branch_at`) and coverage marks' first-hit times: what
//! targeted exploration builds its forks on.
#![cfg(madsim)]

use rand::Rng;
use sim_runtime::sim::Sim;
use sim_runtime::time::{self, Duration};
use sim_runtime::{cover, rng};

async fn draws() -> Vec<u64> {
    let mut xs = Vec::new();
    for i in 1..=10u64 {
        time::sleep(Duration::from_millis(10)).await;
        xs.push(rng::stream("branch.test").gen());
        cover!("branchtest.third_draw", i == 3);
    }
    xs
}

#[test]
fn a_branch_keeps_the_run_up_to_its_time_and_changes_it_after() {
    let plain = Sim::new(5).run(draws);
    let branched = Sim::new(5).run(|| async {
        rng::branch_at(Duration::from_millis(55), 7);
        draws().await
    });
    let (a, b) = (plain.output.unwrap(), branched.output.unwrap());
    assert_eq!(a[..5], b[..5], "draws at 10..50 ms come before the branch");
    assert!(
        a[5..].iter().zip(&b[5..]).all(|(x, y)| x != y),
        "every draw from 60 ms on is salted: {a:?} vs {b:?}"
    );
    let again = Sim::new(5).run(|| async {
        rng::branch_at(Duration::from_millis(55), 7);
        draws().await
    });
    assert_eq!(
        again.output.unwrap(),
        b,
        "a branch is as deterministic as its seed"
    );
    let other_salt = Sim::new(5).run(|| async {
        rng::branch_at(Duration::from_millis(55), 8);
        draws().await
    });
    assert_ne!(other_salt.output.unwrap()[5..], b[5..]);
}

#[test]
fn a_mark_reports_its_hits_and_the_virtual_time_of_its_first() {
    let inside = Sim::new(1).run(|| async {
        draws().await;
        (cover::hits(), cover::first_hits())
    });
    let report = Sim::new(1).run(draws);
    let (hits, first) = inside.output.unwrap();
    assert_eq!(
        hits, report.marks,
        "what the run sees of itself is what it reports"
    );
    assert_eq!(first, report.mark_first_ns);
    assert_eq!(report.marks.get("branchtest.third_draw"), Some(&1));
    let first = report.mark_first_ns["branchtest.third_draw"];
    assert!(
        (30_000_000..31_000_000).contains(&first),
        "the third draw happens at 30 ms (plus the scheduler's jitter): {first}"
    );
    let catalogue = cover::catalog();
    assert!(catalogue.contains("branchtest.third_draw"), "{catalogue:?}");
    let sites = cover::sites("branchtest.third_draw");
    assert_eq!(sites.len(), 1);
    assert!(sites[0].file.ends_with("branch.rs"), "{}", sites[0].file);
}
