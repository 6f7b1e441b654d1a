//! The runner's checks each fail when they should, on toy systems whose clients record
//! a history without a network: durability, linearizability, the user's invariant,
//! liveness after the heal; and the plan's faults reach the user's nodes (a power loss
//! reruns the node's init, a node that stops by itself is restarted).
#![cfg(madsim)]

use chaos::checkers::history::{MicroOp, ReadValue};
use chaos::plan::{Fault, FaultPlan, FaultSpace, Step};
use chaos::runner::{self, Check, ClientCtx, Observed, Scenario, System};
use sim_runtime::time::{sleep, Duration};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn scenario() -> Scenario {
    let mut s = Scenario::new("toy", 1, 1);
    s.faults = FaultSpace::NONE;
    s.ops = 3;
    s.liveness = Duration::from_secs(1);
    s
}

/// A client that writes `x = 1, 2, 3`, each acknowledged.
async fn writer(c: ClientCtx) {
    let mut v = 0;
    while c.recorder.take_op() {
        v += 1;
        let op = c.recorder.invoke(1, vec![MicroOp::write("x", v)]);
        sleep(Duration::from_millis(10)).await;
        c.recorder.ok(op, vec![MicroOp::write("x", v)]);
    }
}

fn idle_node() -> System {
    System::new(|_| std::future::pending::<()>())
}

/// The writer, and a state reader that shows `x` (or no `x`).
fn reads(x: Option<i64>) -> System {
    idle_node().client(writer).read_state(move |_| async move {
        let mut o = Observed::default();
        if let Some(x) = x {
            o.registers.insert("x".into(), x);
        }
        Ok(o)
    })
}

fn quiet_run(scenario: &Scenario, system: &System) -> runner::Record {
    runner::run(scenario, system, 1, &FaultPlan::quiet(scenario.ops))
}

#[test]
fn the_durability_oracle_fails_a_lost_acknowledged_write_and_passes_the_last_one() {
    let s = scenario();
    assert_eq!(quiet_run(&s, &reads(Some(3))).failed, None);
    let lost = quiet_run(&s, &reads(Some(2)));
    assert_eq!(lost.failed_check(), Some("durability"), "{:?}", lost.failed);
    let gone = quiet_run(&s, &reads(None));
    assert_eq!(gone.failed_check(), Some("durability"), "{:?}", gone.failed);
    assert_eq!(
        lost.history.txns().len(),
        3,
        "the record carries the history"
    );
}

#[test]
fn the_invariant_sees_the_history_and_the_state() {
    let s = scenario();
    let system = reads(Some(3)).invariant(|h, o| {
        if h.txns().len() == 3 && o.registers.get("x") == Some(&3) {
            Err("three writes and x = 3: refused on purpose".into())
        } else {
            Ok(())
        }
    });
    let r = quiet_run(&s, &system);
    assert_eq!(r.failed_check(), Some("invariant"), "{:?}", r.failed);
}

#[test]
fn linearizability_fails_a_read_of_a_value_never_written() {
    let mut s = scenario();
    s.checks = vec![Check::Linearizable];
    let system = |read: i64| {
        idle_node().client(move |c: ClientCtx| async move {
            if c.recorder.take_op() {
                let op = c.recorder.invoke(1, vec![MicroOp::write("x", 1)]);
                c.recorder.ok(op, vec![MicroOp::write("x", 1)]);
            }
            if c.recorder.take_op() {
                let op = c.recorder.invoke(1, vec![MicroOp::read("x")]);
                let seen = MicroOp::Read("x".into(), Some(ReadValue::Int(read)));
                c.recorder.ok(op, vec![seen]);
            }
        })
    };
    assert_eq!(quiet_run(&s, &system(1)).failed, None);
    let r = quiet_run(&s, &system(7));
    assert_eq!(r.failed_check(), Some("linearizability"), "{:?}", r.failed);
}

