//! Targeted exploration: spend seeds where coverage marks are rarely hit.
//!
//! Uniform seeds sample the space of runs the way the plan generator draws it, so a
//! state that needs an unlikely conjunction (a snapshot sent while the follower's log
//! conflicts, a compaction under an old snapshot during recovery) stays as rare as its
//! ingredients. The explorer keeps a corpus of the runs that reached *rare* marks —
//! rare among the runs so far — and spends most of its budget on their children: the
//! parent's fault plan, mutated (a step moved, repeated, dropped or retargeted, a new
//! step spliced in from a fresh draw, the per-seed tuning redrawn), run under a fresh
//! seed, so the child keeps what got the parent there and varies the schedule around
//! it. A share of the budget stays uniform, so marks no parent has reached can still
//! turn up. Parents are drawn in proportion to the rarity of what they reached
//! (the sum over their marks of 1 / runs that reached the mark).
//!
//! ## Invariants
//! - Deterministic: the children, their seeds and their plans are a function of the
//!   seed range and the results so far (runs are folded in seed order, batch by
//!   batch), so the same command explores the same way.
//! - Every child is an ordinary run of (scenario, seed, plan): a failure reproduces
//!   with `replay --seed S --plan FILE`, and the explorer writes that file.
//!
//! ## Non-goals
//! - Forking a run at a mark's first hit (the simulator cannot snapshot a run).

use super::plan::{self, FaultPlan, Step, Tuning};
use super::record::RunRecord;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::ops::Range;

/// Share of the budget spent on fresh uniform seeds once the corpus is non-empty.
pub const UNIFORM_SHARE: f64 = 0.25;
/// A mark is rare while at most this share of runs so far reached it (and in any case
/// while at most [`RARE_RUNS`] did).
pub const RARE_SHARE: f64 = 0.05;
pub const RARE_RUNS: u64 = 3;
/// The corpus keeps at most this many parents (the least valuable leave first).
pub const CORPUS_LIMIT: usize = 256;

/// One run the explorer asks for: a seed and, for a child, its mutated plan (`None`:
/// the seed's own plan).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub seed: u64,
    pub plan: Option<FaultPlan>,
    /// The parent's seed, for a child.
    pub parent: Option<u64>,
}

/// A run kept as a parent.
#[derive(Debug, Clone)]
struct Entry {
    seed: u64,
    plan: FaultPlan,
    marks: Vec<String>,
}

/// The explorer's state between batches.
#[derive(Debug)]
pub struct Explorer {
    seeds: Range<u64>,
    nodes: plan::NodeNo,
    next: u64,
    /// Runs folded in, and per mark how many reached it.
    runs: u64,
    hits: BTreeMap<String, u64>,
    corpus: Vec<Entry>,
    /// Children made from the corpus (the rest were uniform).
    pub children: u64,
}

impl Explorer {
    /// An explorer that hands out the seeds of `seeds`, in order, for a topology of
    /// `nodes` nodes.
    pub fn new(seeds: Range<u64>, nodes: plan::NodeNo) -> Explorer {
        Explorer {
            nodes,
            next: seeds.start,
            seeds,
            runs: 0,
            hits: BTreeMap::new(),
            corpus: Vec::new(),
            children: 0,
        }
    }

    /// The next `n` jobs (fewer at the end of the range). `own_plan` gives a seed's
    /// own plan (the scenario's generator), which a child mutates from its parent's.
    pub fn next_batch(
        &mut self,
        n: usize,
        own_plan: impl Fn(u64) -> Result<FaultPlan, String>,
    ) -> Vec<Job> {
        let mut out = Vec::new();
        while out.len() < n && self.next < self.seeds.end {
            let seed = self.next;
            self.next += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(sim_runtime::rng::stable_hash(
                format!("{seed}/explore").as_bytes(),
            ));
            if self.corpus.is_empty() || rng.gen_bool(UNIFORM_SHARE) {
                out.push(Job {
                    seed,
                    plan: None,
                    parent: None,
                });
                continue;
            }
            let parent = self.pick_parent(&mut rng);
            let fresh = own_plan(seed).ok();
            let plan = mutate(&parent.plan, fresh.as_ref(), self.nodes, &mut rng);
            self.children += 1;
            out.push(Job {
                seed,
                plan: Some(plan),
                parent: Some(parent.seed),
            });
        }
        out
    }

    /// Folds in one finished run (call in seed order).
    pub fn record(&mut self, job: &Job, plan: FaultPlan, record: &RunRecord) {
        let marks: Vec<String> = record.marks.keys().cloned().collect();
        let rare = marks.iter().any(|m| self.is_rare(m));
        self.runs += 1;
        for m in &marks {
            *self.hits.entry(m.clone()).or_insert(0) += 1;
        }
        if rare {
            self.corpus.push(Entry {
                seed: job.seed,
                plan,
                marks,
            });
            if self.corpus.len() > CORPUS_LIMIT {
                // Drop the parent whose marks are now the least rare.
                if let Some(i) = (0..self.corpus.len())
                    .min_by(|&a, &b| self.weight(&self.corpus[a]).total_cmp(&self.weight(&self.corpus[b])))
                {
                    self.corpus.remove(i);
                }
            }
        }
    }

