//! Canary bugs: deliberate, named defects the simulator must catch. Compiled in only
//! with the `canary` cargo feature, and then switched on per run by name, so the
//! default build cannot contain them. The contract: a meta-test sees each one caught
//! within a stated number of seeds (`scenarios/tests/canaries.rs`, and this crate's
//! `tests/crash.rs` and `tests/replicated.rs`); a harness that cannot fail is worse
//! than none.

/// A deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Canary {
    /// The WAL acknowledges a commit without fsyncing it.
    SkipWalFsync,
    /// Recovery keeps a torn WAL tail instead of cutting it off, and the log goes on in
    /// that segment (after the garbage) instead of restarting in a fresh one.
    KeepTornWalTail,
    /// Compaction deletes its input tables before the manifest edit that drops them is
    /// durable (a crash in between leaves a manifest naming missing tables).
    DeleteBeforeManifest,
    /// A Raft leader advances its commit index as soon as it appends a proposal, without
    /// waiting for a quorum to store it (breaks §5.4 of the Raft paper: a later leader
    /// may lack the "committed" entry, and two nodes apply different entries).
    RaftCommitWithoutQuorum,
    /// SSI's out-conflict check is skipped: a reader does not look for concurrent
    /// writers that committed before it read (the classic SSI bug: write skew passes
    /// when the writer commits before the reader reads). Maps to
    /// [`crate::mvcc::SsiCanary::SkipReaderSideCheck`] in [`crate::Db::open`].
    SsiSkipOutConflictCheck,
    /// The replicated state machine skips its deduplication check: a commit retried
    /// with the same (client, seq) after an unknown outcome is validated and applied
    /// again (see [`crate::replicated::state`]).
    ApplyRetryTwice,
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
