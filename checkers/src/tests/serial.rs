//! The claimed-serial-order replay: a good history passes, and each kind of bad history
//! (stale read, double apply, lost ack, aborted write visible, real-time inversion,
//! duplicate point, unknown outcome, phantom in a scan) is caught with its evidence.

use std::time::Duration;

use crate::serial::{check, Kind, Outcome, Scan, State, Txn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A transaction over `[invoke, complete]` ms with `outcome`.
fn txn(name: &str, invoke: u64, complete: u64, outcome: Outcome) -> Txn {
    let mut t = Txn::new(name, ms(invoke));
    t.complete = ms(complete);
    t.outcome = outcome;
    t
}

fn read(mut t: Txn, k: &str, v: Option<&str>) -> Txn {
    t.reads.push((b(k), v.map(b)));
    t
}

fn write(mut t: Txn, k: &str, v: Option<&str>) -> Txn {
    t.writes.insert(b(k), v.map(b));
    t
}

fn state(rows: &[(&str, &str)]) -> State {
    rows.iter().map(|(k, v)| (b(k), b(v))).collect()
}

fn kinds(h: &[Txn], fin: Option<&State>) -> Vec<Kind> {
    check(h, fin).into_iter().map(|v| v.kind).collect()
}

/// x=1 at 1; a read-modify-write x=1 → x=2 at 2; a read-only read of x=2 at 2; a delete
/// of y (never written) at 3; an aborted write of x=9 and a failed one.
fn good() -> Vec<Txn> {
    vec![
        write(txn("w1", 0, 10, Outcome::Committed(1)), "x", Some("1")),
        write(
            read(txn("rmw", 11, 20, Outcome::Committed(2)), "x", Some("1")),
            "x",
            Some("2"),
        ),
        read(txn("ro", 21, 25, Outcome::Committed(2)), "x", Some("2")),
        write(txn("del", 22, 30, Outcome::Committed(3)), "y", None),
        write(txn("abort", 5, 40, Outcome::Aborted), "x", Some("9")),
        write(
            txn("fail", 5, 40, Outcome::Failed("no leader".into())),
            "z",
            Some("8"),
        ),
    ]
}

#[test]
fn a_good_history_passes() {
    let fin = state(&[("x", "2")]);
    assert_eq!(check(&good(), Some(&fin)), vec![]);
    assert_eq!(check(&good(), None), vec![]);
    assert_eq!(check(&[], Some(&State::new())), vec![]);
}

#[test]
fn a_stale_read_is_caught() {
    let mut h = good();
    // Reads x=1 at point 3, after the write of x=2 at 2.
    h.push(read(
        txn("stale", 31, 35, Outcome::Committed(3)),
        "x",
        Some("1"),
    ));
    let v = check(&h, Some(&state(&[("x", "2")])));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, Kind::Read);
    assert_eq!(v[0].txns, vec!["stale".to_string()]);
    assert!(
        v[0].to_string()
            .contains("read x=1 but the claimed order holds 2"),
        "{}",
        v[0]
    );
}

#[test]
fn a_double_apply_is_caught() {
    // w1's write applied again after rmw: a later read sees x=1 where the order holds 2,
    // and the final state shows it too.
    let mut h = good();
    h.push(read(
        txn("after", 31, 35, Outcome::Committed(4)),
        "x",
        Some("1"),
    ));
    let fin = state(&[("x", "1")]);
    assert_eq!(kinds(&h, Some(&fin)), vec![Kind::Read, Kind::Durability]);
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let v = check(&good(), Some(&State::new()));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, Kind::Durability);
    assert!(v[0].message.contains("x: expected 2 found nil"), "{}", v[0]);
}

#[test]
fn an_aborted_write_seen_is_caught() {
    let mut h = good();
    h.push(read(
        txn("dirty", 31, 35, Outcome::Committed(3)),
        "x",
        Some("9"),
    ));
    let fin = state(&[("x", "9")]);
    assert_eq!(kinds(&h, Some(&fin)), vec![Kind::Read, Kind::Durability]);
}

