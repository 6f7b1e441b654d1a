//! The counter as a chaos scenario (`seedbank::chaos`, D85), shared by
//! `tests/chaos_plan.rs` and the `counter-chaos` binary (`src/bin/counter-chaos.rs`,
//! the chaos commands of D90). Simulated world only.
//!
//! The history models each node's memory of each client as a register: increment
//! `seq` of client `c` sent to node `n` is a write of `seq` to `n{n}/c{c}` (a node
//! applies a client's operations in order, so what it shows after recovery is the last
//! one it kept). The durability oracle then says what a lost acknowledged increment
//! is, and the invariant checks each node's own count and that all views converged.

use crate::client::{Client, IncrOutcome};
use crate::{node, Options, CLIENT_ID_BASE};
use rand::Rng;
use seedbank::chaos::checkers::history::{History, MicroOp, Outcome};
use seedbank::chaos::runner::{ClientCtx, NodeCtx, Observed, ReadCtx, Scenario, System};
use seedbank::time::{self, Duration};

/// Server nodes.
pub const NODES: u64 = 3;

/// The scenario: three counter nodes, three clients, 120 increments, every fault kind
/// a cluster can suffer, a 20 s liveness bound.
pub fn scenario() -> Scenario {
    let mut s = Scenario::new("counter", NODES as u32, 3);
    s.ops = 120;
    s.liveness = Duration::from_secs(20);
    // The sweep reports the counter's own marks (not the simulator's), and promises
    // that power loss with acknowledged increments on disk is reached early.
    s.mark_layers = vec!["counter"];
    s.must_reach = vec![seedbank::cover::must_reach(
        "counter.restart_recovered_increments",
        PROMISED_WITHIN,
    )];
    s
}

/// Seeds within which a sweep of `counter` reaches a restart that recovers increments.
pub const PROMISED_WITHIN: u64 = 10;

/// The counter as the runner drives it; `ack_before_fsync` switches the planted bug on
/// at run time ([`Options::ack_before_fsync`]).
pub fn system(ack_before_fsync: bool) -> System {
    build(ack_before_fsync, false)
}

/// The correct counter with a planted leak: each client also pauses for a time taken
/// from the process id, which no seed decides. Every run is valid, but two processes run a
/// seed differently: what `check-determinism` exists to catch (its exit 1).
pub fn system_leaking_the_pid() -> System {
    build(false, true)
}

fn build(ack_before_fsync: bool, leak_pid: bool) -> System {
    System::new(move |n: NodeCtx| {
        let mut opts = Options::new(u64::from(n.id), n.peers, n.dir);
        opts.ack_before_fsync = ack_before_fsync;
        async move {
            let _ = node::run(opts).await; // an error stops the node: fail-stop
        }
    })
    .client(move |c: ClientCtx| async move {
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
            if leak_pid {
                // The planted leak: a pause no seed decides, which differs between two
                // processes unless their ids differ by a multiple of 1000.
                let pid = u64::from(std::process::id());
                time::sleep(Duration::from_millis(pid % 1000)).await;
            }
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
