//! Network faults of the simulated world (exists only under `--cfg madsim`).
//!
//! The transport applies these itself, on top of madsim's network, when a data frame
//! arrives: the receiving endpoint looks at the sender's IP (its connection's peer
//! address) and its own IP and decides, in this order:
//!
//! 1. **clog** ([`clog`]): while the link `src → dst` is clogged, the connection's
//!    reader holds the frame (and so every later frame on that connection, as a
//!    stalled TCP stream would) until [`unclog`]/[`heal`]; then it goes on to step 2.
//! 2. **partition** ([`partition`], [`partition_one_way`]): a frame on a blocked link
//!    is dropped (`net.partition_drop`). Connections stay up; handshakes are not
//!    subject to partitions, so a one-way partition blocks exactly one direction.
//! 3. the run's [`NetFaultConfig`] ([`set_config`]), each drawn from
//!    `sim_runtime::rng::stream("net")`: **reset** (the frame is lost and the
//!    connection closed; the sender reconnects), **drop**, **dup**licate, **delay**
//!    (delivered later by a task sleeping in virtual time), **reorder** (held until
//!    the next message on the connection has been delivered, at most
//!    `reorder_window`).
//!
//! Every injected fault is counted with `sim_runtime::faults::count("net.<kind>")`
//! (`net.clog`, `net.partition_drop`, `net.reset`, `net.drop`, `net.dup`, `net.delay`,
//! `net.reorder`) and recorded in the run trace.
//!
//! State is per run: it lives in a thread-local, and every simulated run starts on a
//! fresh thread. Code that runs two madsim runtimes on one thread calls [`reset`]
//! between them.

use crate::fault_config::NetFaultConfig;
use rand::Rng;
use sim_runtime::sync::Signal;
use sim_runtime::trace::{self, EventKind};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

struct FaultState {
    config: NetFaultConfig,
    /// Directed links (from, to) on which frames are dropped.
    blocked: BTreeSet<(IpAddr, IpAddr)>,
    /// Directed links (from, to) on which frames are held.
    clogged: BTreeSet<(IpAddr, IpAddr)>,
    /// Bumped whenever `clogged` shrinks, to wake held readers.
    changed: Arc<Signal>,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            config: NetFaultConfig::default(),
            blocked: BTreeSet::new(),
            clogged: BTreeSet::new(),
            changed: Arc::new(Signal::default()),
        }
    }
}

thread_local! {
    static STATE: RefCell<FaultState> = RefCell::new(FaultState::default());
}

