//! The replicated database in the real world: three `seedbank node` processes on
//! loopback TCP, driven through `seedbank shell --connect … --json`. The test appends to
//! a list with read-modify-write transactions and writes unique keys, SIGKILLs the
//! leader mid-run, keeps writing, restarts it, and checks that every acknowledged write
//! is readable, that each append appears exactly once (a commit applied twice, or
//! acknowledged without being applied, would show), and that the restarted node
//! catches up. Then SIGTERM stops every node cleanly.
#![cfg(not(madsim))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const NODES: u64 = 3;

fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("seedbank-{tag}-{}-{n}", std::process::id()))
}

/// The wall clock (this test drives real processes).
fn now() -> Instant {
    #[allow(clippy::disallowed_methods)] // a real-world test measures real time
    let t = Instant::now();
    t
}

fn pause(ms: u64) {
    #[allow(clippy::disallowed_methods)] // a real-world test waits for real processes
    std::thread::sleep(Duration::from_millis(ms));
}

/// A loopback port that was free a moment ago (racy in principle, as every such helper).
fn free_port() -> u16 {
    #[allow(clippy::disallowed_methods)] // the real world's port allocator, in a real-world test
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

struct Cluster {
    dir: PathBuf,
    ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
}

impl Cluster {
    fn peers(&self) -> String {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn start(&mut self, id: u64) {
        let i = (id - 1) as usize;
        #[allow(clippy::disallowed_methods)] // the log file of a real process, in the test's dir
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{id}.log")))
            .expect("node log file");
        let child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .args(["node", "--id", &id.to_string()])
            .args(["--listen", &format!("127.0.0.1:{}", self.ports[i])])
            .args(["--peers", &self.peers()])
            .arg("--data")
            .arg(self.dir.join(format!("node{id}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn seedbank node");
        self.nodes[i] = Some(child);
    }

    /// SIGKILL: a crash.
    fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.nodes[(id - 1) as usize].take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self, id: u64) -> std::process::ExitStatus {
        let mut c = self.nodes[(id - 1) as usize].take().expect("running node");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
        let deadline = now() + Duration::from_secs(10);
        loop {
            if let Some(status) = c.try_wait().expect("try_wait") {
                return status;
            }
            assert!(now() < deadline, "node {id} ignored SIGTERM");
            pause(20);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            #[allow(clippy::disallowed_methods)] // test cleanup of its own temp dir
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A `seedbank shell --connect … --json` process: one line in, one JSON line out.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Shell {
    fn connect(cluster: &Cluster) -> Shell {
        let list = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .args(["shell", "--connect", &list, "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn seedbank shell");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Shell {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, line: &str) -> Value {
        writeln!(self.stdin, "{line}").expect("write to shell");
        self.stdin.flush().expect("flush");
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .expect("read shell answer");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{line:?} → {answer:?}: {e}"))
    }

    /// Runs `append(i)` on list `log` as one transaction until it commits; returns how
    /// many attempts ended with an unknown outcome.
    fn append(&mut self, i: u64) -> u64 {
        let mut unknown = 0;
        for _ in 0..50 {
            let _ = self.ask("rollback");
            if self.ask("begin t")["ok"] != true {
                pause(100);
                continue;
            }
            let cur = self.ask("get log");
            if cur["ok"] != true {
                continue;
            }
            let mut items: Vec<String> = cur["value"]
                .as_str()
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            if items.contains(&i.to_string()) {
                // An earlier attempt whose outcome was unknown did commit.
                return unknown;
            }
            items.push(i.to_string());
            assert_eq!(
                self.ask(&format!("put log {}", items.join(",")))["ok"],
                true
            );
            let c = self.ask("commit");
            if c["committed"] == true {
                return unknown;
            }
            if c["error"].as_str().is_some_and(|e| e.contains("unknown")) {
                unknown += 1;
            }
        }
        panic!("append {i} never committed");
    }

    /// Writes key `k<i>` = `v<i>` (autocommit) until acknowledged.
    fn put(&mut self, i: u64) {
        for _ in 0..50 {
            if self.ask(&format!("put k{i:03} v{i}"))["committed"] == true {
                return;
            }
            pause(100);
        }
        panic!("put {i} never committed");
    }

    /// The leader, once a majority of the nodes that answer agree on one.
    fn leader(&mut self) -> u64 {
        let deadline = now() + Duration::from_secs(10);
        while now() < deadline {
            let s = self.ask("status");
            let leaders: Vec<u64> = s["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["role"] == "leader")
                .filter_map(|n| n["id"].as_u64())
                .collect();
            if let [one] = leaders.as_slice() {
                return *one;
            }
            pause(100);
        }
        panic!("no single leader within 10 s");
    }

    fn node_status(&mut self, id: u64) -> Value {
        let s = self.ask("status");
        s["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

fn check_state(shell: &mut Shell, appends: u64, puts: u64) {
    let log = shell.ask("get log");
    let want: Vec<String> = (1..=appends).map(|i| i.to_string()).collect();
    assert_eq!(
        log["value"]
            .as_str()
            .map(|s| s.split(',').collect::<Vec<_>>()),
        Some(want.iter().map(String::as_str).collect()),
        "every acknowledged append exactly once, in order"
    );
    let rows = shell.ask("scan k k~");
    let rows = rows["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len() as u64, puts, "every acknowledged put: {rows:?}");
    for (i, row) in (1..=puts).zip(&rows) {
        assert_eq!(row[0], format!("k{i:03}"));
        assert_eq!(row[1], format!("v{i}"));
    }
}

fn wait_caught_up(shell: &mut Shell, id: u64, leader: u64) {
    let deadline = now() + Duration::from_secs(10);
    loop {
        let me = shell.node_status(id);
        let them = shell.node_status(leader);
        if me["applied"].is_u64() && me["applied"] == them["applied"] {
            return;
        }
        assert!(
            now() < deadline,
            "node {id} did not catch up: {me} vs leader {them}"
        );
        pause(100);
    }
}

fn data_exists(dir: &Path) -> bool {
    #[allow(clippy::disallowed_methods)] // inspecting the test's own temp dir
    let found = std::fs::metadata(dir.join("raft").join("log")).is_ok();
    found
}

#[test]
fn a_cluster_survives_a_leader_crash_and_restart_without_losing_or_repeating_writes() {
    let started = now();
    let dir = temp_dir("cluster");
    #[allow(clippy::disallowed_methods)] // the test's own temp dir
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cluster = Cluster {
        dir: dir.clone(),
        ports: (0..NODES).map(|_| free_port()).collect(),
        nodes: (0..NODES).map(|_| None).collect(),
    };
    for id in 1..=NODES {
        cluster.start(id);
    }
    let mut shell = Shell::connect(&cluster);
    let (mut appends, mut puts) = (0, 0);
    for _ in 0..8 {
        appends += 1;
        shell.append(appends);
        puts += 1;
        shell.put(puts);
    }
    check_state(&mut shell, appends, puts);

    let leader = shell.leader();
    cluster.kill(leader);
    for _ in 0..8 {
        appends += 1;
        shell.append(appends);
        puts += 1;
        shell.put(puts);
    }
    let new_leader = shell.leader();
    assert_ne!(new_leader, leader, "a killed node cannot lead");
    check_state(&mut shell, appends, puts);

    assert!(data_exists(&dir.join(format!("node{leader}"))));
    cluster.start(leader);
    for _ in 0..4 {
        appends += 1;
        shell.append(appends);
        puts += 1;
        shell.put(puts);
    }
    check_state(&mut shell, appends, puts);
    let now_leader = shell.leader();
    wait_caught_up(&mut shell, leader, now_leader);
    drop(shell);

    for id in 1..=NODES {
        let status = cluster.terminate(id);
        assert!(status.success(), "node {id} exited {status:?} on SIGTERM");
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
