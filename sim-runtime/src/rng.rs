//! Named random streams.
//!
//! Every component draws from its own stream, keyed by the run's seed and the stream's
//! name: `stream("raft.election")`. A ChaCha8 generator is created on the first draw
//! from a name, with the seed as key and a stable hash of the name as ChaCha's stream
//! number, so streams are independent and adding a draw to one leaves the others alone.
//!
//! ```
//! use rand::Rng;
//! let timeout_ms = sim_runtime::rng::stream("raft.election").gen_range(150..300);
//! assert!((150..300).contains(&timeout_ms));
//! ```

use crate::state;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;

/// A handle to one named stream of the current run. Cheap to create; every draw goes to
/// the run's single generator for that name.
#[derive(Debug, Clone)]
pub struct StreamRng {
    name: Cow<'static, str>,
}

/// The named stream `name` of the current run.
pub fn stream(name: impl Into<Cow<'static, str>>) -> StreamRng {
    StreamRng { name: name.into() }
}

/// The 64-bit FNV-1a hash of `bytes`: stable across runs, builds and platforms (unlike
/// std's `DefaultHasher`, whose algorithm is unspecified).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Creates the generator for stream `name` of a run with `seed`.
#[cfg(test)]
fn new_stream(seed: u64, name: &str) -> ChaCha8Rng {
    new_salted_stream(seed, name, 0)
}

/// [`new_stream`] after a [`branch_at`] with `salt` (salt 0: no branch).
fn new_salted_stream(seed: u64, name: &str, salt: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&stable_hash(name.as_bytes()).to_le_bytes());
    key[16..24].copy_from_slice(&salt.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stable_hash(name.as_bytes()));
    rng
}

impl StreamRng {
    fn with<R>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        state::with(|s| {
            if s.branches.iter().any(|b| !b.taken) {
                let now = crate::time::elapsed();
                for branch in s.branches.iter_mut().filter(|b| !b.taken && b.at <= now) {
                    // The run branches here: every stream starts over, salted.
                    branch.taken = true;
                    s.stream_salt = branch.salt;
                    s.streams.clear();
                }
            }
            let (seed, salt) = (s.seed, s.stream_salt);
            if !s.streams.contains_key(self.name.as_ref()) {
                s.streams.insert(
                    self.name.to_string(),
                    new_salted_stream(seed, &self.name, salt),
                );
            }
            let rng = s
                .streams
                .get_mut(self.name.as_ref())
                .expect("stream inserted above");
            f(rng)
        })
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl RngCore for StreamRng {
    fn next_u32(&mut self) -> u32 {
        self.with(|r| r.next_u32())
    }
    fn next_u64(&mut self) -> u64 {
        self.with(|r| r.next_u64())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.with(|r| r.fill_bytes(dest))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.with(|r| r.try_fill_bytes(dest))
    }
}

/// Branches this run at virtual time `at`: from the first draw at or after `at`, every
/// named stream is keyed by the seed *and* `salt` (a nonzero salt), so the run is the
/// seed's own run up to `at` and a different one after it. Nothing else changes —
/// madsim's scheduler, buggify's choice of active sites — and nothing is spawned, so
/// the run before `at` is exactly the run without this branch. Several branch points
/// apply in time order (a branch of a branch). Call before the run draws anything
/// (simulation only: the explorer's "fork at the moment a rare state was reached").
pub fn branch_at(at: std::time::Duration, salt: u64) {
    state::with(|s| {
        s.branches.push(state::Branch {
            at,
            salt: salt.max(1),
            taken: false,
        });
        s.branches.sort_by_key(|b| b.at);
    });
}

/// Real world only: key every stream with `seed` from now on (default: `SEEDBANK_SEED`
/// from the environment, else a seed from the OS). Streams already drawn from restart.
#[cfg(not(madsim))]
pub fn set_real_world_seed(seed: u64) {
    state::with(|s| {
        s.seed = seed;
        s.streams.clear();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_stable() {
        let mut a = new_stream(7, "a");
        let mut a2 = new_stream(7, "a");
        let mut b = new_stream(7, "b");
        let mut a_other_seed = new_stream(8, "a");
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xs2: Vec<u64> = (0..4).map(|_| a2.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| a_other_seed.next_u64()).collect();
        assert_eq!(xs, xs2, "same seed and name must give the same stream");
        assert_ne!(xs, ys, "different names must give different streams");
        assert_ne!(xs, zs, "different seeds must give different streams");
    }

    #[test]
    fn a_salt_gives_other_streams_and_salt_zero_the_plain_ones() {
        let plain: Vec<u64> = (0..4).map(|_| new_stream(7, "a").next_u64()).collect();
        let zero: Vec<u64> = (0..4)
            .map(|_| new_salted_stream(7, "a", 0).next_u64())
            .collect();
        let salted: Vec<u64> = (0..4)
            .map(|_| new_salted_stream(7, "a", 9).next_u64())
            .collect();
        assert_eq!(plain, zero);
        assert_ne!(plain, salted);
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
