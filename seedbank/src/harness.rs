//! [`Test`]: the builder behind `#[seedbank::test]` — which seeds, which faults, how
//! many at once, whether to run each seed twice — and [`Test::run`].

use crate::Ctx;
use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use sim_runtime::cover::MustReach;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
#[cfg(madsim)]
use std::sync::Arc;
use std::time::Duration;

/// Seeds a test runs when neither it nor the environment says otherwise: `0..16`.
pub const DEFAULT_SEEDS: u64 = 16;

/// Virtual time a simulated run may take before it fails (`Test::time_limit`).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// Where a test lives; build it with [`origin!`](crate::origin!).
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// `CARGO_PKG_NAME` of the crate the test is in.
    pub package: &'static str,
    /// `CARGO_CRATE_NAME` of the test's target.
    pub crate_name: &'static str,
    /// `file!()` at the call site.
    pub file: &'static str,
    /// `module_path!()` at the call site.
    pub module: &'static str,
    /// Whether the call site is in an integration test (`tests/*.rs`).
    pub integration_test: bool,
}

impl Origin {
    /// The cargo arguments that select the test's target: `--test <name>` for an
    /// integration test, `--lib` for a unit test.
    pub fn target_args(&self) -> String {
        if !self.integration_test {
            return "--lib".to_string();
        }
        let path = Path::new(self.file);
        let in_tests_dir = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "tests");
        match path.file_stem().and_then(|s| s.to_str()) {
            Some(stem) if in_tests_dir => format!("--test {stem}"),
            _ => format!("--test {}", self.crate_name),
        }
    }
}

/// The libtest name of function `fn_name` defined in module `module` (`module_path!()`):
/// the module path without the crate, then the function.
pub fn libtest_name(module: &str, fn_name: &str) -> String {
    match module.split_once("::") {
        Some((_, rest)) => format!("{rest}::{fn_name}"),
        None => fn_name.to_string(),
    }
}

/// What a test body may return: `()`, or `Result<(), E>` (an `Err` fails the seed).
pub trait Outcome {
    /// `Ok` if the seed passed, else the failure in words.
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("the test returned Err({e:?})"))
    }
}

/// Which seeds run twice to prove the run is a pure function of its seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeterminismCheck {
    /// Never.
    Off,
    /// The first seed of the sweep (the default: a cheap canary for escapes).
    FirstSeed,
    /// Every seed; any difference fails the test.
    EverySeed,
    /// Every seed, and only a difference fails: the test's own verdict is ignored.
    /// For `git bisect run` hunting the commit that broke determinism.
    Only,
}

/// Where each run of a seed happens (simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In a process of its own, on a fresh thread (the default): nothing a run leaves
    /// in process-wide state (statics, tokio's RNG counter) reaches the next, so a seed
    /// replays byte for byte whether it ran in a sweep or alone. On Unix each run is
    /// forked from a server process of the test binary that stopped just before the
    /// sweep and never runs a seed itself (a clean slate at the cost of a `fork`); a
    /// seed checked twice runs once in a fresh process and once forked, so the two
    /// ways are compared on every checked seed. Elsewhere, as [`Isolation::Exec`].
    Process,
    /// In a fresh process of the test binary started for this run alone (what the
    /// reproduce command does): the slowest, and the reference the fork server is
    /// checked against. `SEEDBANK_ISOLATION=exec`.
    Exec,
    /// On a fresh thread of this process. Faster to start; process-wide state leaks
    /// between runs. Doctests and `main`s, which a child process cannot select, always
    /// use it.
    Thread,
}

/// How a run's faults of one kind are chosen.
#[derive(Clone)]
#[cfg_attr(not(madsim), allow(dead_code))] // the real world injects no faults
pub(crate) enum Faults<C> {
    None,
    Fixed(C),
    Random(Option<fn(&mut C)>),
}

