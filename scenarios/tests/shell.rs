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
        #[allow(clippy::disallowed_methods)] // the real-world shell's tests: a runtime per session
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
        let reply = self.rt.block_on(self.session.execute(line.as_bytes()));
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

/// What one run of `seedbank shell` printed, and its exit code.
struct Ran {
    code: Option<i32>,
    stdout: String,
}

impl Ran {
    /// The `--json` answers, one per stdout line.
    fn answers(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }
}

/// Runs the real binary, `seedbank shell --path DIR EXTRA…`, with `input` as its stdin.
fn shell(dir: &std::path::Path, extra: &[&str], input: &[u8]) -> Ran {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .args(["shell", "--path"])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn seedbank");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("the shell prints UTF-8"),
    }
}

#[test]
fn binary_answers_every_line_with_one_json_object_and_persists() {
    let dir = temp_db_dir("bin");
    let ran = shell(
        &dir,
        &["--json"],
        b"put a 1\nbogus line\nbegin t1\nput b two words\nget b\ncommit\n\nscan a z\n",
    );
    assert_eq!(
        ran.code,
        Some(1),
        "a failed command makes the exit status 1"
    );
    let answers = ran.answers();
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
    let again = shell(&dir, &["--json"], b"get b\nquit\nget a\n");
    let answers = again.answers();
    assert_eq!(answers.len(), 2, "quit ends the session: {answers:?}");
    assert_eq!(answers[0]["value"], "two words");
    assert_eq!(again.code, Some(0), "nothing failed: exit status 0");
    #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pins issue 19 finding 4: an invalid UTF-8 line ended the session silently with exit
/// status 0 (`lines()` stopped at the decoding error), and later commands were never
/// answered. Now it gets an error answer, the next line is answered, and the exit
/// status is 1 — in `--json` and text modes alike.
#[test]
fn an_invalid_utf8_line_is_answered_and_the_session_goes_on_to_exit_1() {
    let dir = temp_db_dir("utf8");
    let input = b"put a 1\nput b \xff\xfe\nget a\n";
    let ran = shell(&dir, &["--json"], input);
    let answers = ran.answers();
    assert_eq!(answers.len(), 3, "every line answered: {answers:?}");
    assert_eq!(answers[1]["ok"], false);
    let error = answers[1]["error"].as_str().expect("an error message");
    assert!(
        error.contains("not valid UTF-8") && error.contains("byte 0xff at column 7"),
        "says what and where: {error}"
    );
    assert_eq!(answers[2]["value"], "1", "the line after it is answered");
    assert_eq!(ran.code, Some(1), "--json: a failed command means exit 1");

    let text = shell(&dir, &[], input);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "text mode answers every line too: {lines:?}"
    );
    assert!(
        lines[1].starts_with("error: the line is not valid UTF-8"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "1");
    assert_eq!(text.code, Some(1), "text mode: exit 1 as well");

    // The same bytes escaped are a valid value, shown as they can be typed back.
    let ok = shell(&dir, &[], b"put b \"\\xff\\xfe\"\nget b\n");
    assert_eq!(ok.stdout, "committed ts=3\n\"\\xff\\xfe\"\n");
    assert_eq!(ok.code, Some(0));
    #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pins issue 20 item 8 (quit drops a transaction silently; JSON mode exits 0 after
/// errors): the end of the input with an open transaction rolls it back, says so, and
/// exits 1; a refused commit exits 1; a clean session exits 0.
#[test]
fn the_exit_status_says_whether_anything_failed() {
    let dir = temp_db_dir("exit");
    let open = shell(&dir, &["--json"], b"begin t1\nput a 1\n");
    let answers = open.answers();
    assert_eq!(
        answers.len(),
        3,
        "an answer for the end of input: {answers:?}"
    );
    assert_eq!(answers[2]["rolled_back"], serde_json::json!(["t1"]));
    assert_eq!(open.code, Some(1));
    let text = shell(&dir, &[], b"begin t1\nput a 1\nquit\n");
    assert_eq!(
        text.stdout.lines().last(),
        Some(
            "error: session ended with open transaction t1: rolled back, its writes are \
             discarded (commit before quitting to keep them)"
        )
    );
    assert_eq!(text.code, Some(1));

    let refused = shell(
        &dir,
        &["--json"],
        b"put x 0\nbegin t1\nbegin t2\nput x 2\nuse t1\nput x 1\ncommit\nuse t2\ncommit\n",
    );
    let answers = refused.answers();
    assert_eq!(answers[8]["committed"], false, "{answers:?}");
    assert_eq!(refused.code, Some(1), "a commit that did not commit fails");

    let clean = shell(&dir, &["--json"], b"begin t1\nput a 1\ncommit\nget a\n");
    assert_eq!(clean.code, Some(0), "{}", clean.stdout);
    #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
    let _ = std::fs::remove_dir_all(&dir);
}
