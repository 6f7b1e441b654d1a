//! The chaos commands (D90) as a user runs them: the `counter-chaos` binary of this
//! crate, started as a child process, over a few seeds. `sweep` finds the planted bug
//! (exit 1) and passes the correct counter (exit 0), writes one JSON line per run and
//! the failing seeds to a corpus, and prints reproduce lines that name this crate's
//! own binary; `shrink` writes a plan file that `run --plan` replays;
//! `check-determinism` says 0 for the counter, 1 for a planted pid leak, 125 for a
//! scenario it does not know.
#![cfg(madsim)]

use seedbank::chaos::cli::record::RunRecord;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_counter-chaos");
const BUG: &str = "counter-ack-before-fsync";
const REPRODUCE: &str =
    "RUSTFLAGS=\"--cfg madsim\" cargo run -p replicated-counter --bin counter-chaos -- run";

fn cli(args: &[&str]) -> (i32, String) {
    let Output { status, stdout, .. } = Command::new(BIN)
        .args(args)
        .output()
        .expect("start the counter-chaos binary");
    let out = String::from_utf8_lossy(&stdout).into_owned();
    println!("$ counter-chaos {}\n{out}", args.join(" "));
    (status.code().unwrap_or(-1), out)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("counter-chaos-{}-{name}", std::process::id()));
    let _ = remove_dir_all(&dir);
    dir
}

#[allow(clippy::disallowed_methods)] // the test's own scratch files on the host
fn remove_dir_all(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(dir)
}

#[allow(clippy::disallowed_methods)] // a sweep's --json report on the host
fn read_lines(path: &std::path::Path) -> Vec<RunRecord> {
    let text = std::fs::read_to_string(path).expect("the --json file");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a RunRecord per line"))
        .collect()
}

#[test]
fn sweep_finds_the_planted_bug_writes_json_and_a_corpus_and_names_this_binary() {
    let dir = scratch("sweep");
    let json = dir.join("runs.json");
    let corpus = dir.join("seeds");
    let (code, out) = cli(&[
        "sweep",
        "counter",
        BUG,
        "--seeds",
        "0..8",
        "--jobs",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--save-failures",
        corpus.to_str().unwrap(),
    ]);
    let lines = read_lines(&json);
    assert_eq!(code, 1, "a failed run makes the sweep exit 1");
    assert_eq!(lines.len(), 16, "one line per (scenario, seed)");
    let failed: Vec<&RunRecord> = lines.iter().filter(|l| l.failed()).collect();
    assert!(
        !failed.is_empty(),
        "the planted bug was not found in 8 seeds"
    );
    for l in &lines {
        let tag = l.sweep.as_ref().expect("every line names its sweep");
        assert_eq!((tag.from, tag.to, tag.shard, tag.shards), (0, 8, 1, 1));
        assert_eq!(l.digest.len(), 16, "{l:?}");
        assert!(
            l.events > 0 && l.operations > 0 && l.virtual_time_ms > 0.0,
            "{l:?}"
        );
        if l.scenario == "counter" {
            assert_eq!(l.outcome, "pass", "the correct counter failed: {l:?}");
        }
    }
    let mut bad_seeds = Vec::new();
    for l in &failed {
        assert_eq!(l.scenario, BUG);
        assert_eq!(l.outcome, "fail");
        let check = l.failed_check.as_deref().unwrap_or("");
        assert!(["durability", "invariant"].contains(&check), "{l:?}");
        let reproduce = format!("{REPRODUCE} {BUG} --seed {}\n", l.seed);
        assert!(out.contains(&reproduce), "no `{reproduce}` in\n{out}");
        bad_seeds.push(l.seed);
    }
    assert!(!out.contains("cargo sim "), "a Seedbank alias in\n{out}");
    assert_eq!(
        seedbank::chaos::host::read_seeds(&corpus, BUG).unwrap(),
        bad_seeds,
        "the corpus holds the failing seeds"
    );
    assert_eq!(
        seedbank::chaos::host::read_seeds(&corpus, "counter").unwrap(),
        Vec::<u64>::new()
    );

    // The correct counter alone passes, and a shard takes its seeds only.
    let (code, _) = cli(&[
        "sweep",
        "counter",
        "--seeds",
        "0..8",
        "--shard",
        "2/3",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let seeds: Vec<u64> = read_lines(&json).iter().map(|l| l.seed).collect();
    assert_eq!(seeds, vec![1, 4, 7]);
    let _ = remove_dir_all(&dir);
}

#[test]
fn shrink_writes_a_plan_file_that_run_replays() {
    let dir = scratch("shrink");
    let corpus = dir.join("seeds");
    let (_, _) = cli(&[
        "sweep",
        BUG,
        "--seeds",
        "0..8",
        "--save-failures",
        corpus.to_str().unwrap(),
    ]);
    let seed = seedbank::chaos::host::read_seeds(&corpus, BUG).unwrap()[0].to_string();
    let plan = dir.join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let (code, out) = cli(&["shrink", BUG, "--seed", &seed, "--out", plan_arg]);
    assert_eq!(code, 0, "the shrunk plan did not replay in a fresh process");
    assert!(
        out.contains(&format!(
            "{REPRODUCE} {BUG} --seed {seed} --plan {plan_arg}"
        )),
        "{out}"
    );
    let shrunk: seedbank::chaos::plan::FaultPlan = seedbank::chaos::host::read_plan(&plan).unwrap();
    assert!(shrunk.size() <= 5, "shrunk to {} faults", shrunk.size());

    // "NAME seed S failed CHECK; …": the check the plan file must fail again.
    let check = out
        .split(" failed ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("shrink names the failed check")
        .to_string();
    let (code, out) = cli(&["run", BUG, "--seed", &seed, "--plan", plan_arg]);
    assert_eq!(code, 1);
    assert!(out.contains(&format!("FAILED {check}:")), "{check}: {out}");
    // The same plan with the bug off passes: the plan alone is no failure.
    let (code, out) = cli(&["replay", "counter", "--seed", &seed, "--plan", plan_arg]);
    assert_eq!(code, 0, "{out}");
    // A passing seed has nothing to shrink.
    let (code, _) = cli(&["shrink", "counter", "--seed", &seed, "--out", plan_arg]);
    assert_eq!(code, 2);
    let _ = remove_dir_all(&dir);
}

#[test]
fn check_determinism_exits_0_1_and_125_for_git_bisect() {
    let (code, out) = cli(&["check-determinism", "counter", "--seed", "3"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is deterministic"), "{out}");
    let (code, out) = cli(&[
        "check-determinism",
        "counter-leaking-the-pid",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 1, "two processes ran the pid leak alike:\n{out}");
    assert!(out.contains("is NOT deterministic"), "{out}");
    let (code, _) = cli(&["check-determinism", "no-such-scenario", "--seed", "3"]);
    assert_eq!(code, 125);
    let (code, _) = cli(&["run", "no-such-scenario", "--seed", "3"]);
    assert_eq!(code, 2);
    let (code, out) = cli(&["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(BUG) && out.contains("counter-leaking-the-pid"),
        "{out}"
    );
}
