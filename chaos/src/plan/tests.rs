//! Plans drawn, printed, read back and shrunk-to sizes: the generator's contract.

use super::*;
use rand::SeedableRng;

fn horizon(nodes: NodeNo) -> Horizon {
    Horizon {
        nodes,
        aim_at_leader: true,
        window_ms: 3_000,
        ops: 200,
    }
}

#[test]
fn a_plan_round_trips_through_json_and_prints() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..50 {
        let plan = generate(FaultSpace::CLUSTER, horizon(5), &mut rng);
        let back = FaultPlan::<()>::from_json(&plan.to_json()).expect("round trip");
        assert_eq!(back, plan);
        assert!(plan.to_string().contains("client operations"));
    }
}

#[test]
fn swarm_draws_differ_between_seeds_and_cover_every_allowed_kind() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut seen = std::collections::BTreeSet::new();
    let mut sizes = std::collections::BTreeSet::new();
    let mut leader_aimed = 0;
    for _ in 0..300 {
        let plan = generate(FaultSpace::CLUSTER, horizon(3), &mut rng);
        sizes.insert(plan.size());
        for s in &plan.steps {
            seen.insert(s.fault.counter());
            leader_aimed += usize::from(s.fault.nodes().contains(&LEADER));
            assert!(
                s.fault.nodes().iter().all(|n| (0..=3).contains(n)),
                "{}",
                s.fault
            );
        }
    }
    assert_eq!(seen.len(), 7, "every timed fault kind is drawn: {seen:?}");
    assert!(
        leader_aimed > 10,
        "some faults aim at the leader: {leader_aimed}"
    );
    assert!(sizes.len() > 5, "plans vary in size: {sizes:?}");
}

#[test]
fn a_space_without_a_kind_never_draws_it() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for _ in 0..200 {
        let plan = generate(FaultSpace::EMBEDDED, horizon(1), &mut rng);
        assert!(plan.net.is_none());
        assert!(plan.disk.crash_bitflip == 0.0);
        for s in &plan.steps {
            assert!(
                !matches!(
                    s.fault,
                    Fault::Partition { .. } | Fault::PartitionOneWay { .. } | Fault::Clog { .. }
                ),
                "{}",
                s.fault
            );
        }
    }
}

#[test]
fn a_malformed_or_unsorted_plan_file_is_refused_with_a_reason() {
    assert!(FaultPlan::<()>::from_json("{")
        .unwrap_err()
        .contains("not a fault plan"));
    let mut plan = FaultPlan::<()>::quiet(10);
    plan.steps = vec![
        Step {
            at_ms: 5,
            fault: Fault::Pause { node: 1, for_ms: 1 },
        },
        Step {
            at_ms: 1,
            fault: Fault::Pause { node: 1, for_ms: 1 },
        },
    ];
    assert!(FaultPlan::<()>::from_json(&plan.to_json())
        .unwrap_err()
        .contains("not sorted"));
}

#[test]
fn without_leader_aiming_every_fault_names_a_real_node() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let h = Horizon {
        aim_at_leader: false,
        ..horizon(3)
    };
    for _ in 0..300 {
        let plan = generate(FaultSpace::CLUSTER, h, &mut rng);
        for s in &plan.steps {
            assert!(!s.fault.nodes().contains(&LEADER), "{}", s.fault);
        }
    }
}

#[test]
fn settings_travel_in_the_plan_file_and_are_left_out_when_default() {
    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Knobs {
        batch: u32,
    }
    impl Settings for Knobs {}
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let plan = generate_with(FaultSpace::CLUSTER, horizon(3), &mut rng, |_| Knobs {
        batch: 7,
    });
    let json = plan.to_json();
    assert!(json.contains("\"batch\": 7"), "{json}");
    assert_eq!(
        FaultPlan::<Knobs>::from_json(&json).expect("reads back"),
        plan
    );
    let quiet = FaultPlan::<Knobs>::quiet(5);
    assert!(!quiet.to_json().contains("tuning"));
    assert_eq!(
        FaultPlan::<Knobs>::from_json(&quiet.to_json()).expect("reads"),
        quiet
    );
}
