//! sim-runtime's timers in the simulated world (D41): a sleep or timeout that is done
//! with — finished, dropped or reset — never wakes its task at the old deadline, which
//! madsim's own timers (no cancellation) would.
#![cfg(madsim)]

use sim_runtime::sim::Sim;
use sim_runtime::time::{self, Duration, Elapsed};
use sim_runtime::{task, EventKind};

/// The virtual milliseconds at which task `id` was polled.
fn poll_times_ms(trace: &sim_runtime::trace::Trace, id: u64) -> Vec<u64> {
    trace
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Poll && e.task == id)
        .map(|e| e.time_ns / 1_000_000)
        .collect()
}

#[test]
fn timers_done_with_do_not_wake_their_task_at_the_old_deadline() {
    let report = Sim::new(3).run(|| async {
        let worker = task::spawn(async {
            // Answered at 10 ms: the 100 ms deadline is done with.
            let quick = time::timeout(
                Duration::from_millis(100),
                time::sleep(Duration::from_millis(10)),
            )
            .await;
            assert_eq!(quick, Ok(()));
            // Armed for 60 ms and polled (so registered), then reset at 15 ms to 515 ms.
            let mut armed = time::sleep(Duration::from_millis(50));
            tokio::select! {
                biased;
                () = &mut armed => panic!("the 60 ms sleep cannot win against 5 ms"),
                () = time::sleep(Duration::from_millis(5)) => {}
            }
            armed.reset(time::now() + Duration::from_millis(500));
            (&mut armed).await;
            assert!(armed.is_elapsed());
            // A slow future loses to its deadline.
            let slow = time::timeout(
                Duration::from_millis(20),
                time::sleep(Duration::from_secs(1)),
            )
            .await;
            assert_eq!(slow, Err(Elapsed));
            // A deadline already passed completes at once.
            time::sleep_until(time::now()).await;
            task::current_id()
        });
        worker.await.expect("the worker finishes")
    });
    let id = report.output.expect("the run finishes");
    // Polled when spawned, at 10 ms (answer), 15 ms (the 5 ms sleep), 515 ms (the
    // reset deadline) and 535 ms (the slow timeout): never at 60 ms or 100 ms.
    assert_eq!(
        poll_times_ms(&report.trace, id),
        vec![0, 10, 15, 515, 535],
        "stale timer wake-ups"
    );
}
