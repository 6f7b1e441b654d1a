//! Tests of the transaction layer: goldenscripts of the anomaly catalogue (on the
//! reference model, and on `Db` with equal output: `golden_db`), exhaustive
//! interleavings, property tests, and unit tests of edge cases.

mod exhaustive;
mod golden;
#[cfg(not(madsim))]
mod golden_db;
mod history;
mod props;
mod unit;