#[test]
fn a_real_time_inversion_is_caught() {
    // late completed before early began, yet claims an earlier point.
    let h = vec![
        write(txn("first", 0, 10, Outcome::Committed(5)), "x", Some("1")),
        write(txn("second", 20, 30, Outcome::Committed(4)), "y", Some("1")),
    ];
    let v = check(&h, None);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, Kind::RealTime);
    assert_eq!(v[0].txns, vec!["first".to_string(), "second".to_string()]);
    // Overlapping transactions may commit in either order.
    let mut h = h;
    h[1].invoke = ms(5);
    assert_eq!(check(&h, None), vec![]);
}

#[test]
fn real_time_and_read_only_points() {
    // A read-only transaction at point 4 sits after the write at 4: a write that began
    // after it completed may not claim 4 (or less), a read-only one may.
    let ro = read(txn("ro", 0, 10, Outcome::Committed(4)), "x", None);
    let w = |p| write(txn("w", 20, 30, Outcome::Committed(p)), "y", Some("1"));
    assert_eq!(kinds(&[ro.clone(), w(4)], None), vec![Kind::RealTime]);
    assert_eq!(kinds(&[ro.clone(), w(5)], None), vec![]);
    let ro2 = read(txn("ro2", 20, 30, Outcome::Committed(4)), "x", None);
    assert_eq!(kinds(&[ro.clone(), ro2], None), vec![]);
    // A write at 4 that completed before a read-only one at 4 began: fine.
    let w4 = write(txn("w4", 0, 10, Outcome::Committed(4)), "y", Some("1"));
    let ro4 = read(txn("ro4", 20, 30, Outcome::Committed(4)), "y", Some("1"));
    assert_eq!(kinds(&[w4, ro4], None), vec![]);
}

#[test]
fn a_duplicate_point_is_caught() {
    let h = vec![
        write(txn("a", 0, 10, Outcome::Committed(1)), "x", Some("a")),
        write(txn("b", 0, 10, Outcome::Committed(1)), "y", Some("b")),
        // Read-only transactions may share a point.
        read(txn("r1", 20, 30, Outcome::Committed(1)), "x", Some("a")),
        read(txn("r2", 20, 30, Outcome::Committed(1)), "y", Some("b")),
    ];
    let v = check(&h, Some(&state(&[("x", "a"), ("y", "b")])));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, Kind::DuplicatePoint);
    assert_eq!(v[0].txns, vec!["a".to_string(), "b".to_string()]);
}

#[test]
fn an_unknown_outcome_is_caught() {
    let mut h = good();
    h.push(write(
        txn("lost", 31, 35, Outcome::Unknown("timeout".into())),
        "z",
        Some("1"),
    ));
    let v = check(&h, Some(&state(&[("x", "2")])));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, Kind::Indefinite);
    assert!(v[0]
        .to_string()
        .contains("lost ended with an unknown outcome: timeout"));
}

#[test]
fn scans_are_replayed_phantoms_caught() {
    let scan = |rows: &[(&str, &str)]| {
        let mut t = txn("scan", 31, 35, Outcome::Committed(3));
        t.scans.push(Scan {
            start: b("a"),
            end: b("y"),
            rows: rows.iter().map(|(k, v)| (b(k), b(v))).collect(),
        });
        t
    };
    let mut h = good();
    h.push(scan(&[("x", "2")]));
    assert_eq!(kinds(&h, None), vec![]);
    // A row the order does not hold (a phantom), and a wrong value.
    for rows in [&[("w", "0"), ("x", "2")][..], &[("x", "1")][..], &[][..]] {
        let mut h = good();
        h.push(scan(rows));
        assert_eq!(kinds(&h, None), vec![Kind::Read], "{rows:?}");
    }
    // A reversed range reads nothing (and does not panic).
    let mut t = scan(&[]);
    t.scans[0].start = b("z");
    let mut h = good();
    h.push(t);
    assert_eq!(kinds(&h, None), vec![]);
}

#[test]
fn a_wrong_point_is_caught_by_the_reads() {
    // The rmw claims point 0, before the write it read.
    let mut h = good();
    h[1].outcome = Outcome::Committed(0);
    let fin = state(&[("x", "2")]);
    let k = kinds(&h, Some(&fin));
    assert!(
        k.contains(&Kind::Read) && k.contains(&Kind::RealTime),
        "{k:?}"
    );
}
