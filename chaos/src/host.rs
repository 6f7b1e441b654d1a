//! Plan files on the host's own disk, read and written outside every simulated run (in
//! the madsim build sim-fs is the *simulated* disk, so it cannot be used here): the
//! one sanctioned use of `std::fs` in this crate.

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
