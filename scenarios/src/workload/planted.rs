//! Planted client bugs: a known defect a newcomer can watch the checks catch, shrink,
//! replay and look at from the command line without rebuilding anything (the engine's
//! own canaries need the `canary` cargo feature). The bug lives in the *client*, where a
//! user's own code would put it; the database under test is the unchanged engine.

use super::{BoxFut, HistoryCheck, KeyChooser, State, Workload};
use crate::check::history::MicroOp;
use crate::runner::store::{Tx, TxError};

/// Wraps a workload whose client counts an unknown commit outcome as acknowledged.
///
/// A commit that fails with an I/O error (a failed fsync: the engine fail-stops) or
/// whose reply is lost may or may not be durable; this client tells its user "done"
/// anyway. After the next power loss the durability oracle finds an acknowledged write
/// missing (or the history checker finds a read that misses it).
pub struct UnknownAsAcknowledged(pub Box<dyn Workload>);

impl Workload for UnknownAsAcknowledged {
    fn initial(&self) -> Vec<(String, String)> {
        self.0.initial()
    }

    fn generate(&self, keys: &KeyChooser, rng: &mut dyn rand::RngCore) -> Vec<MicroOp> {
        self.0.generate(keys, rng)
    }

    fn execute<'a>(
        &'a self,
        ops: Vec<MicroOp>,
        tx: &'a mut Tx,
    ) -> BoxFut<'a, Result<Vec<MicroOp>, TxError>> {
        self.0.execute(ops, tx)
    }

    fn check_state(&self, state: &State) -> Result<(), String> {
        self.0.check_state(state)
    }

    fn check_read(&self, ops: &[MicroOp]) -> Result<(), String> {
        self.0.check_read(ops)
    }

    fn deferred_invoke(&self) -> bool {
        self.0.deferred_invoke()
    }

    fn unique_writes(&self) -> bool {
        self.0.unique_writes()
    }

    fn history_check(&self) -> HistoryCheck {
        self.0.history_check()
    }

    fn acknowledges_unknown_outcomes(&self) -> bool {
        true
    }
}
