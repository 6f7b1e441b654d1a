//! Storage layers of the LSM tree. All I/O goes through `sim-fs`.

pub mod wal;
