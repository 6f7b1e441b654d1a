//! Executing the leader churn ([`Fault::LeaderChurn`]): the one nemesis that follows
//! the system's elections instead of the clock. Both runners use it — this crate's over
//! the user's nodes and the bundled database's scenarios — each with its own way of
//! finding the leader and cutting a node off.

#[cfg(doc)]
use crate::plan::Fault;
use crate::plan::NodeNo;
use sim_runtime::time::{self, sleep, Duration, Instant};

/// How often the churn asks who leads while it waits for a successor.
const POLL: Duration = Duration::from_millis(5);

/// Cuts off `rounds` leaders in turn, each for `for_ms`: first whichever node leads now,
/// then each node seen leading while it is not cut off, `after_ms` after it is first
/// seen. `leader` names the node leading now (as the system reports it); `isolate`
/// cuts a node off from the other nodes for the given milliseconds and heals it itself.
/// No leader begins later than `rounds * for_ms` after the start, so every isolation
/// has healed by the fault's duration.
pub async fn leader_churn(
    rounds: u32,
    for_ms: u64,
    after_ms: u64,
    leader: impl Fn() -> Option<NodeNo>,
    isolate: impl Fn(NodeNo, u64),
) {
    let start = time::now();
    let last_start = start + Duration::from_millis(for_ms.saturating_mul(u64::from(rounds)));
    let hold = Duration::from_millis(for_ms);
    let mut cut_off: Vec<(NodeNo, Instant)> = Vec::new();
    for round in 0..rounds {
        let is_cut_off =
            |node: NodeNo, now: Instant| cut_off.iter().any(|&(n, until)| n == node && until > now);
        // The first leader is whoever leads now; each later one is a successor.
        let target = loop {
            let now = time::now();
            if now >= last_start {
                return;
            }
            match leader() {
                Some(node) if !is_cut_off(node, now) => break node,
                _ => sleep(POLL).await,
            }
        };
        if round > 0 && after_ms > 0 {
            sleep(Duration::from_millis(after_ms)).await;
        }
        // The isolation must heal by the fault's duration: it starts in time.
        if time::now() >= last_start {
            return;
        }
        sim_runtime::cover!("chaos.leader_churn_deposes_a_successor", round > 0);
        isolate(target, for_ms);
        cut_off.push((target, time::now() + hold));
    }
}
