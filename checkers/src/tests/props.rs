//! Generated histories that are valid by construction: concurrent clients whose
//! transactions take effect one at a time against a BTreeMap model (at an instant
//! between invocation and completion), with failed and indeterminate outcomes. Elle
//! must find them serializable and the register checker linearizable.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::elle;
use crate::history::{Handle, History, MicroOp, ReadValue};
use crate::linear::{self, Options};

const PROCESSES: u64 = 4;

/// One step of the generated run. `pick` chooses among the processes the step applies
/// to, so almost every step does something.
#[derive(Debug, Clone)]
enum Action {
    /// An idle process invokes micro-ops (kind, key); kind 0 reads, 1 writes/appends,
    /// 2 is a compare-and-set and 3 a delete (registers only; both append for lists).
    Invoke { pick: u8, ops: Vec<(u8, u8)> },
    /// An invoked operation takes effect now, atomically.
    Execute { pick: u8 },
    /// A process hears back; `fate` picks ok/fail/info among the truthful ones.
    Complete { pick: u8, fate: u8 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (any::<u8>(), prop::collection::vec((0..4u8, 0..3u8), 1..4))
            .prop_map(|(pick, ops)| Action::Invoke { pick, ops }),
        any::<u8>().prop_map(|pick| Action::Execute { pick }),
        (any::<u8>(), any::<u8>()).prop_map(|(pick, fate)| Action::Complete { pick, fate }),
    ]
}

/// The `pick`-th of `candidates` (wrapping), if any.
fn choose(candidates: Vec<u64>, pick: u8) -> Option<u64> {
    (!candidates.is_empty()).then(|| candidates[usize::from(pick) % candidates.len()])
}

struct Pending {
    handle: Handle,
    ops: Vec<MicroOp>,
    /// After it took effect: the micro-ops with their results, and whether it changed
    /// anything (a cas that did not match is a no-op).
    done: Option<(Vec<MicroOp>, bool)>,
}

/// Runs `actions`; `execute` applies a transaction to the model and returns its
/// completed micro-ops and whether it succeeded.
fn run(
    actions: &[Action],
    mut invoke: impl FnMut(&[(u8, u8)]) -> Vec<MicroOp>,
    mut execute: impl FnMut(&[MicroOp]) -> (Vec<MicroOp>, bool),
) -> History {
    let mut h = History::new();
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    for a in actions {
        match a {
            Action::Invoke { pick, ops } => {
                let idle = (0..PROCESSES)
                    .filter(|p| !pending.contains_key(p))
                    .collect();
                let Some(process) = choose(idle, *pick) else {
                    continue;
                };
                let ops = invoke(ops);
                let handle = h.invoke(process, ops.clone()).expect("an idle process");
                pending.insert(
                    process,
                    Pending {
                        handle,
                        ops,
                        done: None,
                    },
                );
            }
            Action::Execute { pick } => {
                let waiting = pending
                    .iter()
                    .filter(|(_, p)| p.done.is_none())
                    .map(|(&k, _)| k)
                    .collect();
                let Some(process) = choose(waiting, *pick) else {
                    continue;
                };
                let p = pending.get_mut(&process).expect("chosen among pending");
                p.done = Some(execute(&p.ops));
            }
            Action::Complete { pick, fate } => {
                let Some(process) = choose(pending.keys().copied().collect(), *pick) else {
                    continue;
                };
                let p = pending.remove(&process).expect("chosen among pending");
                let recorded = match (p.done, fate % 5) {
                    (_, 0) => h.info(p.handle),
                    (Some((done, true)), _) => h.ok(p.handle, done),
                    // Never took effect, or a cas that did not match: no effect.
                    _ => h.fail(p.handle),
                };
                recorded.expect("a truthful completion");
            }
        }
    }
    h
}

fn list_append(actions: &[Action]) -> History {
    let mut next = 0i64;
    let mut model: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let invoke = |ops: &[(u8, u8)]| {
        ops.iter()
            .map(|&(kind, k)| {
                let k = format!("k{k}");
                if kind == 0 {
                    MicroOp::read(k)
                } else {
                    next += 1;
                    MicroOp::append(k, next)
                }
            })
            .collect()
    };
    let execute = |ops: &[MicroOp]| {
        let done = ops
            .iter()
            .map(|op| match op {
                MicroOp::Append(k, v) => {
                    model.entry(k.clone()).or_default().push(*v);
                    op.clone()
                }
                MicroOp::Read(k, _) => {
                    MicroOp::read_list(k.clone(), model.get(k).cloned().unwrap_or_default())
                }
                other => other.clone(),
            })
            .collect();
        (done, true)
    };
    run(actions, invoke, execute)
}

fn registers(actions: &[Action]) -> History {
    let mut next = 0i64;
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    let mut invoke_model = BTreeMap::new();
    let invoke = |ops: &[(u8, u8)]| {
        // One micro-op per operation; the cas expects a value the key has held.
        let (kind, k) = ops[0];
        let k = format!("r{k}");
        next += 1;
        let op = match kind {
            0 => MicroOp::read(k.clone()),
            1 => MicroOp::write(k.clone(), next),
            3 => {
                invoke_model.remove(&k);
                return vec![MicroOp::delete(k)];
            }
            _ => MicroOp::cas(k.clone(), *invoke_model.get(&k).unwrap_or(&0), next),
        };
        if kind != 0 {
            invoke_model.insert(k, next);
        }
        vec![op]
    };
    let execute = |ops: &[MicroOp]| {
        let mut ok = true;
        let done = ops
            .iter()
            .map(|op| match op {
                MicroOp::Write(k, v) => {
                    model.insert(k.clone(), *v);
                    op.clone()
                }
                MicroOp::Cas(k, old, new) => {
                    ok = model.get(k) == Some(old);
                    if ok {
                        model.insert(k.clone(), *new);
                    }
                    op.clone()
                }
                MicroOp::Read(k, _) => {
                    MicroOp::Read(k.clone(), model.get(k).copied().map(ReadValue::Int))
                }
                MicroOp::Delete(k) => {
                    model.remove(k);
                    op.clone()
                }
                MicroOp::Append(..) => op.clone(),
            })
            .collect();
        (done, ok)
    };
    run(actions, invoke, execute)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn serial_list_append_histories_are_valid(actions in prop::collection::vec(action(), 0..150)) {
        let h = list_append(&actions);
        let report = elle::check(&h);
        prop_assert!(report.valid, "{}\n{}", report, h.to_jsonl());
        // And the history survives its own JSON.
        let back = History::from_jsonl(&h.to_jsonl()).expect("parses");
        prop_assert_eq!(back.ops(), h.ops());
    }

    #[test]
    fn serial_register_histories_are_linearizable(actions in prop::collection::vec(action(), 0..150)) {
        let h = registers(&actions);
        let report = linear::check(&h, &Options::default()).expect("registers");
        prop_assert_eq!(report.valid(), Some(true), "{}\n{}", report, h.to_jsonl());
    }
}
