//! The history model: the Jepsen JSON-lines format both ways, and its invariants.

use super::{append, read};
use crate::history::{History, HistoryError, MicroOp, Outcome, ReadValue};

const SAMPLE: &str = r#"{"index":0,"type":"invoke","process":1,"value":[["append","x",1],["r","x",null]]}
{"index":1,"type":"invoke","process":2,"value":[["w","y",3],["r","y",null],["cas","y",[3,4]]]}
{"index":2,"type":"ok","process":1,"value":[["append","x",1],["r","x",[1,2]]]}
{"index":3,"type":"info","process":2,"value":[["w","y",3],["r","y",null],["cas","y",[3,4]]],"time":1500}
{"index":4,"type":"invoke","process":1,"value":[["r","y",null]]}
{"index":5,"type":"ok","process":1,"value":[["r","y",3]]}
{"index":6,"type":"invoke","process":3,"value":[["r","x",null]]}
{"index":7,"type":"fail","process":3,"value":[["r","x",null]]}
"#;

#[test]
fn jepsen_format_round_trips() {
    let h = History::from_jsonl(SAMPLE).expect("a valid history");
    assert_eq!(h.to_jsonl(), SAMPLE);
    assert_eq!(h.ops()[3].time_ns, Some(1500));
    assert_eq!(h.ops()[2].value[1], read("x", &[1, 2]));
    assert_eq!(
        h.ops()[5].value[0],
        MicroOp::Read("y".into(), Some(ReadValue::Int(3)))
    );
    let outcomes: Vec<(u64, Outcome, Option<u64>)> = h
        .txns()
        .iter()
        .map(|t| (t.id, t.outcome, t.complete))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (0, Outcome::Ok, Some(2)),
            (1, Outcome::Info, Some(3)),
            (4, Outcome::Ok, Some(5)),
            (6, Outcome::Fail, Some(7))
        ]
    );
}

#[test]
fn builder_writes_what_the_parser_reads() {
    let mut h = History::new();
    h.set_time(Some(10));
    let a = h
        .invoke(7, vec![append("k", -1), MicroOp::read("k")])
        .expect("idle");
    h.set_time(None);
    let b = h
        .invoke(8, vec![MicroOp::write("r", 5), MicroOp::cas("r", 5, 6)])
        .expect("idle");
    h.ok(a, vec![append("k", -1), read("k", &[-1])])
        .expect("matches");
    h.info(b).expect("outstanding");
    let _never = h
        .invoke(8, vec![MicroOp::read("r")])
        .expect("a process is free after info");
    let text = h.to_jsonl();
    assert!(text.starts_with(
        "{\"index\":0,\"type\":\"invoke\",\"process\":7,\"value\":[[\"append\",\"k\",-1],[\"r\",\"k\",null]],\"time\":10}\n"
    ));
    let back = History::from_jsonl(&text).expect("parses");
    assert_eq!(back.ops(), h.ops());
    assert_eq!(
        back.txns().last().map(|t| (t.outcome, t.complete)),
        Some((Outcome::Info, None))
    );
}

#[test]
fn integer_keys_and_extra_fields_are_accepted() {
    let line =
        r#"{"index":3,"type":"invoke","f":"txn","process":0,"value":[["append",5,1],["r",-2,[]]]}"#;
    let h = History::from_jsonl(line).expect("parses");
    assert_eq!(h.ops()[0].value, vec![append("5", 1), read("-2", &[])]);
    assert_eq!(h.ops()[0].index, 3);
}

fn parse_error(text: &str) -> String {
    History::from_jsonl(text)
        .expect_err("malformed")
        .to_string()
}

#[test]
fn malformed_lines_name_the_line_and_the_problem() {
    let inv = r#"{"index":0,"type":"invoke","process":1,"value":[["append","x",1]]}"#;
    let cases = [
        ("{\"index\":0", "line 1: EOF while parsing"),
        (
            r#"{"index":0,"type":"begin","process":1,"value":[]}"#,
            "line 1: unknown variant `begin`",
        ),
        (
            r#"{"index":0,"type":"invoke","process":"nemesis","value":[]}"#,
            "line 1: invalid type: string \"nemesis\"",
        ),
        (
            r#"{"index":0,"type":"invoke","process":1,"value":[["inc","x",1]]}"#,
            "line 1: unknown micro-op function \"inc\"",
        ),
        (
            r#"{"index":0,"type":"invoke","process":1,"value":[["append","x"]]}"#,
            "line 1: a micro-op is [f, key, value]",
        ),
        (
            r#"{"index":0,"type":"invoke","process":1,"value":[["append",1.5,1]]}"#,
            "line 1: a key is a string or an integer",
        ),
        (
            r#"{"index":0,"type":"invoke","process":1,"value":[["r","x",["a"]]]}"#,
            "line 1: an element of [\"r\", \"x\", …] is an integer",
        ),
        (
            r#"{"index":0,"type":"invoke","process":1,"value":[["cas","x",[1]]]}"#,
            "line 1: cas on \"x\" takes [old, new]",
        ),
    ];
    for (text, want) in cases {
        let got = parse_error(text);
        assert!(
            got.starts_with(want),
            "{text}\n  got:  {got}\n  want: {want}…"
        );
    }
    let two = |second: &str| format!("{inv}\n\n{second}\n");
    assert_eq!(
        parse_error(&two(
            r#"{"index":1,"type":"invoke","process":1,"value":[]}"#
        )),
        "line 3: event 1: process 1 invokes while its event 0 is outstanding"
    );
    assert_eq!(
        parse_error(&two(r#"{"index":1,"type":"ok","process":2,"value":[]}"#)),
        "line 3: event 1: process 2 completes an operation it never invoked"
    );
    assert_eq!(
        parse_error(&two(
            r#"{"index":0,"type":"ok","process":1,"value":[["append","x",1]]}"#
        )),
        "line 3: index 0 follows index 0: indices must increase"
    );
    assert_eq!(
        parse_error(&two(
            r#"{"index":1,"type":"ok","process":1,"value":[["append","x",2]]}"#
        )),
        r#"line 3: event 1 does not complete invocation 0: micro-op 0 is ["append","x",2], invoked as ["append","x",1]"#
    );
    assert_eq!(
        parse_error(&two(r#"{"index":1,"type":"ok","process":1,"value":[]}"#)),
        "line 3: event 1 does not complete invocation 0: 0 micro-ops completed, 1 invoked"
    );
}

#[test]
fn builder_enforces_one_outstanding_op_per_process() {
    let mut h = History::new();
    let a = h.invoke(1, vec![append("x", 1)]).expect("idle");
    assert_eq!(
        h.invoke(1, vec![append("x", 2)]),
        Err(HistoryError::Busy {
            index: 1,
            process: 1,
            outstanding: 0
        })
    );
    assert!(matches!(
        h.ok(a, vec![append("x", 3)]),
        Err(HistoryError::Mismatch { .. })
    ));
    // The mismatched completion was not recorded; the invocation stays outstanding.
    assert_eq!(h.ops().len(), 1);
    assert!(matches!(
        h.invoke(1, vec![]),
        Err(HistoryError::Busy { .. })
    ));
    let b = h.invoke(2, vec![]).expect("another process");
    h.fail(b).expect("outstanding");
}
