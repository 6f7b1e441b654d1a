//! The explorer against made-up results: what it keeps, what it spends runs on.

use super::*;
use crate::plan::{generate, FaultSpace, Horizon};

fn own(seed: u64) -> Result<FaultPlan, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = Horizon {
        nodes: 3,
        aim_at_leader: true,
        leader_churn: true,
        recovery_crashes: true,
        io_crashes: true,
        window_ms: 3_000,
        ops: 100,
    };
    Ok(generate(FaultSpace::CLUSTER, h, &mut rng))
}

/// A run that reached `marks`, each once, first at 1 µs, folded into the explorer.
fn fold(ex: &mut Explorer, job: &Job, plan: FaultPlan, marks: &[String]) {
    let reached = marks.iter().map(|m| (m.clone(), 1)).collect();
    let first_ns = marks.iter().map(|m| (m.clone(), 1_000)).collect();
    ex.record(job, plan, &reached, &first_ns);
}

/// Runs the explorer's whole range, `batch` jobs at a time, each job "reaching" the
/// marks `marks_of` gives it (seen in order); returns every job in order.
fn explore_all(
    ex: &mut Explorer,
    batch: usize,
    mut marks_of: impl FnMut(&Job) -> Vec<String>,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    loop {
        let next = ex.next_batch(batch, own);
        if next.is_empty() {
            return jobs;
        }
        for job in next {
            let plan = job.plan.clone().unwrap_or_else(|| own(job.seed).unwrap());
            let marks = marks_of(&job);
            fold(ex, &job, plan, &marks);
            jobs.push(job);
        }
    }
}

fn names(marks: &[&str]) -> Vec<String> {
    marks.iter().map(|m| m.to_string()).collect()
}

#[test]
fn children_descend_from_runs_that_reached_rare_marks() {
    let mut ex = Explorer::new(0..400, 3);
    // The first uniform run from the 8th on alone reaches the rare mark; every run
    // reaches the common one.
    let mut rare_seed = None;
    let jobs = explore_all(&mut ex, 2, |job| {
        if rare_seed.is_none() && job.index >= 7 && job.parent.is_none() {
            rare_seed = Some(job.seed);
            names(&["a.rare", "a.common"])
        } else {
            names(&["a.common"])
        }
    });
    let rare_seed = rare_seed.expect("a uniform run reached the rare mark");
    let after: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.index > rare_seed && j.parent.is_some())
        .collect();
    let children_after = after.len();
    let children_of_rare = after.iter().filter(|j| j.parent == Some(rare_seed)).count();
    assert!(ex.corpus_len() >= 1);
    assert!(
        children_of_rare * 4 > children_after * 3,
        "most children after it descend from the rare run: {children_of_rare} of {children_after}"
    );
    assert!(
        ex.children > 120,
        "a good share of the budget goes to children: {}",
        ex.children
    );
    assert!(
        ex.children < 320,
        "at least a fifth stays uniform: {}",
        ex.children
    );
    assert_eq!(ex.first_hit["a.common"], 1);
    assert_eq!(
        ex.first_hit["a.rare"],
        rare_seed + 1,
        "the run of seed {rare_seed} reached it first"
    );
}

#[test]
fn exploration_is_a_function_of_the_seeds_and_the_results() {
    let run = || {
        let mut ex = Explorer::new(0..100, 3);
        explore_all(&mut ex, 3, |job| {
            names(if job.seed % 17 == 0 { &["a.x"] } else { &[] })
        })
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
        assert_eq!(
            b.at_ns, 1_001,
            "just after the parent first reached its mark"
        );
        assert_eq!(Some(j.seed), j.parent, "a fork keeps its parent's seed");
    }
}

#[test]
fn some_children_add_a_fault_just_after_a_mark_of_their_parent() {
    let mut ex = Explorer::new(0..400, 3);
    let jobs = explore_all(&mut ex, 2, |job| {
        names(if job.seed % 13 == 0 {
            &["a.x"]
        } else {
            &["a.y"]
        })
    });
    // The parent's first hits are at 1 µs: a fault within 25 ms of it, in a run branched
    // just after it, under the parent's seed.
    let timed = jobs
        .iter()
        .filter(|job| {
            let (Some(parent), Some(child)) = (job.parent, &job.plan) else {
                return false;
            };
            let parents = own(parent).unwrap();
            child.steps.len() == parents.steps.len() + 1
                && child.branches.iter().any(|b| b.at_ns == 1_001)
                && child.steps.iter().any(|s| s.at_ms < 25)
                && job.seed == parent
                && parents.steps.iter().all(|s| s.at_ms >= 25)
        })
        .count();
    // A third of the children try it; only those whose parent is a uniform run (its
    // seed's own plan) are counted here, so the share seen is lower.
    assert!(
        timed * 10 > ex.children as usize,
        "at least a tenth of the children time a fault by a mark: {timed} of {}",
        ex.children
    );
}

