//! The catalogue of leaks (tests/leaks/plants.rs), each found by the harness's double
//! run in this outside crate and localised to its planted line — or named as an escape
//! with its line. Each test fails if the report does not contain `plants.rs:LINE:` of
//! the plant, or if the report contradicts itself.
#![cfg(madsim)]

#[path = "leaks/plants.rs"]
mod plants;

use seedbank::runtime::sim::Divergence;
use seedbank::{Ctx, DeterminismCheck, Failure, FailureKind, Isolation, SweepReport, Test};

/// One seed, run twice, in `isolation`.
fn twice(isolation: Isolation) -> Test {
    Test::new(seedbank::origin!())
        .ignore_env()
        .seeds(1)
        .check_determinism(DeterminismCheck::EverySeed)
        .isolation(isolation)
}

/// The report states one divergence index, the last common event is the one before it,
/// and each side's event is that index or the report says why it is missing.
pub fn assert_self_consistent(d: &Divergence) {
    if let Err(e) = d.verify() {
        panic!("the report contradicts itself: {e}");
    }
}

fn divergence<'a>(report: &'a SweepReport, what: &str) -> (&'a Failure, &'a Divergence) {
    let failure = report
        .first_failure()
        .unwrap_or_else(|| panic!("{what}: the double run must catch it: {}", report.summary()));
    println!("{failure}");
    let FailureKind::Nondeterministic(d) = &failure.kind else {
        panic!("{what}: expected a divergence, got:\n{failure}");
    };
    (failure, d)
}

/// The plant `name` is caught and localised to its line.
fn assert_localised(report: &SweepReport, name: &str) {
    let (failure, d) = divergence(report, name);
    assert_self_consistent(d);
    let want = plants::place_of(name);
    assert!(
        d.localised_places().iter().any(|p| p.contains(&want)),
        "{name}: expected {want} among the places the report names {:?}\n{failure}",
        d.localised_places()
    );
    assert!(failure.to_string().contains(&want), "{failure}");
}

#[test]
fn rand_random_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::rand_random());
    assert_localised(&report, "rand::random");
}

#[test]
fn a_leak_in_a_tokio_spawned_task_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::in_a_tokio_task());
    assert_localised(&report, "tokio::spawn");
    let text = report
        .first_failure()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(text.contains("not spawned through sim-runtime"), "{text}");
}

#[test]
fn thread_rng_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::rand_thread_rng());
    assert_localised(&report, "thread_rng");
}

#[test]
fn getrandom_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::getrandom_bytes());
    assert_localised(&report, "getrandom");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn cpu_counter_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::cpu_counter());
    assert_localised(&report, "rdtsc");
}

#[test]
fn hashmap_order_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::hashmap_order());
    assert_localised(&report, "hashmap");
}

#[test]
fn real_clock_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::real_clock());
    assert_localised(&report, "clock");
}

#[test]
fn real_socket_is_localised() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::real_socket());
    assert_localised(&report, "socket");
}

#[test]
fn real_disk_is_localised() {
    // The test function runs again in each run's child process (and fork server): only
    // the parent, before and after the sweep, removes the planted leak's file.
    let parent = !seedbank::in_child_process();
    #[allow(clippy::disallowed_methods)] // the planted leak's own file
    let clean = || parent.then(|| std::fs::remove_file(plants::real_disk_path("harness")));
    let _ = clean();
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::real_disk("harness"));
    let _ = clean();
    assert_localised(&report, "disk");
}

/// Process-wide state (a static, an environment variable, tokio's generator behind an
/// unbiased `select!`) leaks only between runs in one process: the harness's default,
/// a process per run, cannot see it because it cannot happen there; runs on threads of
/// one process show it, localised.
fn process_wide<Fut>(name: &str, plant: fn() -> Fut)
where
    Fut: std::future::Future<Output = ()> + 'static,
{
    let isolated = twice(Isolation::Process).sweep(move |_: Ctx| plant());
    assert!(
        isolated.passed(),
        "{name}: {:?}",
        isolated.first_failure().map(ToString::to_string)
    );
    let report = twice(Isolation::Thread).sweep(move |_: Ctx| plant());
    assert_localised(&report, name);
}

#[test]
fn a_process_wide_static_is_localised_between_runs_in_one_process() {
    process_wide("static", plants::process_static);
}

#[test]
fn an_environment_variable_is_localised_between_runs_in_one_process() {
    process_wide("env", plants::env_var);
}

#[test]
fn an_unbiased_select_is_localised_between_runs_in_one_process() {
    process_wide("select", plants::unbiased_select);
}

#[test]
fn an_os_thread_is_an_escape_naming_its_line() {
    let report = twice(Isolation::Process).sweep(|_: Ctx| plants::os_thread());
    let failure = report.first_failure().expect("madsim refuses the thread");
    println!("{failure}");
    let FailureKind::Escaped { escape, .. } = &failure.kind else {
        panic!("expected an escape, got:\n{failure}");
    };
    let at = escape.at.as_deref().unwrap_or_default();
    assert!(at.contains(&plants::place_of("thread")), "{failure}");
}

/// The plant `name` as a future-returning function (for the table-driven test below).
fn plant(name: &str) -> fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    match name {
        "rand::random" => || Box::pin(plants::rand_random()),
        "thread_rng" => || Box::pin(plants::rand_thread_rng()),
        "getrandom" => || Box::pin(plants::getrandom_bytes()),
        "clock" => || Box::pin(plants::real_clock()),
        "disk" => || Box::pin(plants::real_disk("harness-single")),
        "socket" => || Box::pin(plants::real_socket()),
        other => panic!("no plant {other}"),
    }
}

#[test]
fn entropy_the_clock_a_real_file_and_a_socket_are_escapes_naming_their_line_in_one_run() {
    for &name in plants::SEEN_AS_ESCAPES {
        let f = plant(name);
        // One run, no double run: what is named comes from the run itself.
        let report = twice(Isolation::Thread)
            .check_determinism(DeterminismCheck::Off)
            .sweep(move |_: Ctx| f());
        let failure = report
            .first_failure()
            .unwrap_or_else(|| panic!("{name}: the escape must fail the run"));
        let FailureKind::Escaped { escape, .. } = &failure.kind else {
            panic!("{name}: expected an escape, got:\n{failure}");
        };
        let want = plants::place_of(name);
        let named = std::iter::once(escape)
            .chain(&failure.escapes)
            .any(|e| e.at.as_deref().is_some_and(|a| a.contains(&want)));
        assert!(named, "{name}: expected {want}:\n{failure}");
    }
    #[allow(clippy::disallowed_methods)] // the planted leak's own file
    let _ = std::fs::remove_file(plants::real_disk_path("harness-single"));
}
