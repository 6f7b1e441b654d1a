//! List-append (Elle's favourite): each key holds a list; transactions append unique
//! elements and read whole lists. Version order is recoverable from the values read,
//! so the checker needs nothing from the engine's timestamps.

use super::{interpret, BoxFut, HistoryCheck, KeyChooser, State, Workload};
use crate::check::history::MicroOp;
use crate::runner::store::{Tx, TxError};
use rand::Rng;
use std::sync::atomic::{AtomicI64, Ordering};

/// Key prefix of this workload.
pub const PREFIX: &str = "la:";

/// Transactions of 1–4 micro-ops, half appends, half reads.
#[derive(Debug, Default)]
pub struct ListAppend {
    next: AtomicI64,
    pad: usize,
}

impl ListAppend {
    pub fn new() -> ListAppend {
        ListAppend::default()
    }

    /// Every stored list padded with `pad` filler bytes: records then span several
    /// 512 B sectors, so a power loss can tear them (a one-sector write cannot tear).
    pub fn padded(pad: usize) -> ListAppend {
        ListAppend {
            pad,
            ..ListAppend::default()
        }
    }
}

impl Workload for ListAppend {
    fn generate(&self, keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        let n = rng.gen_range(1..=4);
        (0..n)
            .map(|_| {
                let key = format!("{PREFIX}{}", keys.pick(rng));
                if rng.gen_bool(0.5) {
                    MicroOp::read(key)
                } else {
                    // Unique per run: the runner is single-threaded and deterministic.
                    MicroOp::Append(key, self.next.fetch_add(1, Ordering::Relaxed) + 1)
                }
            })
            .collect()
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        Box::pin(interpret(ops, tx, true, self.pad))
    }

    fn check_state(&self, state: &State) -> Result<(), String> {
        for (k, v) in state.range(PREFIX.to_string()..) {
            if !k.starts_with(PREFIX) {
                break;
            }
            let list = super::parse_list(v).map_err(|e| format!("{k}: {e}"))?;
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = list.iter().find(|x| !seen.insert(**x)) {
                return Err(format!("{k} holds element {dup} twice: {v}"));
            }
        }
        Ok(())
    }

    fn unique_writes(&self) -> bool {
        true
    }

    fn history_check(&self) -> HistoryCheck {
        HistoryCheck::ListAppend
    }
}