#[test]
fn liveness_fails_a_system_that_decides_nothing_after_the_heal() {
    let s = scenario();
    let system = idle_node().client(|c: ClientCtx| async move {
        if c.recorder.take_op() {
            let _op = c.recorder.invoke(1, vec![MicroOp::write("x", 1)]);
            std::future::pending::<()>().await;
        }
    });
    let r = quiet_run(&s, &system);
    assert_eq!(r.failed_check(), Some("liveness"), "{:?}", r.failed);
}

#[test]
fn a_planned_power_loss_reruns_the_init_and_a_stopped_node_is_restarted() {
    let boots = Arc::new(AtomicU64::new(0));
    let counted = boots.clone();
    let system = System::new(move |_| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n > 0 {
                std::future::pending::<()>().await;
            }
            // The first start returns: the node stopped by itself (fail-stop).
        }
    })
    .client(writer);
    let mut s = scenario();
    s.final_power_loss = false;
    let mut plan = FaultPlan::quiet(3);
    plan.steps.push(Step {
        at_ms: 500,
        fault: Fault::Crash {
            node: 1,
            down_ms: 100,
        },
    });
    let r = runner::run(&s, &system, 1, &plan);
    assert_eq!(r.failed, None);
    assert_eq!(r.faults.get("node.crash"), Some(&1), "{:?}", r.faults);
    let restarts = r.faults.get(runner::FAIL_STOP_RESTART);
    assert_eq!(restarts, Some(&1), "{:?}", r.faults);
    let n = boots.load(Ordering::SeqCst);
    assert_eq!(
        n, 3,
        "start, the supervisor's restart, the restart after the power loss"
    );
}

/// A plan with one leader churn of `rounds` leaders, at 100 ms.
fn churn_plan(rounds: u32) -> FaultPlan {
    let mut plan = FaultPlan::quiet(3);
    plan.steps.push(Step {
        at_ms: 100,
        fault: Fault::LeaderChurn {
            rounds,
            for_ms: 300,
            after_ms: 0,
        },
    });
    plan
}

#[test]
fn the_leader_churn_cuts_off_each_new_leader_and_never_one_already_cut_off() {
    let mut s = Scenario::new("toy-cluster", 3, 1);
    s.faults = FaultSpace::NONE;
    s.ops = 3;
    s.final_power_loss = false;
    // Leadership moves to the next node every 200 ms of virtual time.
    let rotating = idle_node().client(writer).leader(|| {
        let ms = sim_runtime::time::elapsed().as_millis();
        Some(1 + u32::try_from(ms / 200 % 3).unwrap_or(0))
    });
    let r = runner::run(&s, &rotating, 1, &churn_plan(3));
    assert_eq!(r.failed, None);
    assert_eq!(r.faults.get("net.leader_churn"), Some(&1), "{:?}", r.faults);
    // Nodes 1, 2 and 3 in turn, each as soon as it leads.
    assert_eq!(r.faults.get("net.partition"), Some(&3), "{:?}", r.faults);

    // A leader that stays cut off is not taken again: node 1 leads until 250 ms, then
    // nobody (a churn that re-took a node already cut off would take it four times).
    let fixed = idle_node()
        .client(writer)
        .leader(|| (sim_runtime::time::elapsed() < Duration::from_millis(250)).then_some(1));
    let r = runner::run(&s, &fixed, 1, &churn_plan(4));
    assert_eq!(r.failed, None);
    assert_eq!(r.faults.get("net.partition"), Some(&1), "{:?}", r.faults);
}

