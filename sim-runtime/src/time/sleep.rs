//! Timers that cost the simulator one registration each, and nothing once dropped.
//!
//! madsim's `Sleep` adds an entry to its timer heap every time it is polled, and its
//! heap cannot cancel: a `Sleep` polled on each of a task's 50 wake-ups leaves 50
//! entries, and a dropped one (a request's timeout after the answer came) still wakes
//! its task at the old deadline. Each stale wake-up is a poll of a task with nothing to
//! do — a trace event, a pass through its `select!`, often fresh timers. The simulator
//! spent a tenth of its time on that churn (D41).
//!
//! Here a [`Sleep`] registers once, through a relay that holds the task's current waker:
//! later polls only update the relay, and dropping (or [`Sleep::reset`]) empties it, so
//! the stale heap entry wakes nobody. The real world keeps tokio's timer wheel, which
//! cancels on drop already.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Instant;

/// The error of [`super::timeout`]: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// A future that completes at a deadline of global time (simulation: virtual time;
/// create it with [`super::sleep`] or [`super::sleep_until`], which convert from the
/// node's clock). `Unpin`, so a loop can keep one across iterations and poll
/// `&mut sleep`, then [`Sleep::reset`] it.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    inner: Inner,
}

#[cfg(madsim)]
struct Inner {
    /// `None`: completes at once (a deadline already past on the node's clock).
    timer: Option<madsim::time::Sleep>,
    /// Set once the timer is in madsim's heap.
    relay: Option<std::sync::Arc<relay::Relay>>,
}

#[cfg(not(madsim))]
struct Inner {
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Sleep {
    /// A sleep until `global` (global clock), or one already complete for `None`.
    pub(super) fn at_global(global: Option<Instant>) -> Sleep {
        #[cfg(madsim)]
        #[allow(clippy::disallowed_methods)] // the sanctioned virtual timer
        {
            Sleep {
                inner: Inner {
                    timer: global.map(madsim::time::sleep_until),
                    relay: None,
                },
            }
        }
        #[cfg(not(madsim))]
        #[allow(clippy::disallowed_methods)] // the sanctioned real timer
        {
            Sleep {
                inner: Inner {
                    timer: global.map(|at| Box::pin(tokio::time::sleep_until(at))),
                },
            }
        }
    }

    /// Re-arms this sleep for `deadline` on the current node's clock (as
    /// [`super::sleep_until`] would), dropping the old deadline's registration.
    pub fn reset(&mut self, deadline: Instant) {
        *self = Sleep::at_global(super::node_deadline_to_global(deadline));
    }

    /// True once the deadline has passed (an unarmed sleep: at once).
    pub fn is_elapsed(&self) -> bool {
        match &self.inner.timer {
            None => true,
            Some(t) => t.is_elapsed(),
        }
    }
}

#[cfg(madsim)]
impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &mut self.get_mut().inner;
        let Some(timer) = inner.timer.as_mut() else {
            return Poll::Ready(());
        };
        if timer.is_elapsed() {
            return Poll::Ready(());
        }
        match &inner.relay {
            // Still armed: the heap entry will wake whoever polled last.
            Some(relay) if relay.point_at(cx.waker()) => {}
            // First poll (or, defensively, a relay that already fired): register.
            _ => {
                let relay = relay::Relay::new(cx.waker());
                let waker = std::task::Waker::from(relay.clone());
                // Registers the heap entry; it wakes the relay, never the task directly.
                let _pending = Pin::new(timer).poll(&mut Context::from_waker(&waker));
                inner.relay = Some(relay);
            }
        }
        Poll::Pending
    }
}

#[cfg(not(madsim))]
impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().inner.timer.as_mut() {
            None => Poll::Ready(()),
            Some(t) => t.as_mut().poll(cx),
        }
    }
}

#[cfg(madsim)]
impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(relay) = &self.relay {
            relay.disarm();
        }
    }
}

#[cfg(madsim)]
mod relay {
    use std::sync::{Arc, Mutex};
    use std::task::{Wake, Waker};

    /// What madsim's timer heap wakes: the task's newest waker, or nobody once the
    /// sleep is gone.
    pub(super) struct Relay {
        waker: Mutex<Option<Waker>>,
    }

    impl Relay {
        pub(super) fn new(waker: &Waker) -> Arc<Relay> {
            Arc::new(Relay {
                waker: Mutex::new(Some(waker.clone())),
            })
        }

        /// Points an armed relay at `waker`; false if it has fired (or was disarmed).
        pub(super) fn point_at(&self, waker: &Waker) -> bool {
            let mut slot = crate::sync::lock(&self.waker);
            match slot.as_ref() {
                Some(w) if w.will_wake(waker) => true,
                Some(_) => {
                    *slot = Some(waker.clone());
                    true
                }
                None => false,
            }
        }

        pub(super) fn disarm(&self) {
            crate::sync::lock(&self.waker).take();
        }
    }

    impl Wake for Relay {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            let waker = crate::sync::lock(&self.waker).take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}
