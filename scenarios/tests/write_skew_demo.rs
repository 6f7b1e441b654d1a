//! `seedbank demo write-skew` in the real world: SSI refuses one doctor, the invariant
//! holds, and the printed story is the same every run.
#![cfg(not(madsim))]

use std::process::Command;

fn run() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .args(["demo", "write-skew"])
        .output()
        .expect("run seedbank");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn write_skew_is_refused_and_the_story_repeats() {
    let first = run();
    assert!(first.contains("t1: commit -> COMMITTED"), "{first}");
    assert!(
        first.contains("t2: commit -> REFUSED, serialization conflict"),
        "{first}"
    );
    assert!(first.contains("final:     alice=off bob=on"), "{first}");
    assert!(first.contains("invariant held"), "{first}");
    assert_eq!(run(), first, "the demo prints the same schedule every run");
}
