//! The child's answer to its parent sweep and the seed corpus, over the one record
//! type of every report ([`crate::report::record::RunRecord`], re-exported here): a
//! user crate's `sweep --json` lines are the lines Seedbank's own sweeps write, so
//! either's `merge` reads them.

pub use crate::report::record::{json_lines, RunRecord, SweepTag};

/// The marker before the child's one JSON result line on stdout.
pub const RESULT_MARKER: &str = "CHAOS-RESULT ";

impl RunRecord {
    /// The child's answer: the marker and the line's JSON.
    pub fn to_child_line(&self) -> String {
        let json = serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"unserializable\":{:?}}}", e.to_string()));
        format!("{RESULT_MARKER}{json}")
    }

    /// Reads a child's stdout: the last result line, if any.
    pub fn from_child_stdout(stdout: &str) -> Option<Result<RunRecord, String>> {
        let line = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(RESULT_MARKER))?;
        Some(serde_json::from_str(line).map_err(|e| format!("unreadable child result: {e}")))
    }
}

/// The corpus line `--save-failures` appends for a failed run: `SEED  # check: what`.
pub fn corpus_line(line: &RunRecord) -> String {
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
        let mut l = RunRecord::error("counter", 6, "runner", "boom\nsecond line".into());
        l.outcome = "fail".into();
        l.failed_check = Some("durability".into());
        l.message = Some("lost # write\nmore".into());
        let out = format!("noise\n{}\ntrailing noise\n", l.to_child_line());
        assert_eq!(RunRecord::from_child_stdout(&out), Some(Ok(l.clone())));
        assert_eq!(RunRecord::from_child_stdout("no marker here"), None);
        let bad = RunRecord::from_child_stdout("CHAOS-RESULT {not json");
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
            explore: false,
        };
        let json = json_lines(&[l.clone()], &tag);
        assert_eq!(json.lines().count(), 1);
        let back: RunRecord = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(back.sweep, Some(tag));
    }
}
