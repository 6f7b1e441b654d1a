//! Who claims to lead, per run: a node that leads says so through the [`Leadership`]
//! handle in its [`super::NodeCtx`], and faults a plan aims at
//! [`crate::plan::LEADER`] go to the node up now with the highest claimed term
//! ([`super::System::leader_by_claims`]). The claims live in the run (a fresh set per
//! run), so a plan replays the same way in any process and after any earlier run.

use crate::plan::NodeNo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One run's claims: node → the term it says it leads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claims(Arc<Mutex<BTreeMap<NodeNo, u64>>>);

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeNo, u64>> {
        sim_runtime::sync::lock(&self.0)
    }

    pub(crate) fn handle(&self, node: NodeNo) -> Leadership {
        Leadership {
            node,
            claims: self.clone(),
        }
    }

    /// Forgets `node`'s claim (it is starting afresh).
    pub(crate) fn clear(&self, node: NodeNo) {
        self.lock().remove(&node);
    }

    /// The node with the highest claimed term among those `up` accepts (ties: the
    /// lowest number); None when no node that is up claims to lead.
    pub(crate) fn leader(&self, up: impl Fn(NodeNo) -> bool) -> Option<NodeNo> {
        let claims = self.lock();
        let mut best: Option<(u64, NodeNo)> = None;
        for (&node, &term) in claims.iter() {
            if up(node) && best.map_or(true, |(t, _)| term > t) {
                best = Some((term, node));
            }
        }
        best.map(|(_, node)| node)
    }
}

/// A node's way to tell the runner that it leads, so that faults aimed at the leader
/// find it. A claim lasts until [`Leadership::follow`], the node's next start, or
/// while the node is down.
#[derive(Debug, Clone)]
pub struct Leadership {
    node: NodeNo,
    claims: Claims,
}

impl Leadership {
    /// This node leads `term` (any number that grows with each new leader: an epoch,
    /// a Raft term).
    pub fn lead(&self, term: u64) {
        self.claims.lock().insert(self.node, term);
    }

    /// This node no longer leads.
    pub fn follow(&self) {
        self.claims.clear(self.node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_claim_of_a_node_that_is_up_leads() {
        let claims = Claims::default();
        let (one, two, three) = (claims.handle(1), claims.handle(2), claims.handle(3));
        assert_eq!(claims.leader(|_| true), None);
        one.lead(4);
        two.lead(5);
        assert_eq!(claims.leader(|_| true), Some(2));
        assert_eq!(
            claims.leader(|n| n != 2),
            Some(1),
            "a node that is down leads nothing"
        );
        two.follow();
        three.lead(4);
        assert_eq!(claims.leader(|_| true), Some(1), "ties: the lowest number");
        claims.clear(1);
        assert_eq!(claims.leader(|_| true), Some(3));
    }
}
