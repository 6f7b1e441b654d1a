//! The counter under chaos on the scenario API (`seedbank::chaos`, D85): fault plans
//! drawn per seed, executed by the runner against three counter nodes, the history
//! judged by the durability oracle and the counter's own invariant; a failing plan is
//! shrunk, written to a file, and replays.
//!
//! The history models each node's memory of each client as a register: increment
//! `seq` of client `c` sent to node `n` is a write of `seq` to `n{n}/c{c}` (a node
//! applies a client's operations in order, so what it shows after recovery is the last
//! one it kept). The durability oracle then says what a lost acknowledged increment
//! is, and the invariant checks each node's own count and that all views converged.
#![cfg(madsim)]

use rand::Rng;
use replicated_counter::client::{Client, IncrOutcome};
use replicated_counter::{node, Options, CLIENT_ID_BASE};
use seedbank::chaos::checkers::history::{History, MicroOp, Outcome};
use seedbank::chaos::plan::{Fault, FaultPlan};
use seedbank::chaos::runner::{self, ClientCtx, NodeCtx, Observed, ReadCtx, Scenario, System};
use seedbank::time::{self, Duration};

const NODES: u64 = 3;
const SEEDS: u64 = 16;

fn scenario() -> Scenario {
    let mut s = Scenario::new("counter", NODES as u32, 3);
    s.ops = 120;
    s.liveness = Duration::from_secs(20);
    s
}

fn system(ack_before_fsync: bool) -> System {
    System::new(move |n: NodeCtx| {
        let mut opts = Options::new(u64::from(n.id), n.peers, n.dir);
        opts.ack_before_fsync = ack_before_fsync;
        async move {
            let _ = node::run(opts).await; // an error stops the node: fail-stop
        }
    })
    .client(|c: ClientCtx| async move {
        let me = CLIENT_ID_BASE + u64::from(c.id);
        let timeout = Duration::from_millis(500);
        let Ok(mut client) = Client::connect(me, c.addr, &c.peers, timeout).await else {
            return c.recorder.violation("runner", "a client could not bind");
        };
        let stream = format!("client{}", c.id);
        while c.recorder.take_op() {
            let node = seedbank::rng::stream(stream.clone()).gen_range(1..=NODES);
            let write = MicroOp::write(format!("n{node}/c{me}"), client.next_seq() as i64);
            let op = c.recorder.invoke(u64::from(c.id), vec![write.clone()]);
            match client.incr(node).await {
                IncrOutcome::Acked => c.recorder.ok(op, vec![write]),
                IncrOutcome::Unknown => c.recorder.info(op),
            }
            let think = seedbank::rng::stream(stream.clone()).gen_range(5..30);
            time::sleep(Duration::from_millis(think)).await;
        }
    })
    .read_state(read_after_recovery)
    .invariant(counts_add_up)
}

