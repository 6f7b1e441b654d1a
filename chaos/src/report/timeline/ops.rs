//! The client history as the page draws it: each invocation paired with its
//! completion, processes packed into one row per client, micro-ops as short text.

use super::RunView;
use checkers::history::{json, MicroOp, OpKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// A client operation from invocation to completion.
#[derive(Debug, Serialize)]
pub struct Operation {
    /// The invocation's history index (`T<id>` in reports).
    pub id: u64,
    /// The history process.
    pub process: u64,
    /// The row it is drawn in (processes packed so that rows ≈ clients).
    pub row: usize,
    /// Invocation time (virtual ns).
    pub t0: u64,
    /// Completion time (None: never completed).
    pub t1: Option<u64>,
    /// `ok`, `fail` (refused) or `info` (unknown outcome).
    pub outcome: &'static str,
    /// Keys it touches.
    pub keys: Vec<String>,
    /// Its micro-ops, short.
    pub text: String,
}

/// The client operations, each invocation paired with its completion, processes packed
/// into rows (first fit on their lifetimes: a client's successive processes share one).
pub(super) fn operations(out: &RunView) -> (Vec<Operation>, usize) {
    let mut open: BTreeMap<u64, (u64, u64, Vec<MicroOp>)> = BTreeMap::new();
    let mut ops = Vec::new();
    for op in out.history.ops() {
        let t = op.time_ns.unwrap_or(0);
        match op.kind {
            OpKind::Invoke => {
                open.insert(op.process, (op.index, t, op.value.clone()));
            }
            kind => {
                let Some((id, t0, invoked)) = open.remove(&op.process) else {
                    continue;
                };
                let value = if kind == OpKind::Ok {
                    &op.value
                } else {
                    &invoked
                };
                ops.push(op_of(id, op.process, t0, Some(t), kind, value));
            }
        }
    }
    for (process, (id, t0, invoked)) in open {
        ops.push(op_of(id, process, t0, None, OpKind::Info, &invoked));
    }
    ops.sort_by_key(|o| o.id);
    // Pack processes into rows by lifetime.
    let mut life: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for o in &ops {
        let end = o.t1.unwrap_or(u64::MAX);
        let l = life.entry(o.process).or_insert((o.t0, end));
        l.0 = l.0.min(o.t0);
        l.1 = l.1.max(end);
    }
    let mut by_start: Vec<(u64, u64, u64)> = life.iter().map(|(p, (a, b))| (*a, *b, *p)).collect();
    by_start.sort_unstable();
    let mut row_end: Vec<u64> = Vec::new();
    let mut row_of: BTreeMap<u64, usize> = BTreeMap::new();
    for (start, end, p) in by_start {
        let row = match row_end.iter().position(|e| *e < start) {
            Some(r) => r,
            None => {
                row_end.push(0);
                row_end.len() - 1
            }
        };
        row_end[row] = end;
        row_of.insert(p, row);
    }
    for o in &mut ops {
        o.row = row_of.get(&o.process).copied().unwrap_or(0);
    }
    (ops, row_end.len())
}

fn op_of(
    id: u64,
    process: u64,
    t0: u64,
    t1: Option<u64>,
    kind: OpKind,
    value: &[MicroOp],
) -> Operation {
    let mut keys: Vec<String> = value.iter().map(|m| m.key().to_string()).collect();
    keys.sort();
    keys.dedup();
    let text: Vec<String> = value.iter().map(micro_text).collect();
    Operation {
        id,
        process,
        row: 0,
        t0,
        t1,
        outcome: match kind {
            OpKind::Ok => "ok",
            OpKind::Fail => "fail",
            _ => "info",
        },
        keys,
        text: text.join(" "),
    }
}

/// A micro-op as the page shows it: `w reg:3 85`, `append la:3 56`, `r la:3 [1 2]`;
/// a value padded to a kilobyte is cut.
fn micro_text(op: &MicroOp) -> String {
    let parts = match serde_json::to_value(op) {
        Ok(serde_json::Value::Array(parts)) => parts,
        _ => return json(op),
    };
    let words: Vec<String> = parts
        .iter()
        .map(|p| match p {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                format!("[{}]", items.join(" "))
            }
            other => other.to_string(),
        })
        .collect();
    let text = words.join(" ");
    const SHOWN: usize = 60;
    if text.chars().count() > SHOWN {
        let head: String = text.chars().take(SHOWN).collect();
        format!("{head}…")
    } else {
        text
    }
}
