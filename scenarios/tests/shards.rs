//! A sweep split across machines (issue 18, D74): three `seedbank sweep --shard K/3`
//! processes, then `seedbank merge`, print the same summary as one full sweep of the
//! same seeds — runs, failures, operations, virtual time, faults, coverage marks with
//! their first seeds, must-reach promises (judged only over the merged runs) — and the
//! same exit status; the JUnit report has a case per seed and the failures. Shards that
//! do not fit together (a shard missing, one given twice, a seed twice) are refused
//! with the seeds named.
#![cfg(madsim)]

use scenarios::runner::xml;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_seedbank");

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seedbank-shards-{tag}-{}", std::process::id()));
    make_dir(&dir);
    dir
}

#[allow(clippy::disallowed_methods)] // the test's own scratch files
fn make_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch dir");
}

#[allow(clippy::disallowed_methods)] // the test's own scratch files
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[allow(clippy::disallowed_methods)] // the test's own scratch files
fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `sweep` of `scenarios` over `seeds` (a shard of it with `shard`), JSON to `json`.
fn sweep(scenarios: &[&str], seeds: &str, shard: Option<&str>, json: &Path) -> Command {
    let mut c = Command::new(EXE);
    c.arg("sweep")
        .args(scenarios)
        .args(["--seeds", seeds, "--jobs", "1", "--json"])
        .arg(json);
    if let Some(s) = shard {
        c.args(["--shard", s]);
    }
    c
}

/// The summary of a sweep's or merge's stdout without its wall-clock figures: from the
/// table's header on, each row without its `cpu s` and `seeds/s` columns, the last line
/// without wall time and rates. (A sweep piped prints each failure as it happens too,
/// before the table.)
fn summary(stdout: &[u8]) -> String {
    let s = String::from_utf8_lossy(stdout);
    let from = s
        .find("scenario ")
        .unwrap_or_else(|| panic!("no summary in:\n{s}"));
    s[from..]
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if l.contains(" s wall: ") {
                l.split(" s wall")
                    .next()
                    .unwrap_or(l)
                    .rsplit_once(", ")
                    .map_or(l, |x| x.0)
                    .to_string()
            } else if !l.starts_with(' ') && cols.len() == 7 {
                cols[..5].join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What [`shards_and_full`] ran.
struct Swept {
    files: Vec<PathBuf>,
    shards: Vec<Output>,
    full: Output,
    merged: Output,
    junit: String,
}

/// Runs N=3 shards as separate processes at once, then one full sweep of the same
/// seeds; merges the shards with `--junit`.
fn shards_and_full(tag: &str, scenarios: &[&str], seeds: &str) -> Swept {
    let dir = scratch(tag);
    let files: Vec<PathBuf> = (1..=3)
        .map(|k| dir.join(format!("shard-{k}.jsonl")))
        .collect();
    let children: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            sweep(scenarios, seeds, Some(&format!("{}/3", i + 1)), f)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    let shards: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("a shard"))
        .collect();
    for (i, out) in shards.iter().enumerate() {
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "shard {} did not finish:\n{}",
            i + 1,
            text(out)
        );
    }
    let full = sweep(scenarios, seeds, None, &dir.join("full.jsonl"))
        .output()
        .expect("run the full sweep");
    let junit = dir.join("junit.xml");
    let merged = Command::new(EXE)
        .arg("merge")
        .args(&files)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("run merge");
    let junit = if junit.exists() {
        read(&junit)
    } else {
        String::new()
    };
    Swept {
        files,
        shards,
        full,
        merged,
        junit,
    }
}

