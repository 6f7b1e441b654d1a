//! Targeted exploration: spend seeds where coverage marks are rarely hit (issue 16, D47,
//! D92). Generic over the system's per-seed settings ([`Settings`]): the bundled
//! database's `sweep --explore` and a user crate's ([`crate::cli`]) drive the same
//! explorer.
//!
//! Uniform seeds sample the space of runs the way the plan generator draws it, so a
//! state that needs an unlikely conjunction (a snapshot sent while the follower's log
//! conflicts, a compaction under an old snapshot during recovery) stays as rare as its
//! ingredients. The explorer keeps a corpus of the runs that reached *rare* marks —
//! rare among the runs so far — and spends most of its budget on their children, of
//! three kinds:
//! - **forks** (20%): the parent's run, same seed and plan, branched just after it
//!   first reached its rarest mark (`sim_runtime::rng::branch_at` salts every random
//!   stream from then on), so the child reaches the same rare state and varies what
//!   follows it;
//! - **a fault at the moment that matters** (30%): the same fork, after the rarest or
//!   any of the parent's marks, plus one fault of a fresh draw's kinds (crash, kill,
//!   pause, partition, skew) within 25 ms of that moment, aimed at a random node or
//!   the leader — states that need a fault *during* something (an interrupted
//!   snapshot install, a crash between a flush and its manifest edit) are rare for
//!   uniform seeds because their faults are timed blind;
//! - **mutants** (50%): the parent's fault plan mutated (a step moved, repeated,
//!   dropped or retargeted, a step spliced in from a fresh draw, the per-seed tuning
//!   redrawn), under the parent's seed (the same schedule up to the first mutated
//!   fault) or a fresh one.
//!
//! Between 20% and 80% of the runs stay uniform — a two-armed bandit gives more to
//! whichever kind of run has lately been finding features no run had — so marks no
//! parent has reached can still turn up. Parents are drawn in proportion to the
//! rarity of what they reached (the sum over their marks of 1 / runs that reached the
//! mark).
//!
//! ## Invariants
//! - Deterministic: the children, their seeds and their plans are a function of the
//!   seed range and the results so far (runs are folded in seed order, batch by
//!   batch), so the same command explores the same way.
//! - Every child is an ordinary run of (scenario, seed, plan): a failure reproduces
//!   with `replay --seed S --plan FILE`, and the explorer writes that file.
//!
//! ## Non-goals
//! - Snapshotting a run: a fork re-runs its parent's prefix (deterministically) up to
//!   the branch point.
//! - Running anything: the caller runs each [`Job`] (in a child process, as both CLIs
//!   do) and folds its marks back in with [`Explorer::record`].

use crate::plan::{self, Branch, FaultPlan, Settings, Step};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::ops::Range;

/// Bounds of the share of runs spent on fresh uniform seeds once the corpus is
/// non-empty; within them the share follows which kind of run has been finding new
/// features (see [`Explorer::uniform_share`]).
pub const UNIFORM_SHARE: (f64, f64) = (0.2, 0.8);
/// A mark is rare while at most this share of runs so far reached it (and in any case
/// while at most [`RARE_RUNS`] did).
pub const RARE_SHARE: f64 = 0.05;
/// A mark reached by at most this many runs so far is rare, whatever the share.
pub const RARE_RUNS: u64 = 3;
/// The first runs of a range are all uniform: marks that one run in a few reaches
/// are found as soon as uniform seeds find them, and the corpus starts from a sample
/// of the space rather than from the first run that happened to be rare.
pub const WARM_UP: u64 = 16;
/// The corpus keeps at most this many parents (the least valuable leave first).
pub const CORPUS_LIMIT: usize = 256;

/// One run the explorer asks for: a seed and, for a child, its mutated plan (`None`:
/// the seed's own plan).
#[derive(Debug, Clone, PartialEq)]
pub struct Job<T: Settings = ()> {
    /// The run's place in the budget: the `index`-th seed of the range, handed out in
    /// order (a uniform run's seed is its index).
    pub index: u64,
    /// The seed the run uses: its index for a uniform run; the parent's or its own
    /// index for a child.
    pub seed: u64,
    /// The plan to run instead of the seed's own (a child's).
    pub plan: Option<FaultPlan<T>>,
    /// The parent's seed, for a child.
    pub parent: Option<u64>,
}

/// A run kept as a parent.
#[derive(Debug, Clone)]
struct Entry<T: Settings> {
    seed: u64,
    plan: FaultPlan<T>,
    marks: Vec<String>,
    /// Virtual time (ns) of each mark's first hit in this run.
    first_ns: BTreeMap<String, u64>,
}

