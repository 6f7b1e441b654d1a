//! Driving the explorer from the CLI (`sweep --explore [--compare]`): children run in
//! child processes of this binary, their plans through files; and the comparison with
//! uniform seeds on the same budget.

#[cfg(madsim)]
use super::Explorer;
use super::RunRecord;
use std::collections::BTreeMap;
#[cfg(madsim)]
use std::ops::Range;

/// `sweep --explore [--compare]` over `names`: each scenario explored in turn (and,
/// with `compare`, swept with uniform seeds on the same budget, the comparison
/// printed). Returns the explored runs' records.
#[cfg(madsim)]
pub fn sweep_all(
    exe: &std::path::Path,
    names: &[String],
    args: &crate::runner::sweep::SweepArgs,
    report: &(dyn Fn(&RunRecord) + Sync),
) -> Result<Vec<RunRecord>, String> {
    let mut all = Vec::new();
    for name in names {
        let Some(sc) = crate::runner::scenario::find(name) else {
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
            let (uniform_first, uniform_reach) =
                (uniform_first_hit(&uniform), runs_reaching(&uniform));
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
    _args: &crate::runner::sweep::SweepArgs,
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
                s.spawn(move || {
                    crate::runner::sweep::run_child(exe, name, *seed, false, file.as_deref())
                })
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
    scenario: &crate::runner::scenario::Scenario,
    seeds: Range<u64>,
    jobs: usize,
    report: &(dyn Fn(&RunRecord) + Sync),
) -> Result<Explored, String> {
    let own_plan = |seed| crate::runner::run::plan_for(scenario, seed);
    let scratch = crate::runner::host::scratch_dir(&format!("explore-{}", scenario.name))?;
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
                    crate::runner::host::write(&path, &plan.to_json())?;
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
                crate::runner::host::write(&kept, &crate::runner::host::read(file)?)?;
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