fn with<R>(f: impl FnOnce(&mut FaultState) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

fn wake_held(s: &FaultState) {
    s.changed.raise();
}

fn pairs<'a>(from: &'a [IpAddr], to: &'a [IpAddr]) -> impl Iterator<Item = (IpAddr, IpAddr)> + 'a {
    from.iter()
        .flat_map(move |a| to.iter().map(move |b| (*a, *b)))
        .filter(|(a, b)| a != b)
}

/// Sets the probabilistic faults for the rest of this run.
#[track_caller]
pub fn set_config(config: NetFaultConfig) {
    trace::record(EventKind::Fault, format_args!("net faults {config:?}"));
    with(|s| s.config = config);
}

/// The probabilistic faults in force.
pub fn config() -> NetFaultConfig {
    with(|s| s.config.clone())
}

/// Symmetric partition: no frame from any address of `a` reaches any address of `b`,
/// nor the other way, until [`heal`].
#[track_caller]
pub fn partition(a: &[IpAddr], b: &[IpAddr]) {
    trace::record(
        EventKind::Fault,
        format_args!("net partition {a:?} | {b:?}"),
    );
    with(|s| {
        s.blocked.extend(pairs(a, b));
        s.blocked.extend(pairs(b, a));
    });
}

/// One-way partition: frames from `from` to `to` are dropped; the reverse direction is
/// untouched.
#[track_caller]
pub fn partition_one_way(from: &[IpAddr], to: &[IpAddr]) {
    trace::record(
        EventKind::Fault,
        format!("net partition {from:?} -> {to:?}"),
    );
    with(|s| s.blocked.extend(pairs(from, to)));
}

/// Whether frames from `from` to `to` are dropped by a partition.
pub fn is_partitioned(from: IpAddr, to: IpAddr) -> bool {
    with(|s| s.blocked.contains(&(from, to)))
}

/// Clogs the links from each of `from` to each of `to`: frames are held (not lost)
/// until [`unclog`] or [`heal`].
#[track_caller]
pub fn clog(from: &[IpAddr], to: &[IpAddr]) {
    trace::record(
        EventKind::Fault,
        format_args!("net clog {from:?} -> {to:?}"),
    );
    with(|s| s.clogged.extend(pairs(from, to)));
}

/// Unclogs the links from each of `from` to each of `to`; held frames flow again.
#[track_caller]
pub fn unclog(from: &[IpAddr], to: &[IpAddr]) {
    trace::record(
        EventKind::Fault,
        format_args!("net unclog {from:?} -> {to:?}"),
    );
    with(|s| {
        for p in pairs(from, to) {
            s.clogged.remove(&p);
        }
        wake_held(s);
    });
}

/// Whether the link from `from` to `to` is clogged.
pub fn is_clogged(from: IpAddr, to: IpAddr) -> bool {
    with(|s| s.clogged.contains(&(from, to)))
}

/// Removes every partition and clog (the probabilistic faults stay).
#[track_caller]
pub fn heal() {
    trace::record(EventKind::Fault, "net heal");
    with(|s| {
        s.blocked.clear();
        s.clogged.clear();
        wake_held(s);
    });
}

/// Back to no faults at all: no partitions, no clogs, [`NetFaultConfig::none`].
pub fn reset() {
    with(|s| {
        s.blocked.clear();
        s.clogged.clear();
        s.config = NetFaultConfig::none();
        wake_held(s);
    });
}

/// What happens to one received data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Dropped by a partition.
    PartitionDrop,
    /// The connection is reset; the frame is lost.
    Reset,
    /// Dropped at random.
    Drop,
    /// Delivered, possibly twice, later, or held for reordering.
    Deliver {
        dup: bool,
        delay: Option<Duration>,
        reorder: Option<Duration>,
    },
}

/// Waits while the link `src → dst` is clogged. Returns whether the frame was held
/// (counted once as `net.clog`).
pub(crate) async fn wait_unclogged(src: IpAddr, dst: IpAddr) -> bool {
    let signal = with(|s| s.changed.clone());
    let mut seen = signal.version();
    if !is_clogged(src, dst) {
        return false;
    }
    sim_runtime::faults::count("net.clog");
    while is_clogged(src, dst) {
        seen = signal.changed(seen).await;
    }
    true
}

/// Decides the fate of one data frame on the link `src → dst`, counting the faults it
/// injects (except `net.reorder`, counted by the reader when it really holds a frame
/// back). Draws only for the fault kinds whose rate is non-zero.
pub(crate) fn decide(src: IpAddr, dst: IpAddr) -> Verdict {
    if is_partitioned(src, dst) {
        sim_runtime::faults::count("net.partition_drop");
        return Verdict::PartitionDrop;
    }
    let config = config();
    if config.is_none() {
        return Verdict::Deliver {
            dup: false,
            delay: None,
            reorder: None,
        };
    }
    let mut rng = sim_runtime::rng::stream("net");
    let mut fires = |rate: f64| rate > 0.0 && rng.gen_bool(rate.min(1.0));
    if fires(config.reset_rate) {
        sim_runtime::faults::count("net.reset");
        return Verdict::Reset;
    }
    if fires(config.drop_rate) {
        sim_runtime::faults::count("net.drop");
        return Verdict::Drop;
    }
    let dup = fires(config.dup_rate);
    let delayed = fires(config.delay_rate);
    let reordered = !delayed && fires(config.reorder_rate);
    let delay = delayed.then(|| {
        let (lo, hi) = (config.delay_min, config.delay_max.max(config.delay_min));
        let nanos = rng.gen_range(lo.as_nanos()..=hi.as_nanos());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    });
    if dup {
        sim_runtime::faults::count("net.dup");
    }
    if delay.is_some() {
        sim_runtime::faults::count("net.delay");
    }
    Verdict::Deliver {
        dup,
        delay,
        reorder: reordered.then_some(config.reorder_window),
    }
}
