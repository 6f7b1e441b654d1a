//! The linearizability checker: classic bad register histories, and good ones with
//! overlapping and indeterminate operations.

use crate::history::{History, MicroOp};
use crate::linear::{check, check_key, partition, Options, Verdict};

fn w(v: i64) -> Vec<MicroOp> {
    vec![MicroOp::write("x", v)]
}

fn r() -> Vec<MicroOp> {
    vec![MicroOp::read("x")]
}

fn saw(v: Option<i64>) -> Vec<MicroOp> {
    vec![MicroOp::read_int("x", v)]
}

fn verdict(h: &History) -> Verdict {
    let report = check(h, &Options::default()).expect("a register history");
    report.keys.get("x").cloned().expect("key x")
}

#[test]
fn classic_non_linearizable_register() {
    // A write of 1 is in flight; one read sees 1, a later read sees nil.
    let mut h = History::new();
    let wr = h.invoke(0, w(1)).expect("idle");
    let r1 = h.invoke(1, r()).expect("idle");
    h.ok(r1, saw(Some(1))).expect("ok");
    let r2 = h.invoke(2, r()).expect("idle");
    h.ok(r2, saw(None)).expect("ok");
    h.ok(wr, w(1)).expect("ok");
    let Verdict::NotLinearizable(f) = verdict(&h) else {
        panic!("must not be linearizable: {:?}", verdict(&h))
    };
    let prefix: Vec<u64> = f.linearized.iter().map(|o| o.id).collect();
    assert_eq!(prefix, vec![0, 1]);
    assert_eq!(
        (f.blocked.id, f.blocked.complete, f.state),
        (3, Some(4), Some(1))
    );
    let text = f.to_string();
    assert!(
        text.contains("T3 (process 2, invoked at 3, returned at 4): r nil cannot be placed"),
        "{text}"
    );
}

