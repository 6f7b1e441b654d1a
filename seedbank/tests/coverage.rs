//! Coverage marks in a user's test: the sweep counts, per mark, the seeds that reached
//! it, names the marks no seed reached, and fails when a must-reach mark was missed.
#![cfg(madsim)]

use seedbank::{Ctx, Isolation, Test};

async fn body(ctx: Ctx) {
    seedbank::cover!("covertest.every_seed");
    seedbank::cover!("covertest.seed_divisible_by_three", ctx.seed() % 3 == 0);
    seedbank::cover!("covertest.never", ctx.seed() > 1_000_000);
}

#[test]
fn a_sweep_counts_the_seeds_that_reached_each_mark_and_names_the_unreached() {
    let report = Test::new(seedbank::origin!())
        .seeds(10)
        .ignore_env()
        .isolation(Isolation::Thread)
        .mark_layers(&["covertest"])
        .must_reach("covertest.seed_divisible_by_three")
        .sweep(body);
    assert!(report.passed(), "{}", report.summary());
    let c = &report.coverage;
    assert_eq!(c.runs, 10);
    assert_eq!(c.reached["covertest.every_seed"].runs, 10);
    let third = c.reached["covertest.seed_divisible_by_three"];
    assert_eq!((third.runs, third.first_seed), (4, 0), "seeds 0, 3, 6, 9");
    assert!(!c.reached.contains_key("covertest.never"));
    assert!(report.missed_marks().is_empty());
    let summary = report.summary();
    assert!(summary.contains("marks reached: 2 of 3"), "{summary}");
    assert!(
        summary.contains("never reached: covertest.never"),
        "{summary}"
    );
}

#[test]
fn a_must_reach_mark_that_no_seed_reached_fails_the_sweep() {
    let report = Test::new(seedbank::origin!())
        .seeds(5)
        .ignore_env()
        .isolation(Isolation::Thread)
        .mark_layers(&["covertest"])
        .must_reach("covertest.never")
        .sweep(body);
    assert_eq!(
        report.failing_seeds(),
        Vec::<u64>::new(),
        "every seed passed"
    );
    let missed: Vec<&str> = report.missed_marks().iter().map(|m| m.mark).collect();
    assert_eq!(missed, vec!["covertest.never"]);
    assert!(
        report
            .summary()
            .contains("MUST-REACH MISSED: no seed reached coverage mark covertest.never"),
        "{}",
        report.summary()
    );
}

// Process isolation (the default): each seed's marks come back through the child's
// result; the test passes only because seed 0 reached the mark.
#[seedbank::test(seeds = 4, must_reach = "covertest.seed_divisible_by_three")]
async fn marks_cross_the_process_boundary(ctx: Ctx) {
    body(ctx).await;
}

#[test]
#[should_panic(expected = "MUST-REACH MISSED")]
fn run_panics_when_a_must_reach_mark_was_missed() {
    Test::new(seedbank::origin!())
        .seeds(3)
        .ignore_env()
        .isolation(Isolation::Thread)
        .must_reach("covertest.never")
        .run(body);
}
