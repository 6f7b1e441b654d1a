//! A scenario client, the same for every topology: it takes operations from the run's
//! budget, lets the workload execute each as one transaction against the [`Store`],
//! and records invocation and outcome in the [`super::world::World`] (history and
//! durability oracle).

use super::store::{Store, TxError};
use super::world::{lock, Shared};
use crate::check::history::MicroOp;
use crate::workload::KeyChooser;
use rand::Rng;
use sim_runtime::time::{sleep, Duration};

/// Transactions until the budget is spent, the run stops, or the database fail-stops
/// (an embedded node then restarts, and its clients with it).
pub async fn run(world: Shared, store: Store, keys: KeyChooser, stream: String) {
    let mut rng = sim_runtime::rng::stream(stream);
    let (workload, mut process) = {
        let mut w = lock(&world);
        (w.workload.clone(), w.new_process())
    };
    loop {
        if !lock(&world).take_op(process) {
            return;
        }
        let ops = workload.generate(&keys, &mut rng);
        let deferred = workload.deferred_invoke();
        if !deferred {
            lock(&world).invoke(process, ops.clone());
        }
        // Reads alone sometimes take the engine's read-only paths: a read-only
        // transaction, or (one read) an untracked read at the newest state.
        let reads_only = ops.iter().all(|o| matches!(o, MicroOp::Read(..)));
        let mut began = if reads_only && rng.gen_bool(0.5) {
            store
                .begin_read_only(ops.len() == 1 && rng.gen_bool(0.5))
                .await
        } else {
            store.begin().await
        };
        // The completed operations of a commit whose outcome is unknown: only a client
        // with a planted bug (`acknowledges_unknown_outcomes`) reports them as done.
        let mut unknown_done = None;
        let result = match &mut began {
            Err(e) => {
                if deferred {
                    lock(&world).invoke(process, ops);
                }
                Err(e.clone())
            }
            Ok(tx) => match workload.execute(ops.clone(), tx).await {
                Ok(done) => {
                    {
                        let mut w = lock(&world);
                        if deferred {
                            w.invoke(process, done.clone());
                        }
                        w.committing(process, tx.writes());
                    }
                    if workload.acknowledges_unknown_outcomes() {
                        unknown_done = Some(done.clone());
                    }
                    tx.commit().await.map(|()| done)
                }
                Err(e) => {
                    if deferred {
                        lock(&world).invoke(process, ops);
                    }
                    tx.rollback().await;
                    Err(e)
                }
            },
        };
        {
            let mut w = lock(&world);
            match result {
                Ok(done) => w.ok(process, done),
                Err(TxError::Conflict(_)) => w.refused(process),
                Err(TxError::Failed(_)) => w.fail(process),
                Err(TxError::Unknown(_)) => match unknown_done {
                    // The planted bug: "done", although nobody knows.
                    Some(done) => w.ok(process, done),
                    None => {
                        w.info(process);
                        process = w.new_process();
                    }
                },
            }
            if began.as_ref().is_ok_and(|tx| tx.saw_fail_stop()) {
                w.poisoned = true;
                return;
            }
        }
        // (A cluster's `begin` waits for a leader itself: no extra backoff here.)
        sleep(Duration::from_micros(rng.gen_range(0..3_000))).await;
    }
}

/// Loads the workload's initial rows through `store` in one transaction, before the
/// clients start (a cluster's counterpart of the embedded node's load at boot). An
/// unknown outcome is resolved by reading: rows already there were loaded. Gives up
/// (a violation) after `within`.
pub async fn load_initial(world: Shared, store: Store, within: Duration) {
    let rows = lock(&world).workload.initial();
    let Some((first, _)) = rows.first() else {
        return;
    };
    let until = sim_runtime::time::now() + within;
    let mut last = String::from("no attempt");
    while sim_runtime::time::now() < until {
        let attempt = async {
            let mut tx = store.begin().await?;
            if tx.get(first).await?.is_some() {
                return Ok(());
            }
            for (k, v) in &rows {
                tx.put(k, v).await?;
            }
            tx.commit().await
        };
        match attempt.await {
            Ok(()) => {
                lock(&world).initial_loaded = true;
                return;
            }
            Err(e) => last = e.to_string(),
        }
        sleep(Duration::from_millis(50)).await;
    }
    lock(&world).violation(
        "liveness",
        format!("the initial rows could not be loaded within {within:?}: {last}"),
    );
}
