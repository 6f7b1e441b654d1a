//! # sim-fs — the file API Seedbank's storage engine uses for everything
//!
//! One async API ([`File`], [`OpenOptions`], [`rename`], [`remove_file`],
//! [`create_dir_all`], [`read_dir`], [`sync_dir`], [`metadata`], [`exists`], [`read()`],
//! [`write()`]) with two backends chosen at build time:
//!
//! - **real world** (plain `cargo build`): `std::fs` with positional I/O
//!   (`std::os::unix::fs::FileExt`); reads and writes are blocking calls, syncs run on
//!   tokio's blocking pool.
//! - **simulated world** (`RUSTFLAGS="--cfg madsim"`): one simulated disk per node, held
//!   by the madsim plugin `SimFs`. Register it with
//!   `sim_runtime::sim::Sim::new(seed).plugin::<sim_fs::SimFs>()`; any file operation
//!   without it panics saying so. The `sim` module (simulated world only) holds the controls for tests and runners.
//!
//! Every operation records a `File` event in the run trace (operation, path,
//! offset/length, result) at the caller's source location. Errors are real
//! `std::io::Error`s with the OS codes the real file system gives (ENOENT, EEXIST,
//! EIO = 5, ENOSPC = 28, ...).
//!
//! **Directory locks** ([`lock_dir`], D54): one holder per directory, both worlds. Real
//! world: `DIR/LOCK` held with `File::try_lock` (flock), the holder's pid and role
//! written into it; released on drop or process death. Simulated world: per simulated
//! disk, tied to the process epoch, so a kill or a power loss releases it.
//!
//! ## Model (simulated world)
//! Each node's disk has a *page cache* (what the running process reads) and a *durable
//! image* (what survives power loss), for file data and for the namespace alike.
//! - A write or `set_len` lands in the page cache and is visible at once. Only
//!   [`File::sync_data`]/[`File::sync_all`] on that file makes its data and length
//!   durable.
//! - Creating, renaming and removing a directory entry (and creating a directory) is
//!   durable only after [`sync_dir`] on its parent — for a rename, the destination's
//!   parent. A file whose data was synced but whose entry never was vanishes on power
//!   loss.
//! - Power loss (`sim_runtime::node::Node::crash`): each unsynced write independently
//!   survives whole, survives torn (a prefix of whole 512-byte sectors, on absolute file
//!   offsets, with the rest old bytes or garbage) or is lost; the survivors land in a
//!   random order, so overlapping writes can land out of order. Unsynced `set_len`s may
//!   be lost. Each unsynced directory operation may be lost; survivors apply in issue
//!   order, skipping those that no longer apply; entries whose parent directory did not
//!   survive go too. The page cache is dropped: after restart reads see exactly the
//!   durable image. Files with no surviving entry are gone. Open handles die.
//! - Process death (`Node::kill`): the OS survives, so the page cache (and everything
//!   unsynced in it) is kept; the dead process's handles fail from then on and never
//!   touch the disk again.
//!
//! ## Invariants
//! - Unless a failed sync dropped ops, a file's cached image is its durable image with
//!   its pending ops replayed in issue order.
//! - The durable and cached namespaces, and pending directory ops, only name existing
//!   inodes; cached entries always have a parent directory; an inode nothing refers to
//!   (entry, pending op or open handle) is freed.
//! - Debug builds check them after every mutation (the namespace after namespace ops
//!   and power loss, the touched file after data ops); `sim::verify_invariants` checks
//!   them all on demand.
//! - Every random decision draws from the node's sim-runtime stream `fs.node<N>`, and
//!   everything iterated is a `BTreeMap`/`Vec`: a run is a pure function of its seed.
//!
//! ## Fault model (simulated world)
//! Rates come from a [`FaultConfig`], global or per node (`sim::set_fault_config`,
//! `sim::set_node_fault_config`); `Default` injects nothing (power loss still follows
//! the adversarial [`CrashConfig::default`]), [`FaultConfig::chaos`] is a heavy preset,
//! [`FaultConfig::random`] draws one from a seed. Injected faults, each counted in
//! `sim_runtime::faults` as `fs.<kind>`:
//! - `fs.read_eio`, `fs.write_eio`: an operation fails with EIO and changes nothing.
//! - `fs.fsync_eio`: a file or directory sync fails with EIO and the unsynced changes it
//!   covered are dropped without becoming durable ("fsyncgate"): they stay readable in
//!   the page cache until power loss, and a retried sync succeeds with them not on
//!   disk. A failed sync must be fatal for the file (fail-stop, reopen, recover).
//! - `fs.enospc`: a write or `set_len` that would make the node's visible file bytes
//!   exceed `capacity_bytes` fails with ENOSPC.
//! - `fs.latency`: an operation sleeps a random virtual duration first.
//! - `fs.torn_write`, `fs.garbage`, `fs.lost_write`, `fs.lost_set_len`, `fs.reorder`,
//!   `fs.lost_dir_op`: the fate of unsynced state on power loss (above).
//! - `fs.bitflip`: one bit of a durable sector flips, at power loss (rate
//!   `crash_bitflip` per durable file) or on demand (`sim::corrupt_sector`); reads
//!   return the flipped data, so checksums above must catch it. A flip at or after
//!   the start of the newest write a sync made durable is also counted as
//!   `fs.bitflip_tail`: to a log it reads like a torn tail, which recovery may cut,
//!   while a flip in bytes an older sync settled must be refused as damage.
//!
//! ## Op barrier (simulated world)
//! For systematic crash points rather than timed ones: `sim::ops_performed(node)`
//! counts the file operations a node has executed in the run (every API call that
//! reaches the disk model, failed ones included; closing a handle does not count), and
//! `sim::set_op_limit(node, Some(k))` freezes the node once that count reaches `k` —
//! every further operation is held, never runs and never completes
//! (`sim::ops_held(node)` counts them) — so a crash then lands exactly after the k-th
//! operation. A power loss or process death clears the limit. The same seed performs
//! the same operations, so one unlimited run gives the total and a sweep crashes after
//! each one in turn (`engine/tests/crash/kth.rs`).
//!
//! ## Non-goals
//! - Renaming directories (an `Unsupported` error in simulation), hard links, symlinks,
//!   permissions, timestamps, sparse-file accounting.
//! - Linux's directory-open semantics: in simulation opening a directory as a file
//!   fails with EISDIR, and a directory's [`Metadata::len`] is 0.
//! - `Node::restart` of a running node, and a node whose init task returns, do not
//!   reach the plugin (madsim calls `reset_node` only on kill): the page cache is kept
//!   and the old process's handles are not invalidated (they normally die with its
//!   tasks; one smuggled out to another node keeps working).
//! - Performance modelling beyond per-operation latency: there is no queue depth or
//!   bandwidth.

#![warn(missing_docs)]

mod api;
mod config;
mod copy;
mod failstop;
mod lock;

#[cfg(not(madsim))]
mod real;
#[cfg(not(madsim))]
use real as backend;

#[cfg(madsim)]
pub mod sim;
#[cfg(madsim)]
use sim::backend;
#[cfg(madsim)]
pub use sim::SimFs;

pub use api::{
    create_dir_all, exists, metadata, read, read_dir, remove_file, rename, sync_dir, write, File,
    Metadata, OpenOptions,
};
pub use config::{CrashConfig, FaultConfig, LatencyConfig};
pub use copy::copy_dir_durably;
pub use failstop::FailStopDir;
pub use lock::{lock_dir, DirLock, LockError, LOCK_FILE};
