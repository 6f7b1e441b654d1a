//! Fault configuration of the simulated disk.
//!
//! A [`FaultConfig`] holds every rate sim-fs injects faults at. It is plain data
//! (serde), so a run's configuration can be printed, stored with a failing seed and
//! replayed. It is compiled in both worlds so runners can carry one around without
//! `cfg`s, but only the simulated world acts on it.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Rates of every fault sim-fs injects. `Default` injects no fault during normal
/// operation (no EIO, no ENOSPC, no latency, no bit flips); a power loss, which only
/// happens when a scenario crashes a node, still follows [`CrashConfig::default`], the
/// adversarial crash model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Probability that a `read_at` fails with EIO (nothing is read).
    pub read_eio: f64,
    /// Probability that a `write_all_at`/`append` fails with EIO (nothing is written).
    pub write_eio: f64,
    /// Probability that a `sync_data`/`sync_all`/`sync_dir` fails with EIO. The
    /// unsynced changes it covered are then dropped from the pending set without
    /// becoming durable (Linux "fsyncgate"), so a retried sync succeeds with the data
    /// not on disk.
    pub sync_eio: f64,
    /// Per-node capacity: a write or `set_len` that would make the bytes of all visible
    /// files of the node exceed it fails with ENOSPC. `None`: unlimited.
    pub capacity_bytes: Option<u64>,
    /// Virtual-time latency added to file operations.
    pub latency: LatencyConfig,
    /// Probability, per durable non-empty file and per power loss, that one bit of one
    /// of its sectors flips (silent corruption; checksums above must catch it).
    pub crash_bitflip: f64,
    /// What happens to unsynced state on power loss.
    pub crash: CrashConfig,
}

/// Latency of file operations, in virtual time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyConfig {
    /// Probability that an operation is delayed at all (0: never).
    pub probability: f64,
    /// Shortest delay, microseconds.
    pub min_us: u64,
    /// Longest delay, microseconds (inclusive).
    pub max_us: u64,
}

/// The fate of unsynced state on power loss. Each unsynced write independently survives
/// whole (probability `write_whole`), survives torn (`write_torn`), or is lost (the
/// rest); surviving writes are applied in a random order when `reorder` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrashConfig {
    /// Probability that an unsynced write survives whole.
    pub write_whole: f64,
    /// Probability that an unsynced write survives torn: a prefix of whole 512-byte
    /// sectors (on absolute file offsets) lands, the rest does not.
    pub write_torn: f64,
    /// Given a torn write, probability that the part that did not land holds garbage
    /// rather than the old bytes.
    pub torn_garbage: f64,
    /// Probability that an unsynced `set_len` is lost.
    pub set_len_lost: f64,
    /// Probability that an unsynced directory operation (create, mkdir, rename, remove)
    /// is lost.
    pub dir_op_lost: f64,
    /// Apply the surviving writes (and `set_len`s) of a file in a random order rather
    /// than the order they were issued.
    pub reorder: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            read_eio: 0.0,
            write_eio: 0.0,
            sync_eio: 0.0,
            capacity_bytes: None,
            latency: LatencyConfig::default(),
            crash_bitflip: 0.0,
            crash: CrashConfig::default(),
        }
    }
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig {
            probability: 0.0,
            min_us: 0,
            max_us: 0,
        }
    }
}

impl Default for CrashConfig {
    /// The adversarial crash model: 40% of unsynced writes survive whole, 30% torn (half
    /// of those with garbage after the tear), 30% are lost; half the unsynced
    /// `set_len`s and directory operations are lost; survivors land in a random order.
    fn default() -> Self {
        CrashConfig {
            write_whole: 0.4,
            write_torn: 0.3,
            torn_garbage: 0.5,
            set_len_lost: 0.5,
            dir_op_lost: 0.5,
            reorder: true,
        }
    }
}

impl CrashConfig {
    /// Every unsynced change survives, in issue order: a power loss then behaves like a
    /// clean shutdown (apart from losing open handles). For tests that isolate one rule.
    pub fn keep_all() -> Self {
        CrashConfig {
            write_whole: 1.0,
            write_torn: 0.0,
            torn_garbage: 0.0,
            set_len_lost: 0.0,
            dir_op_lost: 0.0,
            reorder: false,
        }
    }

    /// Every unsynced change is lost: the disk keeps exactly what was synced.
    pub fn lose_all() -> Self {
        CrashConfig {
            write_whole: 0.0,
            write_torn: 0.0,
            torn_garbage: 0.0,
            set_len_lost: 1.0,
            dir_op_lost: 1.0,
            reorder: false,
        }
    }

    /// Checks that every probability is in `[0, 1]` and `write_whole + write_torn <= 1`.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("crash.write_whole", self.write_whole),
            ("crash.write_torn", self.write_torn),
            ("crash.torn_garbage", self.torn_garbage),
            ("crash.set_len_lost", self.set_len_lost),
            ("crash.dir_op_lost", self.dir_op_lost),
        ] {
            check_probability(name, p)?;
        }
        if self.write_whole + self.write_torn > 1.0 + 1e-9 {
            return Err(format!(
                "crash.write_whole ({}) + crash.write_torn ({}) exceeds 1",
                self.write_whole, self.write_torn
            ));
        }
        Ok(())
    }
}

fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{name} = {p} is not a probability in [0, 1]"))
    }
}

impl FaultConfig {
    /// No injected faults (same as `Default`).
    pub fn none() -> Self {
        Self::default()
    }

    /// A heavy but survivable preset: frequent latency, occasional EIO on every kind of
    /// operation, sync failures, bit flips on power loss, and the default crash model.
    /// No capacity limit (ENOSPC depends on the workload's size; set it explicitly).
    pub fn chaos() -> Self {
        FaultConfig {
            read_eio: 0.002,
            write_eio: 0.002,
            sync_eio: 0.01,
            capacity_bytes: None,
            latency: LatencyConfig {
                probability: 0.5,
                min_us: 20,
                max_us: 5_000,
            },
            crash_bitflip: 0.05,
            crash: CrashConfig::default(),
        }
    }

    /// A configuration drawn from `rng` (e.g. `sim_runtime::rng::stream("fs.config")`):
    /// each fault kind is switched on or off, then given a rate. The same generator state
    /// always gives the same configuration.
    pub fn random(rng: &mut impl Rng) -> Self {
        fn rate(rng: &mut impl Rng, on: f64, lo_exp: f64, hi_exp: f64) -> f64 {
            if rng.gen_bool(on) {
                10f64.powf(rng.gen_range(lo_exp..hi_exp))
            } else {
                0.0
            }
        }
        let read_eio = rate(rng, 0.5, -4.0, -2.0);
        let write_eio = rate(rng, 0.5, -4.0, -2.0);
        let sync_eio = rate(rng, 0.5, -3.0, -1.5);
        let capacity_bytes = if rng.gen_bool(0.15) {
            Some(rng.gen_range(8u64 << 20..256u64 << 20))
        } else {
            None
        };
        let latency = if rng.gen_bool(0.5) {
            let min_us = rng.gen_range(0..50);
            LatencyConfig {
                probability: rng.gen_range(0.05..=1.0),
                min_us,
                max_us: min_us + rng.gen_range(10..10_000),
            }
        } else {
            LatencyConfig::default()
        };
        let crash_bitflip = rate(rng, 0.3, -2.0, -0.7);
        let write_whole = rng.gen_range(0.2..0.6);
        let write_torn = rng.gen_range(0.0..(1.0 - write_whole));
        let crash = CrashConfig {
            write_whole,
            write_torn,
            torn_garbage: rng.gen_range(0.0..=1.0),
            set_len_lost: rng.gen_range(0.0..=1.0),
            dir_op_lost: rng.gen_range(0.0..0.9),
            reorder: rng.gen_bool(0.8),
        };
        FaultConfig {
            read_eio,
            write_eio,
            sync_eio,
            capacity_bytes,
            latency,
            crash_bitflip,
            crash,
        }
    }

    /// Checks that every rate is a probability and the latency range is ordered.
    pub fn validate(&self) -> Result<(), String> {
        check_probability("read_eio", self.read_eio)?;
        check_probability("write_eio", self.write_eio)?;
        check_probability("sync_eio", self.sync_eio)?;
        check_probability("crash_bitflip", self.crash_bitflip)?;
        check_probability("latency.probability", self.latency.probability)?;
        if self.latency.min_us > self.latency.max_us {
            return Err(format!(
                "latency.min_us ({}) > latency.max_us ({})",
                self.latency.min_us, self.latency.max_us
            ));
        }
        self.crash.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn default_injects_nothing_and_presets_validate() {
        let d = FaultConfig::default();
        assert_eq!(d.read_eio, 0.0);
        assert_eq!(d.write_eio, 0.0);
        assert_eq!(d.sync_eio, 0.0);
        assert_eq!(d.capacity_bytes, None);
        assert_eq!(d.latency.probability, 0.0);
        assert_eq!(d.crash_bitflip, 0.0);
        for c in [FaultConfig::default(), FaultConfig::chaos()] {
            c.validate().unwrap();
        }
        CrashConfig::keep_all().validate().unwrap();
        CrashConfig::lose_all().validate().unwrap();
        let mut bad = FaultConfig::default();
        bad.crash.write_whole = 0.8;
        bad.crash.write_torn = 0.5;
        assert!(bad.validate().is_err());
        bad = FaultConfig::default();
        bad.read_eio = 1.5;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn random_is_a_pure_function_of_the_generator_and_valid() {
        let mut seen_capacity = false;
        let mut seen_no_sync_eio = false;
        for seed in 0..200u64 {
            let a = FaultConfig::random(&mut rand_chacha_like(seed));
            let b = FaultConfig::random(&mut rand_chacha_like(seed));
            assert_eq!(a, b, "seed {seed}");
            a.validate().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            seen_capacity |= a.capacity_bytes.is_some();
            seen_no_sync_eio |= a.sync_eio == 0.0;
        }
        assert!(
            seen_capacity && seen_no_sync_eio,
            "random() must vary the enabled faults"
        );
    }

    fn rand_chacha_like(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }
}
