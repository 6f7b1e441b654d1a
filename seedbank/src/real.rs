//! The real world: the body runs once, on a current-thread tokio runtime, with a fresh
//! temporary directory and the real network. No faults, no seeds to sweep.

use crate::harness::{Outcome, Test};
use crate::Ctx;
use std::future::Future;
use std::panic::AssertUnwindSafe;

#[track_caller]
pub(crate) fn run<F, Fut>(test: Test, body: F)
where
    F: Fn(Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: Outcome,
{
    let prefix: String = test
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = tempfile::Builder::new()
        .prefix(&format!("seedbank-{prefix}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("seedbank: cannot create a temporary directory: {e}"));
    let seed = sim_runtime::seed();
    let ctx = Ctx::new(seed, dir.path().to_path_buf(), None, None);
    #[allow(clippy::disallowed_methods)] // the real-world harness builds the runtime
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("seedbank: cannot build a tokio runtime: {e}"));
    let limit = test.time_limit;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async move { sim_runtime::time::timeout(limit, body(ctx)).await })
    }));
    drop(runtime);
    let failure = match result {
        Ok(Ok(outcome)) => match outcome.into_result() {
            Ok(()) => return,
            Err(e) => e,
        },
        Ok(Err(_)) => format!("the test did not finish within {limit:?} (wall clock)"),
        Err(panic) => {
            let kept = dir.keep();
            eprintln!(
                "seedbank: {} failed in the real world (seed {seed}); its data directory is kept at {}",
                test.name,
                kept.display()
            );
            std::panic::resume_unwind(panic)
        }
    };
    let kept = dir.keep();
    panic!(
        "seedbank: {} FAILED in the real world (seed {seed}): {failure}\n  data directory kept at {}",
        test.name,
        kept.display()
    );
}
