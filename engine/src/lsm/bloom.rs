//! Bloom filters over user keys, one per SSTable, checked before any data block is read.
//!
//! Two layouts, chosen by the table's format version ([`Layout`]); both use the same
//! stable 64-bit key [`hash`] and `k = round(bits_per_key · ln 2)` probes.
//! - [`Layout::Spread`] (table format 1): double hashing (Kirsch & Mitzenmacher), probe
//!   `i` sets bit `h1 + i·h2 mod m`, with `h1`, `h2` the halves of the hash. Each probe
//!   lands on its own cache line: a lookup of a present key touches `k` lines.
//! - [`Layout::Local`] (format 2, written now): the low half of the hash picks one
//!   64-byte line (multiply-shift, no division), the high half, multiplied by the
//!   golden ratio before each probe, gives `k` bits within it. One cache line per
//!   lookup, whatever the answer — a point read probes one filter per level it passes,
//!   and those lines were the filter's whole cost. The false-positive rate at 10 bits a
//!   key is ~1% instead of ~0.8% (lines fill unevenly).
//!
//! Encoding: the bit array (for `Local`, lines of eight little-endian `u64`s), then one
//! byte `k`. The SSTable wraps it in a checksummed block.

/// Where a filter's probes land (fixed by the table's format version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Probes spread over the whole array (table format 1).
    Spread,
    /// All probes of a key in one 64-byte line (table format 2).
    Local,
}

/// One cache line of a [`Layout::Local`] filter, aligned so that it is one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(64))]
struct Line([u64; 8]);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Bits {
    Spread(Vec<u8>),
    Local(Vec<Line>),
}

/// A built or decoded filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    bits: Bits,
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

/// The line of a `Local` filter of `lines` lines that `h` picks.
fn line_of(h: u64, lines: usize) -> usize {
    let line = (((h & 0xffff_ffff) * lines as u64) >> 32) as usize;
    // Multiply-shift maps 32 hash bits onto 0..lines (and a filter has a line).
    debug_assert!(line < lines);
    line
}

/// The bits (0..512) of a line that `h` sets, `k` of them, in probe order.
fn local_bits(h: u64, k: u8) -> impl Iterator<Item = usize> {
    let mut x = (h >> 32) as u32;
    (0..k).map(move |_| {
        x = x.wrapping_mul(0x9E37_79B9);
        (x >> 23) as usize
    })
}

