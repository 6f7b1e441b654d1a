//! The harness in the simulated world: what a sweep reports, that faults are drawn and
//! applied per seed, that every seed gets a fresh thread, and that jobs and the
//! determinism check work.
#![cfg(madsim)]

use seedbank::{Ctx, DeterminismCheck, FailureKind, Test};
use std::cell::Cell;
use std::sync::Mutex;

/// Most tests here sweep more than once per function or share memory with the body,
/// so they run seeds on threads; the isolation tests choose for themselves.
fn test() -> Test {
    Test::new(seedbank::origin!())
        .ignore_env()
        .isolation(seedbank::Isolation::Thread)
}

/// The line of the marker comment `tag` in this file.
fn line_of(tag: &str) -> u32 {
    let idx = include_str!("harness.rs")
        .lines()
        .position(|l| l.ends_with(tag))
        .expect("marker present");
    u32::try_from(idx + 1).expect("small file")
}

#[test]
fn a_failing_seed_is_reported_with_message_location_faults_and_command() {
    let report = test()
        .seeds(10)
        .random_fs_faults()
        .sweep(|ctx: Ctx| async move {
            seedbank::time::sleep(std::time::Duration::from_millis(5)).await;
            assert!(ctx.seed() < 4, "seed {} is too big", ctx.seed()); // <- planted assert
        });
    assert_eq!(
        report.failing_seeds(),
        vec![4],
        "stops at the first failure"
    );
    assert_eq!(report.seeds_run, 5);
    let failure = report.first_failure().expect("seed 4 fails");
    match &failure.kind {
        FailureKind::Panicked { message, location } => {
            assert_eq!(message, "seed 4 is too big");
            let location = location.as_deref().expect("location captured");
            assert!(
                location.ends_with(&format!(
                    "tests/harness.rs:{}:13",
                    line_of("// <- planted assert")
                )),
                "{location}"
            );
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(failure.fs_faults.is_some(), "random disk faults were drawn");
    assert_eq!(
        failure.reproduce,
        "SEEDBANK_SEED=4 RUSTFLAGS=\"--cfg madsim\" cargo test -p seedbank --test harness -- --exact \
         a_failing_seed_is_reported_with_message_location_faults_and_command"
    );
    let text = failure.to_string();
    for needle in [
        "FAILED on seed 4",
        "seed 4 is too big",
        "faults fired:",
        "reproduce",
        "SEEDBANK_SEED=4",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn returned_errors_fail_the_seed() {
    let report = test().seeds(3).sweep(|ctx: Ctx| async move {
        if ctx.seed() == 2 {
            Err(std::io::Error::other("disk on fire"))
        } else {
            Ok(())
        }
    });
    let failure = report.first_failure().expect("seed 2 fails");
    assert_eq!(failure.seed, 2);
    match &failure.kind {
        FailureKind::Returned(e) => assert!(e.contains("disk on fire"), "{e}"),
        other => panic!("expected Returned, got {other:?}"),
    }
}

#[test]
fn fault_configs_are_drawn_per_seed_applied_and_reproducible() {
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let body = move |ctx: Ctx| {
        let sink = sink.clone();
        async move {
            let fs = ctx.fs_faults().expect("random disk faults").clone();
            let net = ctx.net_faults().expect("random network faults").clone();
            // Applied before the body started.
            assert_eq!(seedbank::fs::sim::fault_config(0), fs);
            assert_eq!(seedbank::net::faults::config(), net);
            sink.lock()
                .unwrap()
                .push((ctx.seed(), format!("{fs:?} {net:?}")));
        }
    };
    let once = |t: Test| t.check_determinism(DeterminismCheck::Off).random_faults();
    let report = once(test().seeds(6)).sweep(body.clone());
    assert!(report.passed(), "{}", report.summary());
    let again = once(test().seed_range(3..4)).sweep(body);
    assert!(again.passed());
    let seen = seen.lock().unwrap();
    let distinct: std::collections::BTreeSet<_> = seen[..6].iter().map(|(_, c)| c).collect();
    assert!(distinct.len() > 1, "configs vary by seed");
    assert_eq!(seen[6].0, 3);
    assert_eq!(
        seen[6].1,
        seen.iter().find(|(s, _)| *s == 3).unwrap().1,
        "seed 3 draws the same config again"
    );
}

thread_local! {
    static RUNS_ON_THIS_THREAD: Cell<u32> = const { Cell::new(0) };
}

#[test]
fn every_seed_runs_on_a_fresh_thread_also_with_parallel_jobs() {
    let report = test()
        .seeds(8)
        .jobs(3)
        .check_determinism(DeterminismCheck::EverySeed)
        .sweep(|ctx: Ctx| async move {
            let name = std::thread::current().name().unwrap_or("").to_string();
            assert_eq!(name, format!("sim-seed-{}", ctx.seed()));
            let runs = RUNS_ON_THIS_THREAD.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            assert_eq!(runs, 1, "a thread-local survived from an earlier run");
            assert!(seedbank::fs::exists(ctx.data_dir()).await.unwrap());
        });
    assert!(report.passed(), "{}", report.summary());
    assert_eq!(report.seeds_run, 8);
    assert_eq!(report.checked_twice, 8);
}

#[test]
fn without_stop_on_failure_every_failing_seed_is_listed() {
    let report = test()
        .seeds(6)
        .stop_on_failure(false)
        .check_determinism(DeterminismCheck::Off)
        .sweep(|ctx: Ctx| async move { assert!(ctx.seed() % 2 == 0) });
    assert_eq!(report.failing_seeds(), vec![1, 3, 5]);
    assert!(
        report.summary().contains("3 of 6 seeds FAILED [1, 3, 5]"),
        "{}",
        report.summary()
    );
}

#[test]
fn deadlocks_and_time_limits_are_explained() {
    let report = test().seeds(1).sweep(|_ctx: Ctx| async move {
        std::future::pending::<()>().await;
    });
    let text = report.first_failure().expect("deadlock fails").to_string();
    assert!(text.contains("deadlock"), "{text}");
    let report = test()
        .seeds(1)
        .time_limit(std::time::Duration::from_secs(5))
        .sweep(|_ctx: Ctx| async move {
            loop {
                seedbank::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            #[allow(unreachable_code)]
            ()
        });
    let text = report
        .first_failure()
        .expect("time limit fails")
        .to_string();
    assert!(text.contains("virtual time limit"), "{text}");
}

#[seedbank::test(seeds = 4, random_net_faults)]
async fn the_attribute_runs_the_body_per_seed(ctx: Ctx) {
    assert!(ctx.seed() < 4);
    assert!(ctx.net_faults().is_some());
    assert_eq!(ctx.addr(3).to_string(), "10.10.0.3:7000");
}

#[seedbank::test]
async fn the_attribute_takes_bodies_without_ctx_and_with_results() -> Result<(), String> {
    Ok(())
}

/// madsim seeds std's `RandomState` per run; if that ever stops working, every
/// `HashMap` iterated inside a simulation (madsim's own included) becomes a source of
/// nondeterminism. Pinned here because the double-run check depends on it.
#[test]
fn std_hash_maps_iterate_in_the_same_order_in_two_runs_of_a_seed() {
    #[allow(clippy::disallowed_types)] // the point of the test
    fn order() -> Vec<u64> {
        let m: std::collections::HashMap<u64, ()> = (0..64).map(|k| (k, ())).collect();
        m.keys().copied().collect()
    }
    let report = test()
        .seeds(2)
        .check_determinism(DeterminismCheck::EverySeed)
        .sweep(|_ctx: Ctx| async move {
            seedbank::runtime::trace::record(
                seedbank::runtime::EventKind::Custom,
                format!("{:?}", order()),
            );
        });
    assert!(
        report.passed(),
        "{}",
        report
            .first_failure()
            .map(|f| f.to_string())
            .unwrap_or_default()
    );
}

/// Eight tasks wait on one `tokio::sync::watch`; the order they wake in goes into the
/// trace. tokio spreads a watch's waiters over 8 queues chosen by its thread RNG,
/// which it seeds from a process-wide counter.
async fn watch_wakeups() {
    #[allow(clippy::disallowed_methods)] // the planted nondeterminism this test must catch
    let (tx, rx) = tokio::sync::watch::channel(0u32);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let mut rx = rx.clone();
            seedbank::task::spawn(async move {
                rx.changed().await.expect("sender alive");
                seedbank::runtime::trace::record(
                    seedbank::runtime::EventKind::Custom,
                    format!("woken {i}"),
                );
            })
        })
        .collect();
    seedbank::time::sleep(std::time::Duration::from_millis(1)).await;
    tx.send(1).expect("receivers alive");
    for h in handles {
        h.await.expect("task");
    }
}

#[test]
fn thread_isolation_leaks_tokios_rng_counter_into_the_next_run() {
    let report = test()
        .seeds(3)
        .isolation(seedbank::Isolation::Thread)
        .check_determinism(DeterminismCheck::Only)
        .stop_on_failure(false)
        .sweep(|_ctx: Ctx| watch_wakeups());
    assert!(
        !report.passed(),
        "two runs in one process were expected to differ: {}",
        report.summary()
    );
    assert!(report.failures.iter().all(|f| f.is_nondeterministic()));
}

#[test]
fn process_isolation_refuses_a_second_sweep_in_one_test_function() {
    let process = || test().seeds(1).isolation(seedbank::Isolation::Process);
    assert!(process().sweep(|_ctx: Ctx| async {}).passed());
    let second = process().sweep(|_ctx: Ctx| async {});
    let text = second.first_failure().expect("refused").to_string();
    assert!(text.contains("one sweep per test function"), "{text}");
}

#[test]
fn process_isolation_makes_the_same_code_replay_exactly() {
    let report = test()
        .seeds(3)
        .isolation(seedbank::Isolation::Process)
        .check_determinism(DeterminismCheck::EverySeed)
        .sweep(|_ctx: Ctx| watch_wakeups());
    assert!(
        report.passed(),
        "{}",
        report
            .first_failure()
            .map(|f| f.to_string())
            .unwrap_or_default()
    );
}
