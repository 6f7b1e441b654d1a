//! Deterministic synchronisation: [`Signal`], a broadcast signal with a version (sim-net
//! uses it for endpoint shutdown and for waking readers held by a clogged link; the
//! engine for "the store made progress").
//!
//! It replaces `tokio::sync::watch`, whose sender wakes receivers through one of several
//! internal `Notify`s picked with tokio's per-thread RNG. That RNG is seeded from a
//! process-wide counter, so two runs of one seed in the same process woke tasks in
//! different orders (found by the seedbank harness's double-run check). A single
//! `Notify` wakes its waiters in registration order: deterministic.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// A versioned broadcast signal. Use it instead of `tokio::sync::watch` (see the
/// module doc: watch is not deterministic across runs in one process).
#[derive(Debug, Default)]
pub struct Signal {
    version: AtomicU64,
    notify: Notify,
}

impl Signal {
    /// Bumps the version and wakes every waiter.
    pub fn raise(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// The current version (0 until the first [`Signal::raise`]).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Waits until the version differs from `seen` and returns it.
    pub async fn changed(&self, seen: u64) -> u64 {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a raise between the check and the await is
            // not missed.
            notified.as_mut().enable();
            let now = self.version();
            if now != seen {
                return now;
            }
            notified.await;
        }
    }
}
