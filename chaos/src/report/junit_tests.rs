//! The JUnit writer's escaping and shape, read back by the strict reader ([`xml`]),
//! which itself is shown to refuse what is not well-formed.

use super::super::record::{Catalogue, Promises, RunRecord};
use super::super::xml::{self, Element};
use super::*;
use sim_runtime::cover::must_reach;

/// A scenario `bitrot` that promises `fs.bitflip.read` within 10 seeds, replayed with
/// `cargo sim replay` (Seedbank's own CLI's reproduce command).
fn promises(name: &str) -> Option<Promises> {
    (name == "bitrot").then(|| Promises {
        must_reach: vec![must_reach("fs.bitflip.read", 10)],
        universe: ["fs.bitflip.read", "fs.torn"].into_iter().collect(),
    })
}

fn cat() -> Catalogue<'static> {
    Catalogue {
        replay: "cargo sim replay".into(),
        promises: &promises,
    }
}

fn run(scenario: &str, seed: u64, outcome: &str, message: &str) -> RunRecord {
    let mut r = RunRecord::error(scenario, seed, "durability", message.into());
    r.outcome = outcome.into();
    r.wall_time_ms = 1500.0;
    if outcome == "pass" {
        r.failed_check = None;
        r.message = None;
    }
    r
}

fn suites(doc: &str) -> Element {
    xml::parse(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

#[test]
fn the_reader_refuses_what_is_not_well_formed() {
    for bad in [
        "<a>",
        "<a></b>",
        "<a>x & y</a>",
        "<a b=\"<\"/>",
        "<a b=c/>",
        "<a b=\"1\" b=\"2\"/>",
        "<a>\u{1b}[31m</a>",
        "<a>&#27;</a>",
        "<a>&nbsp;</a>",
        "<a/><b/>",
        "<a><!-- c --></a>",
        "<a>]]></a>",
    ] {
        assert!(xml::parse(bad).is_err(), "accepted {bad:?}");
    }
    let ok = suites("<?xml version=\"1.0\"?>\n<a x='1' y=\"&lt;&#10;\"><b/>t&amp;u</a>\n");
    assert_eq!(ok.attr("y"), "<\n");
    assert_eq!(ok.text, "t&u");
    assert_eq!(ok.children.len(), 1);
}

#[test]
fn escaping_round_trips_every_hostile_character() {
    let hostile = "a<b>&\"c\"'d'\n\ttab\r ]]> \u{1b}[31mred\u{0} \u{FFFE} ü 🦀";
    let doc = format!("<x v=\"{}\">{}</x>", escape(hostile), escape_text(hostile));
    let x = suites(&doc);
    let expected = "a<b>&\"c\"'d'\n\ttab\r ]]> \u{FFFD}[31mred\u{FFFD} \u{FFFD} ü 🦀";
    assert_eq!(x.attr("v"), expected);
    assert_eq!(x.text, expected);
}

#[test]
fn one_suite_per_scenario_one_case_per_seed_failures_carry_check_and_reproduce() {
    let records = vec![
        run("demo-unknown-as-acked", 0, "pass", ""),
        run(
            "demo-unknown-as-acked",
            1,
            "fail",
            "lost write <k=3> & \"more\"\nsecond line",
        ),
        run("demo-unknown-as-acked", 2, "error", "the run died"),
        run("bitrot", 0, "pass", ""),
    ];
    let doc = render(&records, &cat());
    let root = suites(&doc);
    assert_eq!(root.name, "testsuites");
    assert_eq!(
        (
            root.attr("tests"),
            root.attr("failures"),
            root.attr("errors")
        ),
        ("5", "1", "1"),
        "4 seeds and bitrot's promises case (skipped: 1 seed judges none)"
    );
    assert_eq!(root.attr("skipped"), "1");
    let names: Vec<&str> = root.all("testsuite").map(|s| s.attr("name")).collect();
    assert_eq!(names, ["bitrot", "demo-unknown-as-acked"]);
    let demo = root.all("testsuite").nth(1).expect("the demo's suite");
    assert_eq!(
        (
            demo.attr("tests"),
            demo.attr("failures"),
            demo.attr("errors")
        ),
        ("3", "1", "1")
    );
    assert_eq!(demo.attr("time"), "4.500");
    let cases: Vec<&Element> = demo.all("testcase").collect();
    assert_eq!(cases[1].attr("name"), "seed 1");
    assert_eq!(cases[1].attr("classname"), "demo-unknown-as-acked");
    let failure = cases[1].all("failure").next().expect("a <failure>");
    assert_eq!(failure.attr("type"), "durability");
    assert_eq!(
        failure.attr("message"),
        "durability: lost write <k=3> & \"more\""
    );
    assert!(failure.text.contains("second line"), "{}", failure.text);
    assert!(
        failure
            .text
            .contains("reproduce: cargo sim replay demo-unknown-as-acked --seed 1"),
        "{}",
        failure.text
    );
    assert_eq!(cases[2].all("error").count(), 1);
    assert_eq!(cases[0].children.len(), 0, "a pass is an empty case");
    // Properties come before the cases (Jenkins' schema orders them so).
    assert_eq!(demo.children[0].name, "properties");
}

#[test]
fn missed_promises_fail_their_case_and_reached_ones_pass() {
    let sc = promises("bitrot").expect("stated above");
    let m = sc.must_reach[0];
    let mut records: Vec<RunRecord> = (0..m.within)
        .map(|seed| run("bitrot", seed, "pass", ""))
        .collect();
    let root = suites(&render(&records, &cat()));
    let case = |root: &Element| {
        root.all("testsuite")
            .flat_map(|s| s.all("testcase"))
            .find(|c| c.attr("name") == PROMISES_CASE)
            .cloned()
            .expect("the promises case")
    };
    let missed = case(&root);
    let failure = missed
        .all("failure")
        .next()
        .expect("a missed promise fails");
    assert!(failure.text.contains(m.mark), "{}", failure.text);
    assert_eq!(root.attr("failures"), "1");
    records[7].marks.insert(m.mark.to_string(), 1);
    let root = suites(&render(&records, &cat()));
    assert!(case(&root).children.is_empty(), "reached: the case passes");
    assert_eq!(root.attr("failures"), "0");
}
