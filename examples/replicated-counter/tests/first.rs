//! The first simulated test of docs/getting-started.md, verbatim.

use seedbank::Ctx;

/// Write, sync, read back — under disk latency drawn per seed in simulation, and once
/// on the real disk in a normal build.
#[seedbank::test(seeds = 16, random_fs_faults_with = no_read_or_write_errors)]
async fn synced_data_survives(ctx: Ctx) -> std::io::Result<()> {
    let path = ctx.data_dir().join("greeting");
    let file = seedbank::fs::File::create(&path).await?;
    file.write_all_at(b"hello", 0).await?;
    file.sync_data().await?;
    seedbank::fs::sync_dir(ctx.data_dir()).await?;
    assert_eq!(seedbank::fs::read(&path).await?, b"hello");
    Ok(())
}

fn no_read_or_write_errors(c: &mut seedbank::fs::FaultConfig) {
    (c.read_eio, c.write_eio, c.sync_eio, c.capacity_bytes) = (0.0, 0.0, 0.0, None);
}
