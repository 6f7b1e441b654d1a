//! A simulated run that calls real tokio (a crate depending on `tokio` 1.x itself, not
//! through madsim-tokio) fails as an escape that says so and names the user's line,
//! not as a bare "there is no reactor running" seed failure.
#![cfg(madsim)]

use seedbank::{Ctx, FailureKind, Test};

#[test]
fn calling_real_tokio_is_reported_as_an_escape_at_the_callers_line() {
    let report = Test::new(seedbank::origin!())
        .seeds(1)
        .sweep(|_ctx: Ctx| async move {
            #[allow(clippy::disallowed_methods)] // the planted escape this test must report
            let _task = real_tokio::spawn(async {}); // <- real tokio
        });
    let failure = report
        .first_failure()
        .expect("real tokio cannot run simulated");
    match &failure.kind {
        FailureKind::Escaped { escape, message } => {
            assert!(escape.what.contains("real tokio"), "{}", escape.what);
            assert!(
                escape.instead.contains("madsim-tokio"),
                "{}",
                escape.instead
            );
            let line = include_str!("real_tokio.rs")
                .lines()
                .position(|l| l.ends_with("// <- real tokio"))
                .expect("marker")
                + 1;
            let at = escape.at.as_deref().unwrap_or("");
            assert!(
                at.contains(&format!("tests/real_tokio.rs:{line}:")),
                "the escape names the caller's line: {at}"
            );
            assert!(
                message.contains("Tokio"),
                "tokio's own message is kept: {message}"
            );
        }
        other => panic!("expected an escape, got {other:?}\n{failure}"),
    }
    assert!(failure.to_string().contains("ESCAPED THE SIMULATION"));
}
