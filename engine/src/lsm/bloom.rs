//! Bloom filters over user keys, one per SSTable, checked before any data block is read.
//!
//! Double hashing (Kirsch & Mitzenmacher): probe `i` sets bit `h1 + i·h2 mod m`, with
//! `h1`, `h2` the halves of a stable 64-bit hash. `k = round(bits_per_key · ln 2)`.
//! Encoding: the bit array, then one byte `k`. The SSTable wraps it in a checksummed
//! block.

/// A built or decoded filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    bits: Vec<u8>,
    k: u8,
}

/// The filter hash of `key` (stable across runs and builds: part of the file format).
/// A read that consults many filters computes it once ([`Bloom::may_contain_hash`]).
pub fn hash(key: &[u8]) -> u64 {
    // FNV-1a, then the splitmix64 finaliser to spread FNV's weak low bits.
    let mut h = sim_runtime::rng::stable_hash(key);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Bloom {
    /// A filter for `keys` with about `bits_per_key` bits each (at least 64 bits).
    pub fn build<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>, bits_per_key: u32) -> Bloom {
        let n = keys.len().max(1);
        let m = (n * bits_per_key as usize).max(64);
        let k = ((f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u8).clamp(1, 30);
        let mut bloom = Bloom {
            bits: vec![0; m.div_ceil(8)],
            k,
        };
        for key in keys {
            bloom.add(key);
        }
        bloom
    }

    fn nbits(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    fn add(&mut self, key: &[u8]) {
        let h = hash(key);
        let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
        for i in 0..u64::from(self.k) {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % self.nbits();
            self.bits[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    /// False means `key` is certainly absent; true means it may be present.
    ///
    /// Probes the same bits as [`Bloom::add`] with two divisions instead of `k`:
    /// `h1 + i·h2 < 2^38` never wraps, so `(h1 + i·h2) mod m` is the running sum of
    /// `h1 mod m` and `i` steps of `h2 mod m`, each reduced by one subtraction.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(hash(key))
    }

    /// [`Bloom::may_contain`] for a key whose [`hash`] is `h`.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
        let m = self.nbits();
        let (mut bit, step) = (h1 % m, h2 % m);
        for _ in 0..self.k {
            if self.bits[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                return false;
            }
            bit += step;
            if bit >= m {
                bit -= m;
            }
        }
        true
    }

    /// The bit array then `k`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.bits.clone();
        out.push(self.k);
        out
    }

    /// Decodes [`Bloom::encode`]'s output; `None` if it cannot be a filter.
    pub fn decode(bytes: &[u8]) -> Option<Bloom> {
        let (&k, bits) = bytes.split_last()?;
        if bits.is_empty() || k == 0 || k > 30 {
            return None;
        }
        Some(Bloom {
            bits: bits.to_vec(),
            k,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize, tag: &str) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{tag}{i:06}").into_bytes())
            .collect()
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let present = keys(2000, "in");
        let bloom = Bloom::build(present.iter().map(Vec::as_slice), 10);
        for k in &present {
            assert!(bloom.may_contain(k), "false negative for {k:?}");
        }
        let absent = keys(10_000, "out");
        let fp = absent.iter().filter(|k| bloom.may_contain(k)).count();
        // ~1% expected at 10 bits per key; allow slack, but a filter that says yes to
        // everything must fail.
        assert!(fp < 300, "{fp} false positives of 10000");
        let dec = Bloom::decode(&bloom.encode()).unwrap();
        assert_eq!(dec, bloom);
    }

    /// The incremental probe of `may_contain` visits exactly the bits `add` sets: a
    /// filter of one key answers like a direct recomputation for many other keys.
    #[test]
    fn may_contain_probes_the_bits_add_sets() {
        let direct = |b: &Bloom, key: &[u8]| {
            let h = hash(key);
            let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
            (0..u64::from(b.k)).all(|i| {
                let bit = h1.wrapping_add(i.wrapping_mul(h2)) % b.nbits();
                b.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0
            })
        };
        for n in [1, 7, 64, 1000] {
            let present = keys(n, "p");
            let b = Bloom::build(present.iter().map(Vec::as_slice), 10);
            for k in keys(3000, "q").iter().chain(&present) {
                assert_eq!(b.may_contain(k), direct(&b, k), "{k:?} in a filter of {n}");
            }
        }
    }

    #[test]
    fn fewer_bits_mean_more_false_positives() {
        let present = keys(1000, "in");
        let absent = keys(5000, "out");
        let fp = |bits| {
            let b = Bloom::build(present.iter().map(Vec::as_slice), bits);
            absent.iter().filter(|k| b.may_contain(k)).count()
        };
        assert!(fp(2) > fp(12), "{} vs {}", fp(2), fp(12));
    }

    #[test]
    fn decode_rejects_nonsense() {
        assert_eq!(Bloom::decode(&[]), None);
        assert_eq!(Bloom::decode(&[5]), None);
        assert_eq!(Bloom::decode(&[0xff, 0]), None);
        assert_eq!(Bloom::decode(&[0xff, 31]), None);
    }
}
