//! Workloads: what the clients of a scenario do, independent of topology and faults.
//!
//! A workload generates each transaction as a list of micro-operations (the Jepsen/Elle
//! vocabulary: appends, reads, writes), executes it against a [`Tx`], and states what
//! must hold: an invariant over any full state of the database (checked after every
//! recovery and at the end), and which history checker applies. The runner records
//! the history, feeds the durability oracle and runs the checks; a new workload is one
//! `impl Workload`.

pub mod bank;
pub mod keys;
pub mod list_append;
pub mod planted;
pub mod register;
pub mod write_skew;

use crate::check::history::MicroOp;
use crate::runner::store::{Tx, TxError};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

pub use keys::KeyChooser;

/// A boxed future, so workloads stay object-safe.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The database contents as the workload sees them (UTF-8 keys and values).
pub type State = BTreeMap<String, String>;

/// A full state from a store's raw rows (workload keys and values are UTF-8; anything
/// else shows up replaced, and the checks then fail on it).
pub fn state_of(rows: Vec<(Vec<u8>, Vec<u8>)>) -> State {
    rows.into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

/// The history checker that applies to a workload's client history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCheck {
    /// Nothing beyond the state invariant.
    None,
    /// Elle-style list-append serializability (G0 … G2).
    ListAppend,
    /// Per-key register linearizability.
    Register,
}

/// What the clients of a scenario do.
pub trait Workload: Send + Sync + 'static {
    /// Rows loaded (in one transaction, before the clients start).
    fn initial(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The next transaction: its micro-operations as invoked (reads without results).
    fn generate(&self, keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp>;

    /// Runs `ops` in `tx` (not committed here); returns them completed (reads with
    /// their results, writes with the values written).
    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>>;

    /// An invariant over a whole state of the database.
    fn check_state(&self, _state: &State) -> Result<(), String> {
        Ok(())
    }

    /// A check of one acknowledged transaction's results (a snapshot that must add
    /// up, say); runs as each transaction completes.
    fn check_read(&self, _ops: &[MicroOp]) -> Result<(), String> {
        Ok(())
    }

    /// Whether the history records the invocation only when the transaction commits,
    /// with the operations it executed: for workloads (bank transfers, doctors) whose
    /// writes depend on what they read, so the invocation cannot name them up front.
    /// Such histories carry no real-time information and are judged by the invariants.
    fn deferred_invoke(&self) -> bool {
        false
    }

    /// Whether every write stores a value no other write stores, so the durability
    /// oracle can tell whose write a value is.
    fn unique_writes(&self) -> bool;

    /// Which history checker applies.
    fn history_check(&self) -> HistoryCheck;

    /// A planted client bug, for demonstrations only: the client counts a commit whose
    /// outcome is unknown (a failed fsync, a lost reply) as acknowledged, as client code
    /// that treats "no error I understand" as success does. Only
    /// [`planted::UnknownAsAcknowledged`] says yes.
    fn acknowledges_unknown_outcomes(&self) -> bool {
        false
    }
}

/// Parses a list-append value ("1,2,3"; empty = no elements; anything after a `|` is
/// padding).
pub fn parse_list(v: &str) -> Result<Vec<i64>, TxError> {
    let v = v.split('|').next().unwrap_or_default();
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|x| {
            x.parse::<i64>()
                .map_err(|e| TxError::Failed(format!("bad list element {x:?}: {e}")))
        })
        .collect()
}

/// Formats a list-append value, padded with `pad` filler bytes after a `|`.
pub fn format_list(items: &[i64], pad: usize) -> String {
    let mut s = items
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if pad > 0 {
        s.push('|');
        s.push_str(&".".repeat(pad));
    }
    s
}

/// Parses an integer register value.
pub fn parse_int(v: &str) -> Result<i64, TxError> {
    v.parse::<i64>()
        .map_err(|e| TxError::Failed(format!("bad integer {v:?}: {e}")))
}

/// Executes Elle micro-ops the standard way: `r` reads (a list when `lists`, else an
/// integer register), `append` reads, extends and writes the list, `w` writes the
/// register (values padded by `pad` bytes of filler) or deletes it, `cas` writes only if the register holds the expected value (else the
/// transaction fails).
pub async fn interpret(
    ops: Vec<MicroOp>,
    tx: &mut Tx,
    lists: bool,
    pad: usize,
) -> Result<Vec<MicroOp>, TxError> {
    let mut done = Vec::with_capacity(ops.len());
    for op in ops {
        done.push(match op {
            MicroOp::Read(k, _) if lists => {
                let list = match tx.get(&k).await? {
                    Some(v) => parse_list(&v)?,
                    None => Vec::new(),
                };
                MicroOp::read_list(k, list)
            }
            MicroOp::Read(k, _) => {
                let v = match tx.get(&k).await? {
                    Some(v) => Some(parse_int(&v)?),
                    None => None,
                };
                MicroOp::read_int(k, v)
            }
            MicroOp::Append(k, x) => {
                let mut list = match tx.get(&k).await? {
                    Some(v) => parse_list(&v)?,
                    None => Vec::new(),
                };
                list.push(x);
                tx.put(&k, &format_list(&list, pad)).await?;
                MicroOp::Append(k, x)
            }
            MicroOp::Write(k, x) => {
                tx.put(&k, &x.to_string()).await?;
                MicroOp::Write(k, x)
            }
            MicroOp::Delete(k) => {
                tx.delete(&k).await?;
                MicroOp::Delete(k)
            }
            MicroOp::Cas(k, old, new) => {
                let cur = match tx.get(&k).await? {
                    Some(v) => Some(parse_int(&v)?),
                    None => None,
                };
                if cur != Some(old) {
                    return Err(TxError::Failed(format!(
                        "cas {k}: expected {old}, found {cur:?}"
                    )));
                }
                tx.put(&k, &new.to_string()).await?;
                MicroOp::Cas(k, old, new)
            }
        });
    }
    Ok(done)
}