/// Every node's last applied operation per client, its own count and its total, once
/// the totals agree (or the time is up).
async fn read_after_recovery(r: ReadCtx) -> Result<Observed, String> {
    let me = CLIENT_ID_BASE + 99;
    let timeout = Duration::from_millis(200);
    let mut c = Client::connect(me, r.addr, &r.peers, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = time::now() + r.within;
    loop {
        let mut seen = Observed::default();
        let mut missing = None;
        for n in 1..=NODES {
            match (c.applied(n).await, c.read(n).await) {
                (Some(last), Some(slots)) => {
                    // (Compaction keeps its count under client 0: not a client's.)
                    for (client, seq) in last.into_iter().filter(|(c, _)| *c > CLIENT_ID_BASE) {
                        seen.registers.insert(format!("n{n}/c{client}"), seq as i64);
                    }
                    seen.facts
                        .insert(format!("count/{n}"), slots[n as usize - 1] as i64);
                    seen.facts
                        .insert(format!("sum/{n}"), slots.iter().sum::<u64>() as i64);
                }
                _ => missing = Some(n),
            }
        }
        let sums: Vec<i64> = (1..=NODES)
            .filter_map(|n| seen.facts.get(&format!("sum/{n}")).copied())
            .collect();
        let converged = missing.is_none() && sums.iter().all(|s| *s == sums[0]);
        if converged || (missing.is_none() && time::now() >= deadline) {
            return Ok(seen);
        }
        if time::now() >= deadline {
            return Err(format!("node {} did not answer", missing.unwrap_or(0)));
        }
        time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each node holds at least its acknowledged increments and at most those plus the
/// unknown ones, and every node's total is the same.
fn counts_add_up(history: &History, seen: &Observed) -> Result<(), String> {
    for n in 1..=NODES {
        let mine = format!("n{n}/");
        let (mut acked, mut unknown) = (0, 0);
        for t in history.txns() {
            if t.ops.iter().any(|op| op.key().starts_with(&mine)) {
                match t.outcome {
                    Outcome::Ok => acked += 1,
                    Outcome::Info => unknown += 1,
                    Outcome::Fail => {}
                }
            }
        }
        let own = seen.facts.get(&format!("count/{n}")).copied().unwrap_or(0);
        if own < acked || own > acked + unknown {
            return Err(format!(
                "node {n} holds {own} increments; {acked} were acknowledged and {unknown} unknown"
            ));
        }
    }
    let sums: Vec<_> = seen
        .facts
        .iter()
        .filter(|(k, _)| k.starts_with("sum/"))
        .map(|(_, v)| *v)
        .collect();
    if sums.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("the nodes' totals never converged: {sums:?}"));
    }
    Ok(())
}

/// Sweeps `scenario` with the planted bug, shrinks the failure, writes the shrunk plan
/// to a file and replays it: the same check fails. Returns the check and the plan.
fn find_shrink_replay(scenario: &Scenario) -> (String, FaultPlan) {
    let system = system(true);
    let (runs, failure) = runner::sweep(scenario, &system, 0..SEEDS);
    let failure = failure.unwrap_or_else(|| panic!("ack-before-fsync NOT found in {runs} seeds"));
    let first = failure
        .failed
        .clone()
        .expect("a failed run names its check");
    println!(
        "seed {} failed {}: {}",
        failure.seed, first.check, first.message
    );
    let seed = failure.seed;
    let shrunk = runner::shrink(scenario, &system, failure);
    println!(
        "shrunk in {} runs to {} faults:\n{}",
        shrunk.runs,
        shrunk.plan.size(),
        shrunk.plan
    );
    assert!(
        shrunk.plan.size() <= 5,
        "shrunk to {} faults",
        shrunk.plan.size()
    );
    assert_eq!(shrunk.record.failed_check(), Some(first.check.as_str()));

    let file = format!("counter-plan-{}-{seed}.json", std::process::id());
    let path = std::env::temp_dir().join(file);
    seedbank::chaos::host::write_plan(&path, &shrunk.plan).expect("write the plan file");
    let plan = seedbank::chaos::host::read_plan(&path).expect("read it back");
    assert_eq!(plan, shrunk.plan);
    let replay = runner::run(scenario, &system, seed, &plan);
    assert_eq!(
        replay.failed_check(),
        Some(first.check.as_str()),
        "{:?}",
        replay.failed
    );
    (first.check, plan)
}

/// The runner's final power loss of every node catches acknowledged increments still
/// in the page cache: the durability oracle names the lost write.
#[test]
fn the_planted_bug_is_found_by_the_durability_oracle_shrunk_and_replayed() {
    let (check, _) = find_shrink_replay(&scenario());
    assert_eq!(check, "durability");
}

/// Without the final power loss only the plan's own faults can find it: the shrunk
/// plan keeps a power loss (a kill keeps the page cache, and would not do).
#[test]
fn the_planted_bug_is_found_by_a_planned_power_loss_that_survives_shrinking() {
    let mut scenario = scenario();
    scenario.final_power_loss = false;
    let (check, plan) = find_shrink_replay(&scenario);
    assert!(
        ["durability", "invariant"].contains(&check.as_str()),
        "{check}"
    );
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s.fault, Fault::Crash { .. })),
        "no power loss left in\n{plan}"
    );
}

#[test]
fn without_the_bug_the_same_sweeps_pass() {
    let bug = cfg!(feature = "ack-before-fsync");
    for final_power_loss in [true, false] {
        let mut scenario = scenario();
        scenario.final_power_loss = final_power_loss;
        let (runs, failure) = runner::sweep(&scenario, &system(bug), 0..SEEDS);
        if let Some(f) = failure {
            panic!("seed {} failed: {:?}\n{}", f.seed, f.failed, f.plan);
        }
        assert_eq!(runs, SEEDS);
    }
}
