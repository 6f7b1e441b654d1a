//! The arguments a sweep shares with Seedbank's own CLI (moved here from `scenarios`,
//! which re-exports them): seed ranges, shards, and the jobs of a sweep. Pure
//! functions of their input (the completion index aside), in both worlds.

use std::ops::Range;
use std::path::PathBuf;

/// `merge`'s arguments, the same in Seedbank's CLI and a user's chaos binary.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MergeArgs {
    /// The shards' `sweep --json` files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write a JUnit XML report here (one testsuite per scenario, one testcase per
    /// seed; for CI dashboards).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the merged runs here, as one sweep's JSON lines.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The environment variable a Kubernetes Indexed Job sets in each pod: its completion
/// index, 0-based. `--shard auto/N` takes shard `JOB_COMPLETION_INDEX + 1` of N.
pub const COMPLETION_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// Parses `A..B` (B exclusive) or `N` (= `0..N`).
pub fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|e| format!("bad seed {x:?} in {s:?}: {e}"))
    };
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a >= b {
                return Err(format!("empty seed range {s:?} (B is exclusive)"));
            }
            Ok(a..b)
        }
        None => Ok(0..num(s)?),
    }
}

/// Parses `K/N` with 1 ≤ K ≤ N, or `auto/N`: K from `JOB_COMPLETION_INDEX` (0-based).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    parse_shard_with(s, std::env::var(COMPLETION_INDEX_VAR).ok())
}

/// [`parse_shard`] with the completion index given (`None`: not set).
pub fn parse_shard_with(s: &str, completion_index: Option<String>) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard wants K/N or auto/N, got {s:?}"))?;
    let n: u64 = n.parse().map_err(|e| format!("bad shard {s:?}: {e}"))?;
    let k: u64 = if k == "auto" {
        let index = completion_index.ok_or_else(|| {
            format!("--shard {s}: {COMPLETION_INDEX_VAR} is not set (a Kubernetes Indexed Job sets it; else give K/N)")
        })?;
        let index: u64 = index.trim().parse().map_err(|e| {
            format!("--shard {s}: {COMPLETION_INDEX_VAR}={index:?} is not a number: {e}")
        })?;
        if index >= n {
            return Err(format!(
                "--shard {s}: {COMPLETION_INDEX_VAR}={index} but there are {n} shards (indexes 0..{n}): does the Job's completions match N?"
            ));
        }
        index + 1
    } else {
        k.parse().map_err(|e| format!("bad shard {s:?}: {e}"))?
    };
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard K/N needs 1 <= K <= N, got {s:?}"));
    }
    Ok((k, n))
}

/// The jobs of a sweep: every (scenario, seed), seeds of this shard only (shard `k` of
/// `n` takes the seeds `s` with `s % n == k - 1`).
pub fn jobs(names: &[String], seeds: Range<u64>, shard: Option<(u64, u64)>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for seed in seeds {
        if let Some((k, n)) = shard {
            if seed % n != k - 1 {
                continue;
            }
        }
        for name in names {
            out.push((name.clone(), seed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_and_shards_parse_and_split_the_work() {
        assert_eq!(parse_seeds("3..7"), Ok(3..7));
        assert_eq!(parse_seeds("5"), Ok(0..5));
        assert!(parse_seeds("7..3").is_err());
        assert!(parse_seeds("x..3").is_err());
        assert_eq!(parse_shard_with("2/3", None), Ok((2, 3)));
        assert!(parse_shard_with("0/3", None).is_err());
        assert!(parse_shard_with("4/3", None).is_err());
        // A Kubernetes Indexed Job's pod: JOB_COMPLETION_INDEX is 0-based, K is 1-based.
        assert_eq!(parse_shard_with("auto/3", Some("0".into())), Ok((1, 3)));
        assert_eq!(parse_shard_with("auto/3", Some("2".into())), Ok((3, 3)));
        let unset = parse_shard_with("auto/3", None).unwrap_err();
        assert!(unset.contains("JOB_COMPLETION_INDEX is not set"), "{unset}");
        let beyond = parse_shard_with("auto/3", Some("3".into())).unwrap_err();
        assert!(beyond.contains("completions match N"), "{beyond}");
        assert!(parse_shard_with("auto/3", Some("x".into())).is_err());
        let names = vec!["a".to_string()];
        let all: Vec<u64> = (1..=3)
            .flat_map(|k| jobs(&names, 0..10, Some((k, 3))))
            .map(|(_, s)| s)
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..10).collect::<Vec<_>>(),
            "shards partition the seeds"
        );
    }
}
