//! `sim::check_determinism` (the plain `Sim` runner) follows a divergence to the task
//! that behaved differently, for every way a task is spawned — `task::spawn_named`, a
//! node's init, `tokio::spawn` — naming the planted line, and where the task was
//! spawned (not for `tokio::spawn`: madsim keeps a task's spawn location private, so
//! such a task is named by its frames).
//! The leak is a process-wide counter: both runs of the check share this process, so
//! the second sees what the first left (and no escape is noted: the leak is only
//! localised, never seen as it happens).
#![cfg(madsim)]

use sim_runtime::sim::{check_determinism, Determinism, Divergence, Sim};
use sim_runtime::{node, task, time};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The line of this file that ends with `marker`.
fn line_of(marker: &str) -> u32 {
    let idx = include_str!("localise.rs")
        .lines()
        .position(|l| l.trim_end().ends_with(marker))
        .unwrap_or_else(|| panic!("marker {marker:?} in localise.rs"));
    u32::try_from(idx + 1).unwrap_or(u32::MAX)
}

fn divergence(verdict: Determinism) -> Box<Divergence> {
    match verdict {
        Determinism::Differs(d) => d,
        other => panic!("expected a divergence, got {other:?}"),
    }
}

fn assert_names(d: &Divergence, leak: &str, spawn: Option<&str>) {
    let text = d.to_string();
    println!("{text}");
    let leak = format!("localise.rs:{}:", line_of(leak));
    assert!(
        d.localised_places().iter().any(|p| p.contains(&leak)),
        "expected {leak} in {:?}\n{text}",
        d.localised_places()
    );
    if let Some(spawn) = spawn {
        let spawn = format!("localise.rs:{}:", line_of(spawn));
        assert!(
            text.contains(&spawn),
            "expected the spawn at {spawn}\n{text}"
        );
    }
    assert!(d.escapes.is_empty(), "{text}");
}

static SPAWNED: AtomicU64 = AtomicU64::new(0);

async fn leaky_child() {
    time::sleep(Duration::from_millis(1)).await;
    let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
    time::sleep(Duration::from_millis(n + 1)).await; // <- leak: spawned
}

#[test]
fn a_task_from_task_spawn_is_named_with_its_spawn_line() {
    let d = divergence(check_determinism(&Sim::new(1), || async {
        let child = task::spawn_named("worker", leaky_child()); // <- spawn: task
        let _ = child.await;
    }));
    assert_names(&d, "// <- leak: spawned", Some("// <- spawn: task"));
    assert!(d.to_string().contains("'worker'"));
}

static INITS: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_node_init_task_is_named_by_the_create_call() {
    let d = divergence(check_determinism(&Sim::new(2), || async {
        let _n = node::build("server")
            .ip("10.0.0.7".parse().expect("an address"))
            .init(|| async {
                time::sleep(Duration::from_millis(1)).await;
                let n = INITS.fetch_add(1, Ordering::Relaxed);
                time::sleep(Duration::from_millis(n + 1)).await; // <- leak: init
            })
            .create(); // <- spawn: init
        time::sleep(Duration::from_secs(1)).await;
    }));
    assert_names(&d, "// <- leak: init", Some("// <- spawn: init"));
    assert!(d.to_string().contains("server.init"));
}

static TOKIO: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_task_from_tokio_spawn_is_named_by_its_frames() {
    let d = divergence(check_determinism(&Sim::new(3), || async {
        #[allow(clippy::disallowed_methods)] // the planted tokio::spawn this test must name
        let t = tokio::spawn(async {
            time::sleep(Duration::from_millis(1)).await;
            let n = TOKIO.fetch_add(1, Ordering::Relaxed);
            time::sleep(Duration::from_millis(n + 1)).await; // <- leak: tokio
        });
        let _ = t.await;
    }));
    assert_names(&d, "// <- leak: tokio", None);
    assert!(d.to_string().contains("not spawned through sim-runtime"));
}
