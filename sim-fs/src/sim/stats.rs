//! Per-node operation counters of the simulated disk.

use serde::{Deserialize, Serialize};

/// What one node's disk has done so far in this run (injected faults are counted in
/// `sim_runtime::faults` under `fs.<kind>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsStats {
    /// Successful opens.
    pub opens: u64,
    /// `read_at` calls that returned data (or EOF).
    pub reads: u64,
    /// Bytes returned by reads.
    pub bytes_read: u64,
    /// Writes that reached the page cache (`write_all_at`, `append`).
    pub writes: u64,
    /// Bytes written into the page cache.
    pub bytes_written: u64,
    /// `set_len` calls that reached the page cache.
    pub set_lens: u64,
    /// File syncs that succeeded.
    pub syncs: u64,
    /// Directory syncs that succeeded.
    pub dir_syncs: u64,
    /// Directory operations issued (create, mkdir, rename, remove).
    pub dir_ops: u64,
    /// Power losses (`Node::crash`).
    pub power_losses: u64,
    /// Process deaths (`Node::kill`).
    pub kills: u64,
    /// Files (inodes) currently held by the disk model, linked or not.
    pub inodes: u64,
}
