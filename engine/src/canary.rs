//! Canary bugs: deliberate, named defects the simulator must catch (DESIGN.md
//! "Canary bugs"). Compiled in only with the `canary` cargo feature, and then switched
//! on per run by name, so the default build cannot contain them.

/// A deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Canary {
    /// The WAL acknowledges a commit without fsyncing it.
    SkipWalFsync,
    /// Recovery keeps a torn WAL tail instead of cutting it off.
    KeepTornWalTail,
    /// Compaction deletes its input tables before the manifest edit that drops them is
    /// durable (a crash in between leaves a manifest naming missing tables).
    DeleteBeforeManifest,
}

#[cfg(feature = "canary")]
mod imp {
    use super::Canary;
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static ON: RefCell<BTreeSet<Canary>> = const { RefCell::new(BTreeSet::new()) };
    }

    /// Turns `canary` on for the simulated run on this thread.
    pub fn enable(canary: Canary) {
        ON.with(|s| s.borrow_mut().insert(canary));
    }

    /// Whether `canary` is on.
    pub fn enabled(canary: Canary) -> bool {
        ON.with(|s| s.borrow().contains(&canary))
    }
}

#[cfg(feature = "canary")]
pub use imp::{enable, enabled};

/// Whether `canary` is on: always false without the `canary` feature.
#[cfg(not(feature = "canary"))]
#[inline(always)]
pub fn enabled(_canary: Canary) -> bool {
    false
}
