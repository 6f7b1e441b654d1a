//! Meta-test: a harness that cannot fail is worse than none. The chaos sweep must find
//! the planted `ack-before-fsync` bug within the number of seeds README.md states, and
//! report it as lost acknowledged increments with the command that replays it. The bug
//! is switched on at run time (`Options::ack_before_fsync`), so this runs in every
//! `scripts/test-all`, without the cargo feature.
#![cfg(madsim)]

mod common;

use seedbank::{Ctx, FailureKind, Test};

/// The bound README.md states: the first failing seed is below this.
const FOUND_WITHIN: u64 = 16;

#[test]
fn the_chaos_sweep_finds_ack_before_fsync() {
    let report = Test::new(seedbank::origin!())
        .with(common::chaos)
        .seeds(FOUND_WITHIN)
        .ignore_env()
        .sweep(|ctx: Ctx| async move {
            common::scenario(ctx, true).await;
        });
    println!("{}", report.summary());
    let failure = report.first_failure().unwrap_or_else(|| {
        panic!(
            "the planted bug was NOT found within {FOUND_WITHIN} seeds:\n{}",
            report.summary()
        )
    });
    println!("{failure}");
    match &failure.kind {
        FailureKind::Panicked { message, .. } => assert!(
            message.contains("LOST ACKNOWLEDGED INCREMENTS"),
            "found, but as something else: {failure}"
        ),
        _ => panic!("found, but as something else: {failure}"),
    }
    assert!(
        failure.faults.get("node.crash").copied().unwrap_or(0) > 0,
        "a power loss did it"
    );
    assert!(
        failure.reproduce.starts_with(&format!(
            "SEEDBANK_SEED={} RUSTFLAGS=\"--cfg madsim\" cargo test -p replicated-counter",
            failure.seed
        )),
        "{}",
        failure.reproduce
    );
}
