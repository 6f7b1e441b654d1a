//! Bisecting nondeterminism across commits, the workflow docs/nondeterminism.md
//! promises: a temporary git repository holds a tiny crate that uses the harness, five
//! commits, and one of them (the third) lets OS entropy into a back-off. `git bisect run`
//! with the double-run check (`SEEDBANK_CHECK_DETERMINISM=only`, `--no-run || exit 125`
//! first) must name exactly that commit, and the last bad run's report must name the
//! planted line.
//!
//! It builds the crate with cargo (offline, into a target directory kept under this
//! test's `CARGO_TARGET_TMPDIR`, so only the first run compiles the dependencies).
//! Skipped, saying so, when `git` is not installed.
#![cfg(madsim)]
// Host-side plumbing around the simulated runs: files and processes of the test itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn git(repo: &Path, args: &[&str]) -> Output {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        // Only the temporary repository: never one named by the environment (a test
        // run from a git hook) or found above it (the temporary directory may sit
        // inside this repository's target/).
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CEILING_DIRECTORIES", repo.parent().unwrap_or(repo))
        .env("GIT_AUTHOR_NAME", "seedbank test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "seedbank test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
    assert!(
        out.status.success() || args.first() == Some(&"bisect"),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create a directory of the temporary crate");
    }
    std::fs::write(path, text).expect("write a file of the temporary crate");
}

/// The crate's library at each commit: `backoff` is deterministic except in the third.
fn lib_rs(version: u32) -> String {
    let backoff = if version >= 3 {
        "    let jitter = rand::random::<u64>() % 1000; // <- the leak\n    base + jitter"
    } else {
        "    base"
    };
    format!(
        "//! version {version}\n\
         use std::time::Duration;\n\n\
         pub fn backoff(base: u64) -> u64 {{\n{backoff}\n}}\n\n\
         pub async fn work(steps: u64) -> u64 {{\n\
         \x20   let mut total = 0;\n\
         \x20   for i in 0..steps {{\n\
         \x20       let wait = backoff(10 + i * {version});\n\
         \x20       sim_runtime::time::sleep(Duration::from_millis(wait)).await;\n\
         \x20       total += wait;\n\
         \x20   }}\n\
         \x20   total\n\
         }}\n"
    )
}

const TEST_RS: &str = "#![cfg(madsim)]\n\
#[seedbank::test(seeds = 1)]\n\
async fn steady(_ctx: seedbank::Ctx) {\n\
    let total = bisectme::work(5).await;\n\
    assert!(total > 0);\n\
}\n";

#[test]
fn git_bisect_run_finds_the_commit_that_let_entropy_in() {
    if Command::new("git").arg("--version").output().is_err() {
        println!("SKIPPED: git is not installed, so there is nothing to bisect with");
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root");
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let repo = scratch.join(format!("bisect-repo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    let dep = |krate: &str| workspace.join(krate).display().to_string();
    write(
        &repo.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"bisectme\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nsim-runtime = {{ path = \"{}\" }}\nrand = \"0.8\"\n\n\
             [dev-dependencies]\nseedbank = {{ path = \"{}\" }}\n\n[workspace]\n\n\
             [lints.rust]\nunexpected_cfgs = {{ level = \"allow\" }}\n",
            dep("sim-runtime"),
            dep("seedbank")
        ),
    );
    // The workspace's lock file pins the same versions, so the build needs no network.
    std::fs::copy(workspace.join("Cargo.lock"), repo.join("Cargo.lock")).expect("copy Cargo.lock");
    write(&repo.join("tests/steady.rs"), TEST_RS);
    git(&repo, &["init", "-q"]);
    let mut commits = Vec::new();
    for version in 1..=5 {
        write(&repo.join("src/lib.rs"), &lib_rs(version));
        git(&repo, &["add", "-A"]);
        git(
            &repo,
            &["commit", "-q", "-m", &format!("version {version}")],
        );
        let head = git(&repo, &["rev-parse", "HEAD"]);
        commits.push(String::from_utf8_lossy(&head.stdout).trim().to_string());
    }
    let target = scratch.join("bisect-target");
    // The same two steps docs/nondeterminism.md shows.
    let script = "cargo test --offline --test steady --no-run -q || exit 125\n\
         SEEDBANK_CHECK_DETERMINISM=only SEEDBANK_SEED=0 cargo test --offline -q --test steady -- --exact steady\n";
    write(&repo.join("check.sh"), script);
    git(&repo, &["bisect", "start", &commits[4], &commits[0]]);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let cargo_dir = Path::new(&cargo)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let path = format!("{cargo_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let out = Command::new("git")
        .args(["bisect", "run", "sh", "check.sh"])
        .current_dir(&repo)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CEILING_DIRECTORIES", repo.parent().unwrap_or(&repo))
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "--cfg madsim")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("SEEDBANK_CHECK_DETERMINISM")
        .env_remove("SEEDBANK_SEED")
        .env_remove("SEEDBANK_SEEDS")
        .env_remove("SEEDBANK_ISOLATION")
        .output()
        .expect("git bisect run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    let found = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" is the first bad commit"))
        .unwrap_or_else(|| panic!("git bisect named no commit:\n{stdout}\n{stderr}"));
    assert_eq!(found.trim(), commits[2], "the third commit lets entropy in");
    // The bad runs' reports named the line where the leaked value steers the task: the
    // sleep whose length came from `backoff` (the draw itself, two calls down, returned
    // before anything could see it).
    let steered = lib_rs(3)
        .lines()
        .position(|l| l.contains("time::sleep"))
        .map_or(0, |i| i + 1);
    let want = format!("src/lib.rs:{steered}:");
    assert!(
        stdout.contains(&want) || stderr.contains(&want),
        "the report names {want}:\n{stdout}\n{stderr}"
    );
    // And the draw itself, seen as it happened (the getrandom system call): line 5.
    assert!(
        stdout.contains("OS entropy") && stdout.contains("src/lib.rs:5:"),
        "the report names the draw at src/lib.rs:5:\n{stdout}"
    );
    git(&repo, &["bisect", "reset"]);
    let _ = std::fs::remove_dir_all(&repo);
}
