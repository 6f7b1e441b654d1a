//! Tests of the checkers: bad histories they must reject with the right anomaly, good
//! ones they must accept, and generated serial histories that are valid by
//! construction.

mod durability;
mod elle;
mod history;
mod linear;
mod props;
mod serial;

use super::history::{History, MicroOp};

/// The invocation of `ops`: reads with their results blanked.
fn invocation(ops: &[MicroOp]) -> Vec<MicroOp> {
    ops.iter()
        .map(|op| match op {
            MicroOp::Read(k, _) => MicroOp::Read(k.clone(), None),
            other => other.clone(),
        })
        .collect()
}

fn next_index(h: &History) -> u64 {
    h.ops().last().map_or(0, |o| o.index + 1)
}

/// Records a whole `ok` transaction (invoke, then complete); returns its id.
fn ok(h: &mut History, process: u64, ops: Vec<MicroOp>) -> u64 {
    let id = next_index(h);
    let handle = h
        .invoke(process, invocation(&ops))
        .expect("an idle process");
    h.ok(handle, ops).expect("a matching completion");
    id
}

/// Records a whole `fail` transaction; returns its id.
fn fail(h: &mut History, process: u64, ops: Vec<MicroOp>) -> u64 {
    let id = next_index(h);
    let handle = h
        .invoke(process, invocation(&ops))
        .expect("an idle process");
    h.fail(handle).expect("an outstanding invocation");
    id
}

/// Records a whole `info` transaction; returns its id.
fn info(h: &mut History, process: u64, ops: Vec<MicroOp>) -> u64 {
    let id = next_index(h);
    let handle = h
        .invoke(process, invocation(&ops))
        .expect("an idle process");
    h.info(handle).expect("an outstanding invocation");
    id
}

fn append(k: &str, v: i64) -> MicroOp {
    MicroOp::append(k, v)
}

fn read(k: &str, l: &[i64]) -> MicroOp {
    MicroOp::read_list(k, l.to_vec())
}
