//! Key choice: Zipfian by default (a few hot keys, a long tail), as real workloads and
//! Jepsen's generators do — contention on hot keys is where isolation bugs show.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// Picks key indexes in `0..count`.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    count: u64,
    zipf: Option<Zipf<f64>>,
}

impl KeyChooser {
    /// Zipfian over `count` keys with exponent `theta` (0.99 is YCSB's).
    pub fn zipf(count: u64, theta: f64) -> KeyChooser {
        let count = count.max(1);
        KeyChooser {
            count,
            zipf: Zipf::new(count, theta).ok(),
        }
    }

    /// Uniform over `count` keys.
    pub fn uniform(count: u64) -> KeyChooser {
        KeyChooser {
            count: count.max(1),
            zipf: None,
        }
    }

    /// How many keys there are.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// One key index.
    pub fn pick(&self, rng: &mut dyn rand::RngCore) -> u64 {
        match &self.zipf {
            // Zipf samples ranks 1..=count as floats.
            Some(z) => (z.sample(rng) as u64).clamp(1, self.count) - 1,
            None => rng.gen_range(0..self.count),
        }
    }

    /// `n` distinct key indexes (fewer if there are fewer keys).
    pub fn pick_distinct(&self, n: usize, rng: &mut dyn rand::RngCore) -> Vec<u64> {
        let n = n.min(self.count as usize);
        let mut out: Vec<u64> = Vec::with_capacity(n);
        let mut tries = 0;
        while out.len() < n {
            let k = if tries < 64 {
                self.pick(rng)
            } else {
                rng.gen_range(0..self.count)
            };
            tries += 1;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipf_is_skewed_towards_low_ranks_and_stays_in_range() {
        let keys = KeyChooser::zipf(100, 0.99);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut counts = [0u32; 100];
        for _ in 0..10_000 {
            counts[keys.pick(&mut rng) as usize] += 1;
        }
        assert!(
            counts[0] > 5 * counts[50].max(1),
            "hot key {} vs tail {}",
            counts[0],
            counts[50]
        );
        let d = keys.pick_distinct(5, &mut rng);
        let set: std::collections::BTreeSet<_> = d.iter().collect();
        assert_eq!(set.len(), 5);
    }
}
