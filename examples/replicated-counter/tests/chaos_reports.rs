//! The chaos commands' reports (D94) as a user runs them from this crate's binaries:
//! `merge` over two shards' `--json` equals one full sweep (records, summary) and its
//! JUnit report lists the failing seeds with this binary's reproduce line; `run
//! --trace --timeline` writes the trace and the timeline page; and the failure paths
//! of `sweep` (a child that dies: an `error` line) and `shrink` (a plan that does not
//! replay in a fresh child: exit 1), on the fixtures binary.
#![cfg(madsim)]

use seedbank::chaos::cli::record::RunRecord;
use seedbank::chaos::report::xml;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_counter-chaos");
const FIXTURES: &str = env!("CARGO_BIN_EXE_counter-chaos-fixtures");
const BUG: &str = "counter-ack-before-fsync";
const REPRODUCE: &str =
    "RUSTFLAGS=\"--cfg madsim\" cargo run -p replicated-counter --bin counter-chaos -- run";

fn cli(bin: &str, args: &[&str]) -> (i32, String) {
    let Output { status, stdout, .. } = Command::new(bin)
        .args(args)
        .output()
        .expect("start the chaos binary");
    let out = String::from_utf8_lossy(&stdout).into_owned();
    println!("$ {bin} {}\n{out}", args.join(" "));
    (status.code().unwrap_or(-1), out)
}

#[allow(clippy::disallowed_methods)] // the test's own scratch files on the host
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("counter-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[allow(clippy::disallowed_methods)] // a report the binary wrote on the host
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn records(path: &Path) -> Vec<RunRecord> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a RunRecord per line"))
        .collect()
}

/// A record without what differs between two runs of a seed: wall time, sweep tag.
fn comparable(mut r: RunRecord) -> RunRecord {
    r.wall_time_ms = 0.0;
    r.sweep = None;
    r
}

/// The summary's lines without the wall-clock totals.
fn summary(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("counter") || l.contains(" runs, "))
        .map(|l| l.split(" failed").next().unwrap_or(l).to_string())
        .collect()
}

#[test]
fn merged_shards_equal_one_full_sweep_and_the_junit_names_this_binary() {
    let dir = scratch("merge");
    let p = |n: &str| dir.join(n).to_str().expect("utf-8 path").to_string();
    let base = ["sweep", "counter", BUG, "--seeds", "0..8", "--jobs", "2"];
    let (full_code, full_out) = cli(BIN, &[&base[..], &["--json", &p("full.json")]].concat());
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let json = p(&format!("s{k}.json"));
        let (_, _) = cli(
            BIN,
            &[&base[..], &["--shard", &shard, "--json", &json]].concat(),
        );
    }
    let (code, out) = cli(
        BIN,
        &[
            "merge",
            &p("s1.json"),
            &p("s2.json"),
            "--junit",
            &p("junit.xml"),
            "--json",
            &p("merged.json"),
        ],
    );
    assert_eq!(full_code, 1, "the planted bug is found in 8 seeds");
    assert_eq!(code, full_code, "merge exits as the full sweep did");
    let full: Vec<RunRecord> = records(&dir.join("full.json"));
    let merged: Vec<RunRecord> = records(&dir.join("merged.json"));
    assert_eq!(full.len(), 16);
    assert_eq!(
        merged.into_iter().map(comparable).collect::<Vec<_>>(),
        full.iter().cloned().map(comparable).collect::<Vec<_>>(),
        "the merged runs are the full sweep's"
    );
    assert_eq!(summary(&out), summary(&full_out), "{out}\n---\n{full_out}");
    assert!(!out.contains("cargo sim"), "a Seedbank alias in\n{out}");

    let doc = read(&dir.join("junit.xml"));
    let root = xml::parse(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    let failed: Vec<&RunRecord> = full.iter().filter(|r| r.failed()).collect();
    assert_eq!(root.attr("failures"), failed.len().to_string());
    for r in failed {
        let reproduce = format!("{REPRODUCE} {BUG} --seed {}", r.seed);
        assert!(
            out.contains(&reproduce),
            "merge prints `{reproduce}`:\n{out}"
        );
        let case = root
            .all("testsuite")
            .filter(|s| s.attr("name") == BUG)
            .flat_map(|s| s.all("testcase"))
            .find(|c| c.attr("name") == format!("seed {}", r.seed))
            .expect("a test case per failing seed");
        let failure = case.all("failure").next().expect("a <failure>");
        assert!(
            failure.text.contains(&format!("reproduce: {reproduce}")),
            "{}",
            failure.text
        );
    }
    assert!(!doc.contains("cargo sim"), "{doc}");
}