#[test]
fn overlapping_ops_linearizable() {
    let mut h = History::new();
    let wr = h.invoke(0, w(1)).expect("idle");
    let r1 = h.invoke(1, r()).expect("idle");
    h.ok(r1, saw(None)).expect("ok");
    let r2 = h.invoke(2, r()).expect("idle");
    h.ok(wr, w(1)).expect("ok");
    h.ok(r2, saw(Some(1))).expect("ok");
    let r3 = h.invoke(1, r()).expect("idle");
    h.ok(r3, saw(Some(1))).expect("ok");
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn stale_read_after_completed_write() {
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.ok(a, w(1)).expect("ok");
    let b = h.invoke(1, w(2)).expect("idle");
    h.ok(b, w(2)).expect("ok");
    let c = h.invoke(2, r()).expect("idle");
    h.ok(c, saw(Some(1))).expect("ok");
    let Verdict::NotLinearizable(f) = verdict(&h) else {
        panic!("a stale read is not linearizable")
    };
    assert_eq!(f.linearized.len(), 2);
    assert_eq!(f.blocked.id, 4);
    assert!(f.to_string().contains("then the register is 2"), "{f}");
}

#[test]
fn info_ops_placed_or_dropped() {
    // Must be placed: only the timed-out write explains the read of 1.
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.info(a).expect("info");
    let b = h.invoke(1, r()).expect("idle");
    h.ok(b, saw(Some(1))).expect("ok");
    assert_eq!(verdict(&h), Verdict::Linearizable);

    // Must be dropped: the write of 2 never shows, the register stays 1.
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.ok(a, w(1)).expect("ok");
    let b = h.invoke(1, w(2)).expect("idle");
    h.info(b).expect("info");
    let c = h.invoke(2, r()).expect("idle");
    h.ok(c, saw(Some(1))).expect("ok");
    // Never completed at all: the same as info.
    let _pending = h.invoke(3, w(3)).expect("idle");
    let d = h.invoke(4, r()).expect("idle");
    h.ok(d, saw(Some(1))).expect("ok");
    assert_eq!(verdict(&h), Verdict::Linearizable);

    // But an info write cannot take effect before it was invoked.
    let mut h = History::new();
    let c = h.invoke(2, r()).expect("idle");
    h.ok(c, saw(Some(2))).expect("ok");
    let b = h.invoke(1, w(2)).expect("idle");
    h.info(b).expect("info");
    assert!(
        matches!(verdict(&h), Verdict::NotLinearizable(_)),
        "read before the write"
    );
}

#[test]
fn failed_ops_never_take_effect_and_cas() {
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.fail(a).expect("fail");
    let b = h.invoke(1, r()).expect("idle");
    h.ok(b, saw(Some(1))).expect("ok");
    assert!(matches!(verdict(&h), Verdict::NotLinearizable(_)));

    let cas = |old, new| vec![MicroOp::cas("x", old, new)];
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.ok(a, w(1)).expect("ok");
    let b = h.invoke(1, cas(1, 2)).expect("idle");
    h.ok(b, cas(1, 2)).expect("ok");
    let c = h.invoke(2, cas(1, 3)).expect("idle");
    h.fail(c).expect("fail"); // a failed cas: no effect
    let d = h.invoke(0, r()).expect("idle");
    h.ok(d, saw(Some(2))).expect("ok");
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let e = h.invoke(1, cas(7, 8)).expect("idle");
    h.ok(e, cas(7, 8)).expect("ok");
    assert!(
        matches!(verdict(&h), Verdict::NotLinearizable(_)),
        "cas from a value never held"
    );
}

#[test]
fn keys_are_independent() {
    let mut h = History::new();
    let a = h
        .invoke(0, vec![MicroOp::write("x", 1), MicroOp::write("y", 1)])
        .expect("idle");
    h.ok(a, vec![MicroOp::write("x", 1), MicroOp::write("y", 1)])
        .expect("ok");
    let b = h
        .invoke(1, vec![MicroOp::read("x"), MicroOp::read("y")])
        .expect("idle");
    h.ok(
        b,
        vec![
            MicroOp::read_int("x", Some(1)),
            MicroOp::read_int("y", None),
        ],
    )
    .expect("ok");
    let report = check(&h, &Options::default()).expect("registers");
    assert_eq!(report.keys["x"], Verdict::Linearizable);
    assert_eq!(report.valid(), Some(false));
    let failed: Vec<&str> = report.failures().map(|f| f.key.as_str()).collect();
    assert_eq!(failed, vec!["y"]);
    assert!(
        report.to_string().starts_with("NOT linearizable\nkey y:"),
        "{report}"
    );

    let mut h = History::new();
    let a = h.invoke(0, vec![MicroOp::append("x", 1)]).expect("idle");
    h.ok(a, vec![MicroOp::append("x", 1)]).expect("ok");
    let e = check(&h, &Options::default()).expect_err("not a register history");
    assert_eq!(
        e.to_string(),
        r#"T0: ["append","x",1] is not a register op"#
    );
}

#[test]
fn budget_exhaustion_is_unknown() {
    let mut h = History::new();
    let handles: Vec<_> = (0..8)
        .map(|p| h.invoke(p, w(p as i64)).expect("idle"))
        .collect();
    for (p, handle) in handles.into_iter().enumerate() {
        h.ok(handle, w(p as i64)).expect("ok");
    }
    let c = h.invoke(9, r()).expect("idle");
    h.ok(c, saw(Some(3))).expect("ok");
    let ops = partition(&h)
        .expect("registers")
        .remove("x")
        .expect("key x");
    assert_eq!(
        check_key("x", &ops, &Options { step_budget: 5 }),
        Verdict::Unknown { steps: 5 }
    );
    let report = check(&h, &Options { step_budget: 5 }).expect("registers");
    assert_eq!(report.valid(), None);
    assert_eq!(
        check_key("x", &ops, &Options::default()),
        Verdict::Linearizable
    );
}

#[test]
fn timed_out_writes_nobody_read_do_not_multiply_states() {
    // 300 rounds of 6 concurrent writes, a read of the round's last, and every 10th
    // round a write that times out and is never read. Then a read of a value nobody
    // wrote: the search must prove it wrong, within the default budget.
    let mut h = History::new();
    for round in 0..300i64 {
        let mut writes = Vec::new();
        for p in 0..6u64 {
            let v = round * 10 + p as i64;
            writes.push((h.invoke(p, w(v)).expect("idle"), v));
        }
        if round % 10 == 0 {
            let _timed_out = h.invoke(100 + round as u64, w(-round)).expect("idle");
        }
        let last = writes.last().map(|(_, v)| *v);
        for (handle, v) in writes {
            h.ok(handle, w(v)).expect("ok");
        }
        let read = h.invoke(50, r()).expect("idle");
        h.ok(read, saw(last)).expect("ok");
    }
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let read = h.invoke(50, r()).expect("idle");
    h.ok(read, saw(Some(123_456))).expect("ok");
    let Verdict::NotLinearizable(f) = verdict(&h) else {
        panic!("a read of a value nobody wrote")
    };
    assert_eq!(f.linearized.len(), 300 * 7);
    let text = f.to_string();
    assert!(text.contains("\n    … 2088 earlier ops\n"), "{text}");
    assert!(
        text.ends_with("r 123456 cannot be placed before it returns"),
        "{text}"
    );
}

#[test]
fn a_deleted_register_reads_nil_and_an_old_value_after_the_delete_is_caught() {
    let del = || vec![MicroOp::delete("x")];
    // w 1, delete, then read nil: linearizable.
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.ok(a, w(1)).expect("ok");
    let b = h.invoke(1, del()).expect("idle");
    h.ok(b, del()).expect("ok");
    let c = h.invoke(2, r()).expect("idle");
    h.ok(c, saw(None)).expect("ok");
    assert_eq!(verdict(&h), Verdict::Linearizable);
    // The delete survives its own JSON as a write of null.
    let back = History::from_jsonl(&h.to_jsonl()).expect("parses");
    assert_eq!(back.to_jsonl(), h.to_jsonl());
    assert!(
        h.to_jsonl().contains(r#"["w","x",null]"#),
        "{}",
        h.to_jsonl()
    );

    // The same, but the read after the acknowledged delete sees the old value: a
    // resurrected row.
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.ok(a, w(1)).expect("ok");
    let b = h.invoke(1, del()).expect("idle");
    h.ok(b, del()).expect("ok");
    let c = h.invoke(2, r()).expect("idle");
    h.ok(c, saw(Some(1))).expect("ok");
    let Verdict::NotLinearizable(f) = verdict(&h) else {
        panic!("a read of a deleted value is not linearizable")
    };
    assert!(f.to_string().contains("w nil"), "{f}");

    // Read-your-own-delete inside one operation: [delete, read nil] is fine, [delete,
    // read 1] is not.
    for (seen, ok) in [(None, true), (Some(1), false)] {
        let mut h = History::new();
        let a = h.invoke(0, w(1)).expect("idle");
        h.ok(a, w(1)).expect("ok");
        let own = vec![MicroOp::delete("x"), MicroOp::read("x")];
        let b = h.invoke(1, own).expect("idle");
        h.ok(b, vec![MicroOp::delete("x"), MicroOp::read_int("x", seen)])
            .expect("ok");
        assert_eq!(verdict(&h) == Verdict::Linearizable, ok, "{seen:?}");
    }
}

#[test]
fn a_timed_out_delete_is_kept_only_when_someone_reads_nil() {
    // w 1 ok; delete info; read nil ok: only the info delete explains the nil read.
    let mut h = History::new();
    let a = h.invoke(0, w(1)).expect("idle");
    h.ok(a, w(1)).expect("ok");
    let b = h.invoke(1, vec![MicroOp::delete("x")]).expect("idle");
    h.info(b).expect("info");
    let c = h.invoke(2, r()).expect("idle");
    h.ok(c, saw(None)).expect("ok");
    assert_eq!(verdict(&h), Verdict::Linearizable);
}
