//! A self-contained checker of the client history (the full Elle/linearizability
//! checkers live in `scenarios`, which the engine cannot depend on).
//!
//! Every written value is unique, so a read names the write it saw. The replicated
//! database claims a serial order: each committed read-write transaction at its log
//! index, each read-only one at its snapshot index (after the writes at that index).
//! The checker *replays* that order on a plain map and demands:
//! - **Serializability**: every read and scan of every committed transaction returns
//!   exactly what the replay holds at its point (an aborted, failed or double-applied
//!   write would show up as a value the replay does not hold).
//! - **Distinct points**: no two read-write transactions claim one index.
//! - **Real time** (strictness): a transaction that completed before another began
//!   has an earlier (or, for read-only ones, equal) point.
//! - **Durability**: the final state read after the heal equals the replay of every
//!   acknowledged commit (nothing acknowledged lost, nothing unacknowledged present).
//! - **Definite outcomes**: clients retry until the outcome is known; after the heal
//!   none may stay unknown.
//!
//! The points come from the engine, but they are only trusted as far as the replay
//! confirms them: a wrong point makes some read disagree.

use std::collections::BTreeMap;
use std::time::Duration;

pub type Kv = BTreeMap<Vec<u8>, Vec<u8>>;
/// A range read: start, end (exclusive), the rows it returned.
pub type Scan = (Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Result {
    Committed {
        index: u64,
        read_only: bool,
    },
    Aborted,
    /// Nothing was proposed (begin or a read failed): no effect.
    Failed(String),
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct TxnRecord {
    pub client: usize,
    pub n: u64,
    pub invoke: Duration,
    pub complete: Duration,
    pub reads: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub scans: Vec<Scan>,
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub result: Result,
}

impl TxnRecord {
    fn name(&self) -> String {
        format!("c{}#{}", self.client, self.n)
    }

    /// `(point, read_only)` of a committed transaction.
    fn point(&self) -> Option<(u64, bool)> {
        match self.result {
            Result::Committed { index, read_only } => Some((index, read_only)),
            _ => None,
        }
    }
}

fn show(v: &Option<Vec<u8>>) -> String {
    v.as_ref().map_or("nil".into(), |v| {
        String::from_utf8_lossy(v).trim_end().to_string()
    })
}

/// Checks `history` (and the state read at the end, if the read succeeded).
pub fn check_history(history: &[TxnRecord], final_state: Option<&Kv>) -> Vec<String> {
    let mut bad = Vec::new();
    for t in history {
        if let Result::Unknown(why) = &t.result {
            bad.push(format!(
                "liveness: {} ended with an unknown outcome: {why}",
                t.name()
            ));
        }
    }
    let mut committed: Vec<&TxnRecord> = history.iter().filter(|t| t.point().is_some()).collect();
    // Read-write transactions at index i come before read-only ones at i.
    committed.sort_by_key(|t| t.point());
    let mut seen = BTreeMap::new();
    for t in committed.iter().filter(|t| t.point().is_some_and(|p| !p.1)) {
        let (i, _) = t.point().unwrap_or_default();
        if let Some(other) = seen.insert(i, t.name()) {
            bad.push(format!(
                "two commits at index {i}: {other} and {}",
                t.name()
            ));
        }
    }
    let mut state = Kv::new();
    for t in &committed {
        let (point, read_only) = t.point().unwrap_or_default();
        for (k, v) in &t.reads {
            let want = state.get(k).cloned();
            if *v != want {
                bad.push(format!(
                    "serializability: {} (at {point}{}) read {}={} but the serial order holds {}",
                    t.name(),
                    if read_only { ", read-only" } else { "" },
                    String::from_utf8_lossy(k),
                    show(v),
                    show(&want)
                ));
            }
        }
        for (start, end, rows) in &t.scans {
            let want: Vec<(Vec<u8>, Vec<u8>)> = state
                .range(start.clone()..end.clone())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if *rows != want {
                bad.push(format!(
                    "serializability: {} (at {point}) scanned {}..{} = {} rows but the serial order holds {}",
                    t.name(),
                    String::from_utf8_lossy(start),
                    String::from_utf8_lossy(end),
                    rows.len(),
                    want.len()
                ));
            }
        }
        for (k, v) in &t.writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
    // Real-time order: completed-before-invoked implies an earlier point.
    let mut by_complete: Vec<&TxnRecord> = committed.clone();
    by_complete.sort_by_key(|t| t.complete);
    for a in &by_complete {
        let (pa, ra) = a.point().unwrap_or_default();
        for b in committed.iter().filter(|b| b.invoke > a.complete) {
            let (pb, rb) = b.point().unwrap_or_default();
            let ok = if !ra && !rb { pa < pb } else { pa <= pb };
            if !ok {
                bad.push(format!(
                    "real time: {} completed at {:?} (point {pa}) before {} began at {:?} (point {pb})",
                    a.name(),
                    a.complete,
                    b.name(),
                    b.invoke
                ));
            }
        }
    }
    if let Some(fin) = final_state {
        if *fin != state {
            let diff: Vec<String> = state
                .keys()
                .chain(fin.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| state.get(*k) != fin.get(*k))
                .map(|k| {
                    format!(
                        "{}: expected {} found {}",
                        String::from_utf8_lossy(k),
                        show(&state.get(k).cloned()),
                        show(&fin.get(k).cloned())
                    )
                })
                .collect();
            bad.push(format!(
                "durability: final state differs: {}",
                diff.join("; ")
            ));
        }
    }
    bad.truncate(10);
    bad
}
