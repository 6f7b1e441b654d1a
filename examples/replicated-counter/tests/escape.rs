//! Escapes from the simulation: code that reaches the real world instead of going
//! through sim-runtime, sim-fs and sim-net. Each test plants one in a small piece of
//! counter code and asserts the harness reports it — naming what was touched, or the
//! first event where two runs of the seed part, with its source line. The workspace's
//! clippy.toml bans every one of these calls; the `#[allow]`s below are deliberate.
#![cfg(madsim)]

use replicated_counter::store::Record;
use seedbank::{Ctx, DeterminismCheck, FailureKind, Test};

/// The line of this file that ends with `marker`.
fn line_of(marker: &str) -> u32 {
    let idx = include_str!("escape.rs")
        .lines()
        .position(|l| l.ends_with(marker))
        .unwrap_or_else(|| panic!("marker {marker:?} in escape.rs"));
    u32::try_from(idx + 1).expect("short file")
}

fn harness() -> Test {
    Test::new(seedbank::origin!()).ignore_env().seeds(2)
}

/// An OS thread for the fsync, "so the node does not block": madsim refuses to create
/// threads inside a run.
#[allow(clippy::disallowed_methods)] // deliberate escape: std::thread::spawn
async fn sync_on_a_thread(ctx: Ctx) {
    let path = ctx.data_dir().join("counter-1.log");
    seedbank::fs::write(
        &path,
        Record {
            count: 1,
            client: 101,
            seq: 1,
        }
        .encode(),
    )
    .await
    .expect("write");
    let handle = std::thread::spawn(move || path); // <- escape: thread
    let _ = handle.join();
}

#[test]
fn an_os_thread_is_reported_as_an_escape_naming_the_line() {
    let report = harness().sweep(sync_on_a_thread);
    let failure = report.first_failure().expect("the thread must be refused");
    println!("{failure}");
    let FailureKind::Escaped { escape, .. } = &failure.kind else {
        panic!("expected an escape, got:\n{failure}");
    };
    assert!(escape.what.contains("OS thread"), "{failure}");
    let at = escape.at.as_deref().expect("the spawning line is named");
    let want = format!("tests/escape.rs:{}:", line_of("// <- escape: thread"));
    assert!(at.contains(&want), "expected {want} in {at}\n{failure}");
    let text = failure.to_string();
    assert!(
        text.contains("ESCAPED THE SIMULATION") && text.contains("task::spawn"),
        "{text}"
    );
}

/// A temporary file name from OS randomness: `rand::thread_rng` reaches the OS
/// (madsim does not intercept it), so each run picks another name.
#[allow(clippy::disallowed_methods)] // deliberate escape: rand::thread_rng
async fn temp_name_from_thread_rng(ctx: Ctx) {
    use rand::Rng;
    let suffix: u32 = rand::thread_rng().gen(); // <- draw: thread_rng
    let tmp = ctx.data_dir().join(format!("counter-1.{suffix}.tmp"));
    let written = seedbank::fs::write(&tmp, b"state"); // <- escape: thread_rng
    written.await.expect("write");
    seedbank::fs::rename(&tmp, ctx.data_dir().join("counter-1.log"))
        .await
        .expect("rename");
}

#[test]
fn os_randomness_is_named_as_an_escape_even_in_a_single_run() {
    // One run cannot differ from itself, but the getrandom system call that
    // thread_rng makes is seen as it happens (sim-runtime's syscall override).
    let once = harness()
        .check_determinism(DeterminismCheck::Off)
        .sweep(temp_name_from_thread_rng);
    let failure = once.first_failure().expect("the entropy is noted");
    println!("{failure}");
    let FailureKind::Escaped { escape, .. } = &failure.kind else {
        panic!("expected an escape, got:\n{failure}");
    };
    assert!(escape.what.contains("OS entropy"), "{failure}");
    let at = escape.at.as_deref().unwrap_or_default();
    let want = format!("tests/escape.rs:{}:", line_of("// <- draw: thread_rng"));
    assert!(at.contains(&want), "expected {want} in {at}\n{failure}");
}

#[test]
fn os_randomness_is_caught_by_the_double_run_check_at_its_line() {
    // The default check runs the first seed twice, and the runs part at the write.
    let report = harness().sweep(temp_name_from_thread_rng);
    let failure = report.first_failure().expect("the two runs must differ");
    println!("{failure}");
    let FailureKind::Nondeterministic(d) = &failure.kind else {
        panic!("expected a divergence, got:\n{failure}");
    };
    let first = d.first.as_ref().expect("run 1's divergent event");
    assert!(first.file.ends_with("tests/escape.rs"), "{failure}");
    assert_eq!(first.line, line_of("// <- escape: thread_rng"), "{failure}");
    assert!(failure
        .reproduce
        .starts_with("SEEDBANK_CHECK_DETERMINISM=1 SEEDBANK_SEED=0 "));
}

/// Remembering something on the real disk across runs: each run sees what the
/// previous one left, so the second run of a seed does something else.
#[allow(clippy::disallowed_methods)] // deliberate escape: std::fs
async fn real_file_memory(ctx: Ctx) {
    let real = std::env::temp_dir().join(format!("seedbank-escape-{}", std::process::id()));
    let seen = std::fs::read(&real).map(|b| b.len()).unwrap_or(0);
    std::fs::write(&real, vec![b'x'; seen + 1]).expect("real write");
    let record = Record {
        count: seen as u64,
        client: 101,
        seq: 1,
    }
    .encode();
    let path = ctx.data_dir().join("counter-1.log");
    let written = seedbank::fs::write(path, &record[..8 + seen.min(24)]); // <- escape: std::fs
    written.await.expect("write");
}

#[test]
fn the_real_disk_is_caught_by_the_double_run_check_at_its_line() {
    // Thread isolation: both runs share this process, so the planted file is found by
    // the second run. (With process isolation, every run has its own process id and
    // file, and this particular escape stays hidden — but it is still a real write to
    // the real disk, which the lint bans.)
    let report = harness()
        .isolation(seedbank::Isolation::Thread)
        .sweep(real_file_memory);
    #[allow(clippy::disallowed_methods)] // cleaning up the deliberate escape
    let _ = std::fs::remove_file(
        std::env::temp_dir().join(format!("seedbank-escape-{}", std::process::id())),
    );
    let failure = report.first_failure().expect("the two runs must differ");
    println!("{failure}");
    let FailureKind::Nondeterministic(d) = &failure.kind else {
        panic!("expected a divergence, got:\n{failure}");
    };
    let first = d.first.as_ref().expect("run 1's divergent event");
    assert_eq!(first.line, line_of("// <- escape: std::fs"), "{failure}");
    assert!(failure.to_string().contains("the real disk"), "{failure}");
}
