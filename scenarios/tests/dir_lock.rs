//! One process per database directory, through the binary (issue 19, finding 5; D54):
//! a second `seedbank shell --path D` beside a running one, and a second `seedbank node`
//! on a running node's data directory, are refused with a message naming the holder;
//! nothing the first acknowledged is lost. Fails before D54: both shells opened the
//! directory and both acknowledged commits.
#![cfg(not(madsim))]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("seedbank-lock-{tag}-{}", std::process::id()))
}

#[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
fn remove(dir: &PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a shell on `dir` to completion with `input`.
fn shell_once(dir: &PathBuf, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .args(["shell", "--json", "--path"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn seedbank shell");
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    child.wait_with_output().expect("wait")
}

#[test]
fn a_second_shell_on_a_directory_in_use_is_refused_naming_the_holder() {
    let dir = temp_dir("shell");
    remove(&dir);
    let mut first: Child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .args(["shell", "--json", "--path"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the first shell");
    let mut stdin = first.stdin.take().expect("stdin");
    let mut answers = BufReader::new(first.stdout.take().expect("stdout")).lines();
    writeln!(stdin, "put a 1").expect("write");
    let answer = answers.next().expect("an answer").expect("read");
    assert!(answer.contains("\"ok\":true"), "{answer}");

    let second = shell_once(&dir, "put a 2\n");
    assert!(
        !second.status.success(),
        "the second shell opened a directory in use"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("in use by pid {}", first.id())),
        "the refusal does not name the holder: {err}"
    );

    writeln!(stdin, "quit").expect("write");
    drop(stdin);
    assert!(first.wait().expect("wait").success());
    let third = shell_once(&dir, "get a\n");
    let out = String::from_utf8_lossy(&third.stdout);
    assert!(
        out.contains("\"value\":\"1\""),
        "the acknowledged put was lost: {out}"
    );
    remove(&dir);
}

#[test]
fn a_second_node_on_a_data_directory_in_use_is_refused() {
    let dir = temp_dir("node");
    remove(&dir);
    #[allow(clippy::disallowed_methods)] // the real world's port allocator, in a real-world test
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let start = |listen: u16| {
        Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .args(["node", "--id", "1"])
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .args(["--peers", &format!("1=127.0.0.1:{port}")])
            .arg("--insecure") // the lock is under test, not the credentials
            .arg("--data")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn seedbank node")
    };
    let mut first = start(port);
    // The first node holds the lock once its data directory has a LOCK file naming it.
    let lock = dir.join(sim_fs::LOCK_FILE);
    let mut named = false;
    for _ in 0..500 {
        #[allow(clippy::disallowed_methods)] // reading a real process's lock file
        let text = std::fs::read_to_string(&lock).unwrap_or_default();
        if text.contains(&format!("pid {}", first.id())) {
            named = true;
            break;
        }
        #[allow(clippy::disallowed_methods)] // a real-world test waits for a real process
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(named, "the first node never took the lock");
    let second = start(0).wait_with_output().expect("wait");
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        !second.status.success(),
        "the second node ran on a directory in use"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by"), "{err}");
    remove(&dir);
}
