//! One run as a line of `sweep --json` and as the child's answer to its parent: the
//! fields of Seedbank's own `sweep --json` lines (`scenarios`' `RunRecord`) that a
//! chaos run has, under the same names, so `seedbank merge` can be taught to read them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The marker before the child's one JSON result line on stdout.
pub const RESULT_MARKER: &str = "CHAOS-RESULT ";

/// One run of one scenario at one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLine {
    /// The entry's name (what `run NAME` takes).
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// `pass`, `fail` (a check failed) or `error` (no result: the child could not
    /// start, died, or answered garbage).
    pub outcome: String,
    /// The check that failed (`durability`, `linearizability`, `elle`, `invariant`,
    /// `liveness`, `history`, `panic`, `runner`).
    pub failed_check: Option<String>,
    /// What it said.
    pub message: Option<String>,
    /// Faults that fired, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Client operations recorded, and how they ended (info also counts the ones the
    /// history ends before).
    pub operations: u64,
    /// Operations completed ok.
    pub acknowledged: u64,
    /// Operations completed fail.
    pub rejected: u64,
    /// Operations completed info, or never.
    pub indeterminate: u64,
    /// Node restarts: planned power losses and kills, fail-stop restarts, the final
    /// power loss.
    pub recoveries: u64,
    /// Virtual time the run took, ms.
    pub virtual_time_ms: f64,
    /// Wall time the run took in its process, ms.
    pub wall_time_ms: f64,
    /// The trace digest (16 hex digits) and the trace's event count.
    pub digest: String,
    /// Trace events.
    pub events: u64,
    /// The plan file the run used instead of its seed's own plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<String>,
    /// The sweep that wrote this line (`sweep --json` sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepTag>,
}

/// The sweep a `--json` line came from: its seeds before sharding, its shard, its wall
/// time (the shape of Seedbank's own sweep tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTag {
    /// The whole sweep's seeds, `from..to` (`to` exclusive).
    pub from: u64,
    /// See `from`.
    pub to: u64,
    /// This part: shard `shard` of `shards` (1-based; `1` of `1` when not sharded).
    pub shard: u64,
    /// See `shard`.
    pub shards: u64,
    /// The part's wall time, seconds.
    pub wall_s: f64,
}

impl RunLine {
    /// Whether the run did not pass.
    pub fn failed(&self) -> bool {
        self.outcome != "pass"
    }

    /// A line for a run that produced no result.
    pub fn error(scenario: &str, seed: u64, message: String) -> RunLine {
        RunLine {
            scenario: scenario.to_string(),
            seed,
            outcome: "error".into(),
            failed_check: Some("runner".into()),
            message: Some(message),
            faults: BTreeMap::new(),
            operations: 0,
            acknowledged: 0,
            rejected: 0,
            indeterminate: 0,
            recoveries: 0,
            virtual_time_ms: 0.0,
            wall_time_ms: 0.0,
            digest: String::new(),
            events: 0,
            plan_file: None,
            sweep: None,
        }
    }

    /// The first line of the message (a one-line summary).
    pub fn headline(&self) -> &str {
        self.message
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
    }

    /// The child's answer: the marker and the line's JSON.
    pub fn to_child_line(&self) -> String {
        let json = serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"unserializable\":{:?}}}", e.to_string()));
        format!("{RESULT_MARKER}{json}")
    }

    /// Reads a child's stdout: the last result line, if any.
    pub fn from_child_stdout(stdout: &str) -> Option<Result<RunLine, String>> {
        let line = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(RESULT_MARKER))?;
        Some(serde_json::from_str(line).map_err(|e| format!("unreadable child result: {e}")))
    }
}

/// `lines` as `--json` writes them: one JSON object per line, each tagged.
pub fn json_lines(lines: &[RunLine], tag: &SweepTag) -> String {
    lines
        .iter()
        .map(|r| RunLine {
            sweep: Some(tag.clone()),
            ..r.clone()
        })
        .filter_map(|r| serde_json::to_string(&r).ok())
        .map(|l| l + "\n")
        .collect()
}

/// The corpus line `--save-failures` appends for a failed run: `SEED  # check: what`.
pub fn corpus_line(line: &RunLine) -> String {
    format!(
        "{}  # {}: {}\n",
        line.seed,
        line.failed_check.as_deref().unwrap_or("?"),
        line.headline().replace('#', "")
    )
}

/// The seeds of a corpus file's text (one per line, `#` starts a comment), in order,
/// each once: what a user's suite replays.
pub fn parse_corpus(text: &str) -> Result<Vec<u64>, String> {
    let mut seeds = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let seed: u64 = line
            .parse()
            .map_err(|e| format!("line {}: bad seed {line:?}: {e}", i + 1))?;
        if !seeds.contains(&seed) {
            seeds.push(seed);
        }
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_goes_through_the_child_protocol_and_the_corpus() {
        let mut l = RunLine::error("counter", 6, "boom\nsecond line".into());
        l.outcome = "fail".into();
        l.failed_check = Some("durability".into());
        l.message = Some("lost # write\nmore".into());
        let out = format!("noise\n{}\ntrailing noise\n", l.to_child_line());
        assert_eq!(RunLine::from_child_stdout(&out), Some(Ok(l.clone())));
        assert_eq!(RunLine::from_child_stdout("no marker here"), None);
        let bad = RunLine::from_child_stdout("CHAOS-RESULT {not json");
        assert!(matches!(bad, Some(Err(_))), "{bad:?}");

        let corpus = corpus_line(&l);
        assert_eq!(corpus, "6  # durability: lost  write\n");
        let text = format!("# a comment\n{corpus}\n3\n6 # again\n");
        assert_eq!(parse_corpus(&text), Ok(vec![6, 3]));
        assert!(parse_corpus("x\n").is_err());

        let tag = SweepTag {
            from: 0,
            to: 8,
            shard: 1,
            shards: 2,
            wall_s: 1.5,
        };
        let json = json_lines(&[l.clone()], &tag);
        assert_eq!(json.lines().count(), 1);
        let back: RunLine = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(back.sweep, Some(tag));
    }
}
