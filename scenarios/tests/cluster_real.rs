//! The replicated database in the real world: three `seedbank node` processes on
//! loopback TCP, driven through `seedbank shell --connect … --json`. The test appends to
//! a list with read-modify-write transactions and writes unique keys, SIGKILLs the
//! leader mid-run, keeps writing, restarts it, and checks that every acknowledged write
//! is readable, that each append appears exactly once (a commit applied twice, or
//! acknowledged without being applied, would show), and that the restarted node
//! catches up. Then SIGTERM stops every node cleanly. The cluster runs the README's
//! recipe: credentials from `seedbank certs`, mutual TLS between nodes and the shell.
#![cfg(not(madsim))]

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

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
    let mut cluster = Cluster::new("cluster");
    let dir = cluster.dir.clone();
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
