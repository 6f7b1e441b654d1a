//! Tests of the Raft core: goldenscripts of the protocol's scenarios (`golden`), the
//! safety checker fed broken histories (`safety`), edge cases (`unit`), and randomized
//! clusters under faults, with the canary that proves they can fail (`random`); the
//! boundary assertions seen firing (`asserts`).

mod asserts;
mod cluster;
mod golden;
mod random;
mod safety;
mod unit;
