//! `sweep --explore [--compare]`: the framework's explorer ([`chaos::explore`], the
//! same one a user crate's sweep drives) over the bundled scenarios. Children run in
//! child processes of this binary, their plans through files; and the comparison with
//! uniform seeds on the same budget.

use super::record::RunRecord;
use chaos::explore::first_hit_in_seed_order;
#[cfg(madsim)]
use chaos::explore::{comparison, Side};
use std::collections::BTreeMap;
#[cfg(madsim)]
use std::ops::Range;

/// The explorer over the bundled database's plans (its per-seed [`super::plan::Tuning`]).
pub type Explorer = chaos::explore::Explorer<super::plan::Tuning>;

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
            explorer.record(&job, plan, &record.marks, &record.mark_first_ns);
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
    first_hit_in_seed_order(records.iter().map(|r| (r.seed, &r.marks)))
}

/// Per mark, how many of `records` reached it.
pub fn runs_reaching(records: &[RunRecord]) -> BTreeMap<String, u64> {
    chaos::explore::runs_reaching(records.iter().map(|r| &r.marks))
}
