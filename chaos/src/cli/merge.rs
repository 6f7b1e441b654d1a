//! `merge FILES… [--junit FILE] [--json FILE]`: the shards' `sweep --json` files
//! ([`crate::report::merge`]) as one sweep: its failures with the user's reproduce
//! lines and the summary `sweep` prints, then the JUnit report and the merged lines.

use super::sweep::{failure_line, summary};
use super::Cli;
use crate::report::merge as fit;
use crate::report::record::Catalogue;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit 0 every run passed, 1 a run failed, 2 the shards do not fit together or a
/// file cannot be read or written.
pub(crate) fn merge(
    cli: &Cli,
    files: &[PathBuf],
    junit: Option<&Path>,
    json: Option<&Path>,
) -> ExitCode {
    let (records, tag) = match fit::merge(files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("merge: {e}");
            return ExitCode::from(2);
        }
    };
    let prefix = cli.prefix();
    for r in records.iter().filter(|r| r.failed()) {
        println!("{}", failure_line(&prefix, r));
    }
    let mut names: Vec<String> = records.iter().map(|r| r.scenario.clone()).collect();
    names.sort();
    names.dedup();
    let (text, promises_kept) = summary(cli, &names, &records, tag.wall_s);
    print!("{text}");
    let promises = |name: &str| cli.promises(name);
    let cat = Catalogue {
        replay: format!("{prefix} run"),
        promises: &promises,
    };
    if let Err(e) = fit::write_outputs(&records, &tag, junit, json, &cat) {
        eprintln!("merge: {e}");
        return ExitCode::from(2);
    }
    if records.iter().any(|r| r.failed()) || !promises_kept {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
