//! The host's own files: `--json`, `--plan`, `--history`, `--timeline` outputs and the
//! seed corpus. These are the CLI's inputs and outputs, read and written outside every
//! simulated run (in the madsim build, sim-fs is the *simulated* disk, so it cannot be
//! used here). The framework's helpers ([`chaos::host`]) are the one sanctioned use of
//! `std::fs` for them; this module names them as the runner calls them.

pub use chaos::host::{append_text as append, read_text as read, scratch_dir, write_text as write};
