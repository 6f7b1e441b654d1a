//! `merge` (Seedbank's `seedbank merge`, a user crate's `chaos::cli` `merge`): the
//! `--json` outputs of a sweep's shards (`sweep --shard K/N`, on other machines, CI
//! matrix jobs or the pods of a Kubernetes Indexed Job) become one sweep's records —
//! whose summary each CLI prints as its `sweep` does — and optionally a JUnit XML file
//! ([`super::junit`]) and the merged JSON lines ([`write_outputs`]).
//!
//! ## Invariants
//! - The shards fit together or nothing is merged: every line says which sweep wrote it
//!   ([`SweepTag`]); all agree on the seed range and shard count, no shard comes twice,
//!   every file holds the same scenarios, every seed of the range is present exactly
//!   once per scenario and lies in the shard its file claims. Each refusal names the
//!   files and the seeds.
//! - Must-reach promises are judged over the merged runs (D74): a promise within S seeds
//!   fails only when seeds `0..S` all ran and none reached the mark.

use super::record::{json_lines, Catalogue, RunRecord, SweepTag};
use super::{junit, xml};
use crate::host;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why shards cannot be merged (each variant's message names the files and seeds).
#[allow(missing_docs)] // the fields are what each message prints
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("{0}")]
    Io(String),
    #[error("{file}:{line}: not a sweep --json line: {why}")]
    Unreadable {
        file: String,
        line: usize,
        why: String,
    },
    #[error("{file}:{line}: the line does not say which sweep wrote it (written by `run`, or an older seedbank?); rerun the shard with `sweep --json`")]
    Untagged { file: String, line: usize },
    #[error("{file}:{line}: a sweep tag that cannot be ({why})")]
    BadTag {
        file: String,
        line: usize,
        why: String,
    },
    #[error("{file}: written by `sweep --explore`, whose runs repeat seeds: it cannot be merged")]
    Explore { file: String },
    #[error(
        "{file}:{line}: a line of another sweep part ({found}) than the file's first ({first})"
    )]
    MixedFile {
        file: String,
        line: usize,
        first: String,
        found: String,
    },
    #[error("the shards are of different sweeps: {a} is {a_part}, {b} is {b_part}")]
    OtherSweep {
        a: String,
        a_part: String,
        b: String,
        b_part: String,
    },
    #[error("{a} and {b} are both shard {shard}")]
    SameShard { a: String, b: String, shard: String },
    #[error("the shards ran different scenarios: {a} has {a_names}, {b} has {b_names}")]
    Scenarios {
        a: String,
        a_names: String,
        b: String,
        b_names: String,
    },
    #[error("{file} is shard {shard} but holds {scenario} seed {seed}, which is not in it")]
    WrongShard {
        file: String,
        shard: String,
        scenario: String,
        seed: u64,
    },
    #[error("{scenario}: seeds present more than once: {seeds}")]
    Duplicates { scenario: String, seeds: String },
    #[error("{scenario}: seeds of {range} missing (gaps: {seeds}){shards}")]
    Gaps {
        scenario: String,
        range: String,
        seeds: String,
        shards: String,
    },
    #[error("no runs in {0}")]
    Empty(String),
}

/// One shard file: its records and the sweep part they share.
struct Shard {
    file: String,
    tag: SweepTag,
    records: Vec<RunRecord>,
}

fn part(t: &SweepTag) -> String {
    format!("seeds {}..{} in {} shards", t.from, t.to, t.shards)
}

/// Reads one shard file (`None`: it holds no runs — a shard of fewer seeds than shards).
fn read_shard(path: &Path) -> Result<Option<Shard>, MergeError> {
    let file = path.display().to_string();
    let text = host::read_text(path).map_err(MergeError::Io)?;
    let mut shard: Option<Shard> = None;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = i + 1;
        let r: RunRecord = serde_json::from_str(line).map_err(|e| MergeError::Unreadable {
            file: file.clone(),
            line: line_no,
            why: e.to_string(),
        })?;
        let tag = r.sweep.clone().ok_or_else(|| MergeError::Untagged {
            file: file.clone(),
            line: line_no,
        })?;
        if tag.explore {
            return Err(MergeError::Explore { file });
        }
        if tag.from >= tag.to || tag.shards == 0 || tag.shard == 0 || tag.shard > tag.shards {
            return Err(MergeError::BadTag {
                file,
                line: line_no,
                why: format!(
                    "seeds {}..{}, shard {}/{}",
                    tag.from, tag.to, tag.shard, tag.shards
                ),
            });
        }
        let s = shard.get_or_insert_with(|| Shard {
            file: file.clone(),
            tag: tag.clone(),
            records: Vec::new(),
        });
        if (tag.from, tag.to, tag.shard, tag.shards)
            != (s.tag.from, s.tag.to, s.tag.shard, s.tag.shards)
        {
            return Err(MergeError::MixedFile {
                file,
                line: line_no,
                first: format!("{}, shard {}", part(&s.tag), s.tag.shard),
                found: format!("{}, shard {}", part(&tag), tag.shard),
            });
        }
        s.records.push(r);
    }
    Ok(shard)
}

/// How many missing seeds a refusal lists (it says how many there are in all).
const GAPS_LISTED: usize = 200;

/// Seeds as a short list: runs of consecutive seeds as `a..=b`, at most 20 items.
pub fn seed_list(seeds: &[u64]) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seeds.len() {
        let mut j = i;
        while j + 1 < seeds.len() && seeds[j + 1] == seeds[j] + 1 {
            j += 1;
        }
        items.push(if j > i {
            format!("{}..={}", seeds[i], seeds[j])
        } else {
            seeds[i].to_string()
        });
        i = j + 1;
    }
    if items.len() > 20 {
        let more = items.len() - 20;
        items.truncate(20);
        items.push(format!("… ({more} more)"));
    }
    items.join(", ")
}

