//! Per-run counters of injected faults, by kind.
//!
//! sim-fs, sim-net, the node operations and the scenario runner count every fault they
//! inject here, so a sweep can report how often each kind fired and a fault that never
//! fires is visible. Counting also records a `Fault` event in the trace.

use crate::state;
use std::collections::BTreeMap;

/// Counts one injected fault of `kind` (e.g. `"fs.torn_write"`, `"net.drop"`).
#[track_caller]
pub fn count(kind: &str) {
    count_n(kind, 1);
}

/// Counts `n` injected faults of `kind`, recording one `Fault` trace event at the
/// caller's location.
#[track_caller]
pub fn count_n(kind: &str, n: u64) {
    if n == 0 {
        return;
    }
    crate::trace::record(crate::trace::EventKind::Fault, format_args!("{kind} x{n}"));
    state::with(|s| {
        let c = s.faults.entry(kind.to_string()).or_insert(0);
        *c = c.saturating_add(n);
    });
}

/// The counters of this run so far, ordered by kind.
pub fn snapshot() -> BTreeMap<String, u64> {
    state::with(|s| s.faults.clone())
}

/// The count of one kind so far.
pub fn get(kind: &str) -> u64 {
    state::with(|s| s.faults.get(kind).copied().unwrap_or(0))
}
