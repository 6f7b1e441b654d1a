//! One run as a line of `sweep --json`, a child's answer to its parent sweep, a row of
//! the summary table and a JUnit test case: one record type for Seedbank's own CLI and
//! a user crate's (`chaos::cli`), so `merge` reads either's shards. Fields a runner
//! does not fill (coverage marks, `deterministic`…) keep their defaults.

use serde::{Deserialize, Serialize};
use sim_runtime::cover::{Coverage, MustReach};
use std::collections::{BTreeMap, BTreeSet};

/// One run of one scenario at one seed (a line of `sweep --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The scenario's name (what `run NAME` / `replay NAME` takes).
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// `pass`, `fail` (a check failed) or `error` (the run could not be made: a panic
    /// in the runner, a child that died).
    pub outcome: String,
    /// The check that failed (`durability`, `elle`, `linearizability`, `invariant`,
    /// `liveness`, `recovery-idempotence`, `determinism`, `panic`…).
    pub failed_check: Option<String>,
    /// What it said.
    pub message: Option<String>,
    /// Faults that fired, by kind (sim-fs, sim-net and the plan's timed faults).
    pub faults: BTreeMap<String, u64>,
    /// Coverage marks the run reached, by name, with their hit counts.
    #[serde(default)]
    pub marks: BTreeMap<String, u64>,
    /// Virtual time (ns) of each reached mark's first hit (where an explorer forks).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mark_first_ns: BTreeMap<String, u64>,
    /// Client operations invoked, and how they ended.
    pub operations: u64,
    /// Operations completed ok.
    pub acknowledged: u64,
    /// Operations completed fail (refused).
    pub rejected: u64,
    /// Operations completed info, or never (unknown outcome).
    pub indeterminate: u64,
    /// Node recoveries checked (embedded), replica restarts (cluster).
    pub recoveries: u64,
    /// Operations acknowledged after the plan's last timed fault healed.
    #[serde(default)]
    pub acknowledged_after_heal: u64,
    /// Virtual time the run took, ms.
    pub virtual_time_ms: f64,
    /// Wall time the run took in its process, ms.
    pub wall_time_ms: f64,
    /// The trace digest (hex) and event count.
    pub digest: String,
    /// Trace events.
    pub events: u64,
    /// With `--check-determinism`: whether the second run matched.
    pub deterministic: Option<bool>,
    /// The plan file the run used instead of its seed's own plan (an explorer's
    /// child): the reproduce command replays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<String>,
    /// The engine refused bytes a bit flip damaged (a scenario whose plan rots bits):
    /// the run ended there, passing on the checks made so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption_refused: Option<String>,
    /// Which sweep wrote this line (`sweep --json` sets it; a child's result has none):
    /// what `merge` checks shards against each other with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepTag>,
}

/// `records` as `--json` writes them: one JSON object per line, each tagged with the
/// sweep (or merge) that produced it.
pub fn json_lines(records: &[RunRecord], tag: &SweepTag) -> String {
    records
        .iter()
        .map(|r| RunRecord {
            sweep: Some(tag.clone()),
            ..r.clone()
        })
        .filter_map(|r| serde_json::to_string(&r).ok())
        .map(|l| l + "\n")
        .collect()
}

/// The sweep a `--json` line came from: its seed range, its shard, its wall time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTag {
    /// The whole sweep's seeds, `from..to` (`to` exclusive), before sharding.
    pub from: u64,
    /// See `from`.
    pub to: u64,
    /// This part: shard `shard` of `shards` (1-based; `1` of `1` when not sharded).
    pub shard: u64,
    /// See `shard`.
    pub shards: u64,
    /// The part's wall time, seconds (the same on each of its lines).
    pub wall_s: f64,
    /// Written by `sweep --explore`: seeds repeat, so such a file cannot be merged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explore: bool,
}

impl RunRecord {
    /// Whether the run did not pass.
    pub fn failed(&self) -> bool {
        self.outcome != "pass"
    }

