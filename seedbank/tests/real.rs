//! The harness in the real world: the body runs once on tokio, with a temporary data
//! directory on the real disk and free loopback ports.
#![cfg(not(madsim))]

use seedbank::Ctx;

#[seedbank::test(seeds = 64, random_faults)]
async fn runs_once_on_the_real_disk_and_network(ctx: Ctx) -> std::io::Result<()> {
    assert!(!ctx.is_simulated());
    assert!(
        ctx.fs_faults().is_none() && ctx.net_faults().is_none(),
        "no faults in the real world"
    );
    let dir = ctx.data_dir().to_path_buf();
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    let path = dir.join("file");
    seedbank::fs::write(&path, b"real").await?;
    assert_eq!(seedbank::fs::read(&path).await?, b"real");
    let (a, b) = (ctx.addr(1), ctx.addr(2));
    assert!(a.ip().is_loopback() && a.port() != b.port());
    assert_eq!(ctx.addr(1), a, "stable per node");
    // The port is free: a sim-net endpoint binds it.
    let ep = seedbank::net::Endpoint::<u32>::bind(a, seedbank::net::Config::new(1, 1)).await?;
    ep.send(1, 5).expect("send to self");
    assert_eq!(ep.recv().await, (1, 5));
    Ok(())
}

#[test]
fn an_error_fails_the_real_world_test_and_keeps_the_directory() {
    let failed = std::panic::catch_unwind(|| {
        seedbank::Test::new(seedbank::origin!()).run(|_ctx: Ctx| async move { Err::<(), _>("no") });
    });
    let panic = failed.expect_err("an Err must fail the test");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("FAILED in the real world"), "{message}");
    assert!(message.contains("Err(\"no\")"), "{message}");
    let kept = message
        .split("data directory kept at ")
        .nth(1)
        .expect("the kept directory is named")
        .trim();
    assert!(std::path::Path::new(kept).is_dir(), "{kept}");
    #[allow(clippy::disallowed_methods)] // cleaning up the real directory the harness kept
    std::fs::remove_dir_all(kept).expect("remove the kept directory");
}
