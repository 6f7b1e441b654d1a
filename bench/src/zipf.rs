//! YCSB's Zipfian key chooser: Gray et al., "Quickly generating billion-record synthetic
//! databases" (SIGMOD 1994), as YCSB's `ZipfianGenerator` implements it, and YCSB's
//! scrambling (`ScrambledZipfianGenerator`): the rank drawn is hashed (FNV-1a, 64-bit)
//! onto the key space, so the hot keys are spread over it instead of clustered at its
//! start (which would flatter range-partitioned caches).

use rand::Rng;

/// Draws ranks `0..n`, rank `r` with probability ∝ `1 / (r + 1)^θ`.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

/// `Σ_{i=1..n} 1 / i^θ`.
pub fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipfian {
    /// A generator over `0..n` with skew `theta` (0 < θ < 1; YCSB uses 0.99).
    pub fn new(n: u64, theta: f64) -> Zipfian {
        assert!(n >= 2, "a Zipfian over fewer than 2 items");
        assert!(
            theta > 0.0 && theta < 1.0,
            "θ must be in (0, 1), got {theta}"
        );
        let zeta_n = zeta(n, theta);
        let zeta_2 = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Zipfian {
            n,
            theta,
            alpha,
            zeta_n,
            eta,
        }
    }

    /// The probability of rank 0 (the hottest item).
    pub fn p_hottest(&self) -> f64 {
        1.0 / self.zeta_n
    }

    /// One rank in `0..n`.
    pub fn rank(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// One key index in `0..n`: a rank, scrambled over the key space.
    pub fn scrambled(&self, rng: &mut impl Rng) -> u64 {
        fnv1a64(self.rank(rng)) % self.n
    }
}

/// FNV-1a over the 8 little-endian bytes of `x`.
pub fn fnv1a64(x: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const N: u64 = 1_000;
    const DRAWS: usize = 400_000;

    fn counts(draw: impl Fn(&mut rand_chacha::ChaCha8Rng) -> u64) -> Vec<usize> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut c = vec![0usize; N as usize];
        for _ in 0..DRAWS {
            let r = draw(&mut rng);
            assert!(r < N, "draw {r} out of range");
            c[r as usize] += 1;
        }
        c
    }

    #[test]
    fn rank_frequencies_follow_the_power_law() {
        let z = Zipfian::new(N, 0.99);
        let c = counts(|rng| z.rank(rng));
        let f = |r: usize| c[r] as f64 / DRAWS as f64;
        // Rank 0 is drawn with probability 1/ζ(n) (about 0.134 for n = 1,000).
        let p0 = z.p_hottest();
        assert!((f(0) - p0).abs() < 0.01, "rank 0: {} vs {p0}", f(0));
        // Rank 1 with 1/(2^θ ζ(n)): about half of rank 0.
        let p1 = p0 / 2f64.powf(0.99);
        assert!((f(1) - p1).abs() < 0.01, "rank 1: {} vs {p1}", f(1));
        // Heavy head: the top 10% of ranks take about 70% of the draws
        // (ζ(100)/ζ(1000) ≈ 0.69), a uniform chooser would give 10%.
        let head: usize = c[..(N as usize / 10)].iter().sum();
        let head = head as f64 / DRAWS as f64;
        assert!((0.62..0.76).contains(&head), "top-10% share {head}");
        // And the tail is still reached.
        let tail: usize = c[(N as usize / 2)..].iter().sum();
        assert!(tail > DRAWS / 50, "tail share {tail}");
    }

    #[test]
    fn scrambling_moves_the_hot_keys_but_keeps_the_skew() {
        let z = Zipfian::new(N, 0.99);
        let c = counts(|rng| z.scrambled(rng));
        let hottest = (0..N as usize).max_by_key(|&i| c[i]).expect("n > 0");
        assert_eq!(
            hottest as u64,
            fnv1a64(0) % N,
            "rank 0 lands where FNV puts it"
        );
        assert_ne!(hottest, 0, "the hot key is no longer key 0");
        let f = c[hottest] as f64 / DRAWS as f64;
        assert!(f >= z.p_hottest() - 0.01, "hottest key share {f}");
    }
}
