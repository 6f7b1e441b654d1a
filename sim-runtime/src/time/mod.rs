//! Time: virtual in simulation (with per-node clock offset and drift), tokio's in the
//! real world.
//!
//! A node's clock reads `global + offset + elapsed * drift_ppm / 1e6`, so a node with a
//! skewed clock sees timestamps off by `offset` and its timers run fast or slow by
//! `drift_ppm`. Code that relies on clocks agreeing across nodes (leases) must allow
//! for the skew the fault plan can inject.

use std::future::Future;

mod sleep;

pub use sleep::{Elapsed, Sleep};
pub use std::time::Duration;
pub use tokio::time::Instant;

/// The current node's clock.
#[allow(clippy::disallowed_methods)] // this is the one sanctioned clock read
pub fn now() -> Instant {
    let base = Instant::now();
    adjust_instant(base)
}

/// The current node's wall clock.
#[allow(clippy::disallowed_methods)] // this is the one sanctioned clock read
pub fn system_time() -> std::time::SystemTime {
    #[cfg(madsim)]
    {
        let t = madsim::time::TimeHandle::current().now_time();
        let (offset, drift) = clock_of_current_node();
        let skew = skew_ns(offset, drift);
        if skew >= 0 {
            t + Duration::from_nanos(skew.unsigned_abs())
        } else {
            t.checked_sub(Duration::from_nanos(skew.unsigned_abs()))
                .unwrap_or(std::time::UNIX_EPOCH)
        }
    }
    #[cfg(not(madsim))]
    {
        std::time::SystemTime::now()
    }
}

/// Virtual time elapsed since the run started (real world: since first call).
pub fn elapsed() -> Duration {
    #[cfg(madsim)]
    {
        madsim::time::TimeHandle::current().elapsed()
    }
    #[cfg(not(madsim))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        #[allow(clippy::disallowed_methods)]
        let start = *START.get_or_init(Instant::now);
        start.elapsed()
    }
}

/// Sleeps for `duration` as measured by the current node's (possibly drifting) clock.
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    crate::probe::point(format_args!("sleep {duration:?}"));
    Sleep::at_global(Some(global_now() + to_global(duration)))
}

/// Sleeps until the current node's clock reads `deadline` (completes at once if it
/// already does).
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    crate::probe::point(format_args!("sleep until {deadline:?}"));
    Sleep::at_global(node_deadline_to_global(deadline))
}

/// Runs `future` for at most `duration` of the current node's clock. The future is
/// polled first, so one that is ready when the deadline passes still counts.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let deadline = sleep(duration);
    tokio::select! {
        biased;
        out = future => Ok(out),
        () = deadline => Err(Elapsed),
    }
}

/// The global instant at which the current node's clock reads `deadline`; `None` if it
/// already does.
fn node_deadline_to_global(deadline: Instant) -> Option<Instant> {
    let now = now();
    (deadline > now).then(|| global_now() + to_global(deadline - now))
}

/// The run's global clock (simulation: madsim's virtual time, no node skew).
#[allow(clippy::disallowed_methods)] // the sanctioned clock read, unskewed
fn global_now() -> Instant {
    Instant::now()
}

#[cfg(madsim)]
fn clock_of_current_node() -> (i64, i64) {
    let node = crate::task::current_node_id();
    crate::state::with(|s| s.clocks.get(&node).copied().unwrap_or((0, 0)))
}

#[cfg(madsim)]
fn skew_ns(offset_ns: i64, drift_ppm: i64) -> i64 {
    let elapsed = i64::try_from(elapsed().as_nanos()).unwrap_or(i64::MAX);
    let drift = (i128::from(elapsed) * i128::from(drift_ppm) / 1_000_000) as i64;
    offset_ns.saturating_add(drift)
}

fn adjust_instant(base: Instant) -> Instant {
    #[cfg(madsim)]
    {
        let (offset, drift) = clock_of_current_node();
        if offset == 0 && drift == 0 {
            return base;
        }
        let skew = skew_ns(offset, drift);
        if skew >= 0 {
            base + Duration::from_nanos(skew.unsigned_abs())
        } else {
            base.checked_sub(Duration::from_nanos(skew.unsigned_abs()))
                .unwrap_or(base)
        }
    }
    #[cfg(not(madsim))]
    {
        base
    }
}

/// Converts a duration on the current node's clock to global virtual time.
fn to_global(duration: Duration) -> Duration {
    #[cfg(madsim)]
    {
        let (_, drift) = clock_of_current_node();
        if drift == 0 {
            return duration;
        }
        let nanos = duration.as_nanos() as i128;
        let global = nanos * 1_000_000 / (1_000_000 + i128::from(drift)).max(1);
        Duration::from_nanos(u64::try_from(global.max(0)).unwrap_or(u64::MAX))
    }
    #[cfg(not(madsim))]
    {
        duration
    }
}
