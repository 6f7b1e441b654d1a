//! The simulated world: sweep seeds — each run in its own process (default) or on a
//! fresh thread of this one, always with a fresh madsim runtime
//! (`sim_runtime::sim::Sim`) — optionally twice, and collect what failed.

use crate::child::{self, RunOutcome};
use crate::harness::{DeterminismCheck, EnvOverrides, Faults, Isolation, Outcome, Test};
use crate::report::{Failure, FailureKind, SweepReport};
use crate::Ctx;
use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use sim_runtime::probe::Window;
use sim_runtime::sim::{compare, follow_up, merge_escapes, Determinism, Divergence, Sim};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One finished seed.
struct SeedResult {
    seed: u64,
    twice: bool,
    failure: Option<Failure>,
    faults: BTreeMap<String, u64>,
    marks: BTreeMap<String, u64>,
    virtual_time: Duration,
}

fn draw<C: Clone>(
    faults: &Faults<C>,
    stream: &'static str,
    random: fn(&mut sim_runtime::rng::StreamRng) -> C,
) -> Option<C> {
    match faults {
        Faults::None => None,
        Faults::Fixed(c) => Some(c.clone()),
        Faults::Random(adjust) => {
            let mut c = random(&mut sim_runtime::rng::stream(stream));
            if let Some(adjust) = adjust {
                adjust(&mut c);
            }
            Some(c)
        }
    }
}

/// The configuration of a sweep after the environment had its say.
struct Plan {
    seeds: std::ops::Range<u64>,
    determinism: DeterminismCheck,
    jobs: usize,
    isolation: Isolation,
    /// This sweep's ordinal in its test function.
    sweep: u32,
}

impl Test {
    fn plan(&self) -> Plan {
        let env = EnvOverrides::from_env();
        let (seeds, determinism) = if self.ignore_env {
            (self.seeds.clone(), self.determinism)
        } else {
            (
                env.seeds.unwrap_or_else(|| self.seeds.clone()),
                env.determinism.unwrap_or(self.determinism),
            )
        };
        let jobs = match env.jobs.or(self.jobs).unwrap_or(1) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // A child process needs the libtest name to select this test; a doctest or a
        // plain `main` has none.
        let named = self.name != "main" && self.name != "unnamed";
        let isolation = match env.isolation.unwrap_or(self.isolation) {
            Isolation::Process if named => Isolation::Process,
            Isolation::Exec if named => Isolation::Exec,
            _ => Isolation::Thread,
        };
        Plan {
            seeds,
            determinism,
            jobs,
            isolation,
            sweep: 0,
        }
    }

