//! The counter under chaos: acknowledged increments survive crashes (power loss),
//! process kills, pauses, partitions and random disk and network faults, nothing is
//! applied twice, and after the faults heal every replica converges.
//!
//! Simulated: `cargo simtest -p replicated-counter --test chaos` (32 seeds each;
//! `SEEDBANK_SEEDS=0..1000` for more). Real world: `cargo test -p replicated-counter
//! --test chaos` runs each test once on loopback TCP and a temporary directory.

mod common;

use seedbank::fs::FaultConfig;
use seedbank::Ctx;

/// With `--features ack-before-fsync` the reproduce command must carry the feature.
const CARGO_ARGS: &str = if cfg!(feature = "ack-before-fsync") {
    "--features ack-before-fsync"
} else {
    ""
};

// The sweep must get where its checks matter: a node restarted over a log holding
// increments, and replicas catching up by gossip (coverage marks in src/); the report
// lists every `counter.` mark and the seeds that reached it.
#[seedbank::test(
    seeds = 32,
    with = common::chaos,
    cargo_args = CARGO_ARGS,
    mark_layers = &["counter"],
    must_reach = "counter.restart_recovered_increments",
    must_reach = "counter.gossip_brings_news"
)]
async fn acknowledged_increments_survive_chaos(ctx: Ctx) {
    let total = common::scenario(ctx, cfg!(feature = "ack-before-fsync")).await;
    assert!(total > 0, "the clients got something done");
}

/// Every tenth fsync fails: nodes keep stopping (fail-stop) and recovering, and no
/// acknowledged increment is lost.
#[seedbank::test(seeds = 8, fs_faults = frequent_fsync_failures(), cargo_args = CARGO_ARGS)]
async fn failing_fsyncs_stop_the_node_and_lose_nothing(ctx: Ctx) {
    common::scenario(ctx, cfg!(feature = "ack-before-fsync")).await;
}

fn frequent_fsync_failures() -> FaultConfig {
    FaultConfig {
        sync_eio: 0.1,
        ..FaultConfig::none()
    }
}
