//! sim-runtime in the simulated world: runs, streams, buggify, nodes, clocks, and the
//! determinism check (including a planted nondeterminism it must catch).
#![cfg(madsim)]
#![allow(clippy::unwrap_used)] // an integration test crate: unwrap is an assertion (D70)

use rand::Rng;
use sim_runtime::sim::{check_determinism, Determinism, Sim};
use sim_runtime::time::{self, Duration};
use sim_runtime::{buggify, faults, node, rng, trace, EventKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A small multi-node workload: three nodes that sleep random amounts, log, and one of
/// them is paused and resumed, another crashed and restarted.
async fn workload() -> u64 {
    let counter = Arc::new(AtomicU64::new(0));
    let mut nodes = Vec::new();
    for i in 1..=3u8 {
        let c = counter.clone();
        let n = node::build(format!("n{i}"))
            .ip(format!("10.0.0.{i}").parse().unwrap())
            .init(move || {
                let c = c.clone();
                async move {
                    for _ in 0..5 {
                        let ms = rng::stream("workload").gen_range(1..50);
                        time::sleep(Duration::from_millis(ms)).await;
                        c.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(ms, "tick");
                    }
                }
            })
            .create();
        nodes.push(n);
    }
    time::sleep(Duration::from_millis(20)).await;
    nodes[0].pause();
    time::sleep(Duration::from_millis(30)).await;
    nodes[0].resume();
    nodes[1].crash();
    nodes[1].restart();
    time::sleep(Duration::from_secs(1)).await;
    counter.load(Ordering::Relaxed)
}

#[test]
fn a_run_with_recording_off_does_the_same_work_and_records_nothing() {
    let on = Sim::new(7).run(workload);
    let off = Sim::new(7).record(false).run(workload);
    assert_eq!(on.output, off.output, "the same run");
    assert_eq!(on.virtual_time, off.virtual_time);
    assert_eq!(on.faults, off.faults);
    assert_eq!(on.marks, off.marks);
    assert!(
        on.trace.count > 50,
        "recording on: {} events",
        on.trace.count
    );
    assert_eq!(off.trace.count, 0, "recording off keeps no event");
    assert!(off.trace.digests.is_empty() && off.trace.events.is_empty());
    assert_eq!(
        off.digest(),
        Sim::new(8).record(false).run(workload).digest()
    );
    let again = Sim::new(7).run(workload);
    assert_eq!(
        on.digest(),
        again.digest(),
        "an untraced run leaves nothing behind"
    );
}

#[test]
fn run_returns_output_and_a_nonempty_trace() {
    let report = Sim::new(1).run(workload);
    let ticks = report.output.expect("run succeeds");
    assert!(ticks >= 15, "every node ticked to the end: {ticks}");
    assert!(
        report.trace.count > 50,
        "trace has events: {}",
        report.trace.count
    );
    assert!(report.virtual_time >= Duration::from_secs(1));
    assert_eq!(report.faults.get("node.crash"), Some(&1));
    assert_eq!(report.faults.get("node.pause"), Some(&1));
}

#[test]
fn same_seed_same_digest_different_seed_different_digest() {
    let a = Sim::new(7).run(workload);
    let b = Sim::new(7).run(workload);
    let c = Sim::new(8).run(workload);
    assert_eq!(a.trace.digest, b.trace.digest);
    assert_eq!(a.trace.count, b.trace.count);
    assert_ne!(
        a.trace.digest, c.trace.digest,
        "seeds 7 and 8 should differ"
    );
    match check_determinism(&Sim::new(7), workload) {
        Determinism::Same { digest, .. } => assert_eq!(digest, a.trace.digest),
        Determinism::Differs(d) => panic!("workload is deterministic, but: {d}"),
        escaped @ Determinism::Escaped { .. } => panic!("{escaped:?}"),
    }
}

/// The line of the event that follows the planted nondeterministic draw (found by its
/// marker comment, so editing this file cannot silently shift it).
fn planted_line() -> u32 {
    let src = include_str!("sim.rs");
    let idx = src
        .lines()
        .position(|l| l.ends_with("// <- planted divergence"))
        .expect("marker present");
    u32::try_from(idx + 1).unwrap()
}

async fn planted_nondeterminism() {
    for i in 0..10u64 {
        time::sleep(Duration::from_millis(10)).await;
        trace::record(EventKind::Custom, format!("step {i}"));
    }
    // Reaches the OS entropy source: a different branch on (almost) every run.
    #[allow(clippy::disallowed_methods)]
    let coin: u64 = rand::thread_rng().gen_range(0..1_000_000);
    trace::record(EventKind::Custom, format!("coin {coin}")); // <- planted divergence
    time::sleep(Duration::from_millis(coin)).await;
}

#[test]
fn double_run_catches_planted_nondeterminism_and_names_the_line() {
    match check_determinism(&Sim::new(3), planted_nondeterminism) {
        Determinism::Same { .. } => panic!("thread_rng must make the two runs differ"),
        Determinism::Differs(d) => {
            let first = d.first.as_ref().expect("run 1 has the divergent event");
            let second = d.second.as_ref().expect("run 2 has the divergent event");
            assert_eq!(first.line, planted_line(), "report: {d}");
            assert_eq!(second.line, planted_line());
            assert!(
                first.file.ends_with("sim-runtime/tests/sim.rs"),
                "{}",
                first.file
            );
            assert_ne!(first.detail, second.detail);
            let last = d.last_common.as_ref().expect("ten steps agree first");
            assert_eq!(last.detail, "step 9");
            let text = d.to_string();
            assert!(text.contains("NONDETERMINISTIC"), "{text}");
            assert!(
                text.contains(&format!("sim.rs:{}", planted_line())),
                "{text}"
            );
        }
        escaped @ Determinism::Escaped { .. } => panic!("{escaped:?}"),
    }
}

#[test]
fn streams_are_reproducible_per_seed_and_independent() {
    let draws = |extra: bool| {
        Sim::new(11)
            .run(move || async move {
                if extra {
                    // An extra draw on another stream must not shift "a".
                    let _: u64 = rng::stream("b").gen();
                }
                (0..4)
                    .map(|_| rng::stream("a").gen::<u64>())
                    .collect::<Vec<_>>()
            })
            .output
            .unwrap()
    };
    assert_eq!(draws(false), draws(true));
    let other_seed = Sim::new(12)
        .run(|| async {
            (0..4)
                .map(|_| rng::stream("a").gen::<u64>())
                .collect::<Vec<_>>()
        })
        .output
        .unwrap();
    assert_ne!(draws(false), other_seed);
}

#[test]
fn buggify_sites_activate_per_seed_and_fire() {
    let mut active_runs = 0;
    let mut fired_total = 0;
    for seed in 0..40 {
        let report = Sim::new(seed).run(|| async {
            let mut fired = 0u32;
            for _ in 0..100 {
                if buggify!(0.5) {
                    fired += 1;
                }
            }
            fired
        });
        let fired = report.output.unwrap();
        // A site is either inactive for the whole run or fires about half the time.
        assert!(
            fired == 0 || (20..=80).contains(&fired),
            "seed {seed}: {fired}"
        );
        if fired > 0 {
            active_runs += 1;
            assert_eq!(
                report.faults.get("buggify").copied(),
                Some(u64::from(fired))
            );
        }
        fired_total += fired;
    }
    // Activation probability is 25%: over 40 seeds both outcomes must appear.
    assert!(
        active_runs > 2 && active_runs < 30,
        "active in {active_runs}/40 runs"
    );
    assert!(fired_total > 0);
    let off = Sim::new(0)
        .buggify(false)
        .run(|| async { (0..100).filter(|_| buggify!(1.0)).count() });
    assert_eq!(off.output.unwrap(), 0, "buggify off means never");
}

#[test]
fn node_restart_reruns_init_and_pause_freezes() {
    let report = Sim::new(5).run(|| async {
        let starts = Arc::new(AtomicU64::new(0));
        let ticks = Arc::new(AtomicU64::new(0));
        let (s, t) = (starts.clone(), ticks.clone());
        let n = node::build("n")
            .ip("10.0.0.9".parse().unwrap())
            .init(move || {
                let (s, t) = (s.clone(), t.clone());
                async move {
                    s.fetch_add(1, Ordering::Relaxed);
                    loop {
                        time::sleep(Duration::from_millis(10)).await;
                        t.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .create();
        time::sleep(Duration::from_millis(105)).await;
        let before_pause = ticks.load(Ordering::Relaxed);
        n.pause();
        time::sleep(Duration::from_millis(200)).await;
        let during_pause = ticks.load(Ordering::Relaxed);
        n.resume();
        time::sleep(Duration::from_millis(100)).await;
        let after_resume = ticks.load(Ordering::Relaxed);
        n.crash();
        assert!(n.is_down());
        let at_crash = ticks.load(Ordering::Relaxed);
        time::sleep(Duration::from_millis(100)).await;
        let while_down = ticks.load(Ordering::Relaxed);
        n.restart();
        time::sleep(Duration::from_millis(100)).await;
        (
            starts.load(Ordering::Relaxed),
            before_pause,
            during_pause,
            after_resume,
            at_crash,
            while_down,
            ticks.load(Ordering::Relaxed),
        )
    });
    let (starts, before, during, after, at_crash, down, end) = report.output.unwrap();
    assert_eq!(starts, 2, "init ran at create and at restart");
    assert_eq!(before, 10);
    assert_eq!(during, before, "a paused node makes no progress");
    assert!(after > during, "resumed node progresses");
    assert_eq!(down, at_crash, "a crashed node makes no progress");
    assert!(end > down, "restarted node progresses");
}

#[test]
fn clock_offset_and_drift_are_per_node() {
    let report = Sim::new(9).run(|| async {
        let skewed = node::build("skewed")
            .ip("10.0.0.2".parse().unwrap())
            .create();
        let plain = node::build("plain")
            .ip("10.0.0.3".parse().unwrap())
            .create();
        skewed.set_clock(500_000_000, 100_000); // +0.5 s, runs 10% fast
        let a = skewed.spawn(async {
            let t0 = time::now();
            let g0 = time::elapsed();
            time::sleep(Duration::from_secs(10)).await; // 10 s local
            (time::now() - t0, time::elapsed() - g0)
        });
        let b = plain.spawn(async {
            let t0 = time::now();
            time::sleep(Duration::from_secs(10)).await;
            time::now() - t0
        });
        let skew_now = skewed.spawn(async { time::now() }).await.unwrap();
        let plain_now = plain.spawn(async { time::now() }).await.unwrap();
        (a.await.unwrap(), b.await.unwrap(), skew_now - plain_now)
    });
    let ((local, global), plain, offset) = report.output.unwrap();
    assert!(
        offset >= Duration::from_millis(499),
        "offset visible: {offset:?}"
    );
    assert!(
        local >= Duration::from_secs(10),
        "local clock ran 10 s: {local:?}"
    );
    let g = global.as_secs_f64();
    assert!(
        (9.0..9.2).contains(&g),
        "10% fast clock sleeps ~9.09 s global: {g}"
    );
    let p = plain.as_secs_f64();
    assert!((10.0..10.01).contains(&p), "unskewed node: {p}");
    assert_eq!(report.faults.get("node.clock_skew"), Some(&1));
}

#[test]
fn tracing_events_enter_the_trace_with_their_callsite() {
    let line = line!() + 2;
    let report = Sim::new(2).run(|| async {
        tracing::info!(answer = 42, "hello");
    });
    let ev = report
        .trace
        .events
        .iter()
        .find(|e| e.kind == EventKind::Log)
        .expect("the info event is in the trace");
    assert_eq!(ev.line, line);
    assert!(ev.detail.contains("answer=42"), "{}", ev.detail);
}

/// The trace layer's callsite filter (D40): events at INFO and above are recorded,
/// inside spans too; DEBUG events and spans themselves are not.
#[test]
fn the_trace_records_info_events_not_debug_ones_or_spans() {
    let report = Sim::new(2).run(|| async {
        tracing::debug!("quiet");
        tracing::info_span!("outer").in_scope(|| tracing::warn!(inside = 1, "loud"));
        tracing::info!("plain");
    });
    let logs: Vec<&str> = report
        .trace
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Log)
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(
        logs[0].starts_with("WARN") && logs[0].contains("inside=1"),
        "{logs:?}"
    );
    assert!(
        logs[1].starts_with("INFO") && logs[1].contains("plain"),
        "{logs:?}"
    );
}

#[test]
fn fault_counters_are_per_run() {
    let a = Sim::new(1).run(|| async {
        faults::count("x");
        faults::count("x");
        faults::get("x")
    });
    assert_eq!(a.output.unwrap(), 2);
    let b = Sim::new(1).run(|| async { faults::get("x") });
    assert_eq!(
        b.output.unwrap(),
        0,
        "a fresh thread starts with fresh counters"
    );
}

#[test]
fn a_panicking_run_is_reported_not_propagated() {
    let report = Sim::new(4).run(|| async {
        time::sleep(Duration::from_millis(5)).await;
        panic!("boom at 5ms");
    });
    let err = report.output.expect_err("the run panicked");
    assert!(err.contains("boom at 5ms"), "{err}");
}

#[test]
fn time_limit_fails_a_run_that_runs_too_long() {
    let report = Sim::new(4)
        .time_limit(Duration::from_secs(1))
        .run(|| async { time::sleep(Duration::from_secs(5)).await });
    assert!(report.output.unwrap_err().contains("time limit"));
}

#[test]
fn spawn_on_a_restarted_node_runs() {
    let report = Sim::new(6).run(|| async {
        let n = node::build("r")
            .ip("10.0.0.7".parse().unwrap())
            .init(std::future::pending::<()>)
            .create();
        let before = n.spawn(async { 1 }).await.unwrap();
        n.crash();
        n.restart();
        let after = time::timeout(Duration::from_secs(1), n.spawn(async { 2 }))
            .await
            .expect("a task spawned after restart runs")
            .unwrap();
        (before, after)
    });
    assert_eq!(report.output.unwrap(), (1, 2));
}

#[test]
fn a_nodes_first_incarnation_has_its_number_and_clock() {
    let report = Sim::new(8).run(|| async {
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let n = node::build("first")
            .ip("10.0.0.8".parse().unwrap())
            .init(move || {
                let s = s.clone();
                async move {
                    time::sleep(Duration::from_millis(1)).await;
                    s.store(sim_runtime::task::current_node_id(), Ordering::Relaxed);
                    std::future::pending::<()>().await
                }
            })
            .create();
        time::sleep(Duration::from_millis(5)).await;
        (n.number(), seen.load(Ordering::Relaxed))
    });
    let (number, seen) = report.output.unwrap();
    assert_eq!(
        seen, number,
        "init runs as the node's number, not a placeholder"
    );
    let spawn = report
        .trace
        .events
        .iter()
        .find(|e| e.kind == EventKind::Spawn && e.detail.contains("first.init"))
        .expect("init spawn traced");
    assert!(
        spawn.detail.contains(&format!("on node {number}")),
        "{}",
        spawn.detail
    );
}