    /// Parents kept so far.
    pub fn corpus_len(&self) -> usize {
        self.corpus.len()
    }

    fn is_rare(&self, mark: &str) -> bool {
        let n = self.hits.get(mark).copied().unwrap_or(0);
        n <= RARE_RUNS || (n as f64) <= RARE_SHARE * self.runs as f64
    }

    /// A parent's weight: the rarity of what it reached.
    fn weight(&self, e: &Entry) -> f64 {
        e.marks
            .iter()
            .map(|m| 1.0 / self.hits.get(m).copied().unwrap_or(1).max(1) as f64)
            .sum()
    }

    fn pick_parent(&self, rng: &mut ChaCha8Rng) -> Entry {
        let weights: Vec<f64> = self.corpus.iter().map(|e| self.weight(e)).collect();
        let total: f64 = weights.iter().sum();
        let mut x = rng.gen_range(0.0..total.max(f64::MIN_POSITIVE));
        for (e, w) in self.corpus.iter().zip(&weights) {
            if x < *w {
                return e.clone();
            }
            x -= w;
        }
        self.corpus[self.corpus.len() - 1].clone()
    }
}

/// A child of `parent`: up to three mutations (none: the same plan under a new seed).
/// `fresh` is the child seed's own plan, a source of new steps and tuning; `nodes` is
/// the topology's size.
pub fn mutate(
    parent: &FaultPlan,
    fresh: Option<&FaultPlan>,
    nodes: plan::NodeNo,
    rng: &mut impl Rng,
) -> FaultPlan {
    let mut plan = parent.clone();
    let count = rng.gen_range(0..=3);
    for _ in 0..count {
        match rng.gen_range(0..6) {
            0 if !plan.steps.is_empty() => {
                // Move a step in time.
                let i = rng.gen_range(0..plan.steps.len());
                let shift = rng.gen_range(-400i64..=400);
                let at = plan.steps[i].at_ms.saturating_add_signed(shift);
                plan.steps[i].at_ms = at;
            }
            1 if !plan.steps.is_empty() => {
                // Repeat a step a little later (a second crash of the same node, a
                // partition that comes back).
                let i = rng.gen_range(0..plan.steps.len());
                let mut step: Step = plan.steps[i].clone();
                step.at_ms += rng.gen_range(50..600);
                plan.steps.push(step);
            }
            2 if plan.steps.len() > 1 => {
                let i = rng.gen_range(0..plan.steps.len());
                plan.steps.remove(i);
            }
            3 => {
                // Splice in a step of a fresh draw.
                if let Some(step) = fresh.and_then(|f| {
                    (!f.steps.is_empty()).then(|| f.steps[rng.gen_range(0..f.steps.len())].clone())
                }) {
                    plan.steps.push(step);
                }
            }
            4 => {
                if let Some(f) = fresh {
                    plan.tuning = if rng.gen_bool(0.5) {
                        f.tuning.clone()
                    } else {
                        Tuning::default()
                    };
                }
            }
            _ if !plan.steps.is_empty() => {
                // Aim a step at another node (or at the leader).
                let i = rng.gen_range(0..plan.steps.len());
                retarget(&mut plan.steps[i], nodes, rng);
            }
            _ => {}
        }
    }
    plan.steps.sort_by_key(|s| s.at_ms);
    plan
}

/// Aims a single-node step at another replica, or (in a cluster) at the leader.
fn retarget(step: &mut Step, nodes: plan::NodeNo, rng: &mut impl Rng) {
    use plan::Fault;
    let lowest = if nodes > 1 { plan::LEADER } else { 1 };
    let pick = rng.gen_range(lowest..=nodes.max(1));
    match &mut step.fault {
        Fault::Crash { node, .. }
        | Fault::Kill { node, .. }
        | Fault::Pause { node, .. }
        | Fault::ClockSkew { node, .. } => *node = pick,
        _ => {}
    }
}

