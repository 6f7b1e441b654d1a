//! sim-runtime in the real world: tokio time, no buggify, seedable streams.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // an integration test crate: unwrap is an assertion (D70)

use rand::Rng;
use sim_runtime::{buggify, rng, time};

#[tokio::test]
#[allow(clippy::disallowed_methods)] // #[tokio::test] builds a real runtime: this tests the real world
async fn real_world_basics() {
    // buggify is always off in the real world.
    assert!((0..1000).all(|_| !buggify!(1.0)));
    assert!(!sim_runtime::buggify::is_enabled());

    // A fixed seed makes the real world's streams reproducible.
    rng::set_real_world_seed(99);
    let a: Vec<u32> = (0..4).map(|_| rng::stream("x").gen()).collect();
    rng::set_real_world_seed(99);
    let b: Vec<u32> = (0..4).map(|_| rng::stream("x").gen()).collect();
    assert_eq!(a, b);
    assert_eq!(sim_runtime::seed(), 99);

    // Time is tokio's.
    let t0 = time::now();
    time::sleep(time::Duration::from_millis(5)).await;
    assert!(time::now() - t0 >= time::Duration::from_millis(5));
    let r = time::timeout(time::Duration::from_millis(1), std::future::pending::<()>()).await;
    assert!(r.is_err());

    // Tasks are tokio's.
    let h = sim_runtime::task::spawn(async { 5 });
    assert_eq!(h.await.unwrap(), 5);
}