    /// A record for a run that could not be made.
    pub fn error(scenario: &str, seed: u64, check: &str, message: String) -> RunRecord {
        RunRecord {
            scenario: scenario.to_string(),
            seed,
            outcome: "error".into(),
            failed_check: Some(check.into()),
            message: Some(message),
            faults: BTreeMap::new(),
            marks: BTreeMap::new(),
            mark_first_ns: BTreeMap::new(),
            operations: 0,
            acknowledged: 0,
            rejected: 0,
            indeterminate: 0,
            recoveries: 0,
            acknowledged_after_heal: 0,
            virtual_time_ms: 0.0,
            wall_time_ms: 0.0,
            digest: String::new(),
            events: 0,
            deterministic: None,
            plan_file: None,
            corruption_refused: None,
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

    /// One line naming the failure and the command that reproduces it (`replay`: the
    /// command before `NAME --seed S`, see [`Catalogue::replay`]).
    pub fn failure_line_with(&self, replay: &str) -> String {
        format!(
            "FAILED {} seed {} [{}]: {}\n  reproduce: {}",
            self.scenario,
            self.seed,
            self.failed_check.as_deref().unwrap_or("?"),
            self.headline(),
            self.reproduce_with(replay)
        )
    }

    /// The one command that reproduces this run: `{replay} NAME --seed S [--plan P]`.
    pub fn reproduce_with(&self, replay: &str) -> String {
        let name = shell_word(&self.scenario);
        match &self.plan_file {
            Some(plan) => format!(
                "{replay} {name} --seed {} --plan {}",
                self.seed,
                shell_word(plan)
            ),
            None => format!("{replay} {name} --seed {}", self.seed),
        }
    }
}

/// `s` as one shell word (quoted when it needs to be).
pub fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What the reports need besides the records: the command that replays a run, and the
/// must-reach promises each scenario states (Seedbank's own scenarios state some; a
/// user crate's none).
pub struct Catalogue<'a> {
    /// The command before `NAME --seed S`: `cargo sim replay` for Seedbank's CLI,
    /// `cargo run -p PKG --bin BIN -- run` for a user's chaos binary.
    pub replay: String,
    /// A scenario's promises, by name (None: it states none).
    pub promises: &'a dyn Fn(&str) -> Option<Promises>,
}

impl std::fmt::Debug for Catalogue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl Catalogue<'static> {
    /// Runs replayed by `replay`, no scenario stating any promise.
    pub fn plain(replay: impl Into<String>) -> Catalogue<'static> {
        Catalogue {
            replay: replay.into(),
            promises: &|_| None,
        }
    }
}

/// The coverage a scenario promises: marks some seed of `0..within` must reach, and
/// every mark it could reach.
#[derive(Debug, Clone, Default)]
pub struct Promises {
    /// The must-reach promises.
    pub must_reach: Vec<MustReach>,
    /// Every coverage mark the scenario's code holds.
    pub universe: BTreeSet<&'static str>,
}

/// Per-scenario totals of a sweep.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Runs.
    pub runs: u64,
    /// Runs that did not pass.
    pub failures: u64,
    /// Faults that fired, by kind, over all runs.
    pub faults: BTreeMap<String, u64>,
    /// Client operations, over all runs.
    pub operations: u64,
    /// Virtual time, ms, over all runs.
    pub virtual_time_ms: f64,
    /// Wall time, ms, over all runs.
    pub wall_time_ms: f64,
    /// Which coverage marks the runs reached.
    pub coverage: Coverage,
    /// The distinct seeds run (a must-reach promise within S seeds is judged only once
    /// all of `0..S` ran).
    pub seeds: BTreeSet<u64>,
}

impl Summary {
    /// Whether the runs can judge `m`: every seed of `0..m.within` ran.
    pub fn judges(&self, m: &MustReach) -> bool {
        self.seeds.range(..m.within).count() as u64 == m.within
    }

    /// The promises of `must` these runs can judge, or that they kept anyway (a run
    /// reached the mark).
    pub fn decided(&self, must: &[MustReach]) -> Vec<MustReach> {
        must.iter()
            .filter(|m| self.judges(m) || self.coverage.reached.contains_key(m.mark))
            .copied()
            .collect()
    }
}

