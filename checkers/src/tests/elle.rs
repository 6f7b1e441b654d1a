//! The Elle checker: one bad history per anomaly, and good ones.

use super::{append, fail, info, ok, read};
use crate::elle::{check, AnomalyKind, Report};
use crate::graph::EdgeKind;
use crate::history::{History, MicroOp};

fn kinds(r: &Report) -> Vec<AnomalyKind> {
    r.anomalies.iter().map(|a| a.kind).collect()
}

/// The one anomaly of `kind`, printed as the report prints it.
fn shown(r: &Report, kind: AnomalyKind) -> String {
    let found: Vec<_> = r.of(kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in:\n{r}");
    found[0].to_string()
}

fn cycle_kinds(r: &Report, kind: AnomalyKind) -> Vec<EdgeKind> {
    r.of(kind)
        .next()
        .map(|a| a.cycle.iter().map(|s| s.edge.kind).collect())
        .unwrap_or_default()
}

#[test]
fn g0_write_cycle() {
    let mut h = History::new();
    let t0 = ok(&mut h, 0, vec![append("x", 1), append("y", 2)]);
    let t1 = ok(&mut h, 1, vec![append("x", 2), append("y", 1)]);
    ok(&mut h, 2, vec![read("x", &[1, 2]), read("y", &[1, 2])]);
    let r = check(&h);
    assert!(!r.valid);
    assert_eq!(kinds(&r), vec![AnomalyKind::G0]);
    assert_eq!((t0, t1), (0, 2));
    let text = shown(&r, AnomalyKind::G0);
    assert!(
        text.starts_with("G0: T0 -ww(x)-> T2 -ww(y)-> T0\n"),
        "{text}"
    );
    assert!(
        text.contains("T2 appended 1 to y, then T0 appended 2"),
        "{text}"
    );
}

#[test]
fn g1a_aborted_read() {
    let mut h = History::new();
    let t0 = fail(&mut h, 0, vec![append("x", 1)]);
    let t1 = ok(&mut h, 1, vec![read("x", &[1])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::G1a]);
    assert_eq!(
        shown(&r, AnomalyKind::G1a),
        format!("G1a: T{t1} read x = [1], but 1 was appended by T{t0}, which failed")
    );
}

#[test]
fn g1b_intermediate_read() {
    let mut h = History::new();
    let t0 = ok(&mut h, 0, vec![append("x", 1), append("x", 2)]);
    let t1 = ok(&mut h, 1, vec![read("x", &[1])]);
    ok(&mut h, 2, vec![read("x", &[1, 2])]);
    let r = check(&h);
    // Reading T0's intermediate state also closes T0 -wr-> T1 -rw-> T0.
    assert_eq!(kinds(&r), vec![AnomalyKind::G1b, AnomalyKind::GSingle]);
    let text = shown(&r, AnomalyKind::G1b);
    assert!(
        text.contains(&format!(
            "T{t1} read x = [1], ending on 1, an intermediate append of T{t0}"
        )),
        "{text}"
    );
}

#[test]
fn g1c_circular_information_flow() {
    let mut h = History::new();
    ok(&mut h, 0, vec![append("x", 1), read("y", &[1])]);
    ok(&mut h, 1, vec![append("y", 1), read("x", &[1])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::G1c]);
    assert!(shown(&r, AnomalyKind::G1c).starts_with("G1c: T0 -wr(x)-> T2 -wr(y)-> T0"));
}

#[test]
fn g_single_read_skew() {
    let mut h = History::new();
    ok(&mut h, 0, vec![read("x", &[]), read("y", &[1])]);
    ok(&mut h, 1, vec![append("x", 1), append("y", 1)]);
    ok(&mut h, 2, vec![read("x", &[1])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::GSingle]);
    let text = shown(&r, AnomalyKind::GSingle);
    assert!(
        text.starts_with("G-single: T0 -rw(x)-> T2 -wr(y)-> T0\n"),
        "{text}"
    );
    assert!(
        text.contains("T0 read x = [], and T2 appended the next element 1"),
        "{text}"
    );
}

#[test]
fn g2_write_skew() {
    let mut h = History::new();
    ok(
        &mut h,
        0,
        vec![read("x", &[]), read("y", &[]), append("x", 1)],
    );
    ok(
        &mut h,
        1,
        vec![read("x", &[]), read("y", &[]), append("y", 1)],
    );
    ok(&mut h, 2, vec![read("x", &[1]), read("y", &[1])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::G2]);
    assert_eq!(
        cycle_kinds(&r, AnomalyKind::G2),
        vec![EdgeKind::Rw, EdgeKind::Rw]
    );
    assert!(shown(&r, AnomalyKind::G2).starts_with("G2: T0 -rw(y)-> T2 -rw(x)-> T0"));
}

#[test]
fn lost_update_through_an_append_nobody_read() {
    // Both read x = [] and append; only 1 is ever read, so 2 comes after it.
    let mut h = History::new();
    ok(&mut h, 0, vec![read("x", &[]), append("x", 1)]);
    ok(&mut h, 1, vec![read("x", &[]), append("x", 2)]);
    ok(&mut h, 2, vec![read("x", &[1])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::GSingle]);
    assert!(shown(&r, AnomalyKind::GSingle).starts_with("G-single: T2 -rw(x)-> T0 -ww(x)-> T2"));
}

#[test]
fn incompatible_order() {
    let mut h = History::new();
    ok(&mut h, 0, vec![append("x", 1)]);
    ok(&mut h, 1, vec![append("x", 2)]);
    ok(&mut h, 2, vec![read("x", &[1, 2])]);
    ok(&mut h, 3, vec![read("x", &[2])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::IncompatibleOrder]);
    assert_eq!(
        shown(&r, AnomalyKind::IncompatibleOrder),
        "incompatible-order: T6 read x = [2] and T4 read [1, 2]: neither is a prefix of the other"
    );
}

#[test]
fn garbage_duplicate_and_internal_reads() {
    let mut h = History::new();
    ok(&mut h, 0, vec![append("x", 1)]);
    ok(&mut h, 1, vec![read("x", &[1, 9])]);
    let r = check(&h);
    assert_eq!(kinds(&r), vec![AnomalyKind::GarbageRead]);
    assert!(shown(&r, AnomalyKind::GarbageRead).contains("nobody appended 9 to x"));

    let mut h = History::new();
    ok(&mut h, 0, vec![append("x", 1)]);
    ok(&mut h, 1, vec![read("x", &[1, 1])]);
    assert_eq!(kinds(&check(&h)), vec![AnomalyKind::DuplicateElements]);

    let mut h = History::new();
    ok(&mut h, 0, vec![append("x", 1), read("x", &[])]);
    assert_eq!(kinds(&check(&h)), vec![AnomalyKind::Internal]);

    let mut h = History::new();
    ok(&mut h, 0, vec![MicroOp::write("x", 1)]);
    assert_eq!(kinds(&check(&h)), vec![AnomalyKind::Malformed]);
}

#[test]
fn observed_info_counts_as_committed() {
    // T0 timed out, but its appends were read: it committed, and closes a G0.
    let mut h = History::new();
    info(&mut h, 0, vec![append("x", 1), append("y", 2)]);
    ok(&mut h, 1, vec![append("x", 2), append("y", 1)]);
    ok(&mut h, 2, vec![read("x", &[1, 2]), read("y", &[1, 2])]);
    assert_eq!(kinds(&check(&h)), vec![AnomalyKind::G0]);

    // Unobserved info and failed appends: nothing to see.
    let mut h = History::new();
    info(&mut h, 0, vec![append("x", 1)]);
    fail(&mut h, 1, vec![append("x", 2)]);
    ok(&mut h, 2, vec![read("x", &[]), append("x", 3)]);
    ok(&mut h, 3, vec![read("x", &[3])]);
    let r = check(&h);
    assert!(r.valid, "{r}");
}

#[test]
fn valid_concurrent_history() {
    let mut h = History::new();
    let a = h
        .invoke(0, vec![append("x", 1), MicroOp::read("y")])
        .expect("idle");
    let b = h
        .invoke(1, vec![append("y", 1), MicroOp::read("x")])
        .expect("idle");
    h.ok(a, vec![append("x", 1), read("y", &[])])
        .expect("completes");
    let c = h
        .invoke(2, vec![MicroOp::read("x"), MicroOp::read("y")])
        .expect("idle");
    let d = h.invoke(0, vec![append("x", 2)]).expect("idle again");
    h.ok(b, vec![append("y", 1), read("x", &[1])])
        .expect("completes");
    h.ok(c, vec![read("x", &[1]), read("y", &[1])])
        .expect("completes");
    h.info(d).expect("completes");
    let r = check(&h);
    assert!(r.valid, "{r}");
    assert_eq!(r.to_string(), "valid: no anomalies");
}
