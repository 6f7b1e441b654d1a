//! Test fixtures for the chaos commands' failure paths (tests/chaos_reports.rs), not an
//! example to copy: two entries over the correct counter whose verdict depends on the
//! process they run in, which a real system must never do.
//!
//! - `aborts-at-seed-3`: the run of seed 3 aborts its process (a child that dies
//!   without a result: `sweep` reports an `error` line for it).
//! - `fails-only-in-process`: fails its invariant unless it runs as a sweep's child
//!   (`--child`), so `shrink`'s plan file does not replay in a fresh child (exit 1).
//! - `promises-the-unreachable`: the correct counter without faults, promising a mark
//!   only a retried increment reaches (a lost answer): `sweep` fails on the promise.

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    use replicated_counter::chaos_scenario::{scenario, system};
    use seedbank::chaos::cli::{Cli, Entry};
    use seedbank::chaos::plan::FaultSpace;
    let mut quick = scenario();
    quick.ops = 30;
    quick.faults = FaultSpace::NONE;
    let args = || std::env::args().collect::<Vec<String>>();
    let aborts = system(false).invariant(move |_, _| {
        if args().windows(2).any(|w| w[0] == "--seed" && w[1] == "3") {
            std::process::abort();
        }
        Ok(())
    });
    let in_process = system(false).invariant(move |_, _| {
        if args().iter().any(|a| a == "--child") {
            Ok(())
        } else {
            Err("this process is not a sweep's child".into())
        }
    });
    let mut promising = quick.clone();
    promising.must_reach = vec![seedbank::cover::must_reach(
        "counter.duplicate_increment_acknowledged_again",
        3,
    )];
    Cli::new(vec![
        Entry::new("aborts-at-seed-3", quick.clone(), aborts),
        Entry::new("fails-only-in-process", quick, in_process),
        Entry::new("promises-the-unreachable", promising, system(false)),
    ])
    .reproduce_with(Cli::cargo_bin(
        env!("CARGO_PKG_NAME"),
        env!("CARGO_BIN_NAME"),
    ))
    .main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!("test fixtures of the chaos commands: simulated world only");
    std::process::ExitCode::from(2)
}