#[cfg(madsim)]
type SimSetup = Arc<dyn Fn(sim_runtime::sim::Sim) -> sim_runtime::sim::Sim + Send + Sync>;

/// A test: its seeds, faults and checks. `#[seedbank::test(...)]` builds one and calls
/// [`Test::run`]; use it directly when you need the [`Test::sweep`] report.
///
/// ```
/// // In a #[test] fn (here: a doctest's main). Both worlds: simulated with
/// // `--cfg madsim`, once on tokio otherwise.
/// seedbank::Test::new(seedbank::origin!())
///     .seeds(4)
///     .random_net_faults()
///     .run(|ctx: seedbank::Ctx| async move {
///         seedbank::time::sleep(std::time::Duration::from_millis(10)).await;
///         assert!(ctx.seed() < 4 || !ctx.is_simulated());
///     });
/// ```
#[derive(Clone)]
pub struct Test {
    pub(crate) origin: Origin,
    pub(crate) name: String,
    pub(crate) seeds: Range<u64>,
    pub(crate) ignore_env: bool,
    pub(crate) jobs: Option<usize>,
    pub(crate) determinism: DeterminismCheck,
    pub(crate) fs_faults: Faults<FaultConfig>,
    pub(crate) net_faults: Faults<NetFaultConfig>,
    pub(crate) time_limit: Duration,
    pub(crate) cargo_args: String,
    pub(crate) stop_on_failure: bool,
    pub(crate) isolation: Isolation,
    /// Coverage marks the sweep must reach (it fails when none of its seeds did).
    pub(crate) must_reach: Vec<MustReach>,
    /// Layers (mark-name prefixes) whose unreached marks the report lists; empty: all.
    pub(crate) mark_layers: Vec<&'static str>,
    #[cfg(madsim)]
    pub(crate) setup: Option<SimSetup>,
}

impl std::fmt::Debug for Test {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Test")
            .field("name", &self.name)
            .field("seeds", &self.seeds)
            .field("determinism", &self.determinism)
            .finish_non_exhaustive()
    }
}

impl Test {
    /// A test whose name is the libtest name of the running test (libtest names each
    /// test's thread after it; the doctest or `main` thread gives `main`).
    pub fn new(origin: Origin) -> Self {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        Self::with_name(origin, name)
    }

    /// A test for function `fn_name` at `origin` (what `#[seedbank::test]` calls).
    pub fn named(origin: Origin, fn_name: &str) -> Self {
        Self::with_name(origin, libtest_name(origin.module, fn_name))
    }

    fn with_name(origin: Origin, name: String) -> Self {
        Test {
            origin,
            name,
            seeds: 0..DEFAULT_SEEDS,
            ignore_env: false,
            jobs: None,
            determinism: DeterminismCheck::FirstSeed,
            fs_faults: Faults::None,
            net_faults: Faults::None,
            time_limit: DEFAULT_TIME_LIMIT,
            cargo_args: String::new(),
            stop_on_failure: true,
            isolation: Isolation::Process,
            must_reach: Vec::new(),
            mark_layers: Vec::new(),
            #[cfg(madsim)]
            setup: None,
        }
    }

    /// The test's libtest name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run seeds `0..count` (default [`DEFAULT_SEEDS`]); `SEEDBANK_SEED(S)` override it.
    pub fn seeds(mut self, count: u64) -> Self {
        self.seeds = 0..count;
        self
    }

    /// Run seeds `range` (end exclusive); `SEEDBANK_SEED(S)` override it.
    pub fn seed_range(mut self, range: Range<u64>) -> Self {
        self.seeds = range;
        self
    }

    /// Ignore `SEEDBANK_SEED`, `SEEDBANK_SEEDS` and `SEEDBANK_CHECK_DETERMINISM`: the
    /// test runs exactly its own seeds and checks (for meta-tests that assert what a
    /// sweep finds). `SEEDBANK_JOBS` still applies.
    pub fn ignore_env(mut self) -> Self {
        self.ignore_env = true;
        self
    }

