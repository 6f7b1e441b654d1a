//! The I/O operation barrier: a deterministic crash point after a node's k-th file
//! operation (`sim::set_op_limit`, `sim::ops_performed`, `sim::ops_held`).
//!
//! Every operation of the public API that reaches a node's disk model is one *op*:
//! opening (or creating) a file, `read_at`, `write_all_at`, `append`, `set_len`, `len`,
//! `sync_data`/`sync_all`, `rename`, `remove_file`, `create_dir_all`, `read_dir`,
//! `sync_dir`, `metadata` and `exists` — including those that fail (ENOENT, an injected
//! EIO, a dead handle's error). Composite helpers count their parts (`sim_fs::read` is
//! an open, a `len` and a `read_at`). Not counted: closing a handle (dropping a `File`,
//! synchronous and not a disk operation), a path that fails to parse before reaching
//! the disk, and the simulator's own controls (`sim::*`).
//!
//! An op first sleeps its injected latency, then asks the barrier to admit it, and is
//! executed in the same step (no await in between): so `ops_performed` counts ops that
//! have *completed*, and with a limit of `k` exactly `k` ops execute. An op refused at
//! the limit never executes and never completes (its future stays pending); it is
//! counted in `ops_held`. The process's other tasks run on until they too wait for I/O.

/// A node's op counter and limit.
#[derive(Debug, Default)]
pub(crate) struct OpBarrier {
    /// Ops executed on this disk in this run (never reset).
    pub performed: u64,
    /// Ops execute only while `performed < limit`.
    pub limit: Option<u64>,
    /// Ops refused since the limit was last set.
    pub held: u64,
}

impl OpBarrier {
    /// Admits one op (counting it) or, at the limit, refuses it (counting it held).
    pub(crate) fn admit(&mut self) -> bool {
        if self.limit.is_some_and(|limit| self.performed >= limit) {
            self.held += 1;
            false
        } else {
            self.performed += 1;
            true
        }
    }

    /// Sets (or clears) the limit; the held count starts again from zero.
    pub(crate) fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
        self.held = 0;
    }

    /// The process the limit froze has ended (power loss or process death): its
    /// successor runs unlimited. `held` keeps its value until the next `set_limit`.
    pub(crate) fn end_of_process(&mut self) {
        self.limit = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_exactly_up_to_the_limit() {
        let mut b = OpBarrier::default();
        assert!((0..5).all(|_| b.admit()), "no limit: everything runs");
        b.set_limit(Some(7));
        assert!(b.admit() && b.admit());
        assert!(!b.admit() && !b.admit());
        assert_eq!((b.performed, b.held), (7, 2));
        b.end_of_process();
        assert!(b.admit());
        assert_eq!((b.performed, b.held), (8, 2));
        b.set_limit(Some(3));
        assert!(
            !b.admit(),
            "a limit at or below the count holds the next op"
        );
        assert_eq!((b.performed, b.held), (8, 1));
    }
}
