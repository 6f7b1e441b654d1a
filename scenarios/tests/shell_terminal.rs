//! `seedbank shell` on a terminal (real world): the binary runs under a pseudo-terminal
//! made by util-linux `script`, and the test types keys as a person would, each after
//! the prompt it answers has appeared.
#![cfg(not(madsim))]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The terminal's output so far, and where the next search starts.
struct Screen {
    bytes: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    cursor: usize,
}

impl Screen {
    /// Waits until `needle` appears after the cursor, then moves the cursor past it.
    /// Panics (showing the screen) if it has not appeared after a generous minute: the
    /// bound only stops a hung shell from hanging the suite.
    fn wait_for(&mut self, needle: &str) {
        loop {
            if let Some(at) = self.seen[self.cursor..]
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                self.cursor += at + needle.len();
                return;
            }
            match self.bytes.recv_timeout(Duration::from_secs(60)) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(e) => panic!(
                    "waiting for {needle:?} ({e}); the terminal showed:\n{}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }
}

/// Pins issue 20 item 8 (no line editing or history: arrow keys became "unknown
/// command"): on a terminal, Up recalls the last line, Ctrl-A and Right move in it,
/// Backspace edits it; the lines are saved to `--history FILE`; Ctrl-D with a
/// transaction open rolls it back, says so, and exits 1.
#[test]
fn on_a_terminal_lines_are_editable_and_kept_in_the_history_file() {
    let dir = std::env::temp_dir().join(format!("seedbank-tty-{}", std::process::id()));
    let history = dir.with_extension("history");
    let command = format!(
        "{} shell --path {} --history {}",
        env!("CARGO_BIN_EXE_seedbank"),
        dir.display(),
        history.display()
    );
    // `script -e` exits with the shell's status; -q: no banner; /dev/null: no log.
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux `script` (Debian's bsdutils, always installed)");
    let mut keys = child.stdin.take().expect("stdin");
    let mut out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    #[allow(clippy::disallowed_methods)] // a real-world test reads a real pipe
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Screen {
        bytes: rx,
        seen: Vec::new(),
        cursor: 0,
    };
    let mut press = |keys_: &[u8]| {
        keys.write_all(keys_).expect("type");
        keys.flush().expect("flush");
    };
    screen.wait_for("seedbank> ");
    press(b"put a 1\r");
    screen.wait_for("committed ts=1");
    screen.wait_for("seedbank> ");
    // Up: "put a 1"; Ctrl-A, five times Right: after "put a"; Backspace, "b": "put b 1".
    press(b"\x1b[A\x01\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x7fb\r");
    screen.wait_for("committed ts=2");
    screen.wait_for("seedbank> ");
    press(b"begin t1\r");
    screen.wait_for("seedbank(t1)> ");
    press(b"\x04"); // Ctrl-D: the end of the input
    screen.wait_for("error: session ended with open transaction t1: rolled back");
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(1),
        "the rolled-back transaction fails the session"
    );
    #[allow(clippy::disallowed_methods)] // reading the history file the shell wrote
    let saved = std::fs::read_to_string(&history).expect("history file written");
    let lines: Vec<&str> = saved.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["put a 1", "put b 1", "begin t1"], "{saved}");
    #[allow(clippy::disallowed_methods)] // test cleanup of its own temp files
    {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&history);
    }
}
