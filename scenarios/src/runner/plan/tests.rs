//! The bundled database's plans: the engine's [`Tuning`] travels in the plan file, and
//! the settings drawn late (D87) change nothing a seed drew before them, and the
//! leader churn (D88) is drawn after them. The generic
//! draw (swarm choice, fault spaces, malformed files) is tested in `chaos::plan`.

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
fn a_plan_with_its_tuning_round_trips_through_json_and_prints() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut tuned = 0;
    for _ in 0..50 {
        let plan = generate(FaultSpace::CLUSTER, horizon(3), &mut rng);
        tuned += usize::from(!plan.tuning.is_default());
        let back = FaultPlan::from_json(&plan.to_json()).expect("round trip");
        assert_eq!(back, plan);
        assert!(plan.to_string().contains("client operations"));
    }
    assert!(tuned > 25, "most plans carry some tuning: {tuned} of 50");
}

#[test]
fn late_draws_leave_every_earlier_draw_of_a_seed_unchanged() {
    for (space, nodes) in [(FaultSpace::CLUSTER, 3), (FaultSpace::EMBEDDED, 1)] {
        let cluster = nodes > 1;
        let mut late_set = 0;
        for seed in 0..100 {
            // Without the leader churn (drawn after the late settings, D88; its own
            // test is in `chaos::plan`).
            let h = Horizon {
                leader_churn: false,
                recovery_crashes: false,
                ..horizon(nodes)
            };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let plan = generate(space, h, &mut rng);
            // The draw as it was before D87: no late settings.
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let before =
                chaos::plan::generate_with(space, h, &mut rng, |rng| Tuning::draw(rng, cluster));
            assert_eq!(
                (&plan.steps, &plan.disk, &plan.net, plan.ops),
                (&before.steps, &before.disk, &before.net, before.ops),
                "seed {seed}"
            );
            let mut early = plan.tuning.clone();
            late_set += usize::from(
                early.level1_max_bytes.take().is_some()
                    | early.level_size_ratio.take().is_some()
                    | early.probe_from_commit.take().is_some()
                    | early.pre_vote.take().is_some(),
            );
            assert_eq!(early, before.tuning, "seed {seed}");
            assert!(cluster || plan.tuning.probe_from_commit.is_none());
            // With the churn: the same settings and the same steps plus the churn's.
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let churned = generate(space, horizon(nodes), &mut rng);
            assert_eq!(churned.tuning, plan.tuning, "seed {seed}");
            assert!(churned.steps.len() >= plan.steps.len());
            assert!(plan.steps.iter().all(|s| churned.steps.contains(s)));
        }
        assert!(
            late_set > 50,
            "the late settings are drawn: {late_set} of 100"
        );
    }
}
