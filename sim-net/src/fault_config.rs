//! Probabilistic network fault rates (applied only in the simulated world).

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-message fault probabilities and their parameters.
///
/// Each rate is the probability that one received data frame suffers that fault. The
/// default is no faults at all. In the simulated world the run's configuration is set
/// with `sim_net::faults::set_config`; the real world ignores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetFaultConfig {
    /// Probability that a message is silently lost.
    pub drop_rate: f64,
    /// Probability that a message is delivered twice.
    pub dup_rate: f64,
    /// Probability that a message is held back until the next message on its
    /// connection has been delivered (or `reorder_window` passes), so the two swap.
    pub reorder_rate: f64,
    /// Longest time a message is held back for reordering.
    pub reorder_window: Duration,
    /// Probability that a message is delayed by a time drawn from
    /// `delay_min..=delay_max` (later messages on its connection overtake it).
    pub delay_rate: f64,
    /// Shortest injected delay.
    pub delay_min: Duration,
    /// Longest injected delay.
    pub delay_max: Duration,
    /// Probability that receiving a message resets its connection instead (the message
    /// is lost and the connection closed; the sender reconnects).
    pub reset_rate: f64,
}

impl Default for NetFaultConfig {
    fn default() -> Self {
        NetFaultConfig {
            drop_rate: 0.0,
            dup_rate: 0.0,
            reorder_rate: 0.0,
            reorder_window: Duration::from_millis(100),
            delay_rate: 0.0,
            delay_min: Duration::ZERO,
            delay_max: Duration::ZERO,
            reset_rate: 0.0,
        }
    }
}

impl NetFaultConfig {
    /// No faults (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether every rate is zero.
    pub fn is_none(&self) -> bool {
        self.drop_rate <= 0.0
            && self.dup_rate <= 0.0
            && self.reorder_rate <= 0.0
            && self.delay_rate <= 0.0
            && self.reset_rate <= 0.0
    }

    /// Draws a configuration for one run: each fault kind is enabled with probability
    /// one half, at a modest rate, so a sweep of seeds covers every combination.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut rate = |max: f64| {
            if rng.gen_bool(0.5) {
                rng.gen_range(0.0..max)
            } else {
                0.0
            }
        };
        let drop_rate = rate(0.05);
        let dup_rate = rate(0.05);
        let reorder_rate = rate(0.10);
        let delay_rate = rate(0.20);
        let reset_rate = rate(0.01);
        let delay_min = Duration::from_millis(rng.gen_range(0..20));
        let delay_max = delay_min + Duration::from_millis(rng.gen_range(1..500));
        let reorder_window = Duration::from_millis(rng.gen_range(10..200));
        NetFaultConfig {
            drop_rate,
            dup_rate,
            reorder_rate,
            reorder_window,
            delay_rate,
            delay_min,
            delay_max,
            reset_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn default_is_none_and_random_varies() {
        assert!(NetFaultConfig::default().is_none());
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let configs: Vec<NetFaultConfig> =
            (0..32).map(|_| NetFaultConfig::random(&mut rng)).collect();
        assert!(configs.iter().any(|c| !c.is_none()));
        assert!(configs.iter().any(|c| c.drop_rate > 0.0));
        assert!(configs.iter().any(|c| c.drop_rate == 0.0));
        for c in &configs {
            assert!(c.delay_min <= c.delay_max);
            for r in [
                c.drop_rate,
                c.dup_rate,
                c.reorder_rate,
                c.delay_rate,
                c.reset_rate,
            ] {
                assert!((0.0..1.0).contains(&r));
            }
        }
        // Serde round trip.
        let c = &configs[0];
        let bytes = postcard::to_allocvec(c).expect("encode");
        let back: NetFaultConfig = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(&back, c);
    }
}
