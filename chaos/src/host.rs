//! Plan files on the host's own disk, read and written outside every simulated run (in
//! the madsim build sim-fs is the *simulated* disk, so it cannot be used here): the
//! one sanctioned use of `std::fs` in this crate: plan files, and the reports and seed
//! corpus of the chaos CLI ([`crate::cli`]).

use crate::plan::{FaultPlan, Settings};
use std::path::Path;

/// Writes `plan` as pretty JSON to `path` (what [`read_plan`] reads back).
#[allow(clippy::disallowed_methods)] // a plan file on the host, outside any simulated run
pub fn write_plan<T: Settings>(path: &Path, plan: &FaultPlan<T>) -> Result<(), String> {
    std::fs::write(path, plan.to_json())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a plan file written by [`write_plan`] (or by hand), with a clear error.
#[allow(clippy::disallowed_methods)] // a plan file on the host, outside any simulated run
pub fn read_plan<T: Settings>(path: &Path) -> Result<FaultPlan<T>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    FaultPlan::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `text` to `path` (a sweep's `--json` file), replacing it, creating its
/// directory.
#[allow(clippy::disallowed_methods)] // a report file on the host, outside any simulated run
pub fn write_text(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Appends `text` to `path`, creating it and its directory (a seed corpus file).
#[allow(clippy::disallowed_methods)] // a seed corpus on the host, outside any simulated run
pub fn append_text(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot append to {}: {e}", path.display()))
}

/// The seeds saved for scenario `name` in the corpus directory `dir` by `sweep
/// --save-failures DIR` (`DIR/NAME.seeds`; none when the file does not exist): what a
/// user's suite replays, each seed under its own plan.
#[allow(clippy::disallowed_methods)] // a seed corpus on the host, outside any simulated run
pub fn read_seeds(dir: &Path, name: &str) -> Result<Vec<u64>, String> {
    let path = dir.join(format!("{name}.seeds"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            crate::cli::record::parse_corpus(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Reads `path` as text (a shard's `--json` file for `merge`).
#[allow(clippy::disallowed_methods)] // a report file on the host, outside any simulated run
pub fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A fresh scratch directory for this process's files named `name` (under the OS's
/// temporary directory), created empty.
#[allow(clippy::disallowed_methods)] // scratch files on the host, outside any simulated run
pub fn scratch_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("seedbank-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
