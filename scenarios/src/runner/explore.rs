//! Targeted exploration: spend seeds where coverage marks are rarely hit.
//!
//! Uniform seeds sample the space of runs the way the plan generator draws it, so a
//! state that needs an unlikely conjunction (a snapshot sent while the follower's log
//! conflicts, a compaction under an old snapshot during recovery) stays as rare as its
//! ingredients. The explorer keeps a corpus of the runs that reached *rare* marks —
//! rare among the runs so far — and spends most of its budget on their children: the
//! parent's fault plan, mutated (a step moved, repeated, dropped or retargeted, a new
//! step spliced in from a fresh draw, the per-seed tuning redrawn). Half the children
//! keep the parent's *seed*: the same schedule, random streams and buggify sites up to
//! the first mutated fault, where the run branches off — the closest a simulator that
//! cannot snapshot a run gets to forking it at a rare moment; the other half take a
//! fresh seed, varying the schedule around what got the parent there. A share of the
//! budget stays uniform, so marks no parent has reached can still turn up. Parents
//! are drawn in proportion to the rarity of what they reached (the sum over their
//! marks of 1 / runs that reached the mark).
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

use super::plan::{self, Branch, FaultPlan, Step, Tuning};
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
    /// The run's place in the budget: the `index`-th seed of the range, handed out in
    /// order (a uniform run's seed is its index).
    pub index: u64,
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
    /// Virtual time (ns) of each mark's first hit in this run.
    first_ns: BTreeMap<String, u64>,
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
    /// Per mark, the number of runs (1-based) it took to reach it first.
    pub first_hit: BTreeMap<String, u64>,
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
            first_hit: BTreeMap::new(),
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
            let index = self.next;
            self.next += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(sim_runtime::rng::stable_hash(
                format!("{index}/explore").as_bytes(),
            ));
            if self.corpus.is_empty() || rng.gen_bool(UNIFORM_SHARE) {
                out.push(Job {
                    index,
                    seed: index,
                    plan: None,
                    parent: None,
                });
                continue;
            }
            let parent = self.pick_parent(&mut rng);
            let roll = rng.gen_range(0..10);
            let fork = self
                .rarest(&parent)
                .and_then(|m| parent.first_ns.get(m).copied())
                .filter(|_| roll < 4);
            let (seed, plan) = match fork {
                Some(at_ns) => {
                    // Fork the parent's run just after it first reached its rarest mark.
                    let mut plan = parent.plan.clone();
                    plan.branches.push(Branch {
                        at_ns: at_ns.saturating_add(1),
                        salt: rng.gen_range(1..u64::MAX),
                    });
                    (parent.seed, plan)
                }
                None => {
                    let fresh = own_plan(index).ok();
                    let mut plan = mutate(&parent.plan, fresh.as_ref(), self.nodes, &mut rng);
                    if roll < 7 {
                        (parent.seed, plan)
                    } else {
                        // A fresh seed: the parent's forks meant something for its seed only.
                        plan.branches.clear();
                        (index, plan)
                    }
                }
            };
            self.children += 1;
            out.push(Job {
                index,
                seed,
                plan: Some(plan),
                parent: Some(parent.seed),
            });
        }
        out
    }

    /// Folds in one finished run (call in seed order).
    pub fn record(&mut self, job: &Job, plan: FaultPlan, record: &RunRecord) {
        let marks = features(&record.marks);
        let rare = marks.iter().any(|m| self.is_rare(m));
        self.runs += 1;
        for m in &marks {
            *self.hits.entry(m.clone()).or_insert(0) += 1;
        }
        for m in record.marks.keys() {
            self.first_hit.entry(m.clone()).or_insert(self.runs);
        }
        if rare {
            self.corpus.push(Entry {
                seed: job.seed,
                plan,
                marks,
                first_ns: record.mark_first_ns.clone(),
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

    /// The mark of `e` whose feature the fewest runs reached.
    fn rarest<'a>(&self, e: &'a Entry) -> Option<&'a str> {
        e.marks
            .iter()
            .min_by_key(|m| (self.hits.get(*m).copied().unwrap_or(0), *m))
            .map(|f| f.split('#').next().unwrap_or(f))
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

/// What the explorer counts of a run: each mark reached, and each mark reached often
/// (its hit count's power-of-four bucket, AFL-style: `m#4+`, `m#16+`…), so a run that
/// reached a common state unusually often counts as new too.
fn features(marks: &BTreeMap<String, u64>) -> Vec<String> {
    let mut out = Vec::new();
    for (m, &n) in marks {
        if n == 0 {
            continue;
        }
        out.push(m.clone());
        let mut bucket = 4;
        while n >= bucket && bucket <= 1 << 20 {
            out.push(format!("{m}#{bucket}+"));
            bucket *= 4;
        }
    }
    out
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

/// `sweep --explore [--compare]` over `names`: each scenario explored in turn (and,
/// with `compare`, swept with uniform seeds on the same budget, the comparison
/// printed). Returns the explored runs' records.
#[cfg(madsim)]
pub fn sweep_all(
    exe: &std::path::Path,
    names: &[String],
    args: &super::sweep::SweepArgs,
    report: &(dyn Fn(&RunRecord) + Sync),
) -> Result<Vec<RunRecord>, String> {
    let mut all = Vec::new();
    for name in names {
        let Some(sc) = super::scenario::find(name) else {
            continue;
        };
        let explored = sweep(exe, &sc, args.seeds.clone(), args.jobs, report)?;
        if args.compare {
            let seeds: Vec<(u64, Option<std::path::PathBuf>)> =
                args.seeds.clone().map(|s| (s, None)).collect();
            let mut uniform = Vec::new();
            for chunk in seeds.chunks(args.jobs.max(1)) {
                uniform.extend(run_batch(exe, sc.name, chunk));
            }
            let budget = args.seeds.end - args.seeds.start;
            let (uniform_first, uniform_reach) = (uniform_first_hit(&uniform), runs_reaching(&uniform));
            let explored_reach = runs_reaching(&explored.records);
            println!(
                "{}",
                comparison(
                    sc.mark_universe().into_iter().map(str::to_string),
                    Side {
                        first_hit: &uniform_first,
                        reaching: &uniform_reach,
                    },
                    Side {
                        first_hit: &explored.first_hit,
                        reaching: &explored_reach,
                    },
                    budget
                )
            );
        }
        all.extend(explored.records);
    }
    Ok(all)
}

/// Without the madsim build there is nothing to explore.
#[cfg(not(madsim))]
pub fn sweep_all(
    _exe: &std::path::Path,
    _names: &[String],
    _args: &super::sweep::SweepArgs,
    _report: &(dyn Fn(&RunRecord) + Sync),
) -> Result<Vec<RunRecord>, String> {
    Err("sweep --explore needs the madsim build (cargo sim sweep …)".into())
}

/// Runs each (seed, plan file) in a child process, all at once; records in order.
#[cfg(madsim)]
fn run_batch(
    exe: &std::path::Path,
    name: &str,
    jobs: &[(u64, Option<std::path::PathBuf>)],
) -> Vec<RunRecord> {
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(seed, file)| {
                s.spawn(move || super::sweep::run_child(exe, name, *seed, false, file.as_deref()))
            })
            .collect();
        handles
            .into_iter()
            .zip(jobs)
            .map(|(h, (seed, _))| {
                h.join().unwrap_or_else(|_| {
                    RunRecord::error(name, *seed, "runner", "a worker panicked".into())
                })
            })
            .collect()
    })
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
) -> Result<Explored, String> {
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
                    let path = scratch.join(format!("{}.json", job.index));
                    super::host::write(&path, &plan.to_json())?;
                    Some(path)
                }
                None => None,
            };
            files.push(file);
        }
        let name = scenario.name;
        let runs: Vec<(u64, Option<std::path::PathBuf>)> = batch
            .iter()
            .zip(&files)
            .map(|(job, file)| (job.seed, file.clone()))
            .collect();
        let results = run_batch(exe, name, &runs);
        for ((job, file), mut record) in batch.into_iter().zip(files).zip(results) {
            if let (true, Some(file)) = (record.failed(), &file) {
                let kept = std::path::PathBuf::from(format!("explore-{name}-{}.json", job.index));
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
    Ok(Explored {
        records,
        first_hit: explorer.first_hit,
    })
}

/// What `sweep --explore` did for one scenario.
pub struct Explored {
    pub records: Vec<RunRecord>,
    /// Per mark, the runs it took to reach it first.
    pub first_hit: BTreeMap<String, u64>,
}

/// Per mark, the runs (1-based, in seed order) uniform seeds took to reach it first.
pub fn uniform_first_hit(records: &[RunRecord]) -> BTreeMap<String, u64> {
    let mut sorted: Vec<&RunRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.seed);
    let mut out = BTreeMap::new();
    for (i, r) in sorted.into_iter().enumerate() {
        for m in r.marks.keys() {
            out.entry(m.clone()).or_insert(i as u64 + 1);
        }
    }
    out
}