    /// Run `n` seeds at once, each on its own fresh thread (default 1, or
    /// `SEEDBANK_JOBS`; 0 = one per core).
    pub fn jobs(mut self, n: usize) -> Self {
        self.jobs = Some(n);
        self
    }

    /// Which seeds run twice (default [`DeterminismCheck::FirstSeed`]);
    /// `SEEDBANK_CHECK_DETERMINISM` overrides it.
    pub fn check_determinism(mut self, check: DeterminismCheck) -> Self {
        self.determinism = check;
        self
    }

    /// Inject disk faults at these rates in every run.
    pub fn fs_faults(mut self, config: FaultConfig) -> Self {
        self.fs_faults = Faults::Fixed(config);
        self
    }

    /// Draw the disk fault configuration per seed: `FaultConfig::random` from the
    /// run's stream `seedbank.fs_faults`.
    pub fn random_fs_faults(mut self) -> Self {
        self.fs_faults = Faults::Random(None);
        self
    }

    /// Like [`Test::random_fs_faults`], then `adjust` the drawn configuration — e.g.
    /// turn off a fault the system does not claim to survive.
    pub fn random_fs_faults_with(mut self, adjust: fn(&mut FaultConfig)) -> Self {
        self.fs_faults = Faults::Random(Some(adjust));
        self
    }

    /// Inject network faults at these rates in every run.
    pub fn net_faults(mut self, config: NetFaultConfig) -> Self {
        self.net_faults = Faults::Fixed(config);
        self
    }

    /// Draw the network fault configuration per seed: `NetFaultConfig::random` from the
    /// run's stream `seedbank.net_faults`.
    pub fn random_net_faults(mut self) -> Self {
        self.net_faults = Faults::Random(None);
        self
    }

    /// Like [`Test::random_net_faults`], then `adjust` the drawn configuration.
    pub fn random_net_faults_with(mut self, adjust: fn(&mut NetFaultConfig)) -> Self {
        self.net_faults = Faults::Random(Some(adjust));
        self
    }

    /// [`Test::random_fs_faults`] and [`Test::random_net_faults`].
    pub fn random_faults(self) -> Self {
        self.random_fs_faults().random_net_faults()
    }

    /// Fail a run that passes `limit` of virtual time (simulation) or wall time (real
    /// world). Default one hour.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Extra cargo arguments for the reproduce command, e.g. `"--features my-bug"` when
    /// the test's build needs them.
    pub fn cargo_args(mut self, args: &str) -> Self {
        self.cargo_args = args.trim().to_string();
        self
    }

    /// The sweep must reach the coverage mark `mark` (a `sim_runtime::cover!` name):
    /// when it ran all its seeds and none reached it, it fails, and the report says
    /// so. Write it where a situation your checks depend on could silently stop
    /// happening (a fault plan that no longer reaches the retry path, say).
    pub fn must_reach(mut self, mark: &'static str) -> Self {
        self.must_reach.push(MustReach { mark, within: 1 });
        self
    }

