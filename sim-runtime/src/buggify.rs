//! `buggify!`: FoundationDB-style fault injection points in the code under test.
//!
//! Each call site is *activated* (or not) once per run, decided by a hash of the run's
//! seed and the site's file, line and column — so whether a site is active does not
//! depend on the order sites are first reached. An active site then fires on each
//! evaluation with its probability (default 25%), drawn from the `buggify` stream.
//! In the real world every site is always false and costs one branch.
//!
//! ```
//! if sim_runtime::buggify!() {
//!     // take the rare path: a short read, an extra delay, an early flush...
//! }
//! if sim_runtime::buggify!(0.01) { /* rarer */ }
//! ```

use crate::{rng, state};
use rand::Rng;

/// Probability that a site is active in a run.
pub const SITE_ACTIVATION_PROBABILITY: f64 = 0.25;
/// Default firing probability of an active site.
pub const DEFAULT_FIRE_PROBABILITY: f64 = 0.25;

/// A buggify call site; created by the [`buggify!`](crate::buggify!) macro.
#[derive(Debug)]
pub struct Site {
    pub file: &'static str,
    pub line: u32,
    pub column: u32,
}

/// Evaluates a site: false in the real world or when buggify is off for the run.
pub fn evaluate(site: &'static Site, fire_probability: f64) -> bool {
    if !cfg!(madsim) {
        return false;
    }
    let active = state::with(|s| {
        if !s.buggify_enabled {
            return false;
        }
        let seed = s.seed;
        *s.buggify_sites
            .entry((site.file, site.line, site.column))
            .or_insert_with(|| site_active(seed, site))
    });
    if !active {
        return false;
    }
    let fired = rng::stream("buggify").gen_bool(fire_probability.clamp(0.0, 1.0));
    if fired {
        crate::trace::record_at(
            crate::trace::EventKind::Fault,
            format!("buggify fired at {}:{}", site.file, site.line),
            site.file,
            site.line,
        );
        crate::state::with(|s| *s.faults.entry("buggify".to_string()).or_insert(0) += 1);
    }
    fired
}

fn site_active(seed: u64, site: &Site) -> bool {
    let key = format!("{seed}:{}:{}:{}", site.file, site.line, site.column);
    let h = rng::stable_hash(key.as_bytes());
    // Top 53 bits as a uniform fraction.
    ((h >> 11) as f64 / (1u64 << 53) as f64) < SITE_ACTIVATION_PROBABILITY
}

/// Turns buggify on or off for the rest of this run (simulation default: on).
pub fn set_enabled(enabled: bool) {
    state::with(|s| s.buggify_enabled = enabled && cfg!(madsim));
}

/// Whether buggify is on for this run.
pub fn is_enabled() -> bool {
    state::with(|s| s.buggify_enabled)
}

/// `buggify!()` or `buggify!(probability)`: true when this call site is active in this
/// run and fires. Always false in the real world.
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::buggify!($crate::buggify::DEFAULT_FIRE_PROBABILITY)
    };
    ($prob:expr) => {{
        static SITE: $crate::buggify::Site = $crate::buggify::Site {
            file: file!(),
            line: line!(),
            column: column!(),
        };
        $crate::buggify::evaluate(&SITE, $prob)
    }};
}
