//! Single-key registers: each transaction reads or writes one key, with unique values,
//! for the per-key linearizability checker.

use super::{interpret, BoxFut, HistoryCheck, KeyChooser, Workload};
use crate::check::history::MicroOp;
use crate::runner::store::{Tx, TxError};
use rand::Rng;
use std::sync::atomic::{AtomicI64, Ordering};

/// Key prefix of this workload.
pub const PREFIX: &str = "reg:";

#[derive(Debug, Default)]
pub struct Register {
    next: AtomicI64,
}

impl Register {
    pub fn new() -> Register {
        Register::default()
    }
}

impl Workload for Register {
    fn generate(&self, keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        let key = format!("{PREFIX}{}", keys.pick(rng));
        if rng.gen_bool(0.5) {
            vec![MicroOp::read(key)]
        } else {
            vec![MicroOp::Write(
                key,
                self.next.fetch_add(1, Ordering::Relaxed) + 1,
            )]
        }
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        Box::pin(interpret(ops, tx, false, 0))
    }

    fn unique_writes(&self) -> bool {
        true
    }

    fn history_check(&self) -> HistoryCheck {
        HistoryCheck::Register
    }
}
