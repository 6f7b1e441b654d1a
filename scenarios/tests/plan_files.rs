//! `run --save-plan`: the plan a seed draws, written as the JSON `--plan` reads, so a
//! user can edit it by hand (more operations, a fault moved or removed) and run it.
//! Replayed unchanged, it gives the same run byte for byte (the same trace digest);
//! edited, the run follows the edit.
#![cfg(madsim)]

use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_seedbank");

fn read(path: &Path) -> String {
    chaos::host::read_text(path).expect("the saved plan")
}

fn write(path: &Path, text: &str) {
    chaos::host::write_text(path, text).expect("write the edited plan");
}

/// `seedbank run register-cluster --seed 3` with `extra` arguments: its stdout.
fn run(extra: &[&str]) -> String {
    let out = Command::new(EXE)
        .args(["run", "register-cluster", "--seed", "3"])
        .args(extra)
        .output()
        .expect("spawn seedbank");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "run {extra:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The word after `key` on the first line that starts with it (after spaces), or
/// contains it for `digest` (`…, digest 9ce4…`, `  operations 200 (…`).
fn field(out: &str, key: &str) -> String {
    out.lines()
        .map(str::split_whitespace)
        .find_map(|mut words| {
            if key == "digest" {
                words.skip_while(|w| *w != key).nth(1)
            } else {
                (words.next() == Some(key)).then(|| words.next()).flatten()
            }
        })
        .unwrap_or_else(|| panic!("no {key:?} in:\n{out}"))
        .to_string()
}

#[test]
fn a_saved_plan_replays_the_seed_and_an_edited_one_is_followed() {
    let dir = chaos::host::scratch_dir("plan-files").expect("scratch dir");
    let saved = dir.join("plan.json");
    let first = run(&["--save-plan", saved.to_str().expect("utf-8 path")]);
    let plan: serde_json::Value =
        serde_json::from_str(&read(&saved)).expect("the saved plan is JSON");
    let ops = plan["ops"]
        .as_u64()
        .expect("the plan states its operations");
    assert_eq!(field(&first, "operations"), ops.to_string(), "{first}");

    let replayed = run(&["--plan", saved.to_str().expect("utf-8 path")]);
    assert_eq!(
        field(&replayed, "digest"),
        field(&first, "digest"),
        "the saved plan is the seed's own"
    );

    let mut edited = plan.clone();
    edited["ops"] = serde_json::json!(ops + 37);
    let edited_path = dir.join("edited.json");
    write(&edited_path, &edited.to_string());
    let longer = run(&["--plan", edited_path.to_str().expect("utf-8 path")]);
    assert_eq!(
        field(&longer, "operations"),
        (ops + 37).to_string(),
        "{longer}"
    );
    assert_ne!(field(&longer, "digest"), field(&first, "digest"));
}
