//! A user's `Scenario` turns each compound nemesis kind off: the plans its seeds draw
//! then never hold it, while with the kind on some of the same seeds' plans do (so the
//! check below can fail).
#![cfg(madsim)]

use chaos::plan::{Fault, FaultPlan, FaultSpace, LEADER};
use chaos::runner::{self, Scenario, System};

fn system() -> System {
    System::new(|_| std::future::pending::<()>()).leader_by_claims()
}

fn plans(s: &Scenario) -> Vec<FaultPlan> {
    (0..400)
        .map(|seed| runner::plan_for(s, &system(), seed))
        .collect()
}

fn any_step(plans: &[FaultPlan], f: impl Fn(&Fault) -> bool) -> usize {
    plans
        .iter()
        .filter(|p| p.steps.iter().any(|s| f(&s.fault)))
        .count()
}

/// A power loss of a node while it recovers from its previous crash or kill: within
/// 30 ms of its restart, down for under 200 ms (how `recovery_crashes` draws them).
fn recovery_crashes(p: &FaultPlan) -> bool {
    p.steps.iter().any(|later| {
        let Fault::Crash { node, down_ms } = later.fault else {
            return false;
        };
        down_ms < 200
            && p.steps.iter().any(|s| match s.fault {
                Fault::Crash {
                    node: n,
                    down_ms: d,
                }
                | Fault::Kill {
                    node: n,
                    down_ms: d,
                } => {
                    let restarted = s.at_ms + d;
                    n == node
                        && !std::ptr::eq(s, later)
                        && (restarted..restarted + 30).contains(&later.at_ms)
                }
                _ => false,
            })
    })
}

fn cluster() -> Scenario {
    let mut s = Scenario::new("horizon", 3, 2);
    s.faults = FaultSpace::CLUSTER;
    s
}

#[test]
fn each_compound_kind_is_drawn_by_default_and_never_once_turned_off() {
    let on = plans(&cluster());
    let churn = |f: &Fault| matches!(f, Fault::LeaderChurn { .. });
    let at_io = |f: &Fault| matches!(f, Fault::CrashAtIo { .. });
    let at_leader = |f: &Fault| match f {
        Fault::Crash { node, .. }
        | Fault::Kill { node, .. }
        | Fault::Pause { node, .. }
        | Fault::ClockSkew { node, .. }
        | Fault::CrashAtIo { node, .. } => *node == LEADER,
        _ => false,
    };
    assert!(any_step(&on, churn) > 0, "no leader churn in 400 plans");
    assert!(
        any_step(&on, at_io) > 0,
        "no crash timed by file operations"
    );
    assert!(any_step(&on, at_leader) > 0, "no fault aimed at the leader");
    let recovering = on.iter().filter(|p| recovery_crashes(p)).count();
    assert!(recovering > 20, "{recovering} plans with recovery crashes");

    let mut s = cluster();
    s.leader_churn = false;
    assert_eq!(any_step(&plans(&s), churn), 0);
    let mut s = cluster();
    s.io_crashes = false;
    assert_eq!(any_step(&plans(&s), at_io), 0);
    let mut s = cluster();
    s.aim_at_leader = false;
    let off = plans(&s);
    assert_eq!(any_step(&off, at_leader), 0);
    assert_eq!(
        any_step(&off, churn),
        0,
        "the churn needs a leader to aim at"
    );
    let mut s = cluster();
    s.recovery_crashes = false;
    s.io_crashes = false; // a crash timed by file operations has no fixed restart time
    let off = plans(&s);
    let recovering = off.iter().filter(|p| recovery_crashes(p)).count();
    assert_eq!(recovering, 0, "recovery crashes with the kind off");
}