#[test]
fn run_writes_the_trace_and_a_timeline_of_the_history_and_the_faults() {
    let dir = scratch("timeline");
    let p = |n: &str| dir.join(n).to_str().expect("utf-8 path").to_string();
    // Seed 1's plan has faults that fire on the counter (the timeline must draw them).
    let args = [
        "run",
        "counter",
        "--seed",
        "1",
        "--history",
        &p("h.jsonl"),
        "--trace",
        &p("t.jsonl"),
        "--timeline",
        &p("t.html"),
    ];
    let (code, out) = cli(BIN, &args);
    assert_eq!(code, 0, "{out}");
    let trace = read(&dir.join("t.jsonl"));
    let events: Vec<serde_json::Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).expect("a trace event per line"))
        .collect();
    assert!(events.len() > 100, "{} events", events.len());
    assert!(out.contains(&format!(
        "trace: {} ({} events)",
        p("t.jsonl"),
        events.len()
    )));

    let html = read(&dir.join("t.html"));
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..80]);
    assert!(html.contains("All checks passed"));
    // The reproduce line, HTML-escaped (`&quot;--cfg madsim&quot;`).
    let repro = format!("{REPRODUCE} counter --seed 1").replace('"', "&quot;");
    assert!(html.contains(&repro), "no `{repro}` on the page");
    // Every client operation of the history is drawn: one per invocation.
    let history = read(&dir.join("h.jsonl"));
    let invocations = history.lines().filter(|l| l.contains("\"invoke\"")).count();
    assert!(invocations > 0);
    assert_eq!(
        html.matches("\"process\":").count(),
        invocations,
        "{history}"
    );
    // Every fault kind that fired is named, and the power losses are drawn as marks.
    let faults = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("faults fired: "))
        .expect("the run prints its faults");
    assert!(
        !faults.is_empty(),
        "seed 1 fired no fault: pick another seed"
    );
    for f in faults.split(", ") {
        let (kind, n) = f.split_once(' ').expect("KIND N");
        assert!(
            html.contains(&format!("{kind}={n}")),
            "{kind} not on the page"
        );
    }
    if faults.contains("node.crash") {
        assert!(html.contains("\"kind\":\"power-loss\""));
    }
    if faults.contains("net.partition") {
        let drawn = ["\"kind\":\"partition\"", "\"kind\":\"one-way\""];
        assert!(drawn.iter().any(|k| html.contains(k)), "no partition drawn");
    }
}

#[test]
fn a_child_that_dies_is_an_error_line_of_the_sweep() {
    let dir = scratch("abort");
    let json = dir.join("runs.json");
    let args = [
        "sweep",
        "aborts-at-seed-3",
        "--seeds",
        "0..5",
        "--jobs",
        "2",
    ];
    let (code, out) = cli(
        FIXTURES,
        &[&args[..], &["--json", json.to_str().unwrap()]].concat(),
    );
    assert_eq!(code, 1, "{out}");
    let lines = records(&json);
    assert_eq!(lines.len(), 5);
    for r in &lines {
        if r.seed == 3 {
            assert_eq!(r.outcome, "error", "{r:?}");
            assert_eq!(r.failed_check.as_deref(), Some("runner"));
            assert!(r.headline().contains("died"), "{r:?}");
        } else {
            assert_eq!(r.outcome, "pass", "{r:?}");
        }
    }
    assert!(
        out.contains("FAILED aborts-at-seed-3 seed 3 [runner]: the run died"),
        "{out}"
    );
}

#[test]
fn shrink_exits_1_when_its_plan_does_not_replay_in_a_fresh_child() {
    let dir = scratch("noreplay");
    let plan = dir.join("plan.json");
    let args = ["shrink", "fails-only-in-process", "--seed", "0", "--out"];
    let (code, out) = cli(FIXTURES, &[&args[..], &[plan.to_str().unwrap()]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed invariant"), "{out}");
    assert!(out.contains("replayed in a fresh process: pass"), "{out}");
    assert!(
        out.contains("does NOT replay the invariant failure"),
        "{out}"
    );
}

#[test]
fn a_sweep_reports_the_scenarios_marks_and_fails_a_missed_promise_merged_or_not() {
    let (code, out) = cli(
        BIN,
        &["sweep", "counter", "--seeds", "0..12", "--jobs", "2"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("marks reached: "), "{out}");
    assert!(
        out.contains("counter.restart_recovered_increments  [must reach within 10]"),
        "the promise is shown with its mark: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("never reached:")),
        "the counter's unreached marks are named: {out}"
    );
    assert!(
        !out.contains("raft.") && !out.contains("lsm."),
        "only the counter's layer is listed: {out}"
    );

    // A promise no run keeps: exit 1 in the sweep, and in the merge of its shards.
    let dir = scratch("promise");
    let mut shards = Vec::new();
    for k in 1..=2 {
        let json = dir.join(format!("shard-{k}.json"));
        let args = [
            "sweep",
            "promises-the-unreachable",
            "--seeds",
            "0..4",
            "--jobs",
            "2",
            "--shard",
        ];
        let shard = format!("{k}/2");
        let (code, out) = cli(
            FIXTURES,
            &[&args[..], &[&shard, "--json", json.to_str().unwrap()]].concat(),
        );
        assert_eq!(code, 0, "a shard alone does not judge a promise: {out}");
        shards.push(json);
    }
    let (code, out) = cli(
        FIXTURES,
        &["sweep", "promises-the-unreachable", "--seeds", "0..4"],
    );
    assert_eq!(code, 1, "{out}");
    let missed = "MUST-REACH MISSED: counter.duplicate_increment_acknowledged_again";
    assert!(out.contains(missed), "{out}");
    let files: Vec<&str> = shards.iter().map(|p| p.to_str().unwrap()).collect();
    let (code, merged) = cli(FIXTURES, &[&["merge"][..], &files].concat());
    assert_eq!(code, 1, "{merged}");
    assert!(merged.contains(missed), "{merged}");
}