    /// The report lists the unreached marks of these layers only (the part of a mark
    /// name before its first dot, e.g. `["myservice"]`); default: every mark linked
    /// into the test binary.
    pub fn mark_layers(mut self, layers: &[&'static str]) -> Self {
        self.mark_layers = layers.to_vec();
        self
    }

    /// Whether the first failing seed ends the sweep (default true).
    pub fn stop_on_failure(mut self, stop: bool) -> Self {
        self.stop_on_failure = stop;
        self
    }

    /// Where each run happens (default [`Isolation::Process`]);
    /// `SEEDBANK_ISOLATION=thread|process|exec` overrides it.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Applies `f` to this builder: a shared configuration as one call, e.g.
    /// `#[seedbank::test(with = common::chaos)]` where `fn chaos(t: Test) -> Test`.
    pub fn with(self, f: impl FnOnce(Test) -> Test) -> Test {
        f(self)
    }

    /// Adjusts each run's `Sim` (simulation only): madsim network config, extra
    /// plugins, buggify off, trace keep limit. sim-fs's plugin and the time limit are
    /// already set.
    #[cfg(madsim)]
    pub fn sim(
        mut self,
        setup: impl Fn(sim_runtime::sim::Sim) -> sim_runtime::sim::Sim + Send + Sync + 'static,
    ) -> Self {
        self.setup = Some(Arc::new(setup));
        self
    }

    /// The command that replays `seed` of this test in simulation. It spells the
    /// simulated build out (`RUSTFLAGS="--cfg madsim" cargo test`) rather than naming a
    /// cargo alias, so it works in any crate, not only in this repository.
    pub fn reproduce_command(&self, seed: u64, determinism: bool) -> String {
        let env = if determinism {
            format!("SEEDBANK_CHECK_DETERMINISM=1 SEEDBANK_SEED={seed}")
        } else {
            format!("SEEDBANK_SEED={seed}")
        };
        let extra = if self.cargo_args.is_empty() {
            String::new()
        } else {
            format!(" {}", self.cargo_args)
        };
        format!(
            "{env} RUSTFLAGS=\"--cfg madsim\" cargo test -p {}{extra} {} -- --exact {}",
            self.origin.package,
            self.origin.target_args(),
            self.name
        )
    }

    /// Runs the test: in simulation, every seed (see [`Test::sweep`]) and panics with
    /// the first failure's report; in the real world, the body once on tokio.
    #[track_caller]
    pub fn run<F, Fut>(self, body: F)
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Outcome,
    {
        #[cfg(madsim)]
        {
            let report = self.sweep(body);
            match report.first_failure() {
                Some(failure) => panic!("{failure}"),
                None if !report.missed_marks().is_empty() => panic!("{}", report.summary()),
                None => println!("{}", report.summary()),
            }
        }
        #[cfg(not(madsim))]
        {
            crate::real::run(self, body)
        }
    }
}

/// The environment's overrides, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EnvOverrides {
    pub seeds: Option<Range<u64>>,
    pub jobs: Option<usize>,
    pub determinism: Option<DeterminismCheck>,
    pub isolation: Option<Isolation>,
}

impl EnvOverrides {
    /// Reads `SEEDBANK_SEED`, `SEEDBANK_SEEDS`, `SEEDBANK_JOBS` and
    /// `SEEDBANK_CHECK_DETERMINISM` (and `SEEDBANK_ISOLATION`); a malformed value panics
    /// naming the variable.
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub fn from_env() -> Self {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::parse(
            get("SEEDBANK_SEED").as_deref(),
            get("SEEDBANK_SEEDS").as_deref(),
            get("SEEDBANK_JOBS").as_deref(),
            get("SEEDBANK_CHECK_DETERMINISM").as_deref(),
        )
        .and_then(|mut o| {
            o.isolation = match get("SEEDBANK_ISOLATION").as_deref().map(str::trim) {
                None => None,
                Some("process") => Some(Isolation::Process),
                Some("exec") => Some(Isolation::Exec),
                Some("thread") => Some(Isolation::Thread),
                Some(other) => {
                    return Err(format!(
                        "SEEDBANK_ISOLATION={other:?}: expected process, exec or thread"
                    ))
                }
            };
            Ok(o)
        })
        .unwrap_or_else(|e| panic!("seedbank: {e}"))
    }

