//! The durability oracle: each violation it must find, and a valid complex run.

use std::collections::BTreeMap;

use crate::durability::{DurabilityError, Evidence, Oracle, Outcome, ViolationKind};

type O = Oracle<&'static str, &'static str>;
type Writes = BTreeMap<&'static str, Option<&'static str>>;

fn writes(pairs: &[(&'static str, Option<&'static str>)]) -> Writes {
    pairs.iter().copied().collect()
}

fn state(pairs: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

/// The kinds of the violations a check found (empty if it passed).
fn found(r: Result<(), DurabilityError<&'static str, &'static str>>) -> Vec<ViolationKind> {
    match r {
        Ok(()) => Vec::new(),
        Err(DurabilityError::Violations(vs)) => vs.iter().map(|v| v.kind).collect(),
        Err(other) => panic!("not a violation: {other}"),
    }
}

fn acked(o: &mut O, w: &[(&'static str, Option<&'static str>)]) {
    let t = o.begin(writes(w)).expect("unique values");
    o.acknowledge(t).expect("in flight");
}

#[test]
fn lost_acknowledged_write() {
    let mut o = O::new();
    acked(&mut o, &[("a", Some("a1"))]);
    assert_eq!(found(o.check(&state(&[]))), vec![ViolationKind::LostWrite]);
    // Overwritten by an older write: also lost.
    let mut o = O::new();
    acked(&mut o, &[("a", Some("a1"))]);
    acked(&mut o, &[("a", Some("a2"))]);
    let err = o.check(&state(&[("a", "a1")])).expect_err("a2 lost");
    assert_eq!(
        err.to_string(),
        "1 durability violations\n  LostWrite: check 1: acknowledged T1 wrote \"a\" = \"a2\"; \"a\" shows \"a1\" by T0, which ended before it began"
    );
}

#[test]
fn visible_rejected_write() {
    let mut o = O::new();
    let t = o.begin(writes(&[("a", Some("a1"))])).expect("unique");
    o.reject(t).expect("in flight");
    assert_eq!(
        found(o.check(&state(&[("a", "a1")]))),
        vec![ViolationKind::RejectedVisible]
    );
    // Seen applied, then told rejected.
    let mut o = O::new();
    let t = o.begin(writes(&[("a", Some("a1"))])).expect("unique");
    o.check(&state(&[("a", "a1")]))
        .expect("in flight may be visible");
    assert_eq!(found(o.reject(t)), vec![ViolationKind::AppliedThenRejected]);
}

#[test]
fn half_applied_indeterminate() {
    let mut o = O::new();
    o.begin(writes(&[("a", Some("a1")), ("b", Some("b1"))]))
        .expect("unique");
    o.crash();
    assert_eq!(
        found(o.check(&state(&[("a", "a1")]))),
        vec![ViolationKind::HalfApplied]
    );
    // A delete half applied: the key still holds the older value.
    let mut o = O::new();
    acked(&mut o, &[("a", Some("a0"))]);
    o.begin(writes(&[("a", None), ("b", Some("b1"))]))
        .expect("unique");
    o.crash();
    assert_eq!(
        found(o.check(&state(&[("a", "a0"), ("b", "b1")]))),
        vec![ViolationKind::HalfApplied]
    );
}

#[test]
fn observed_indeterminate_then_vanished() {
    let mut o = O::new();
    let t = o.begin(writes(&[("a", Some("a1"))])).expect("unique");
    o.crash();
    o.check(&state(&[("a", "a1")])).expect("applied whole");
    assert_eq!(o.evidence(t), Some(Evidence::Applied(1)));
    assert_eq!(found(o.check(&state(&[]))), vec![ViolationKind::Vanished]);
}

#[test]
fn absent_indeterminate_then_reappeared() {
    let mut o = O::new();
    acked(&mut o, &[("a", Some("a0"))]);
    let t = o.begin(writes(&[("a", Some("a1"))])).expect("unique");
    o.crash();
    o.check(&state(&[("a", "a0")])).expect("not applied");
    assert_eq!(o.evidence(t), Some(Evidence::Absent(1)));
    assert_eq!(
        found(o.check(&state(&[("a", "a1")]))),
        vec![ViolationKind::Reappeared]
    );
    assert!(
        o.check_read(&"a", &"a1").is_err(),
        "a read of it is wrong too"
    );
}

#[test]
fn garbage_values() {
    let mut o = O::new();
    acked(&mut o, &[("a", Some("a1"))]);
    let kinds = found(o.check(&state(&[("a", "a1"), ("zz", "a1")])));
    assert_eq!(
        kinds,
        vec![ViolationKind::Garbage],
        "right value, wrong key"
    );
    assert_eq!(
        found(o.check(&state(&[("a", "nobody")]))),
        vec![ViolationKind::Garbage, ViolationKind::LostWrite]
    );
    assert_eq!(
        o.check_read(&"a", &"what").map_err(|v| v.kind),
        Err(ViolationKind::Garbage)
    );
}

#[test]
fn resurrected_delete() {
    let mut o = O::new();
    acked(&mut o, &[("a", Some("a1"))]);
    acked(&mut o, &[("a", None)]);
    o.check(&state(&[])).expect("deleted");
    assert_eq!(
        found(o.check(&state(&[("a", "a1")]))),
        vec![ViolationKind::ResurrectedDelete]
    );
}

#[test]
fn misuse_is_an_error() {
    let mut o = O::new();
    let t = o.begin(writes(&[("a", Some("a1"))])).expect("unique");
    assert!(matches!(
        o.begin(writes(&[("a", Some("a1"))])),
        Err(DurabilityError::DuplicateValue { first, .. }) if first == t
    ));
    o.begin(writes(&[("b", Some("a1"))]))
        .expect("unique per key is enough");
    o.acknowledge(t).expect("in flight");
    assert!(matches!(
        o.reject(t),
        Err(DurabilityError::AlreadyEnded {
            outcome: Outcome::Acknowledged,
            ..
        })
    ));
}

#[test]
fn valid_complex_run() {
    let mut o = O::new();
    // Two clients write a concurrently; both acknowledged: either may be last.
    let t0 = o.begin(writes(&[("a", Some("a0"))])).expect("unique");
    let t1 = o
        .begin(writes(&[("a", Some("a1")), ("d", Some("d1"))]))
        .expect("unique");
    o.acknowledge(t1).expect("in flight");
    o.acknowledge(t0).expect("in flight");
    // An indeterminate transaction, later partly overwritten.
    let t2 = o
        .begin(writes(&[("b", Some("b2")), ("c", Some("c2"))]))
        .expect("unique");
    // An in-flight delete of d, and a rejected write.
    let t3 = o.begin(writes(&[("d", None)])).expect("unique");
    let t4 = o.begin(writes(&[("c", Some("c4"))])).expect("unique");
    o.reject(t4).expect("in flight");
    o.crash();
    assert_eq!(o.outcome(t2), Some(Outcome::Indeterminate));
    let t5 = o.begin(writes(&[("b", Some("b5"))])).expect("unique");
    o.acknowledge(t5).expect("in flight");
    // t2 applied (c2 visible; b overwritten by t5); t3 applied too (d is gone).
    o.check(&state(&[("a", "a1"), ("b", "b5"), ("c", "c2")]))
        .expect("allowed");
    assert_eq!(o.evidence(t2), Some(Evidence::Applied(1)));
    assert_eq!(
        o.evidence(t3),
        Some(Evidence::None),
        "a delete cannot be attributed"
    );
    // The other order of the concurrent pair is allowed as well, and d may be back
    // (t3 may not have happened)...
    o.check(&state(&[
        ("a", "a0"),
        ("b", "b5"),
        ("c", "c2"),
        ("d", "d1"),
    ]))
    .expect("allowed");
    // ... but t2, once seen, must stay.
    assert_eq!(
        found(o.check(&state(&[("a", "a0"), ("b", "b5"), ("d", "d1")]))),
        vec![ViolationKind::Vanished]
    );
    assert!(
        o.check_read(&"b", &"b2").is_ok(),
        "t2's write was visible once"
    );
}

#[test]
fn reports_cut_long_values_and_keep_short_ones() {
    use crate::durability::{brief, BRIEF_CHARS};
    assert_eq!(brief("1,2"), "\"1,2\"");
    let padded = format!("1,2|{}", ".".repeat(1000));
    let cut = brief(padded.as_str());
    assert!(cut.starts_with("\"1,2|...."), "{cut}");
    assert!(cut.ends_with("… (1006 chars)"), "{cut}");
    assert_eq!(cut.chars().count(), BRIEF_CHARS + " (1006 chars)".len() + 1);
    // A lost acknowledged write's explanation carries the cut value, not a kilobyte.
    let mut o: Oracle<String, String> = Oracle::new();
    let t = o
        .begin(BTreeMap::from([("k".to_string(), Some(padded.clone()))]))
        .expect("unique");
    o.acknowledge(t).expect("in flight");
    let err = o
        .check(&BTreeMap::new())
        .expect_err("the acknowledged write is lost");
    let text = err.to_string();
    assert!(text.contains("LostWrite"), "{text}");
    assert!(text.contains("(1006 chars)") && text.len() < 400, "{text}");
}
