//! The shipped examples of a split sweep (deploy/k8s/sweep-job.yaml, the GitHub Actions
//! matrix in .github/workflows/sweep-matrix.yml) stay in step with the CLI: every
//! `seedbank` command in them parses with today's arguments, and the shard count is the
//! same everywhere it is written (the Job's completions and parallelism, `SHARDS`, the
//! matrix). (That the YAML parses is checked with PyYAML when the files change; this
//! crate has no YAML parser.)

use clap::Parser;
use scenarios::cli::{Cli, Command};
use std::path::PathBuf;

#[allow(clippy::disallowed_methods)] // the repository's own example files
fn example(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `seedbank …` commands of a shell script embedded in YAML: a line that runs
/// the binary, joined with its `\` continuations, shell variables given sample values.
fn commands(text: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("run: "))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let starts = l.starts_with("seedbank ") || l.starts_with("target/");
        if !starts || l.starts_with('#') {
            i += 1;
            continue;
        }
        let mut cmd = String::new();
        while i < lines.len() {
            let part = lines[i];
            cmd.push_str(part.trim_end_matches('\\'));
            cmd.push(' ');
            i += 1;
            if !part.ends_with('\\') {
                break;
            }
        }
        let cmd = cmd
            .replace("$JOB_COMPLETION_INDEX", "0")
            .replace("$SHARDS", "4")
            .replace("$SEEDS", "0..2000")
            .replace("$out", "/results/shard-0.jsonl")
            .replace("${{ matrix.shard }}", "1")
            .replace("${{ inputs.seeds }}", "0..600")
            .replace("${{ inputs.scenarios }}", "bank-cluster")
            .replace('"', "");
        let mut words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        words[0] = "seedbank".into();
        out.push(words);
    }
    out
}

fn number_after(text: &str, key: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .filter_map(|v| v.trim().trim_matches('"').parse().ok())
        .collect()
}

#[test]
fn the_kubernetes_job_runs_shards_by_completion_index_and_merges_them() {
    let yaml = example("deploy/k8s/sweep-job.yaml");
    assert!(yaml.starts_with("# EXAMPLE"), "marked as an example");
    let cmds = commands(&yaml);
    let kinds: Vec<&str> = cmds.iter().map(|c| c[1].as_str()).collect();
    assert_eq!(kinds, ["sweep", "merge"], "{cmds:?}");
    for c in &cmds {
        let cli = Cli::try_parse_from(c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        if let Command::Sweep { shard, json, .. } = cli.command {
            assert_eq!(shard.as_deref(), Some("auto/4"));
            assert!(json.is_some());
        }
    }
    let completions = number_after(&yaml, "completions:");
    let parallelism = number_after(&yaml, "parallelism:");
    let shards: Vec<u64> = yaml
        .lines()
        .zip(yaml.lines().skip(1))
        .filter(|(name, _)| name.trim() == "- name: SHARDS")
        .filter_map(|(_, v)| v.trim().strip_prefix("value:"))
        .filter_map(|v| v.trim().trim_matches('"').parse().ok())
        .collect();
    assert_eq!(completions, [4]);
    assert_eq!(parallelism, [4]);
    assert_eq!(shards, [4, 4], "each SHARDS is the Job's completions");
    assert!(yaml.contains("completionMode: Indexed"));
}

#[test]
fn the_ci_matrix_example_runs_one_shard_per_job_and_merges_to_junit() {
    let yaml = example(".github/workflows/sweep-matrix.yml");
    assert!(yaml.starts_with("# EXAMPLE"), "marked as an example");
    assert!(
        yaml.contains("\non:\n  workflow_dispatch:") && !yaml.contains("\n  push:"),
        "never started by a push: only by hand"
    );
    let cmds = commands(&yaml);
    let kinds: Vec<&str> = cmds.iter().map(|c| c[1].as_str()).collect();
    assert_eq!(kinds, ["sweep", "merge"], "{cmds:?}");
    for c in &cmds {
        Cli::try_parse_from(c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
    assert!(cmds[1].contains(&"--junit".to_string()));
    let shards = number_after(&yaml, "SHARDS:");
    let matrix = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("shard: ["))
        .expect("the matrix");
    assert_eq!(
        shards,
        [matrix.split(',').count() as u64],
        "SHARDS is the matrix's size"
    );
}