/// A fault aimed at the leader goes to the node that claims to lead when it fires,
/// and is skipped while no node claims to (the claims are the run's own).
#[test]
fn a_fault_aimed_at_the_leader_finds_the_node_that_claims_to_lead() {
    let boots: Arc<Vec<AtomicU64>> = Arc::new((0..3).map(|_| AtomicU64::new(0)).collect());
    let system = |claim: bool| {
        let counted = boots.clone();
        System::new(move |n| {
            counted[n.id as usize - 1].fetch_add(1, Ordering::SeqCst);
            if claim && n.id == 2 {
                n.leadership.lead(7);
            }
            std::future::pending::<()>()
        })
        .leader_by_claims()
        .client(writer)
    };
    let mut s = scenario();
    s.nodes = 3;
    s.final_power_loss = false;
    let mut plan = FaultPlan::quiet(3);
    plan.steps.push(Step {
        at_ms: 5,
        fault: Fault::Kill {
            node: chaos::plan::LEADER,
            down_ms: 10,
        },
    });
    let starts = || -> Vec<u64> { boots.iter().map(|b| b.swap(0, Ordering::SeqCst)).collect() };
    let r = runner::run(&s, &system(true), 1, &plan);
    assert_eq!(r.failed, None);
    assert_eq!(
        starts(),
        vec![1, 2, 1],
        "node 2 leads, so node 2 was killed"
    );
    let r = runner::run(&s, &system(false), 1, &plan);
    assert_eq!(r.failed, None);
    assert_eq!(
        starts(),
        vec![1, 1, 1],
        "nobody leads: the fault is skipped"
    );
}

/// A power loss timed by file operations fires between two of the node's operations
/// and the node recovers (its init runs again); a node that does no I/O is left alone.
#[test]
fn a_power_loss_timed_by_file_operations_lands_between_two_of_them() {
    let boots = Arc::new(AtomicU64::new(0));
    let system = |writes: bool| {
        let counted = boots.clone();
        System::new(move |n| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let path = n.dir.join("log");
                for i in 0u64.. {
                    if writes {
                        let _ = sim_fs::write(&path, i.to_le_bytes().to_vec()).await;
                    }
                    sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .client(writer)
    };
    let mut s = scenario();
    s.final_power_loss = false;
    let mut plan = FaultPlan::quiet(3);
    plan.steps.push(Step {
        at_ms: 20,
        fault: Fault::CrashAtIo {
            node: 1,
            after_ops: 7,
            down_ms: 10,
        },
    });
    let r = runner::run(&s, &system(true), 1, &plan);
    assert_eq!(r.failed, None);
    assert_eq!(r.faults.get("node.crash_at_io"), Some(&1), "{:?}", r.faults);
    assert_eq!(r.faults.get("node.crash"), Some(&1), "{:?}", r.faults);
    assert_eq!(boots.swap(0, Ordering::SeqCst), 2, "the init ran again");

    let r = runner::run(&s, &system(false), 1, &plan);
    assert_eq!(r.failed, None);
    assert_eq!(r.faults.get("node.crash"), None, "{:?}", r.faults);
    assert_eq!(boots.swap(0, Ordering::SeqCst), 1, "no I/O: no power loss");
}

#[test]
fn a_users_coverage_marks_reach_the_record_with_their_first_hit() {
    let system = System::new(|_| async {
        sleep(Duration::from_millis(5)).await;
        sim_runtime::cover!("toy.node_started");
        sim_runtime::cover!("toy.never", false);
        std::future::pending::<()>().await
    })
    .client(writer);
    let r = quiet_run(&scenario(), &system);
    assert_eq!(r.failed, None);
    assert!(
        r.marks.get("toy.node_started").is_some_and(|n| *n >= 1),
        "{:?}",
        r.marks
    );
    assert!(
        !r.marks.contains_key("toy.never"),
        "a mark whose condition never held"
    );
    let first = r.mark_first_ns["toy.node_started"];
    assert!(
        (5_000_000..1_000_000_000).contains(&first),
        "first hit after the node's 5 ms sleep: {first} ns"
    );
    assert!(
        sim_runtime::cover::catalog().contains("toy.never"),
        "an unreached mark is still in the catalog (a sweep names it unreached)"
    );
}
