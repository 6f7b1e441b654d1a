//! Fault decisions. Every random choice sim-fs makes goes through [`Dice`], which draws
//! from the node's own named stream of sim-runtime (`fs.node<N>`), so a run is a pure
//! function of its seed and adding draws on one node leaves other nodes alone.

use crate::FaultConfig;
use rand::Rng;
use sim_runtime::rng::StreamRng;
use sim_runtime::NodeId;
use std::time::Duration;

/// The random source and fault rates for one operation on one node.
pub(crate) struct Dice {
    pub cfg: FaultConfig,
    pub rng: StreamRng,
}

/// Name of `node`'s random stream.
pub(crate) fn stream_name(node: NodeId) -> String {
    format!("fs.node{node}")
}

impl Dice {
    pub(crate) fn new(node: NodeId, cfg: FaultConfig) -> Self {
        Dice {
            cfg,
            rng: sim_runtime::rng::stream(stream_name(node)),
        }
    }

    /// True with probability `p` (no draw when `p <= 0`).
    pub(crate) fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    /// Whether this operation fails with an injected fault of `kind` at rate `p`;
    /// counts it as `fs.<kind>`.
    pub(crate) fn inject(&mut self, p: f64, kind: &str) -> bool {
        let fire = self.roll(p);
        if fire {
            sim_runtime::faults::count(&format!("fs.{kind}"));
        }
        fire
    }

    /// The latency to add to this operation, if any (counted as `fs.latency`).
    pub(crate) fn latency(&mut self) -> Option<Duration> {
        let l = self.cfg.latency.clone();
        if !self.roll(l.probability) {
            return None;
        }
        let us = self.rng.gen_range(l.min_us..=l.max_us);
        if us == 0 {
            return None;
        }
        sim_runtime::faults::count("fs.latency");
        Some(Duration::from_micros(us))
    }
}