/// The explorer's state between batches.
#[derive(Debug)]
pub struct Explorer<T: Settings = ()> {
    seeds: Range<u64>,
    nodes: plan::NodeNo,
    next: u64,
    /// Runs folded in, and per mark how many reached it.
    runs: u64,
    hits: BTreeMap<String, u64>,
    corpus: Vec<Entry<T>>,
    /// Children made from the corpus (the rest were uniform).
    pub children: u64,
    /// Per mark, the number of runs (1-based) it took to reach it first.
    pub first_hit: BTreeMap<String, u64>,
    /// Per kind of run (uniform, child): runs folded in, and how many of them
    /// reached a mark no run had before.
    yields: [(u64, u64); 2],
}

impl<T: Settings> Explorer<T> {
    /// An explorer that hands out the seeds of `seeds`, in order, for a topology of
    /// `nodes` nodes.
    pub fn new(seeds: Range<u64>, nodes: plan::NodeNo) -> Explorer<T> {
        Explorer {
            nodes,
            next: seeds.start,
            seeds,
            runs: 0,
            hits: BTreeMap::new(),
            corpus: Vec::new(),
            children: 0,
            first_hit: BTreeMap::new(),
            yields: [(0, 0); 2],
        }
    }

    /// The share of runs to spend on uniform seeds: a two-armed bandit between fresh
    /// seeds and children, each arm valued by the share of its runs that reached a
    /// mark no earlier run had (Laplace-smoothed), kept within [`UNIFORM_SHARE`]. While
    /// uniform seeds keep finding new marks they get most of the budget; once children
    /// find more, the children do. Only a new *mark* counts here, not a new hit-count
    /// bucket of a known one: children of a rare parent easily hit a known mark more
    /// often than any run before, and counting that drew the budget away from the
    /// fresh seeds that find the marks nobody has reached.
    pub fn uniform_share(&self) -> f64 {
        let value = |(runs, novel): (u64, u64)| (novel as f64 + 1.0) / (runs as f64 + 2.0);
        let (u, c) = (value(self.yields[0]), value(self.yields[1]));
        (u / (u + c)).clamp(UNIFORM_SHARE.0, UNIFORM_SHARE.1)
    }

