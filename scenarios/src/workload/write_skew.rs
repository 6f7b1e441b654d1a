//! Doctors on call (Fekete's write skew, as a predicate read): each shift must keep at
//! least one doctor on call. A doctor goes off call only after a range scan of the
//! shift shows another on call; two doctors doing this concurrently under snapshot
//! isolation both go off. SSI must refuse one of them.
//!
//! A doctor off call has no row (going off call deletes it; going on call writes
//! `1`), so the workload also drives tombstones through flushes and compactions, and
//! the range scan that decides must see deletions as well as insertions (phantoms).

use super::{parse_int, BoxFut, HistoryCheck, KeyChooser, State, Workload};
use crate::check::history::MicroOp;
use crate::runner::store::{Tx, TxError};
use rand::Rng;

/// Key prefix of this workload.
pub const PREFIX: &str = "shift";
pub const SHIFTS: u64 = 2;
pub const DOCTORS: u64 = 3;

fn doctor(shift: u64, d: u64) -> String {
    format!("{PREFIX}{shift}:doc{d}")
}

#[derive(Debug, Default)]
pub struct WriteSkew;

impl Workload for WriteSkew {
    fn initial(&self) -> Vec<(String, String)> {
        (0..SHIFTS)
            .flat_map(|s| (0..DOCTORS).map(move |d| (doctor(s, d), "1".to_string())))
            .collect()
    }

    /// `[w me -1]`: toggle doctor `me` of a shift (the write is decided on execution).
    fn generate(&self, _keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        let s = rng.gen_range(0..SHIFTS);
        let d = rng.gen_range(0..DOCTORS);
        vec![MicroOp::Write(doctor(s, d), -1)]
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        Box::pin(async move {
            let Some(MicroOp::Write(me, _)) = ops.first() else {
                return Err(TxError::Failed("not a doctors transaction".into()));
            };
            let shift = me.split(':').next().unwrap_or_default().to_string();
            let rows = tx.scan(&format!("{shift}:"), &format!("{shift};")).await?;
            let mut done = Vec::new();
            let mut on_call = 0;
            let mut mine = 0;
            for (k, v) in rows {
                let x = parse_int(&v)?;
                on_call += x;
                if &k == me {
                    mine = x;
                }
                done.push(MicroOp::read_int(k, Some(x)));
            }
            if mine == 1 && on_call >= 2 {
                tx.delete(me).await?;
                done.push(MicroOp::Write(me.clone(), 0));
            } else if mine == 0 {
                tx.put(me, "1").await?;
                done.push(MicroOp::Write(me.clone(), 1));
            }
            Ok(done)
        })
    }

    fn check_state(&self, state: &State) -> Result<(), String> {
        if state.range(PREFIX.to_string()..).next().is_none() {
            return Ok(());
        }
        for s in 0..SHIFTS {
            let on: i64 = (0..DOCTORS)
                .map(|d| {
                    state
                        .get(&doctor(s, d))
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0)
                })
                .sum();
            if on < 1 {
                return Err(format!("shift {s} has no doctor on call"));
            }
        }
        Ok(())
    }

    fn deferred_invoke(&self) -> bool {
        true
    }

    fn unique_writes(&self) -> bool {
        false
    }

    fn history_check(&self) -> HistoryCheck {
        HistoryCheck::None
    }
}