/// (testcases named `seed N`, their failures + errors) of a JUnit document.
fn seed_cases(doc: &str) -> (usize, usize) {
    let root = xml::parse(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    assert_eq!(root.name, "testsuites");
    let cases: Vec<&xml::Element> = root
        .all("testsuite")
        .flat_map(|s| s.all("testcase"))
        .filter(|c| c.attr("name").starts_with("seed "))
        .collect();
    let failed = cases
        .iter()
        .filter(|c| c.all("failure").chain(c.all("error")).count() > 0)
        .count();
    (cases.len(), failed)
}

#[test]
fn three_shards_merged_print_what_one_full_sweep_prints() {
    // crash-durability promises marks within 3 seeds: no shard of 0..6 holds all of
    // seeds 0..3, so a shard leaves them unjudged and the merged runs judge them, as
    // the full sweep does.
    let s = shards_and_full("clean", &["crash-durability"], "0..6");
    assert_eq!(s.full.status.code(), Some(0), "{}", text(&s.full));
    assert_eq!(s.merged.status.code(), Some(0), "{}", text(&s.merged));
    let (want, got) = (summary(&s.full.stdout), summary(&s.merged.stdout));
    assert_eq!(got, want, "merged:\n{got}\nfull:\n{want}");
    assert!(
        want.contains("first seed"),
        "coverage marks are in it:\n{want}"
    );
    assert!(
        !want.contains("not judged"),
        "0..6 judges every promise:\n{want}"
    );
    let lone = summary(&s.shards[0].stdout);
    assert!(
        !lone.contains("MISSED"),
        "a shard judges no promise:\n{lone}"
    );
    assert_eq!(seed_cases(&s.junit), (6, 0));
    shards_that_do_not_fit_together_are_refused_naming_the_seeds(&s.files);
}

#[test]
fn a_failing_seed_fails_the_merge_and_shows_in_junit() {
    let s = shards_and_full("demo", &["demo-unknown-as-acked"], "0..6");
    assert_eq!(s.full.status.code(), Some(1), "{}", text(&s.full));
    assert_eq!(s.merged.status.code(), Some(1), "{}", text(&s.merged));
    let (want, got) = (summary(&s.full.stdout), summary(&s.merged.stdout));
    assert_eq!(got, want, "merged:\n{got}\nfull:\n{want}");
    let failures = want.lines().filter(|l| l.starts_with("FAILED ")).count();
    assert!(
        failures > 0,
        "the planted bug is found on early seeds:\n{want}"
    );
    assert!(
        want.contains("reproduce: cargo sim replay demo-unknown-as-acked --seed"),
        "{want}"
    );
    assert_eq!(seed_cases(&s.junit), (6, failures));
    assert!(s
        .junit
        .contains("reproduce: cargo sim replay demo-unknown-as-acked --seed"));
}

/// A shard missing, one given twice, a seed twice, a seed in the wrong shard's file:
/// each refused (exit 2) with the seeds or files named.
fn shards_that_do_not_fit_together_are_refused_naming_the_seeds(files: &[PathBuf]) {
    let dir = files[0].parent().expect("scratch dir");
    let merge = |files: &[&PathBuf]| {
        let out = Command::new(EXE)
            .arg("merge")
            .args(files)
            .output()
            .expect("merge");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // A gap: shard 2/3 (seeds 1 and 4) left out.
    let gap = merge(&[&files[0], &files[2]]);
    assert!(
        gap.contains("seeds of 0..6 missing (gaps: 1, 4)") && gap.contains("no file for shard 2/3"),
        "{gap}"
    );
    // The same shard twice.
    let twice = merge(&[&files[0], &files[1], &files[1], &files[2]]);
    assert!(twice.contains("are both shard 2/3"), "{twice}");
    // A seed twice: a run of shard 3 repeated in its file.
    let doubled = dir.join("shard-3-doubled.jsonl");
    let three = read(&files[2]);
    let first_line = three.lines().next().expect("a run");
    write(&doubled, &format!("{three}{first_line}\n"));
    let dup = merge(&[&files[0], &files[1], &doubled]);
    assert!(
        dup.contains("crash-durability: seeds present more than once: 2"),
        "{dup}"
    );
    // A run of shard 1 in shard 2's file.
    let moved = dir.join("shard-2-moved.jsonl");
    let line = read(&files[0])
        .lines()
        .next()
        .expect("a run")
        .replace("\"shard\":1,", "\"shard\":2,");
    write(&moved, &format!("{}{line}\n", read(&files[1])));
    let wrong = merge(&[&moved]);
    assert!(
        wrong.contains("holds crash-durability seed 0, which is not in it"),
        "{wrong}"
    );
}