/// `sweep --explore` for one scenario: runs the seeds of `seeds` as the explorer
/// directs, `jobs` at a time, each in a child process (a child's plan goes through a
/// file; a failing child's plan is kept as `explore-<scenario>-<seed>.json` in the
/// current directory, which its reproduce command names). `report` sees each record.
#[cfg(madsim)]
pub fn sweep(
    exe: &std::path::Path,
    scenario: &super::scenario::Scenario,
    seeds: Range<u64>,
    jobs: usize,
    report: &(dyn Fn(&RunRecord) + Sync),
) -> Result<Vec<RunRecord>, String> {
    let own_plan = |seed| super::run::plan_for(scenario, seed);
    let scratch = super::host::scratch_dir(&format!("explore-{}", scenario.name))?;
    let mut explorer = Explorer::new(seeds, scenario.topology.nodes());
    let mut records = Vec::new();
    loop {
        let batch = explorer.next_batch(jobs.max(1), own_plan);
        if batch.is_empty() {
            break;
        }
        let mut files = Vec::new();
        for job in &batch {
            let file = match &job.plan {
                Some(plan) => {
                    let path = scratch.join(format!("{}.json", job.seed));
                    super::host::write(&path, &plan.to_json())?;
                    Some(path)
                }
                None => None,
            };
            files.push(file);
        }
        let name = scenario.name;
        let results: Vec<RunRecord> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .zip(&files)
                .map(|(job, file)| {
                    s.spawn(move || {
                        super::sweep::run_child(exe, name, job.seed, false, file.as_deref())
                    })
                })
                .collect();
            handles
                .into_iter()
                .zip(&batch)
                .map(|(h, job)| {
                    h.join().unwrap_or_else(|_| {
                        RunRecord::error(name, job.seed, "runner", "a worker panicked".into())
                    })
                })
                .collect()
        });
        for ((job, file), mut record) in batch.into_iter().zip(files).zip(results) {
            if let (true, Some(file)) = (record.failed(), &file) {
                let kept = std::path::PathBuf::from(format!("explore-{name}-{}.json", job.seed));
                super::host::write(&kept, &super::host::read(file)?)?;
                record.plan_file = Some(kept.display().to_string());
            }
            let plan = match &job.plan {
                Some(p) => p.clone(),
                None => own_plan(job.seed)?,
            };
            report(&record);
            explorer.record(&job, plan, &record);
            records.push(record);
        }
    }
    println!(
        "explore {}: {} runs, {} of them children of {} kept parents, the rest uniform",
        scenario.name,
        records.len(),
        explorer.children,
        explorer.corpus_len()
    );
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::plan::{generate, FaultSpace, Horizon};

    fn own(seed: u64) -> Result<FaultPlan, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let h = Horizon {
            nodes: 3,
            window_ms: 3_000,
            ops: 100,
        };
        Ok(generate(FaultSpace::CLUSTER, h, &mut rng))
    }

    fn record(seed: u64, marks: &[&str]) -> RunRecord {
        let mut r = RunRecord::error("s", seed, "x", String::new());
        r.outcome = "pass".into();
        r.marks = marks.iter().map(|m| (m.to_string(), 1)).collect();
        r
    }

    #[test]
    fn children_descend_from_runs_that_reached_rare_marks() {
        let mut ex = Explorer::new(0..400, 3);
        let mut children_of_7 = 0;
        loop {
            let batch = ex.next_batch(2, own);
            if batch.is_empty() {
                break;
            }
            for job in batch {
                let plan = job.plan.clone().unwrap_or_else(|| own(job.seed).unwrap());
                // Seed 7 alone reaches the rare mark; every run reaches the common one.
                let marks: &[&str] = if job.seed == 7 { &["a.rare", "a.common"] } else { &["a.common"] };
                children_of_7 += usize::from(job.parent == Some(7));
                ex.record(&job, plan, &record(job.seed, marks));
            }
        }
        assert!(ex.corpus_len() >= 1);
        assert!(
            children_of_7 > 200,
            "most of the budget goes to the rare run's children: {children_of_7}"
        );
        assert!(ex.children < 400, "a share stays uniform: {}", ex.children);
    }

    #[test]
    fn exploration_is_a_function_of_the_seeds_and_the_results() {
        let run = || {
            let mut ex = Explorer::new(0..100, 3);
            let mut jobs = Vec::new();
            loop {
                let batch = ex.next_batch(3, own);
                if batch.is_empty() {
                    break;
                }
                for job in batch {
                    let plan = job.plan.clone().unwrap_or_else(|| own(job.seed).unwrap());
                    let marks: &[&str] = if job.seed % 17 == 0 { &["a.x"] } else { &[] };
                    ex.record(&job, plan, &record(job.seed, marks));
                    jobs.push(job);
                }
            }
            jobs
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert_eq!(
            a.iter().map(|j| j.seed).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>(),
            "every seed of the range once, in order"
        );
    }

    #[test]
    fn mutations_keep_a_plan_valid_and_sorted() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for seed in 0..300 {
            let parent = own(seed).unwrap();
            let fresh = own(seed + 1000).unwrap();
            let child = mutate(&parent, Some(&fresh), 3, &mut rng);
            assert!(child.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            let back = FaultPlan::from_json(&child.to_json()).expect("a child plan reads back");
            assert_eq!(back, child);
            for s in &child.steps {
                assert!(s.fault.nodes().iter().all(|n| *n <= 3), "{}", s.fault);
            }
        }
    }
}
