//! Bank transfers: money moves between accounts and is never created or destroyed.
//! Every full state, and every snapshot a read-all transaction takes, must hold the
//! same total, and no balance goes negative (transfers check the balance first, so an
//! overdraft means two transfers both saw the same money: write skew or a lost update).

use super::{parse_int, BoxFut, HistoryCheck, KeyChooser, State, Workload};
use crate::check::history::{MicroOp, ReadValue};
use crate::runner::store::{Tx, TxError};
use rand::Rng;

/// Key prefix of this workload.
pub const PREFIX: &str = "acct:";
/// Accounts.
pub const ACCOUNTS: u64 = 8;
/// Opening balance of each account.
pub const OPENING: i64 = 100;

fn account(i: u64) -> String {
    format!("{PREFIX}{i}")
}

#[derive(Debug, Default)]
pub struct Bank;

impl Workload for Bank {
    fn initial(&self) -> Vec<(String, String)> {
        (0..ACCOUNTS)
            .map(|i| (account(i), OPENING.to_string()))
            .collect()
    }

    /// A transfer is `[r from, r to, w from ?, w to amount]` (the write values are fixed
    /// on execution); a read-all is a read of every account.
    fn generate(&self, _keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        if rng.gen_bool(0.2) {
            return (0..ACCOUNTS).map(|i| MicroOp::read(account(i))).collect();
        }
        let from = rng.gen_range(0..ACCOUNTS);
        let to = (from + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
        let amount = rng.gen_range(1..=40);
        vec![
            MicroOp::read(account(from)),
            MicroOp::read(account(to)),
            MicroOp::Write(account(from), -amount),
            MicroOp::Write(account(to), amount),
        ]
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        Box::pin(async move {
            if ops.len() as u64 == ACCOUNTS {
                // Read-all, as one range scan (phantom-tracked by the engine).
                let rows = tx.scan(PREFIX, "acct;").await?;
                let mut done = Vec::new();
                for (k, v) in rows {
                    done.push(MicroOp::read_int(k, Some(parse_int(&v)?)));
                }
                return Ok(done);
            }
            let (MicroOp::Read(from, _), MicroOp::Read(to, _), MicroOp::Write(_, neg)) =
                (&ops[0], &ops[1], &ops[2])
            else {
                return Err(TxError::Failed("not a bank transaction".into()));
            };
            let amount = -neg;
            let read = |v: Option<String>| v.map(|s| parse_int(&s)).transpose();
            let a = read(tx.get(from).await?)?.unwrap_or(0);
            let b = read(tx.get(to).await?)?.unwrap_or(0);
            let mut done = vec![
                MicroOp::read_int(from.clone(), Some(a)),
                MicroOp::read_int(to.clone(), Some(b)),
            ];
            if a >= amount {
                tx.put(from, &(a - amount).to_string()).await?;
                tx.put(to, &(b + amount).to_string()).await?;
                done.push(MicroOp::Write(from.clone(), a - amount));
                done.push(MicroOp::Write(to.clone(), b + amount));
            }
            Ok(done)
        })
    }

    fn check_state(&self, state: &State) -> Result<(), String> {
        let mut total = 0i64;
        let mut seen = 0;
        for (k, v) in state.range(PREFIX.to_string()..) {
            if !k.starts_with(PREFIX) {
                break;
            }
            let b = v.parse::<i64>().map_err(|e| format!("{k} = {v:?}: {e}"))?;
            if b < 0 {
                return Err(format!("{k} is overdrawn: {b}"));
            }
            total += b;
            seen += 1;
        }
        let want = OPENING * ACCOUNTS as i64;
        if seen != 0 && (seen != ACCOUNTS || total != want) {
            return Err(format!(
                "{seen} accounts hold {total}; the bank holds {want} in {ACCOUNTS}"
            ));
        }
        Ok(())
    }

    fn check_read(&self, ops: &[MicroOp]) -> Result<(), String> {
        if ops.len() as u64 != ACCOUNTS || ops.iter().any(|o| !matches!(o, MicroOp::Read(..))) {
            return Ok(());
        }
        let total: i64 = ops
            .iter()
            .map(|o| {
                if let MicroOp::Read(_, Some(ReadValue::Int(v))) = o {
                    *v
                } else {
                    0
                }
            })
            .sum();
        let want = OPENING * ACCOUNTS as i64;
        if total != want {
            return Err(format!(
                "a snapshot read of every account sums to {total}, not {want}"
            ));
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