#[test]
fn a_fault_timed_by_a_mark_lands_within_25_ms_of_its_first_hit_in_a_branched_run() {
    let mut ex: Explorer = Explorer::new(0..10, 3);
    let mut parent_plan = own(5).unwrap();
    parent_plan.steps.retain(|s| s.at_ms >= 1_000);
    let marks: BTreeMap<String, u64> = [("a.x".to_string(), 2)].into();
    let first: BTreeMap<String, u64> = [("a.x".to_string(), 700_000_000)].into();
    let job = Job {
        index: 5,
        seed: 5,
        plan: None,
        parent: None,
    };
    ex.record(&job, parent_plan.clone(), &marks, &first);
    let parent = ex.corpus[0].clone();
    let fresh = (0..50)
        .map(|s| own(100 + s).unwrap())
        .find(|p| !p.steps.is_empty())
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..50 {
        let child = ex
            .fault_after_mark(&parent, Some(&fresh), &mut rng)
            .expect("a parent with a mark and a fresh plan with steps");
        assert_eq!(child.steps.len(), parent_plan.steps.len() + 1);
        let added: Vec<_> = child
            .steps
            .iter()
            .filter(|s| !parent_plan.steps.contains(s))
            .collect();
        assert_eq!(added.len(), 1, "{child}");
        assert!((700..725).contains(&added[0].at_ms), "{child}");
        assert_eq!(child.branches.last().map(|b| b.at_ns), Some(700_000_001));
        assert!(child.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }
    assert_eq!(
        ex.fault_after_mark(&parent, None, &mut rng),
        None,
        "no fresh steps to time"
    );
}

#[test]
fn the_comparison_names_runs_to_first_hit_and_their_ratio() {
    let map = |xs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        xs.iter().map(|(m, n)| (m.to_string(), *n)).collect()
    };
    let (uf, ur) = (
        map(&[("a.rare", 80), ("a.common", 1)]),
        map(&[("a.rare", 1), ("a.common", 90)]),
    );
    let (ef, er) = (
        map(&[("a.rare", 20), ("a.common", 1), ("a.new", 50)]),
        map(&[("a.rare", 30), ("a.common", 88), ("a.new", 2)]),
    );
    let text = comparison(
        ["a.rare", "a.common", "a.new", "a.none"].map(String::from),
        Side {
            first_hit: &uf,
            reaching: &ur,
        },
        Side {
            first_hit: &ef,
            reaching: &er,
        },
        100,
    );
    let line = |m: &str| {
        text.lines()
            .find(|l| l.ends_with(m))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("a.rare").contains("4.00x"), "{text}");
    assert!(line("a.rare").contains("    1    30"), "{text}");
    assert!(line("a.new").contains("only explore"), "{text}");
    assert!(
        !text.contains("a.none"),
        "marks neither side reached are left out: {text}"
    );
}

#[test]
fn the_budget_follows_whichever_kind_of_run_finds_new_features() {
    let mut ex = Explorer::new(0..10, 3);
    assert_eq!(ex.uniform_share(), 0.5, "no evidence yet");
    let uniform = Job {
        index: 0,
        seed: 0,
        plan: None,
        parent: None,
    };
    let child = Job {
        index: 1,
        seed: 1,
        plan: None,
        parent: Some(0),
    };
    let plan = own(0).unwrap();
    for i in 0..8 {
        fold(&mut ex, &uniform, plan.clone(), &[format!("u.{i}")]);
        fold(&mut ex, &child, plan.clone(), &names(&["c.same"]));
    }
    assert_eq!(
        ex.uniform_share(),
        UNIFORM_SHARE.1,
        "uniform seeds found everything new"
    );
    let mut ex = Explorer::new(0..10, 3);
    for i in 0..8 {
        fold(&mut ex, &uniform, plan.clone(), &names(&["u.same"]));
        fold(&mut ex, &child, plan.clone(), &[format!("c.{i}")]);
    }
    assert_eq!(
        ex.uniform_share(),
        UNIFORM_SHARE.0,
        "children found everything new"
    );
}

#[test]
fn features_are_marks_and_their_hit_count_buckets() {
    let marks = [("a.x".to_string(), 1), ("a.y".to_string(), 20)]
        .into_iter()
        .collect();
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

#[test]
fn first_hits_count_runs_in_seed_order_and_reaching_counts_runs() {
    let marks =
        |xs: &[&str]| -> BTreeMap<String, u64> { xs.iter().map(|m| (m.to_string(), 3)).collect() };
    // Given out of order: seed 12 is the third run in seed order.
    let runs = [
        (12, marks(&["a.late"])),
        (10, marks(&["a.x"])),
        (11, marks(&["a.x", "a.y"])),
    ];
    let first = first_hit_in_seed_order(runs.iter().map(|(s, m)| (*s, m)));
    assert_eq!(first["a.x"], 1);
    assert_eq!(first["a.y"], 2);
    assert_eq!(first["a.late"], 3);
    let reaching = runs_reaching(runs.iter().map(|(_, m)| m));
    assert_eq!(
        reaching["a.x"], 2,
        "runs, not hits: each run hit it 3 times"
    );
    assert_eq!(reaching["a.late"], 1);
}

#[test]
fn the_first_runs_of_a_range_are_uniform_then_children_come() {
    let mut ex = Explorer::new(100..200, 3);
    // Every run reaches a mark of its own: the corpus is never empty.
    let jobs = explore_all(&mut ex, 4, |job| vec![format!("a.{}", job.index)]);
    let warm = WARM_UP as usize;
    assert!(jobs[..warm]
        .iter()
        .all(|j| j.parent.is_none() && j.seed == j.index));
    assert!(
        jobs[warm..].iter().any(|j| j.parent.is_some()),
        "children after the warm-up"
    );
}
