//! Tests of the transaction layer: goldenscripts of the anomaly catalogue, exhaustive
//! interleavings, property tests, and unit tests of edge cases.

mod exhaustive;
mod golden;
mod history;
mod props;
mod unit;