/// Checks that `shards` fit together; returns all their records, sorted as a sweep
/// sorts them, and the merged sweep's tag (one part; wall time the slowest shard's).
fn fit(shards: Vec<Shard>) -> Result<(Vec<RunRecord>, SweepTag), MergeError> {
    let first = shards
        .first()
        .ok_or_else(|| MergeError::Empty("any file".into()))?;
    let mut by_index: BTreeMap<u64, &str> = BTreeMap::new();
    let names =
        |s: &Shard| -> BTreeSet<String> { s.records.iter().map(|r| r.scenario.clone()).collect() };
    let first_names = names(first);
    for s in &shards {
        if part(&s.tag) != part(&first.tag) {
            return Err(MergeError::OtherSweep {
                a: first.file.clone(),
                a_part: part(&first.tag),
                b: s.file.clone(),
                b_part: part(&s.tag),
            });
        }
        if let Some(other) = by_index.insert(s.tag.shard, &s.file) {
            return Err(MergeError::SameShard {
                a: other.to_string(),
                b: s.file.clone(),
                shard: format!("{}/{}", s.tag.shard, s.tag.shards),
            });
        }
        let these = names(s);
        if these != first_names {
            let join = |n: &BTreeSet<String>| n.iter().cloned().collect::<Vec<_>>().join(",");
            return Err(MergeError::Scenarios {
                a: first.file.clone(),
                a_names: join(&first_names),
                b: s.file.clone(),
                b_names: join(&these),
            });
        }
        if let Some(r) = s
            .records
            .iter()
            .find(|r| s.tag.shards > 1 && r.seed % s.tag.shards != s.tag.shard - 1)
        {
            return Err(MergeError::WrongShard {
                file: s.file.clone(),
                shard: format!("{}/{}", s.tag.shard, s.tag.shards),
                scenario: r.scenario.clone(),
                seed: r.seed,
            });
        }
    }
    let tag = SweepTag {
        shard: 1,
        shards: 1,
        wall_s: shards.iter().map(|s| s.tag.wall_s).fold(0.0, f64::max),
        ..first.tag.clone()
    };
    let n = first.tag.shards;
    let missing_shards: Vec<String> = (1..=n)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    let mut records: Vec<RunRecord> = shards.into_iter().flat_map(|s| s.records).collect();
    for name in &first_names {
        let mut count: BTreeMap<u64, u64> = BTreeMap::new();
        for r in records.iter().filter(|r| &r.scenario == name) {
            *count.entry(r.seed).or_insert(0) += 1;
        }
        let twice: Vec<u64> = count
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect();
        if !twice.is_empty() {
            return Err(MergeError::Duplicates {
                scenario: name.clone(),
                seeds: seed_list(&twice),
            });
        }
        // The first gaps only: a range is as large as its tag says, not as its runs.
        let present = count.range(tag.from..tag.to).count() as u64;
        let missing = (tag.to - tag.from) - present;
        let gaps: Vec<u64> = (tag.from..tag.to)
            .filter(|s| !count.contains_key(s))
            .take(GAPS_LISTED)
            .collect();
        let outside: Vec<u64> = count
            .keys()
            .filter(|s| !(tag.from..tag.to).contains(*s))
            .copied()
            .collect();
        if !gaps.is_empty() || !outside.is_empty() {
            let mut shards = String::new();
            if !missing_shards.is_empty() {
                shards = format!("; no file for shard {}", missing_shards.join(", "));
            }
            if !outside.is_empty() {
                shards.push_str(&format!(
                    "; seeds outside the range: {}",
                    seed_list(&outside)
                ));
            }
            return Err(MergeError::Gaps {
                scenario: name.clone(),
                range: format!("{}..{}", tag.from, tag.to),
                seeds: match missing {
                    0 => "none".into(),
                    n if n > gaps.len() as u64 => format!("{}; {n} seeds in all", seed_list(&gaps)),
                    _ => seed_list(&gaps),
                },
                shards,
            });
        }
    }
    records.sort_by(|a, b| (a.seed, &a.scenario).cmp(&(b.seed, &b.scenario)));
    Ok((records, tag))
}

/// Reads and fits `files` together.
pub fn merge(files: &[PathBuf]) -> Result<(Vec<RunRecord>, SweepTag), MergeError> {
    let mut shards = Vec::new();
    let mut empty = Vec::new();
    for f in files {
        match read_shard(f)? {
            Some(s) => shards.push(s),
            None => empty.push(f.display().to_string()),
        }
    }
    if shards.is_empty() {
        return Err(MergeError::Empty(empty.join(", ")));
    }
    fit(shards)
}

/// Writes the merged outputs: the JUnit XML document (`cat` names the reproduce
/// command and the promises), read back by the strict reader first so an escaping bug
/// is an error rather than a report a dashboard drops; and the merged JSON lines,
/// tagged as one sweep.
pub fn write_outputs(
    records: &[RunRecord],
    tag: &SweepTag,
    junit: Option<&Path>,
    json: Option<&Path>,
    cat: &Catalogue,
) -> Result<(), String> {
    if let Some(path) = junit {
        let doc = junit::render(records, cat);
        xml::parse(&doc)
            .map_err(|e| format!("the JUnit report is not well-formed (a bug): {e}"))?;
        host::write_text(path, &doc)?;
    }
    if let Some(path) = json {
        host::write_text(path, &json_lines(records, tag))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
