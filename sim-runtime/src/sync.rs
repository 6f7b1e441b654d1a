//! Deterministic synchronisation: [`Signal`], a broadcast signal with a version (sim-net
//! uses it for endpoint shutdown and for waking readers held by a clogged link; the
//! engine for "the store made progress"); and [`lock`] / [`into_inner`], the workspace's
//! one poison-tolerant way to take a `std::sync::Mutex` (DECISIONS.md D67).
//!
//! It replaces `tokio::sync::watch`, whose sender wakes receivers through one of several
//! internal `Notify`s picked with tokio's per-thread RNG. That RNG is seeded from a
//! process-wide counter, so two runs of one seed in the same process woke tasks in
//! different orders (found by the seedbank harness's double-run check). A single
//! `Notify` wakes its waiters in registration order: deterministic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Locks `m`, ignoring std's poisoning: a panic while the lock was held does not make
/// every later caller panic too. Every caller in the workspace either holds no invariant
/// across a panic (maps of handles, test records) or tracks failure explicitly
/// (fail-stop state), so the data is usable either way; a panic still fails its own
/// task or test.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the value out of `m`, ignoring poisoning (see [`lock`]).
pub fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(PoisonError::into_inner)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_and_into_inner_survive_a_poisoned_mutex() {
        let m = Mutex::new(1);
        let caught = std::panic::catch_unwind(|| {
            let _held = m.lock().expect("not poisoned yet");
            panic!("poison it");
        });
        assert!(caught.is_err());
        assert!(m.is_poisoned(), "std would now refuse the lock");
        *lock(&m) += 1;
        assert_eq!(into_inner(m), 2);
    }
}
