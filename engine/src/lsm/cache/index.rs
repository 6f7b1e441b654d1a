//! The block cache's index: (table, block) → the cached entry, a small open-addressing
//! hash table (see the module doc of [`super`] for why not a `BTreeMap`, and why its
//! order can never be observed).

use super::CacheKey;

/// Key → value (the cache keeps the block itself in the slot, so a hit reads one
/// slot, not a slot and then a position elsewhere): open addressing with linear
/// probing over a power-of-two table at most half full, a fixed multiplicative hash
/// (no per-process seed), and backward-shift deletion (no tombstones, so probe chains
/// never rot). Slots depend only on the sequence of inserts and removes.
#[derive(Debug)]
pub(super) struct Index<V> {
    /// `None` is an empty slot.
    slots: Vec<Option<(CacheKey, V)>>,
    len: usize,
}

impl<V> Default for Index<V> {
    fn default() -> Self {
        Index {
            slots: Vec::new(),
            len: 0,
        }
    }
}

/// The hash the index and the cache's shard choice share.
pub(super) fn mix(key: CacheKey) -> u64 {
    (key.0 ^ u64::from(key.1).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<V> Index<V> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The home slot of `key` in a table of `n` (a power of two) slots.
    fn home(key: CacheKey, n: usize) -> usize {
        // The mask below needs a power of two (`grow` doubles from 16).
        debug_assert!(n.is_power_of_two());
        // The high bits of a Fibonacci hash are the well-mixed ones.
        (mix(key) >> (64 - n.trailing_zeros().max(1))) as usize & (n - 1)
    }

    /// The slot holding `key`, if any.
    fn slot_of(&self, key: CacheKey) -> Option<usize> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut i = Self::home(key, n);
        // At most half full: an empty slot ends every probe.
        loop {
            match &self.slots[i] {
                None => return None,
                Some((k, _)) if *k == key => return Some(i),
                Some(_) => i = (i + 1) & (n - 1),
            }
        }
    }

    pub(super) fn find(&self, key: CacheKey) -> Option<&V> {
        let i = self.slot_of(key)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    pub(super) fn find_mut(&mut self, key: CacheKey) -> Option<&mut V> {
        let i = self.slot_of(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Adds `key` (absent) with `value`.
    pub(super) fn insert(&mut self, key: CacheKey, value: V) {
        debug_assert!(self.slot_of(key).is_none());
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let n = self.slots.len();
        let mut i = Self::home(key, n);
        while self.slots[i].is_some() {
            i = (i + 1) & (n - 1);
        }
        self.slots[i] = Some((key, value));
        self.len += 1;
        // At most half full, so every probe meets an empty slot and ends.
        debug_assert!(self.len * 2 <= self.slots.len());
    }

    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, (0..n).map(|_| None).collect());
        self.len = 0;
        for (key, value) in old.into_iter().flatten() {
            self.insert(key, value);
        }
    }

    /// Removes `key`; its value, if it was there.
    pub(super) fn remove(&mut self, key: CacheKey) -> Option<V> {
        let n = self.slots.len();
        let i = self.slot_of(key)?;
        let (_, value) = self.slots[i].take()?;
        self.len -= 1;
        // Backward shift: pull later members of the probe run into the hole unless
        // their home lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = (i + 1) & (n - 1);
        while let Some((k, _)) = &self.slots[j] {
            let home = Self::home(*k, n);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
            j = (j + 1) & (n - 1);
        }
        // The backward shift left no copy behind and no other member stranded.
        debug_assert!(self.slot_of(key).is_none());
        Some(value)
    }

    /// Every key is reachable from its home slot, the count is right, the load bound
    /// holds.
    pub(super) fn verify(&self) -> Result<(), String> {
        let used = self.slots.iter().filter(|s| s.is_some()).count();
        if used != self.len || (self.len > 0 && self.len * 2 > self.slots.len()) {
            return Err(format!(
                "index holds {used} of {} slots, counts {}",
                self.slots.len(),
                self.len
            ));
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some((key, _)) = slot {
                if self.slot_of(*key) != Some(i) {
                    return Err(format!("index entry {key:?} unreachable from its home"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index against a `BTreeMap` model under seeded random inserts and removes,
    /// in a key space small enough that probe runs collide, wrap and shift.
    #[test]
    fn index_agrees_with_a_model() {
        let mut index: Index<usize> = Index::default();
        let mut model = std::collections::BTreeMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for step in 0..20_000usize {
            let key = (next(8), next(64) as u32);
            if next(3) == 0 {
                assert_eq!(index.remove(key), model.remove(&key), "step {step}");
            } else if let std::collections::btree_map::Entry::Vacant(v) = model.entry(key) {
                v.insert(step);
                index.insert(key, step);
            }
            assert_eq!(index.find(key), model.get(&key), "step {step}");
            if step % 97 == 0 {
                index.verify().unwrap();
                for (k, at) in &model {
                    assert_eq!(index.find(*k), Some(at));
                }
            }
        }
        assert_eq!(index.len(), model.len());
        assert!(model.len() > 100, "the model grew: {}", model.len());
    }
}