    /// The next `n` jobs (fewer at the end of the range). `own_plan` gives a seed's
    /// own plan (the scenario's generator), which a child mutates from its parent's.
    pub fn next_batch(
        &mut self,
        n: usize,
        own_plan: impl Fn(u64) -> Result<FaultPlan<T>, String>,
    ) -> Vec<Job<T>> {
        let mut out = Vec::new();
        while out.len() < n && self.next < self.seeds.end {
            let index = self.next;
            self.next += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(sim_runtime::rng::stable_hash(
                format!("{index}/explore").as_bytes(),
            ));
            let warming_up = index - self.seeds.start < WARM_UP;
            if self.corpus.is_empty() || warming_up || rng.gen_bool(self.uniform_share()) {
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
            let (seed, plan) = if roll < 2 {
                match self.fork_at(&parent, &mut rng) {
                    // Fork the parent's run just after it first reached its rarest mark.
                    Some(plan) => (parent.seed, plan),
                    None => self.mutant(&parent, index, &own_plan, &mut rng),
                }
            } else if roll < 5 {
                let fresh = own_plan(index).ok();
                match self.fault_after_mark(&parent, fresh.as_ref(), &mut rng) {
                    Some(plan) => (parent.seed, plan),
                    None => self.mutant(&parent, index, &own_plan, &mut rng),
                }
            } else {
                self.mutant(&parent, index, &own_plan, &mut rng)
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

    /// The parent's plan forked just after it first reached its rarest mark.
    fn fork_at(&self, parent: &Entry<T>, rng: &mut ChaCha8Rng) -> Option<FaultPlan<T>> {
        let at_ns = parent.first_ns.get(self.rarest(parent)?).copied()?;
        let mut plan = parent.plan.clone();
        plan.branches.push(Branch {
            at_ns: at_ns.saturating_add(1),
            salt: rng.gen_range(1..u64::MAX),
        });
        Some(plan)
    }

    /// A fault at the moment that matters: the parent's run, forked just after it
    /// first reached one of its marks (the rarest, or any), with one fault of a fresh
    /// draw's kinds — a crash, a kill, a pause, a partition — within 25 ms of it, aimed
    /// at a random node or the leader. A state that needs a fault *during* something
    /// (an interrupted snapshot install, a crash between a flush and its manifest edit,
    /// a leader cut off mid-commit) is rare for uniform seeds because the plan's faults
    /// are timed blind; here they are timed by what the run was doing.
    fn fault_after_mark(
        &self,
        parent: &Entry<T>,
        fresh: Option<&FaultPlan<T>>,
        rng: &mut ChaCha8Rng,
    ) -> Option<FaultPlan<T>> {
        let fresh = fresh.filter(|f| !f.steps.is_empty())?;
        let mark = if rng.gen_bool(0.5) {
            self.rarest(parent)?.to_string()
        } else {
            let reached: Vec<&String> = parent.first_ns.keys().collect();
            (*reached.get(rng.gen_range(0..reached.len().max(1)))?).clone()
        };
        let at_ns = parent.first_ns.get(&mark).copied()?;
        let mut plan = parent.plan.clone();
        plan.branches.push(Branch {
            at_ns: at_ns.saturating_add(1),
            salt: rng.gen_range(1..u64::MAX),
        });
        let mut step = fresh.steps[rng.gen_range(0..fresh.steps.len())].clone();
        step.at_ms = at_ns / 1_000_000 + rng.gen_range(0..25);
        retarget(&mut step, self.nodes, rng);
        plan.steps.push(step);
        plan.steps.sort_by_key(|s| s.at_ms);
        Some(plan)
    }

    /// The parent's plan mutated, under its seed or (30%) the child's own.
    fn mutant(
        &self,
        parent: &Entry<T>,
        index: u64,
        own_plan: &impl Fn(u64) -> Result<FaultPlan<T>, String>,
        rng: &mut ChaCha8Rng,
    ) -> (u64, FaultPlan<T>) {
        let fresh = own_plan(index).ok();
        let mut plan = mutate(&parent.plan, fresh.as_ref(), self.nodes, rng);
        if rng.gen_bool(0.7) {
            (parent.seed, plan)
        } else {
            // A fresh seed: the parent's forks meant something for its seed only.
            plan.branches.clear();
            (index, plan)
        }
    }

    /// Folds in one finished run (call in seed order): the plan it ran, the marks it
    /// reached with their hit counts, and each mark's first hit (ns of virtual time).
    pub fn record(
        &mut self,
        job: &Job<T>,
        plan: FaultPlan<T>,
        reached: &BTreeMap<String, u64>,
        first_ns: &BTreeMap<String, u64>,
    ) {
        let marks = features(reached);
        let rare = marks.iter().any(|m| self.is_rare(m));
        let novel = reached.keys().any(|m| !self.hits.contains_key(m));
        let arm = &mut self.yields[usize::from(job.parent.is_some())];
        arm.0 += 1;
        arm.1 += u64::from(novel);
        self.runs += 1;
        for m in &marks {
            *self.hits.entry(m.clone()).or_insert(0) += 1;
        }
        for m in reached.keys() {
            self.first_hit.entry(m.clone()).or_insert(self.runs);
        }
        if rare {
            self.corpus.push(Entry {
                seed: job.seed,
                plan,
                marks,
                first_ns: first_ns.clone(),
            });
            if self.corpus.len() > CORPUS_LIMIT {
                // Drop the parent whose marks are now the least rare.
                if let Some(i) = (0..self.corpus.len()).min_by(|&a, &b| {
                    self.weight(&self.corpus[a])
                        .total_cmp(&self.weight(&self.corpus[b]))
                }) {
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
    fn weight(&self, e: &Entry<T>) -> f64 {
        e.marks
            .iter()
            .map(|m| 1.0 / self.hits.get(m).copied().unwrap_or(1).max(1) as f64)
            .sum()
    }

    /// The mark of `e` whose feature the fewest runs reached.
    fn rarest<'a>(&self, e: &'a Entry<T>) -> Option<&'a str> {
        e.marks
            .iter()
            .min_by_key(|m| (self.hits.get(*m).copied().unwrap_or(0), *m))
            .map(|f| f.split('#').next().unwrap_or(f))
    }

    fn pick_parent(&self, rng: &mut ChaCha8Rng) -> Entry<T> {
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
pub fn features(marks: &BTreeMap<String, u64>) -> Vec<String> {
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
pub fn mutate<T: Settings>(
    parent: &FaultPlan<T>,
    fresh: Option<&FaultPlan<T>>,
    nodes: plan::NodeNo,
    rng: &mut impl Rng,
) -> FaultPlan<T> {
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
                        T::default()
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

mod compare;
#[cfg(test)]
mod tests;

pub use compare::{comparison, first_hit_in_seed_order, runs_reaching, Side};
