//! Tests of the storage layers that need a file system: they run in both worlds (a temp
//! directory on the real disk, or a simulated disk under madsim). `asserts` needs none:
//! it sees the formats' write-side assertions fire.

mod asserts;
mod files;
mod group;
mod merge;
#[cfg(not(madsim))]
mod model;
mod store;

use std::future::Future;
use std::path::PathBuf;

/// Runs `f` with a fresh, empty directory: a temp directory in the real world, `/t` on
/// a simulated disk (seed 1) under madsim.
#[cfg(not(madsim))]
pub fn with_dir<F, Fut, T>(f: F) -> T
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "seedbank-engine-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    #[allow(clippy::disallowed_methods)] // real-world tests: each runs on its own runtime
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let out = rt.block_on(async {
        sim_fs::create_dir_all(&dir).await.expect("create temp dir");
        f(dir.clone()).await
    });
    drop(rt);
    #[allow(clippy::disallowed_methods)]
    // cleaning the test's own temp dir: sim-fs has no remove_dir
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Runs `f` with a fresh, empty directory: a temp directory in the real world, `/t` on
/// a simulated disk (seed 1) under madsim.
#[cfg(madsim)]
pub fn with_dir<F, Fut, T>(f: F) -> T
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let report = sim_runtime::sim::Sim::new(1)
        .plugin::<sim_fs::SimFs>()
        .run(move || async move {
            let dir = PathBuf::from("/t");
            sim_fs::create_dir_all(&dir).await.expect("create dir");
            f(dir).await
        });
    match report.output {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
