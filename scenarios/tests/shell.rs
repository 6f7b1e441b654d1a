//! The shell, real world: goldenscript sessions (each script line is a shell line, the
//! output is its `--json` answer) and the binary driven over stdin.
#![cfg(not(madsim))]

use scenarios::shell::Session;
use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the OS temp dir for one database.
fn temp_db_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("seedbank-shell-{tag}-{}-{n}", std::process::id()))
}

struct Runner {
    rt: tokio::runtime::Runtime,
    session: Session,
    dir: PathBuf,
}

impl Runner {
    fn new() -> Runner {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = temp_db_dir("golden");
        let db = rt
            .block_on(engine::Db::open(&dir, engine::Options::default()))
            .expect("open db");
        Runner {
            rt,
            session: Session::new(db),
            dir,
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl goldenscript::Runner for Runner {
    type Command = goldenscript::Command;

    fn run(
        &mut self,
        command: &goldenscript::Command,
        _context: &goldenscript::Context,
    ) -> Result<String, Box<dyn Error>> {
        let mut line = command.name.clone();
        for arg in &command.args {
            line.push(' ');
            line.push_str(&arg.to_string());
        }
        let reply = self.rt.block_on(self.session.execute(&line));
        Ok(reply.map(|r| r.json()).unwrap_or_default())
    }
}

#[test]
fn golden_sessions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/shellscripts");
    #[allow(clippy::disallowed_methods)] // listing the test's own script directory
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("script dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 3, "scripts found: {scripts:?}");
    for script in scripts {
        goldenscript::run(&mut Runner::new(), &script)
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    }
}

#[test]
fn binary_answers_every_line_with_one_json_object_and_persists() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = temp_db_dir("bin");
    let run = |input: &str| -> Vec<serde_json::Value> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .args(["shell", "--path"])
            .arg(&dir)
            .arg("--json")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn seedbank");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "exit {:?}", out.status);
        String::from_utf8(out.stdout)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    };
    let answers =
        run("put a 1\nbogus line\nbegin t1\nput b two words\nget b\ncommit\n\nscan a z\n");
    assert_eq!(
        answers.len(),
        7,
        "one answer per command, none for the blank line: {answers:?}"
    );
    assert_eq!(answers[0]["committed"], true);
    assert_eq!(
        answers[1]["ok"], false,
        "malformed line gets an error answer"
    );
    assert!(answers[1]["error"]
        .as_str()
        .unwrap()
        .contains("unknown command 'bogus'"));
    assert_eq!(answers[4]["value"], "two words");
    assert_eq!(answers[5]["committed"], true);
    assert_eq!(
        answers[6]["rows"],
        serde_json::json!([["a", "1"], ["b", "two words"]])
    );
    // A second process sees what the first committed.
    let again = run("get b\nquit\nget a\n");
    assert_eq!(again.len(), 2, "quit ends the session: {again:?}");
    assert_eq!(again[0]["value"], "two words");
    #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
    let _ = std::fs::remove_dir_all(&dir);
}
