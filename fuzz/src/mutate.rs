//! The mutations (see the crate doc).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Largest input a mutation produces.
pub const MAX_INPUT: usize = 64 * 1024;

/// One to four mutations of `input`, `other` a second corpus input for splices.
pub fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        step(rng, &mut out, other);
    }
    out.truncate(MAX_INPUT);
    out
}

fn step(rng: &mut ChaCha8Rng, out: &mut Vec<u8>, other: &[u8]) {
    let len = out.len();
    match rng.gen_range(0..9) {
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            out[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            out[i] = *[0u8, 1, 0x7f, 0x80, 0xff]
                .get(rng.gen_range(0..5))
                .unwrap_or(&0);
        }
        2 => {
            let i = rng.gen_range(0..=len);
            let n = rng.gen_range(1..=8);
            for _ in 0..n {
                out.insert(i, rng.gen());
            }
        }
        3 if len > 0 => {
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(16));
            out.drain(i..i + n);
        }
        4 if len > 0 => {
            // Duplicate a range (repeats a record, a field, an entry).
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(64));
            let copy = out[i..i + n].to_vec();
            let at = rng.gen_range(0..=len);
            out.splice(at..at, copy);
        }
        5 if !other.is_empty() => {
            // Splice: our head, the other input's tail.
            let cut = rng.gen_range(0..=len);
            let from = rng.gen_range(0..other.len());
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        6 if len >= 4 => {
            // A little-endian u32 length prefix rewritten.
            let i = rng.gen_range(0..=len - 4);
            let old = u32::from_le_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]);
            let new = match rng.gen_range(0..5) {
                0 => 0,
                1 => 1,
                2 => old.wrapping_add(rng.gen_range(1..16)),
                3 => old.wrapping_sub(rng.gen_range(1..16)),
                _ => u32::MAX - rng.gen_range(0..16),
            };
            out[i..i + 4].copy_from_slice(&new.to_le_bytes());
        }
        7 if len > 0 => {
            // A varint (postcard) rewritten as a huge one.
            let i = rng.gen_range(0..len);
            let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
            let n = rng.gen_range(1..=huge.len());
            out.splice(i..(i + 1).min(len), huge[..n].iter().copied());
        }
        _ => {
            let n = rng.gen_range(0..=8);
            for _ in 0..n {
                out.push(rng.gen());
            }
        }
    }
}