/// Totals per scenario, in name order.
pub fn summarize(records: &[RunRecord]) -> BTreeMap<String, Summary> {
    let mut out: BTreeMap<String, Summary> = BTreeMap::new();
    for r in records {
        let s = out.entry(r.scenario.clone()).or_default();
        s.runs += 1;
        s.failures += u64::from(r.failed());
        for (k, n) in &r.faults {
            *s.faults.entry(k.clone()).or_insert(0) += n;
        }
        s.coverage.add(r.seed, &r.marks);
        s.seeds.insert(r.seed);
        s.operations += r.operations;
        s.virtual_time_ms += r.virtual_time_ms;
        s.wall_time_ms += r.wall_time_ms;
    }
    out
}

/// The must-reach marks a sweep missed: per scenario, those no run reached although
/// every seed of `0..within` ran (D74: a shard, or a sweep not starting at 0, does not
/// judge a promise; the merged shards do).
pub fn missed_marks(records: &[RunRecord], cat: &Catalogue) -> Vec<(String, MustReach)> {
    let mut out = Vec::new();
    for (name, s) in summarize(records) {
        if let Some(p) = (cat.promises)(&name) {
            out.extend(
                s.coverage
                    .missed(&s.decided(&p.must_reach))
                    .into_iter()
                    .map(|m| (name.clone(), m)),
            );
        }
    }
    out
}

/// What a sweep — or `merge` of a sweep's shards — ends with: the table, each failure
/// with its reproduce command, each missed must-reach promise; and whether all is well
/// (no run failed, no promise missed), which decides the exit status.
pub fn report(records: &[RunRecord], wall_s: f64, cat: &Catalogue) -> (String, bool) {
    let mut out = table(records, wall_s, cat);
    let mut clean = true;
    for r in records.iter().filter(|r| r.failed()) {
        out.push_str(&r.failure_line_with(&cat.replay));
        out.push('\n');
        clean = false;
    }
    for (scenario, m) in missed_marks(records, cat) {
        out.push_str(&format!(
            "MUST-REACH MISSED {scenario}: no seed reached coverage mark {} (stated: within {} seeds)\n",
            m.mark, m.within
        ));
        clean = false;
    }
    (out, clean)
}

/// The summary table a sweep ends with; `wall_s` is the sweep's elapsed time.
pub fn table(records: &[RunRecord], wall_s: f64, cat: &Catalogue) -> String {
    let sums = summarize(records);
    let mut out = format!(
        "{:<24} {:>6} {:>8} {:>9} {:>11} {:>10} {:>9}\n",
        "scenario", "runs", "failures", "ops", "virtual s", "cpu s", "seeds/s"
    );
    for (name, s) in &sums {
        let cpu = s.wall_time_ms / 1000.0;
        out.push_str(&format!(
            "{:<24} {:>6} {:>8} {:>9} {:>11.1} {:>10.2} {:>9.1}\n",
            name,
            s.runs,
            s.failures,
            s.operations,
            s.virtual_time_ms / 1000.0,
            cpu,
            if cpu > 0.0 { s.runs as f64 / cpu } else { 0.0 },
        ));
        let faults: Vec<String> = s.faults.iter().map(|(k, n)| format!("{k}={n}")).collect();
        out.push_str(&format!(
            "    faults fired: {}\n",
            if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join(" ")
            }
        ));
        if let Some(p) = (cat.promises)(name) {
            out.push_str(
                &s.coverage
                    .render(p.universe.clone(), &s.decided(&p.must_reach), "    "),
            );
            let open = p
                .must_reach
                .iter()
                .filter(|m| !s.judges(m) && !s.coverage.reached.contains_key(m.mark));
            for m in open {
                out.push_str(&format!(
                    "    must-reach {} not judged: {} of seeds 0..{} ran\n",
                    m.mark,
                    s.seeds.range(..m.within).count(),
                    m.within
                ));
            }
        }
    }
    let runs = records.len() as f64;
    let virt: f64 = records.iter().map(|r| r.virtual_time_ms).sum::<f64>() / 1000.0;
    out.push_str(&format!(
        "{} runs, {} failed, {:.1} s wall: {:.1} seeds/s, {:.0} simulated s per wall s\n",
        records.len(),
        records.iter().filter(|r| r.failed()).count(),
        wall_s,
        if wall_s > 0.0 { runs / wall_s } else { 0.0 },
        if wall_s > 0.0 { virt / wall_s } else { 0.0 },
    ));
    out
}
