//! Helpers of the real-world cluster tests: `seedbank node` processes on loopback
//! with TLS credentials from `seedbank certs`, and a `seedbank shell --connect --json`.
#![allow(dead_code)] // each test binary uses a subset

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const NODES: u64 = 3;

pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("seedbank-{tag}-{}-{n}", std::process::id()))
}

/// The wall clock (this test drives real processes).
pub fn now() -> Instant {
    #[allow(clippy::disallowed_methods)] // a real-world test measures real time
    let t = Instant::now();
    t
}

pub fn pause(ms: u64) {
    #[allow(clippy::disallowed_methods)] // a real-world test waits for real processes
    std::thread::sleep(Duration::from_millis(ms));
}

/// A loopback port that was free a moment ago (racy in principle, as every such helper).
pub fn free_port() -> u16 {
    #[allow(clippy::disallowed_methods)] // the real world's port allocator, in a real-world test
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

pub struct Cluster {
    pub dir: PathBuf,
    pub ports: Vec<u16>,
    pub nodes: Vec<Option<Child>>,
}

impl Cluster {
    /// A stopped cluster of [`NODES`] in a fresh temp dir, with credentials made by
    /// `seedbank certs --out DIR/certs` (the README's recipe).
    pub fn new(tag: &str) -> Cluster {
        let dir = temp_dir(tag);
        #[allow(clippy::disallowed_methods)] // the test's own temp dir
        std::fs::create_dir_all(&dir).expect("temp dir");
        let made = Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .args(["certs", "--nodes", &NODES.to_string(), "--out"])
            .arg(dir.join("certs"))
            .stdout(Stdio::null())
            .status()
            .expect("run seedbank certs");
        assert!(made.success(), "seedbank certs failed");
        Cluster {
            dir,
            ports: (0..NODES).map(|_| free_port()).collect(),
            nodes: (0..NODES).map(|_| None).collect(),
        }
    }

    /// The directory `seedbank certs` wrote.
    pub fn certs(&self) -> PathBuf {
        self.dir.join("certs")
    }

    pub fn peers(&self) -> String {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn start(&mut self, id: u64) {
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
            .arg("--certs")
            .arg(self.certs())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn seedbank node");
        self.nodes[i] = Some(child);
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.nodes[(id - 1) as usize].take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self, id: u64) -> std::process::ExitStatus {
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
pub struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Shell {
    pub fn connect(cluster: &Cluster) -> Shell {
        let list = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .args(["shell", "--connect", &list, "--json", "--certs"])
            .arg(cluster.certs())
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

    pub fn ask(&mut self, line: &str) -> Value {
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
    pub fn append(&mut self, i: u64) -> u64 {
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
    pub fn put(&mut self, i: u64) {
        for _ in 0..50 {
            if self.ask(&format!("put k{i:03} v{i}"))["committed"] == true {
                return;
            }
            pause(100);
        }
        panic!("put {i} never committed");
    }

    /// The leader, once a majority of the nodes that answer agree on one.
    pub fn leader(&mut self) -> u64 {
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

    pub fn node_status(&mut self, id: u64) -> Value {
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
