//! The host's own files: `--json`, `--plan`, `--history`, `--timeline` outputs and the
//! seed corpus. These are the CLI's inputs and outputs, read and written outside every
//! simulated run (in the madsim build, sim-fs is the *simulated* disk, so it cannot be
//! used here), hence the one sanctioned use of `std::fs` in this crate.

use std::io::Write;
use std::path::Path;

/// Reads a whole text file.
#[allow(clippy::disallowed_methods)] // a CLI input, outside any simulated run
pub fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes a whole file.
#[allow(clippy::disallowed_methods)] // a CLI output, outside any simulated run
pub fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Appends to a file, creating it.
#[allow(clippy::disallowed_methods)] // a CLI output, outside any simulated run
pub fn append(path: &Path, contents: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A fresh scratch directory for this process's files named `name` (under the OS's
/// temporary directory), created empty.
#[allow(clippy::disallowed_methods)] // CLI scratch files, outside any simulated run
pub fn scratch_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("seedbank-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
