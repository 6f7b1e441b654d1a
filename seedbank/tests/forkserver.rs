//! Process isolation through the fork server (`src/forkserver.rs`): every run forked
//! from a server that never ran a seed starts from a clean slate; a forked run that
//! dies is reported and the sweep goes on; and a seed checked twice runs once in a
//! fresh process and once forked, so a difference between the two ways is caught.
#![cfg(all(madsim, unix))]

use seedbank::{Ctx, DeterminismCheck, Isolation, Test};
use std::sync::atomic::{AtomicU64, Ordering};

fn test(isolation: Isolation) -> Test {
    Test::new(seedbank::origin!())
        .ignore_env()
        .isolation(isolation)
        .check_determinism(DeterminismCheck::Off)
}

static RUNS_FORKED: AtomicU64 = AtomicU64::new(0);
static RUNS_THREADED: AtomicU64 = AtomicU64::new(0);

/// Each run counts itself in a process-wide static: a run that sees another's count
/// was not isolated.
async fn count_runs(counter: &'static AtomicU64) {
    let before = counter.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        before, 0,
        "this run saw {before} earlier run(s) in its process"
    );
}

#[test]
fn forked_runs_start_from_a_clean_slate() {
    let report = test(Isolation::Process)
        .seeds(12)
        .jobs(2)
        .sweep(|_: Ctx| count_runs(&RUNS_FORKED));
    assert!(report.passed(), "{}", report.summary());
    assert_eq!(report.seeds_run, 12);
}

/// The negative control: the same body on threads of one process sees the runs
/// before it, so the check above can fail.
#[test]
fn runs_on_threads_of_one_process_see_each_other() {
    let report = test(Isolation::Thread)
        .seeds(3)
        .stop_on_failure(false)
        .sweep(|_: Ctx| count_runs(&RUNS_THREADED));
    assert_eq!(report.failing_seeds(), vec![1, 2], "{}", report.summary());
}

#[test]
fn a_forked_run_that_dies_is_reported_and_the_sweep_goes_on() {
    let report = test(Isolation::Process)
        .seeds(5)
        .stop_on_failure(false)
        .sweep(|ctx: Ctx| async move {
            if ctx.seed() == 2 {
                std::process::abort();
            }
        });
    assert_eq!(report.failing_seeds(), vec![2], "{}", report.summary());
    assert_eq!(report.seeds_run, 5);
    let text = report.first_failure().expect("seed 2 failed").to_string();
    assert!(text.contains("left no result"), "{text}");
    assert!(text.contains("fork server"), "{text}");
}

/// A run that behaves differently in a fresh process than in a forked one (here it
/// reads which of the two it is) fails the double-run check: the two runs of a
/// checked seed take the two ways.
#[test]
fn a_difference_between_a_fresh_and_a_forked_run_is_caught() {
    let report = test(Isolation::Process)
        .seeds(1)
        .check_determinism(DeterminismCheck::EverySeed)
        .sweep(|_: Ctx| async {
            let forked = std::env::var_os("SEEDBANK_CHILD_SERVE").is_some();
            seedbank::runtime::trace::record(
                seedbank::runtime::EventKind::Custom,
                format!("forked {forked}"),
            );
        });
    let failure = report.first_failure().expect("the two ways differ");
    assert!(failure.is_nondeterministic(), "{failure}");
}

/// `Isolation::Exec` (a fresh process per run) gives the same clean slate.
#[test]
fn exec_isolation_runs_each_seed_in_a_fresh_process() {
    static RUNS_EXEC: AtomicU64 = AtomicU64::new(0);
    let report = test(Isolation::Exec)
        .seeds(3)
        .sweep(|_: Ctx| count_runs(&RUNS_EXEC));
    assert!(report.passed(), "{}", report.summary());
}

/// A test that does nothing: what `scripts/bench-isolation` times, where the cost of
/// isolating a run is all there is (`SEEDBANK_SEEDS`/`SEEDBANK_ISOLATION` apply).
#[seedbank::test(seeds = 4)]
async fn trivial() {}

/// Code around a sweep can tell the test run from the processes the harness starts
/// (a fresh child, a fork server and its forks): the body runs only in the latter.
fn body_runs_in_a_child_process(isolation: Isolation) {
    // The harness's processes run this function again up to the sweep and never
    // return from it, so what follows the sweep runs in the test run alone.
    let here = seedbank::in_child_process();
    let report = Test::new(seedbank::origin!())
        .ignore_env()
        .isolation(isolation)
        .seeds(2)
        .check_determinism(DeterminismCheck::FirstSeed)
        .sweep(|_: Ctx| async { assert!(seedbank::in_child_process()) });
    assert!(report.passed(), "{isolation:?}: {}", report.summary());
    assert!(!here, "the test run itself is not a child");
}

#[test]
fn in_child_process_holds_in_forked_runs() {
    body_runs_in_a_child_process(Isolation::Process);
}

#[test]
fn in_child_process_holds_in_fresh_child_processes() {
    body_runs_in_a_child_process(Isolation::Exec);
}
