//! Goldenscript discovery: every file in a `testscripts/` folder is a test. There is no
//! list to keep: [`run_folder`] reads the folder, runs each file with a fresh runner,
//! reports every failing file by name (not only the first), and fails on an empty
//! folder. [`tests::every_testscripts_folder_has_a_harness`] walks `src/` so a new
//! `testscripts/` folder without a harness fails too.
//!
//! A script's expected output is rewritten with `UPDATE_GOLDENFILES=1 cargo test`, as
//! with `goldenscript::run`; review the diff before committing it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The folders a harness runs, relative to the crate root. A `testscripts/` folder
/// under `src/` that is not here fails `every_testscripts_folder_has_a_harness`.
pub(crate) const FOLDERS: [&str; 2] = ["src/mvcc/testscripts", "src/raft/testscripts"];

/// `folder` (relative to the crate root) as a path.
pub(crate) fn folder(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(folder)
}

/// Every entry of `dir`, sorted; anything but a file (a subfolder the harness would
/// skip) is an error.
pub(crate) fn scripts(dir: &Path) -> Vec<PathBuf> {
    #[allow(clippy::disallowed_methods)] // a test reads its own fixtures from the source tree
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut out: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    out.sort();
    for p in &out {
        assert!(p.is_file(), "{} is not a script file", p.display());
    }
    assert!(!out.is_empty(), "no scripts in {}", dir.display());
    out
}

/// Runs every script in `dir` (see [`scripts`]), each with a runner from `runner`,
/// and panics naming every script that failed, with its failure.
pub(crate) fn run_folder<R: goldenscript::Runner>(dir: &Path, runner: impl Fn() -> R) {
    let scripts = scripts(dir);
    let folder = dir.display();
    let mut failed = Vec::new();
    for path in &scripts {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let outcome = catch_unwind(AssertUnwindSafe(|| goldenscript::run(&mut runner(), path)));
        let why = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".to_string()),
            ),
        };
        match why {
            None => eprintln!("{folder}/{name}: ok"),
            Some(why) => {
                eprintln!("{folder}/{name}: FAILED");
                failed.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} scripts in {folder} failed:\n{}",
        failed.len(),
        scripts.len(),
        failed.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every folder named `testscripts` under `src/`, relative to the crate root.
    fn folders_under(dir: &Path, root: &Path, out: &mut Vec<String>) {
        #[allow(clippy::disallowed_methods)] // a test walks its own source tree
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "testscripts") {
                    let rel = path.strip_prefix(root).unwrap();
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                } else {
                    folders_under(&path, root, out);
                }
            }
        }
    }

    #[test]
    fn every_testscripts_folder_has_a_harness() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        folders_under(&root.join("src"), root, &mut found);
        found.sort();
        assert_eq!(found, FOLDERS, "testscripts folders vs the harnessed list");
    }

    /// Echoes each command's name.
    struct Echo;
    impl goldenscript::Runner for Echo {
        type Command = goldenscript::Command;
        fn run(
            &mut self,
            command: &goldenscript::Command,
            _: &goldenscript::Context,
        ) -> Result<String, Box<dyn std::error::Error>> {
            Ok(format!("{}\n", command.name))
        }
    }

    /// The harness sees a script fail, names it, and still runs the others: a planted
    /// folder with one good and two bad scripts.
    #[test]
    fn a_failing_script_is_named_and_the_rest_still_run() {
        if std::env::var_os("UPDATE_GOLDENFILES").is_some() {
            return; // the planted expectations would be rewritten, not checked
        }
        let dir = std::env::temp_dir().join(format!("testscripts-probe-{}", std::process::id()));
        #[allow(clippy::disallowed_methods)] // planting the probe's fixtures
        {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("a_good"), "hello\n---\nhello\n").unwrap();
            std::fs::write(dir.join("b_bad"), "hello\n---\ngoodbye\n").unwrap();
            std::fs::write(dir.join("c_bad"), "world\n---\nhello\n").unwrap();
        }
        let outcome = catch_unwind(|| run_folder(&dir, || Echo));
        #[allow(clippy::disallowed_methods)] // removing the probe's fixtures
        let _ = std::fs::remove_dir_all(&dir);
        let panic = outcome.expect_err("two scripts fail");
        let msg = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(msg.starts_with("2 of 3 scripts"), "{msg}");
        assert!(
            msg.contains("b_bad") && msg.contains("c_bad") && !msg.contains("a_good"),
            "{msg}"
        );
    }
}
