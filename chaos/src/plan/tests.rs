//! Plans drawn, printed, read back and shrunk-to sizes: the generator's contract.

use super::*;
use rand::SeedableRng;

fn horizon(nodes: NodeNo) -> Horizon {
    Horizon {
        nodes,
        aim_at_leader: true,
        leader_churn: true,
        recovery_crashes: true,
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
    assert_eq!(seen.len(), 8, "every timed fault kind is drawn: {seen:?}");
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
        leader_churn: true,
        recovery_crashes: true,
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

/// The steps of `plan` that `before` lacks (each of `before`'s matched once).
fn added_steps<'a>(plan: &'a [Step], before: &[Step]) -> Vec<&'a Step> {
    let mut rest: Vec<&Step> = before.iter().collect();
    let mut added = Vec::new();
    for step in plan {
        match rest.iter().position(|s| *s == step) {
            Some(i) => {
                rest.remove(i);
            }
            None => added.push(step),
        }
    }
    assert!(rest.is_empty(), "every earlier step is kept: {rest:?}");
    added
}

#[test]
fn leader_churn_adds_one_churn_to_a_third_of_cluster_plans() {
    let mut churned = 0;
    for seed in 0..300 {
        let draw = |h: Horizon| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            generate(FaultSpace::CLUSTER, h, &mut rng)
        };
        let plan = draw(Horizon {
            recovery_crashes: false,
            ..horizon(3)
        });
        let before = draw(Horizon {
            leader_churn: false,
            recovery_crashes: false,
            ..horizon(3)
        });
        // Drawn last: everything else the seed drew is unchanged.
        assert_eq!((&plan.disk, &plan.net), (&before.disk, &before.net));
        let added = added_steps(&plan.steps, &before.steps);
        assert!(added.len() <= 1, "seed {seed}: {added:?}");
        for step in &added {
            let Fault::LeaderChurn {
                rounds,
                for_ms,
                after_ms,
            } = step.fault
            else {
                panic!("seed {seed}: {}", step.fault);
            };
            assert!((2..=4).contains(&rounds) && (300..1_500).contains(&for_ms));
            assert!(after_ms <= 120);
            // Healed by its duration: the last leader is taken by rounds * for_ms.
            assert_eq!(
                step.fault.duration().as_millis(),
                u128::from(for_ms) * (u128::from(rounds) + 1)
            );
            assert_eq!(step.fault.nodes(), vec![LEADER]);
            assert!(step.fault.to_string().starts_with("leader churn:"));
        }
        assert!(plan.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        let back = FaultPlan::<()>::from_json(&plan.to_json()).expect("round trip");
        assert_eq!(back, plan);
        churned += added.len();
    }
    assert!(
        (70..130).contains(&churned),
        "about a third of the plans churn: {churned} of 300"
    );
    // Not without a leader to aim at, nor with fewer than three nodes to elect one.
    for (nodes, aim) in [(2, true), (3, false)] {
        for seed in 0..100 {
            let draw = |leader_churn: bool| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let h = Horizon {
                    aim_at_leader: aim,
                    leader_churn,
                    ..horizon(nodes)
                };
                generate(FaultSpace::CLUSTER, h, &mut rng)
            };
            assert_eq!(
                draw(true),
                draw(false),
                "{nodes} nodes, aim {aim}, seed {seed}"
            );
        }
    }
}

#[test]
fn a_quarter_of_the_plans_that_crash_lose_power_again_during_each_recovery() {
    let mut again = 0;
    for seed in 0..400 {
        let draw = |recovery_crashes: bool| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let h = Horizon {
                recovery_crashes,
                ..horizon(1)
            };
            generate(FaultSpace::EMBEDDED, h, &mut rng)
        };
        let (plan, before) = (draw(true), draw(false));
        assert_eq!((&plan.disk, &plan.net), (&before.disk, &before.net));
        let added = added_steps(&plan.steps, &before.steps);
        let downs: Vec<&Step> = before
            .steps
            .iter()
            .filter(|s| matches!(s.fault, Fault::Crash { .. } | Fault::Kill { .. }))
            .collect();
        // None, or one per crash or kill: a power loss of the node within 30 ms of
        // its restart.
        assert!(
            added.is_empty() || added.len() == downs.len(),
            "seed {seed}"
        );
        for step in &added {
            let Fault::Crash { node, down_ms } = step.fault else {
                panic!("seed {seed}: {}", step.fault);
            };
            assert!(down_ms < 200, "seed {seed}");
            let after_a_restart = downs.iter().any(|d| match d.fault {
                Fault::Crash { node: n, down_ms } | Fault::Kill { node: n, down_ms } => {
                    let restart = d.at_ms + down_ms;
                    n == node && (restart..restart + 30).contains(&step.at_ms)
                }
                _ => false,
            });
            assert!(after_a_restart, "seed {seed}: {}", step.fault);
        }
        again += usize::from(!added.is_empty());
    }
    let crashing = 400 / 2; // about half the plans turn power loss on (swarm)
    assert!(
        again > crashing / 8 && again < crashing / 2,
        "about a quarter of the plans with crashes: {again} of 400"
    );
}