    pub fn parse(
        seed: Option<&str>,
        seeds: Option<&str>,
        jobs: Option<&str>,
        determinism: Option<&str>,
    ) -> Result<Self, String> {
        let num = |name: &str, v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{name}={v:?} is not a number"))
        };
        let seeds = match (seed, seeds) {
            (Some(s), _) => {
                let s = num("SEEDBANK_SEED", s)?;
                Some(s..s.saturating_add(1))
            }
            (None, Some(range)) => Some(match range.split_once("..") {
                Some((a, b)) => {
                    let a = num("SEEDBANK_SEEDS", a)?;
                    let b = num("SEEDBANK_SEEDS", b)?;
                    if a >= b {
                        return Err(format!("SEEDBANK_SEEDS={range:?} is an empty range"));
                    }
                    a..b
                }
                None => 0..num("SEEDBANK_SEEDS", range)?,
            }),
            (None, None) => None,
        };
        let jobs = jobs
            .map(|j| num("SEEDBANK_JOBS", j).map(|n| n as usize))
            .transpose()?;
        let determinism = match determinism.map(str::trim) {
            None => None,
            Some("0") | Some("off") => Some(DeterminismCheck::Off),
            Some("1") | Some("every") => Some(DeterminismCheck::EverySeed),
            Some("first") => Some(DeterminismCheck::FirstSeed),
            Some("only") => Some(DeterminismCheck::Only),
            Some(other) => {
                return Err(format!(
                    "SEEDBANK_CHECK_DETERMINISM={other:?}: expected 1, 0, first or only"
                ))
            }
        };
        Ok(EnvOverrides {
            seeds,
            jobs,
            determinism,
            isolation: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(file: &'static str, integration_test: bool) -> Origin {
        Origin {
            package: "my-crate",
            crate_name: "chaos",
            file,
            module: "chaos::inner",
            integration_test,
        }
    }

    #[test]
    fn reproduce_command_names_package_target_and_exact_test() {
        let t = Test::named(origin("crates/my-crate/tests/chaos.rs", true), "survives")
            .cargo_args("--features bug");
        assert_eq!(t.name(), "inner::survives");
        assert_eq!(
            t.reproduce_command(17, false),
            "SEEDBANK_SEED=17 RUSTFLAGS=\"--cfg madsim\" cargo test -p my-crate --features bug --test chaos -- --exact inner::survives"
        );
        assert!(t.reproduce_command(3, true).starts_with(
            "SEEDBANK_CHECK_DETERMINISM=1 SEEDBANK_SEED=3 RUSTFLAGS=\"--cfg madsim\" cargo test"
        ));
        let unit = Test::named(origin("src/lib.rs", false), "t");
        assert!(unit
            .reproduce_command(1, false)
            .contains(" --lib -- --exact inner::t"));
        // A helper module of an integration test falls back to the crate name.
        let helper = Test::named(origin("tests/common/mod.rs", true), "t");
        assert!(helper
            .reproduce_command(1, false)
            .contains(" --test chaos "));
    }

    #[test]
    fn libtest_names_drop_the_crate() {
        assert_eq!(libtest_name("chaos", "f"), "f");
        assert_eq!(libtest_name("my_crate::tests::deep", "f"), "tests::deep::f");
    }

    #[test]
    fn env_overrides_parse_and_reject_garbage() {
        let p = |a, b, c, d| EnvOverrides::parse(a, b, c, d);
        assert_eq!(
            p(Some("17"), Some("5"), None, None).unwrap().seeds,
            Some(17..18)
        );
        assert_eq!(p(None, Some("5"), None, None).unwrap().seeds, Some(0..5));
        assert_eq!(
            p(None, Some("10..20"), None, None).unwrap().seeds,
            Some(10..20)
        );
        assert_eq!(p(None, None, Some("4"), None).unwrap().jobs, Some(4));
        assert_eq!(
            p(None, None, None, Some("1")).unwrap().determinism,
            Some(DeterminismCheck::EverySeed)
        );
        assert_eq!(
            p(None, None, None, Some("only")).unwrap().determinism,
            Some(DeterminismCheck::Only)
        );
        assert!(p(Some("x"), None, None, None).is_err());
        assert!(p(None, Some("9..3"), None, None).is_err());
        assert!(p(None, None, None, Some("yes")).is_err());
        assert_eq!(p(None, None, None, None).unwrap(), EnvOverrides::default());
    }
}
