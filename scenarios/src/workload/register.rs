//! Single-key registers for the per-key linearizability checker: each transaction
//! touches one key, with unique written values.
//!
//! Beyond blind reads and writes, a transaction may delete the key (the register reads
//! `nil` again), or write or delete it and then read it back in the same transaction
//! (its own write must win over the snapshot). Every other read goes through a range
//! scan of just that key instead of a point lookup. Deletes put tombstones through
//! flushes and compactions (a tombstone dropped too early brings an old value back,
//! which a later read shows), and the scans put the range path — memtable and table
//! iterators, the merge of a transaction's own writes — under the same checker as
//! point reads.

use super::{interpret, parse_int, BoxFut, HistoryCheck, KeyChooser, Workload};
use crate::check::history::MicroOp;
use crate::runner::store::{Tx, TxError};
use rand::Rng;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Key prefix of this workload.
pub const PREFIX: &str = "reg:";

#[derive(Debug, Default)]
pub struct Register {
    next: AtomicI64,
    /// Reads executed so far: every other one is a range scan.
    reads: AtomicU64,
}

impl Register {
    pub fn new() -> Register {
        Register::default()
    }

    fn value(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Reads `key` by a point lookup or, every other read, by a scan of `[key,
    /// key + "\0")` (which holds `key` alone).
    async fn read(&self, tx: &mut Tx, key: &str) -> Result<Option<i64>, TxError> {
        let raw = if self.reads.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
            tx.get(key).await?
        } else {
            let end = format!("{key}\0");
            let rows = tx.scan(key, &end).await?;
            match rows.as_slice() {
                [] => None,
                [(k, v)] if k == key => Some(v.clone()),
                other => {
                    return Err(TxError::Failed(format!(
                        "a scan of [{key:?}, {end:?}) returned {other:?}"
                    )))
                }
            }
        };
        raw.map(|v| parse_int(&v)).transpose()
    }
}

impl Workload for Register {
    fn generate(&self, keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        let key = format!("{PREFIX}{}", keys.pick(rng));
        match rng.gen_range(0..20) {
            0..=8 => vec![MicroOp::read(key)],
            9..=14 => vec![MicroOp::write(key, self.value())],
            15..=16 => vec![MicroOp::delete(key)],
            17..=18 => vec![
                MicroOp::write(key.clone(), self.value()),
                MicroOp::read(key),
            ],
            _ => vec![MicroOp::delete(key.clone()), MicroOp::read(key)],
        }
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        Box::pin(async move {
            let mut done = Vec::with_capacity(ops.len());
            for op in ops {
                match op {
                    MicroOp::Read(k, _) => {
                        let v = self.read(tx, &k).await?;
                        done.push(MicroOp::read_int(k, v));
                    }
                    // Writes and deletes the standard way.
                    other => done.extend(interpret(vec![other], tx, false, 0).await?),
                }
            }
            Ok(done)
        })
    }

    fn unique_writes(&self) -> bool {
        true
    }

    fn history_check(&self) -> HistoryCheck {
        HistoryCheck::Register
    }
}
