//! Fault plans as data (D14): the generic part lives in the `chaos` crate (D85); this
//! module names it for the bundled database, whose plans carry its engine and Raft
//! [`Tuning`].
//!
//! Swarm testing (Groce et al., ISSTA 2012): each seed first draws *which* fault kinds
//! are on (from those the scenario allows), then their rates and times, so some seeds
//! hammer one kind and others mix them — a fixed mix of everything tends to hide bugs
//! that need one fault kind to act alone for a while.

use rand::Rng;

pub use super::tuning::Tuning;
pub use chaos::plan::{node_name, Branch, Fault, FaultSpace, Horizon, NodeNo, Step, LEADER};

/// Every fault of one run of the bundled database, decided before it starts.
pub type FaultPlan = chaos::plan::FaultPlan<Tuning>;

impl chaos::plan::Settings for Tuning {
    fn is_default(&self) -> bool {
        Tuning::is_default(self)
    }
    fn describe(&self) -> String {
        Tuning::describe(self)
    }
}

/// Draws a plan from `rng` (the run's `scenario.plan` stream): the generic draw, with
/// the engine's [`Tuning`] drawn after the timed steps (a cluster's tuning when the
/// topology has more than one node).
pub fn generate<R: Rng>(space: FaultSpace, horizon: Horizon, rng: &mut R) -> FaultPlan {
    let cluster = horizon.nodes > 1;
    // The late settings are drawn after the leader-aimed retargeting, so every earlier
    // draw of a seed is the one it made before these settings existed (D87).
    chaos::plan::generate_with_late(
        space,
        horizon,
        rng,
        |rng| Tuning::draw(rng, cluster),
        |rng, tuning| tuning.draw_late(rng, cluster),
    )
}

#[cfg(test)]
mod tests;
