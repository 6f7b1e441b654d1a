//! Divergence reports and localisation against made-up traces and probe logs.

use super::*;
use crate::trace::{Checkpoint, EventKind};
use std::borrow::Cow;

fn event(index: u64, detail: &str) -> Event {
    Event {
        index,
        time_ns: index,
        node: 0,
        task: 1,
        kind: EventKind::Custom,
        detail: detail.to_string(),
        file: Cow::Borrowed("a.rs"),
        line: 1,
    }
}

/// A trace of `details`, keeping the first `keep` in full.
fn trace(details: &[&str], keep: usize) -> Trace {
    let digests: Vec<u64> = details
        .iter()
        .scan(0u64, |h, d| {
            *h = crate::rng::stable_hash(format!("{h}/{d}").as_bytes());
            Some(*h)
        })
        .collect();
    Trace {
        digest: digests.last().copied().unwrap_or(0),
        count: details.len() as u64,
        checkpoints: Vec::<Checkpoint>::new(),
        events: details
            .iter()
            .take(keep)
            .enumerate()
            .map(|(i, d)| event(i as u64, d))
            .collect(),
        digests,
    }
}

fn differs(a: &Trace, b: &Trace) -> Divergence {
    match compare(7, a, b) {
        Determinism::Differs(d) => *d,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_divergence_report_never_contradicts_itself() {
    // Everything kept: index 2, last common #1, both sides #2.
    let d = differs(&trace(&["a", "b", "c"], 9), &trace(&["a", "b", "x"], 9));
    let text = d.to_string();
    assert!(text.contains("part at event #2 "), "{text}");
    assert!(text.contains("last common: #1 "), "{text}");
    assert!(
        text.contains("run 1:       #2 ") && text.contains("run 2:       #2 "),
        "{text}"
    );
    // Nothing kept: the report says why, and never "the first event differs".
    let d = differs(&trace(&["a", "b", "c"], 0), &trace(&["a", "b", "x"], 0));
    let text = d.to_string();
    assert!(!text.contains("first event differs"), "{text}");
    assert!(
        text.contains("(#1 not kept: run 1 kept only its first 0 events"),
        "{text}"
    );
    assert!(
        text.contains("(#2 not kept: run 2 kept only its first 0 events"),
        "{text}"
    );
    // One run is a prefix of the other: that run ended.
    let d = differs(&trace(&["a", "b"], 9), &trace(&["a", "b", "c"], 9));
    let text = d.to_string();
    assert!(
        text.contains("(none: run 1 ended after 2 events)"),
        "{text}"
    );
    assert!(text.contains("run 2:       #2 "), "{text}");
    // The very first event differs.
    let d = differs(&trace(&["a"], 9), &trace(&["b"], 9));
    assert!(d.to_string().contains("the first event differs"));
    d.verify().expect("a true report verifies");
}

#[test]
fn verify_refuses_a_report_that_contradicts_itself() {
    let good = differs(&trace(&["a", "b", "c"], 9), &trace(&["a", "b", "x"], 9));
    good.verify().expect("a true report verifies");
    let mut bad = good.clone();
    bad.last_common = Some(event(0, "a"));
    assert!(
        bad.verify().is_err(),
        "the last common event must be the one before"
    );
    let mut bad = good.clone();
    bad.first = Some(event(1, "b"));
    assert!(bad.verify().is_err(), "a side's event must be at the index");
    let mut bad = good;
    bad.index = 5;
    assert!(
        bad.verify().is_err(),
        "the events shown must be those at the index"
    );
}

fn step(at: u64, task: u64, what: &str, frame: &str) -> Entry {
    Entry {
        at,
        event: false,
        what: what.to_string(),
        task,
        node: 1,
        time_ns: at,
        recorded_at: String::new(),
        frames: if frame.is_empty() {
            Vec::new()
        } else {
            vec![frame.to_string()]
        },
    }
}

#[test]
fn the_task_whose_last_steps_differ_is_named_first() {
    // Both runs poll task 1 and then part on which task runs; task 2's sleep, begun
    // before the window, had another length in each run.
    let common = vec![
        step(10, 1, "poll", ""),
        step(10, 1, "sleep 1ms", "x.rs:3:1"),
    ];
    let mut a = ProbeLog {
        window: Some(Window { from: 10, to: 20 }),
        entries: common.clone(),
        ..ProbeLog::default()
    };
    let mut b = a.clone();
    a.entries.push(step(11, 1, "poll", ""));
    b.entries.push(step(11, 2, "poll", ""));
    a.before
        .insert(2, step(4, 2, "sleep 289ms", "plant.rs:9:5"));
    b.before
        .insert(2, step(4, 2, "sleep 565ms", "plant.rs:9:5"));
    let l = localise(&a, &b, Some(11));
    assert_eq!(l.last_common, common.last().cloned());
    assert_eq!(l.tasks.len(), 2);
    assert_eq!(l.tasks[0].task, 2, "{l}");
    assert!(l.tasks[0].differ());
    assert!(!l.tasks[1].differ());
    let text = l.to_string();
    assert!(text.contains("task 2 behaved differently"), "{text}");
    assert!(text.contains("plant.rs:9:5 (sleep 289ms)"), "{text}");
    assert!(text.contains("plant.rs:9:5 (sleep 565ms)"), "{text}");
    assert!(l.note.is_none());
    // Pairs that did not part, or parted outside the window, say so.
    assert!(localise(&a, &a, None).note.is_some());
    assert!(localise(&a, &b, Some(40)).note.is_some());
}