impl Bloom {
    /// A filter for `keys` with about `bits_per_key` bits each, in `layout` (at least
    /// 64 bits; a whole number of lines for `Local`).
    pub fn build<'a>(
        keys: impl ExactSizeIterator<Item = &'a [u8]>,
        bits_per_key: u32,
        layout: Layout,
    ) -> Bloom {
        let n = keys.len().max(1);
        let m = (n * bits_per_key as usize).max(64);
        let k = ((f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u8).clamp(1, 30);
        let bits = match layout {
            Layout::Spread => Bits::Spread(vec![0; m.div_ceil(8)]),
            Layout::Local => Bits::Local(vec![Line::default(); m.div_ceil(512)]),
        };
        let mut bloom = Bloom { bits, k };
        for key in keys {
            bloom.add(hash(key));
        }
        bloom
    }

    /// Its layout.
    pub fn layout(&self) -> Layout {
        match self.bits {
            Bits::Spread(_) => Layout::Spread,
            Bits::Local(_) => Layout::Local,
        }
    }

    fn add(&mut self, h: u64) {
        let k = self.k;
        match &mut self.bits {
            Bits::Spread(bits) => {
                let m = bits.len() as u64 * 8;
                let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
                for i in 0..u64::from(k) {
                    let bit = h1.wrapping_add(i.wrapping_mul(h2)) % m;
                    bits[(bit / 8) as usize] |= 1 << (bit % 8);
                }
            }
            Bits::Local(lines) => {
                let n = lines.len();
                let line = &mut lines[line_of(h, n)];
                for bit in local_bits(h, k) {
                    line.0[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
    }

    /// False means `key` is certainly absent; true means it may be present.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(hash(key))
    }

    /// [`Bloom::may_contain`] for a key whose `hash` is `h`.
    ///
    /// `Spread` probes the same bits as `add` with two divisions instead of `k`:
    /// `h1 + i·h2 < 2^38` never wraps, so `(h1 + i·h2) mod m` is the running sum of
    /// `h1 mod m` and `i` steps of `h2 mod m`, each reduced by one subtraction.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        match &self.bits {
            Bits::Spread(bits) => {
                let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
                let m = bits.len() as u64 * 8;
                let (mut bit, step) = (h1 % m, h2 % m);
                for _ in 0..self.k {
                    if bits[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                        return false;
                    }
                    bit += step;
                    if bit >= m {
                        bit -= m;
                    }
                    // One subtraction reduces it (see above): `add` probed this bit.
                    debug_assert!(bit < m);
                }
                true
            }
            Bits::Local(lines) => {
                let line = &lines[line_of(h, lines.len())];
                local_bits(h, self.k).all(|bit| line.0[bit / 64] & (1 << (bit % 64)) != 0)
            }
        }
    }

    /// The bit array then `k`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = match &self.bits {
            Bits::Spread(bits) => bits.clone(),
            Bits::Local(lines) => lines
                .iter()
                .flat_map(|l| l.0)
                .flat_map(u64::to_le_bytes)
                .collect(),
        };
        out.push(self.k);
        // The pair of `Bloom::decode`, which `Table::open` runs on what is written.
        debug_assert_eq!(Bloom::decode(&out, self.layout()).as_ref(), Some(self));
        out
    }

    /// Decodes [`Bloom::encode`]'s output for a filter in `layout`; `None` if it
    /// cannot be one.
    pub fn decode(bytes: &[u8], layout: Layout) -> Option<Bloom> {
        let (&k, bits) = bytes.split_last()?;
        if bits.is_empty() || k == 0 || k > 30 {
            return None;
        }
        let bits = match layout {
            Layout::Spread => Bits::Spread(bits.to_vec()),
            Layout::Local => {
                if bits.len() % 64 != 0 {
                    return None;
                }
                Bits::Local(
                    bits.chunks_exact(64)
                        .map(|line| {
                            let mut l = Line::default();
                            for (w, b) in l.0.iter_mut().zip(line.chunks_exact(8)) {
                                *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                            }
                            l
                        })
                        .collect(),
                )
            }
        };
        Some(Bloom { bits, k })
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

    const LAYOUTS: [Layout; 2] = [Layout::Spread, Layout::Local];

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        for layout in LAYOUTS {
            let present = keys(2000, "in");
            let bloom = Bloom::build(present.iter().map(Vec::as_slice), 10, layout);
            assert_eq!(bloom.layout(), layout);
            for k in &present {
                assert!(
                    bloom.may_contain(k),
                    "false negative for {k:?} ({layout:?})"
                );
            }
            let absent = keys(10_000, "out");
            let fp = absent.iter().filter(|k| bloom.may_contain(k)).count();
            // ~0.8% (Spread) / ~1% (Local) expected at 10 bits per key; allow slack,
            // but a filter that says yes to everything must fail.
            assert!(fp < 200, "{fp} false positives of 10000 ({layout:?})");
            let dec = Bloom::decode(&bloom.encode(), layout).unwrap();
            assert_eq!(dec, bloom);
        }
    }

    /// A `Local` filter keeps every key's bits in the one line its hash picks: a
    /// filter of one key has bits in exactly one line, at most `k` of them.
    #[test]
    fn local_layout_sets_bits_in_one_line_per_key() {
        let present = keys(1, "solo");
        let b = Bloom::build(present.iter().map(Vec::as_slice), 10, Layout::Local);
        let Bits::Local(lines) = &b.bits else {
            panic!("a Local filter")
        };
        let h = hash(&present[0]);
        let used: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i] != Line::default())
            .collect();
        assert_eq!(used, vec![line_of(h, lines.len())]);
        let ones: u32 = lines[used[0]].0.iter().map(|w| w.count_ones()).sum();
        assert!(ones >= 1 && ones <= u32::from(b.k), "{ones} bits set");
        assert_eq!(std::mem::align_of::<Line>(), 64);
    }

    /// The incremental probe of `may_contain` visits exactly the bits `add` sets: a
    /// filter of one key answers like a direct recomputation for many other keys.
    #[test]
    fn may_contain_probes_the_bits_add_sets() {
        let direct = |b: &Bloom, key: &[u8]| {
            let Bits::Spread(bits) = &b.bits else {
                panic!("a Spread filter")
            };
            let h = hash(key);
            let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
            let m = bits.len() as u64 * 8;
            (0..u64::from(b.k)).all(|i| {
                let bit = h1.wrapping_add(i.wrapping_mul(h2)) % m;
                bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0
            })
        };
        for n in [1, 7, 64, 1000] {
            let present = keys(n, "p");
            let b = Bloom::build(present.iter().map(Vec::as_slice), 10, Layout::Spread);
            for k in keys(3000, "q").iter().chain(&present) {
                assert_eq!(b.may_contain(k), direct(&b, k), "{k:?} in a filter of {n}");
            }
        }
    }

    #[test]
    fn fewer_bits_mean_more_false_positives() {
        for layout in LAYOUTS {
            let present = keys(1000, "in");
            let absent = keys(5000, "out");
            let fp = |bits| {
                let b = Bloom::build(present.iter().map(Vec::as_slice), bits, layout);
                absent.iter().filter(|k| b.may_contain(k)).count()
            };
            assert!(fp(2) > fp(12), "{} vs {} ({layout:?})", fp(2), fp(12));
        }
    }

    #[test]
    fn decode_rejects_nonsense() {
        for layout in LAYOUTS {
            assert_eq!(Bloom::decode(&[], layout), None);
            assert_eq!(Bloom::decode(&[5], layout), None);
            assert_eq!(Bloom::decode(&[0xff, 0], layout), None);
            assert_eq!(Bloom::decode(&[0xff, 31], layout), None);
        }
        // A Local filter is whole lines.
        assert_eq!(Bloom::decode(&[0xff, 0xff, 7], Layout::Local), None);
        assert!(Bloom::decode(&[0xff, 0xff, 7], Layout::Spread).is_some());
    }
}