    /// Runs every seed in simulation and reports, without panicking. Seeds, jobs,
    /// isolation and the determinism check come from the builder, overridden by the
    /// environment (unless [`Test::ignore_env`]). With [`Test::stop_on_failure`] (the
    /// default) no new seed starts after a failure; with several jobs, seeds already
    /// running finish, so more than one failure may be reported.
    ///
    /// ```
    /// let report = seedbank::Test::new(seedbank::origin!())
    ///     .seeds(3)
    ///     .sweep(|ctx: seedbank::Ctx| async move {
    ///         assert!(ctx.seed() != 1, "seed 1 is unlucky");
    ///     });
    /// assert_eq!(report.failing_seeds(), vec![1]);
    /// assert!(report.first_failure().unwrap().reproduce.starts_with("SEEDBANK_SEED=1 "));
    /// ```
    pub fn sweep<F, Fut>(&self, body: F) -> SweepReport
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Outcome,
    {
        let body = Arc::new(body);
        let ordinal = child::next_sweep_ordinal();
        #[cfg(unix)]
        if let Some(sweep) = crate::forkserver::serving() {
            // We are a fork server: serve this sweep's seeds, each in a forked process.
            crate::forkserver::serve(|request| {
                if sweep != ordinal {
                    return self.refuse_second_sweep();
                }
                let mut outcome = self.run_here(request.seed, &body, request.probe);
                if !request.full_trace {
                    outcome.slim();
                }
                outcome
            });
        }
        if let Some(request) = child::child_request() {
            // We are the child process of a sweep: run the one seed and report it.
            let outcome = if request.sweep == ordinal {
                let mut outcome = self.run_here(request.seed, &body, request.probe);
                if !request.full_trace {
                    outcome.slim();
                }
                outcome
            } else {
                self.refuse_second_sweep()
            };
            child::write_result(&request.out, &outcome);
            // Nothing after the sweep in this test may run: it would act on a report
            // of nothing. The parent reads the result file.
            std::process::exit(0);
        }
        let plan = Plan {
            sweep: ordinal,
            ..self.plan()
        };
        let next = AtomicU64::new(plan.seeds.start);
        let stop = AtomicBool::new(false);
        let results = Mutex::new(Vec::new());
        #[allow(clippy::disallowed_methods)] // wall time of the sweep, for the summary only
        let started = std::time::Instant::now();
        let worker = || loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let seed = next.fetch_add(1, Ordering::SeqCst);
            if seed >= plan.seeds.end {
                break;
            }
            let twice = match plan.determinism {
                DeterminismCheck::Off => false,
                DeterminismCheck::FirstSeed => seed == plan.seeds.start,
                DeterminismCheck::EverySeed | DeterminismCheck::Only => true,
            };
            let only = plan.determinism == DeterminismCheck::Only;
            let result = self.run_seed(seed, &body, &plan, twice, only);
            if result.failure.is_some() && self.stop_on_failure {
                stop.store(true, Ordering::SeqCst);
            }
            sim_runtime::sync::lock(&results).push(result);
        };
        let worker = || {
            worker();
            // This worker's fork server, if it started one, has served its share.
            #[cfg(unix)]
            crate::forkserver::shutdown();
        };
        if plan.jobs <= 1 {
            worker();
        } else {
            // Worker threads only hand out seeds; every run still gets its own process
            // (or fresh thread). None of this is inside a simulated run.
            std::thread::scope(|s| {
                for _ in 0..plan.jobs {
                    s.spawn(worker);
                }
            });
        }
        let mut results = sim_runtime::sync::into_inner(results);
        results.sort_by_key(|r| r.seed);
        let mut faults = BTreeMap::new();
        let mut coverage = sim_runtime::cover::Coverage::default();
        for r in &results {
            for (k, n) in &r.faults {
                *faults.entry(k.clone()).or_insert(0) += n;
            }
            coverage.add(r.seed, &r.marks);
        }
        SweepReport {
            test: self.name.clone(),
            planned: plan.seeds,
            seeds_run: results.len() as u64,
            checked_twice: results.iter().filter(|r| r.twice).count() as u64,
            virtual_time: results.iter().map(|r| r.virtual_time).sum(),
            faults,
            coverage,
            mark_universe: sim_runtime::cover::catalog_of(&self.mark_layers),
            // A replay of one seed (SEEDBANK_SEED) judges that seed, not coverage.
            must_reach: if self.replays_one_seed() {
                Vec::new()
            } else {
                self.must_reach.clone()
            },
            failures: results.into_iter().filter_map(|r| r.failure).collect(),
            wall_time: started.elapsed(),
        }
    }

    /// What a child (or fork server) answers when its request is for a later sweep of
    /// the test function than the one it reached.
    fn refuse_second_sweep(&self) -> RunOutcome {
        RunOutcome::refused(format!(
            "process isolation runs a test function again for each seed, so it supports one \
             sweep per test function, and {} starts more than one: split it, or give it \
             .isolation(seedbank::Isolation::Thread)",
            self.name
        ))
    }

    fn replays_one_seed(&self) -> bool {
        !self.ignore_env && std::env::var("SEEDBANK_SEED").is_ok_and(|v| !v.trim().is_empty())
    }

    fn sim_for(&self, seed: u64, probe: Option<Window>) -> Sim {
        let sim = Sim::new(seed)
            .plugin::<sim_fs::SimFs>()
            .time_limit(self.time_limit);
        let sim = match &self.setup {
            Some(setup) => setup(sim),
            None => sim,
        };
        match probe {
            Some(w) => sim.probe(w),
            None => sim,
        }
    }

    /// One run of `seed` in this process, on a fresh thread and runtime.
    fn run_here<F, Fut>(&self, seed: u64, body: &Arc<F>, probe: Option<Window>) -> RunOutcome
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Outcome,
    {
        type Drawn = (Option<FaultConfig>, Option<NetFaultConfig>);
        let drawn: Arc<Mutex<Drawn>> = Arc::new(Mutex::new((None, None)));
        let (body, fs_faults, net_faults) = (
            body.clone(),
            self.fs_faults.clone(),
            self.net_faults.clone(),
        );
        let run_drawn = drawn.clone();
        let report = self.sim_for(seed, probe).run(move || async move {
            let fs = draw(&fs_faults, "seedbank.fs_faults", FaultConfig::random);
            let net = draw(&net_faults, "seedbank.net_faults", NetFaultConfig::random);
            if let Some(c) = &fs {
                sim_fs::sim::set_fault_config(c.clone());
            }
            if let Some(c) = &net {
                sim_net::faults::set_config(c.clone());
            }
            *sim_runtime::sync::lock(&run_drawn) = (fs.clone(), net.clone());
            let ctx = Ctx::new(seed, PathBuf::from("/"), fs, net);
            body(ctx).await.into_result()
        });
        let (fs, net) = std::mem::take(&mut *sim_runtime::sync::lock(&drawn));
        let (panic_location, escape) = match report.panic {
            Some(p) => (p.location, p.escape),
            None => (None, None),
        };
        RunOutcome {
            output: report.output,
            panic_location,
            escape,
            faults: report.faults,
            marks: report.marks,
            fs,
            net,
            virtual_time: report.virtual_time,
            digest: report.trace.digest,
            count: report.trace.count,
            checkpoints: report.trace.checkpoints,
            digests: report.trace.digests,
            events: report.trace.events,
            probe: report.probe,
            escapes: report.escapes,
        }
    }

    /// One run of `seed`, isolated as planned.
    fn run_once<F, Fut>(
        &self,
        seed: u64,
        body: &Arc<F>,
        plan: &Plan,
        full_trace: bool,
        probe: Option<Window>,
        fresh: bool,
    ) -> Result<RunOutcome, String>
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Outcome,
    {
        match plan.isolation {
            #[cfg(unix)]
            Isolation::Process if !fresh => {
                crate::forkserver::run_forked(&self.name, plan.sweep, seed, full_trace, probe)
            }
            Isolation::Process | Isolation::Exec => {
                child::run_in_child(&self.name, plan.sweep, seed, full_trace, probe)
            }
            Isolation::Thread => Ok(self.run_here(seed, body, probe)),
        }
    }

    fn run_seed<F, Fut>(
        &self,
        seed: u64,
        body: &Arc<F>,
        plan: &Plan,
        twice: bool,
        only: bool,
    ) -> SeedResult
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Outcome,
    {
        // A seed checked twice runs first in a fresh process and then (with
        // `Isolation::Process`) forked from the server: the comparison also verifies
        // that a forked run starts from the slate a fresh process has.
        let first = match self.run_once(seed, body, plan, twice, None, twice) {
            Ok(run) => run,
            Err(e) => {
                // The child could not run: report it as this seed's failure.
                let kind = FailureKind::Panicked {
                    message: e,
                    location: None,
                };
                let failure = self.failure(seed, kind, None, None);
                return SeedResult {
                    seed,
                    twice,
                    failure: Some(failure),
                    faults: BTreeMap::new(),
                    marks: BTreeMap::new(),
                    virtual_time: Duration::ZERO,
                };
            }
        };
        let mut kind = None;
        // An escape recognised in the first run's panic is the verdict: both runs would
        // fail alike, which proves nothing about determinism.
        if twice && first.escape.is_none() {
            match self.run_once(seed, body, plan, true, None, false) {
                Ok(second) => {
                    if let Determinism::Differs(mut d) =
                        compare(seed, &first.trace(), &second.trace())
                    {
                        merge_escapes(&mut d.escapes, &first.escapes);
                        merge_escapes(&mut d.escapes, &second.escapes);
                        let d = self.localise(seed, body, plan, *d);
                        kind = Some(FailureKind::Nondeterministic(Box::new(d)));
                    }
                }
                Err(e) => {
                    kind = Some(FailureKind::Panicked {
                        message: format!("second run: {e}"),
                        location: None,
                    })
                }
            }
        }
        if kind.is_none() && (!only || first.escape.is_some()) {
            kind = verdict(&first);
        }
        let failure = kind.map(|kind| self.failure(seed, kind, Some(&first), first_error(&first)));
        SeedResult {
            seed,
            twice,
            failure,
            faults: first.faults,
            marks: first.marks,
            virtual_time: first.virtual_time,
        }
    }

    /// Runs the seed twice more as probe runs around the divergence
    /// (`sim_runtime::sim::follow_up`): the verdict names the task that behaved
    /// differently and its line in the user's code.
    fn localise<F, Fut>(&self, seed: u64, body: &Arc<F>, plan: &Plan, d: Divergence) -> Divergence
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Outcome,
    {
        follow_up(d, |window: Window| {
            // As the double run that found the divergence: fresh, then forked.
            let a = self
                .run_once(seed, body, plan, true, Some(window), true)
                .ok()?;
            let b = self
                .run_once(seed, body, plan, true, Some(window), false)
                .ok()?;
            Some(((a.trace(), a.probe), (b.trace(), b.probe)))
        })
    }

    fn failure(
        &self,
        seed: u64,
        kind: FailureKind,
        run: Option<&RunOutcome>,
        first_error: Option<String>,
    ) -> Failure {
        let nondeterministic = matches!(kind, FailureKind::Nondeterministic(_));
        Failure {
            test: self.name.clone(),
            seed,
            first_run_error: if nondeterministic { first_error } else { None },
            kind,
            faults: run.map(|r| r.faults.clone()).unwrap_or_default(),
            fs_faults: run.and_then(|r| r.fs.clone()),
            net_faults: run.and_then(|r| r.net.clone()),
            virtual_time: run.map_or(Duration::ZERO, |r| r.virtual_time),
            events: run.map_or(0, |r| r.count),
            digest: run.map_or(0, |r| r.digest),
            recent: run.map(RunOutcome::recent).unwrap_or_default(),
            reproduce: self.reproduce_command(seed, nondeterministic),
            escapes: run.map(|r| r.escapes.clone()).unwrap_or_default(),
        }
    }
}

fn first_error(run: &RunOutcome) -> Option<String> {
    match &run.output {
        Err(panic) => Some(panic.clone()),
        Ok(Err(e)) => Some(e.clone()),
        Ok(Ok(())) => None,
    }
}

/// The verdict of one run: `None` if it passed. A run that passed but reached outside
/// the simulation (a real file or socket, OS entropy, the real clock) fails as an
/// escape: it may not replay.
fn verdict(run: &RunOutcome) -> Option<FailureKind> {
    match &run.output {
        Ok(Ok(())) => run.escapes.first().map(|e| FailureKind::Escaped {
            escape: e.clone(),
            message: "the run passed, but it reached outside the simulation".to_string(),
        }),
        Ok(Err(e)) => Some(FailureKind::Returned(e.clone())),
        Err(message) => Some(match &run.escape {
            Some(escape) => FailureKind::Escaped {
                escape: escape.clone(),
                message: message.clone(),
            },
            None => FailureKind::Panicked {
                message: message.clone(),
                location: run.panic_location.clone(),
            },
        }),
    }
}