/// Per mark, how many of `records` reached it.
pub fn runs_reaching(records: &[RunRecord]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in records {
        for m in r.marks.keys() {
            *out.entry(m.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// One side of a comparison: runs to each mark's first hit, and runs that reached it.
pub struct Side<'a> {
    pub first_hit: &'a BTreeMap<String, u64>,
    pub reaching: &'a BTreeMap<String, u64>,
}

/// The comparison `sweep --explore --compare` prints: per mark of `universe`, the runs
/// uniform seeds and exploration took to reach it first (`-`: not within the budget)
/// and their ratio uniform / explore, then how many runs of each reached it; rarest
/// (by uniform) first.
pub fn comparison(
    universe: impl IntoIterator<Item = String>,
    uniform: Side<'_>,
    explored: Side<'_>,
    budget: u64,
) -> String {
    let (uniform_reach, explored_reach) = (uniform.reaching, explored.reaching);
    let (uniform, explored) = (uniform.first_hit, explored.first_hit);
    use std::fmt::Write as _;
    let mut rows: Vec<(String, Option<u64>, Option<u64>)> = universe
        .into_iter()
        .map(|m| {
            let (u, e) = (uniform.get(&m).copied(), explored.get(&m).copied());
            (m, u, e)
        })
        .filter(|(_, u, e)| u.is_some() || e.is_some())
        .collect();
    rows.sort_by_key(|(m, u, _)| (std::cmp::Reverse(u.unwrap_or(u64::MAX)), m.clone()));
    let mut out = format!(
        "budget {budget} runs: runs to reach each mark first (uniform, explore, ratio), then \
         runs that reached it (uniform, explore)\n"
    );
    let show = |x: Option<u64>| x.map_or("-".to_string(), |n| n.to_string());
    for (m, u, e) in rows {
        let ratio = match (u, e) {
            (Some(u), Some(e)) => format!("{:.2}x", u as f64 / e as f64),
            (None, Some(_)) => "only explore".into(),
            (Some(_), None) => "only uniform".into(),
            (None, None) => String::new(),
        };
        let reach = |side: &BTreeMap<String, u64>| side.get(&m).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  {:>6} {:>6}  {:<13} {:>5} {:>5}  {m}",
            show(u),
            show(e),
            ratio,
            reach(uniform_reach),
            reach(explored_reach)
        );
    }
    out
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
        r.mark_first_ns = marks.iter().map(|m| (m.to_string(), 1_000)).collect();
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
                // Run 7 alone reaches the rare mark; every run reaches the common one.
                let marks: &[&str] = if job.index == 7 { &["a.rare", "a.common"] } else { &["a.common"] };
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
        assert_eq!(ex.first_hit["a.common"], 1);
        assert_eq!(ex.first_hit["a.rare"], 8, "the 8th run (seed 7) reached it first");
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
            a.iter().map(|j| j.index).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>(),
            "every run of the budget once, in order"
        );
        assert!(
            a.iter().any(|j| j.parent.is_some_and(|p| p == j.seed)),
            "some children keep their parent's seed (the run branches at the mutated fault)"
        );
        assert!(
            a.iter().any(|j| j.parent.is_some() && j.seed == j.index),
            "and some take a fresh one"
        );
        let forks: Vec<&Job> = a
            .iter()
            .filter(|j| j.plan.as_ref().is_some_and(|p| !p.branches.is_empty()))
            .collect();
        assert!(!forks.is_empty(), "some children fork their parent's run");
        for j in forks {
            let b = j.plan.as_ref().unwrap().branches[0];
            assert_eq!(b.at_ns, 1_001, "just after the parent first reached its mark");
            assert_eq!(Some(j.seed), j.parent, "a fork keeps its parent's seed");
        }
    }

    #[test]
    fn the_comparison_names_runs_to_first_hit_and_their_ratio() {
        let map = |xs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            xs.iter().map(|(m, n)| (m.to_string(), *n)).collect()
        };
        let (uf, ur) = (map(&[("a.rare", 80), ("a.common", 1)]), map(&[("a.rare", 1), ("a.common", 90)]));
        let (ef, er) = (map(&[("a.rare", 20), ("a.common", 1), ("a.new", 50)]), map(&[("a.rare", 30), ("a.common", 88), ("a.new", 2)]));
        let text = comparison(
            ["a.rare", "a.common", "a.new", "a.none"].map(String::from),
            Side { first_hit: &uf, reaching: &ur },
            Side { first_hit: &ef, reaching: &er },
            100,
        );
        let line = |m: &str| text.lines().find(|l| l.ends_with(m)).unwrap_or("").to_string();
        assert!(line("a.rare").contains("4.00x"), "{text}");
        assert!(line("a.rare").contains("    1    30"), "{text}");
        assert!(line("a.new").contains("only explore"), "{text}");
        assert!(!text.contains("a.none"), "marks neither side reached are left out: {text}");
    }

    #[test]
    fn features_are_marks_and_their_hit_count_buckets() {
        let marks = [("a.x".to_string(), 1), ("a.y".to_string(), 20)].into_iter().collect();
        assert_eq!(features(&marks), vec!["a.x", "a.y", "a.y#4+", "a.y#16+"]);
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
