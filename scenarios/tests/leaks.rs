//! The catalogue of leaks (examples/replicated-counter/tests/leaks/plants.rs, included
//! here by path: one copy) in the built-in scenarios' world: a scenario whose workload
//! runs the plant before each transaction, checked by the scenario runner's double run
//! (`runner::run::check_determinism`, what `seedbank check-determinism`, `run
//! --check-determinism` and `sweep --check-determinism` call). Each test fails if the
//! verdict does not name `plants.rs:LINE:` of the plant, or contradicts itself.
#![cfg(madsim)]

#[path = "../../examples/replicated-counter/tests/leaks/plants.rs"]
mod plants;

use scenarios::check::history::MicroOp;
use scenarios::runner::plan::FaultSpace;
use scenarios::runner::run::{check_determinism, plan_for, run_seed};
use scenarios::runner::scenario::{Scenario, Topology, LIVENESS};
use scenarios::runner::store::{Tx, TxError};
use scenarios::workload::register::Register;
use scenarios::workload::{BoxFut, HistoryCheck, KeyChooser, Workload};
use sim_runtime::sim::{Determinism, Divergence};

/// The register workload, with a plant run before each transaction.
struct Leaky {
    plant: fn() -> BoxFut<'static, ()>,
    inner: Register,
}

impl Workload for Leaky {
    fn generate(&self, keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        self.inner.generate(keys, rng)
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        Box::pin(async move {
            (self.plant)().await;
            self.inner.execute(ops, tx).await
        })
    }

    fn unique_writes(&self) -> bool {
        self.inner.unique_writes()
    }

    fn history_check(&self) -> HistoryCheck {
        self.inner.history_check()
    }
}

/// A small embedded scenario whose workload runs `$plant` before each transaction.
macro_rules! leaky {
    ($plant:expr) => {
        Scenario {
            name: "leaky-register",
            about: "registers, with a planted leak before each transaction",
            topology: Topology::Embedded,
            faults: FaultSpace::NONE,
            clients: 2,
            ops: 12,
            keys: 4,
            workload: || {
                Box::new(Leaky {
                    plant: || -> BoxFut<'static, ()> { Box::pin($plant) },
                    inner: Register::new(),
                })
            },
            plan_file: None,
            liveness: LIVENESS,
            must_reach: &[],
        }
    };
}

/// The same self-consistency the harness's tests demand.
fn assert_self_consistent(d: &Divergence) {
    if let Err(e) = d.verify() {
        panic!("the report contradicts itself: {e}");
    }
}

fn verdict(sc: &Scenario) -> Determinism {
    let plan = plan_for(sc, 1).expect("a drawn plan");
    check_determinism(sc, 1, &plan, 0).1
}

fn assert_localised(sc: &Scenario, name: &str) {
    let d = match verdict(sc) {
        Determinism::Differs(d) => d,
        other => panic!("{name}: expected a divergence, got {other:?}"),
    };
    println!("{name}:\n{d}");
    assert_self_consistent(&d);
    let want = plants::place_of(name);
    assert!(
        d.localised_places().iter().any(|p| p.contains(&want)),
        "{name}: expected {want} among {:?}\n{d}",
        d.localised_places()
    );
}

#[test]
fn rand_random_is_localised() {
    assert_localised(&leaky!(plants::rand_random()), "rand::random");
}

#[test]
fn a_leak_in_a_tokio_spawned_task_is_localised() {
    assert_localised(&leaky!(plants::in_a_tokio_task()), "tokio::spawn");
}

#[test]
fn thread_rng_is_localised() {
    assert_localised(&leaky!(plants::rand_thread_rng()), "thread_rng");
}

#[test]
fn getrandom_is_localised() {
    assert_localised(&leaky!(plants::getrandom_bytes()), "getrandom");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn cpu_counter_is_localised() {
    assert_localised(&leaky!(plants::cpu_counter()), "rdtsc");
}

#[test]
fn hashmap_order_is_localised() {
    assert_localised(&leaky!(plants::hashmap_order()), "hashmap");
}

#[test]
fn a_process_wide_static_is_localised() {
    assert_localised(&leaky!(plants::process_static()), "static");
}

#[test]
fn an_environment_variable_is_localised() {
    assert_localised(&leaky!(plants::env_var()), "env");
}

#[test]
fn real_clock_is_localised() {
    assert_localised(&leaky!(plants::real_clock()), "clock");
}

#[test]
fn real_disk_is_localised() {
    #[allow(clippy::disallowed_methods)] // the planted leak's own file
    let clean = || std::fs::remove_file(plants::real_disk_path("scenarios"));
    let _ = clean();
    let sc = leaky!(plants::real_disk("scenarios"));
    assert_localised(&sc, "disk");
    let _ = clean();
}

#[test]
fn real_socket_is_localised() {
    assert_localised(&leaky!(plants::real_socket()), "socket");
}

#[test]
fn an_unbiased_select_is_localised() {
    assert_localised(&leaky!(plants::unbiased_select()), "select");
}

#[test]
fn an_os_thread_is_an_escape_naming_its_line_in_run_and_check_determinism() {
    let sc = leaky!(plants::os_thread());
    let want = plants::place_of("thread");
    // `run` / `sweep`: the run fails [escape], naming the line.
    let plan = plan_for(&sc, 1).expect("a drawn plan");
    let record = run_seed(&sc, 1, &plan, 0).record;
    assert_eq!(record.failed_check.as_deref(), Some("escape"), "{record:?}");
    let message = record.message.unwrap_or_default();
    assert!(
        message.contains(&want) && message.contains("OS thread"),
        "{message}"
    );
    // `check-determinism`: an escape, not "deterministic" (both runs fail alike).
    match verdict(&sc) {
        Determinism::Escaped { escape, .. } => {
            assert!(
                escape.at.as_deref().unwrap_or_default().contains(&want),
                "{escape}"
            )
        }
        other => panic!("expected an escape, got {other:?}"),
    }
}

#[test]
fn entropy_the_clock_a_real_file_and_a_socket_fail_a_single_run_as_escapes_naming_their_line() {
    let scenarios = [
        ("rand::random", leaky!(plants::rand_random())),
        ("thread_rng", leaky!(plants::rand_thread_rng())),
        ("getrandom", leaky!(plants::getrandom_bytes())),
        ("clock", leaky!(plants::real_clock())),
        ("disk", leaky!(plants::real_disk("scenarios-single"))),
        ("socket", leaky!(plants::real_socket())),
    ];
    assert_eq!(scenarios.len(), plants::SEEN_AS_ESCAPES.len());
    for (name, sc) in &scenarios {
        let plan = plan_for(sc, 1).expect("a drawn plan");
        let out = run_seed(sc, 1, &plan, 0);
        assert_eq!(
            out.record.failed_check.as_deref(),
            Some("escape"),
            "{name}: {:?}",
            out.record
        );
        let want = plants::place_of(name);
        assert!(
            out.escapes
                .iter()
                .any(|e| e.at.as_deref().is_some_and(|a| a.contains(&want))),
            "{name}: expected {want} in {:?}",
            out.escapes
        );
    }
    #[allow(clippy::disallowed_methods)] // the planted leak's own file
    let _ = std::fs::remove_file(plants::real_disk_path("scenarios-single"));
}
