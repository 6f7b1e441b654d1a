//! `seedbank bench` from the command line (real world): a tiny run of Seedbank's engine
//! through the child process writes the `--json` contract and the ratio table, removes
//! its data, and a peer engine in a build without `--features peers` is refused with an
//! error that names the feature.
#![cfg(not(madsim))]

use std::path::PathBuf;
use std::process::Command;

fn seedbank() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seedbank"))
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("seedbank-{tag}-{}", std::process::id()))
}

#[test]
fn a_tiny_run_writes_one_json_line_per_workload_and_cleans_up() {
    let dir = temp_dir("bench-cli");
    let json = dir.with_extension("jsonl");
    #[allow(clippy::disallowed_methods)] // a real-world test prepares a real directory
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = seedbank()
        .args([
            "bench",
            "--engines",
            "seedbank",
            "--workload",
            "fill",
            "read-1",
            "ycsb-a",
        ])
        .args(["--keys", "2000", "--secs", "0.2", "--dir"])
        .arg(&dir)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run seedbank bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    #[allow(clippy::disallowed_methods)] // reads the file the command wrote
    let lines = std::fs::read_to_string(&json).expect("the --json file");
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    // The disk probes (engine `disk`) come before and after the engines' records.
    let (disk, records): (Vec<_>, Vec<_>) = records.iter().partition(|r| r["engine"] == "disk");
    let probes: Vec<&str> = disk
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        probes,
        [
            "fdatasync-prealloc",
            "fdatasync-append",
            "fdatasync-prealloc-end",
            "fdatasync-append-end"
        ]
    );
    for r in &disk {
        assert!(r["p50_us"].as_f64().unwrap() > 0.0, "{r}");
    }
    let workloads: Vec<&str> = records
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(workloads, ["fill", "read-1", "ycsb-a"]);
    for r in &records {
        assert_eq!(r["engine"], "seedbank");
        assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(
            r["p99_us"].as_f64().unwrap() >= r["p50_us"].as_f64().unwrap(),
            "{r}"
        );
        assert!(r["disk_mb"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r.get("rss_mb").is_some(), "{r}");
    }
    assert_eq!(records[0]["ops"], 2000, "fill loads every key");
    assert!(
        stdout.contains("ycsb-a") && stdout.contains("1.00x"),
        "{stdout}"
    );
    #[allow(clippy::disallowed_methods)] // checks what the command left behind
    let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert!(
        left.is_empty(),
        "the run's data directory is removed: {left:?}"
    );
    #[allow(clippy::disallowed_methods)] // cleans up after the test
    {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&json);
    }
}

#[test]
fn peers_need_the_feature_and_bad_names_are_refused() {
    if cfg!(feature = "peers") {
        return; // this build has them; the refusal is for default builds
    }
    let peer = seedbank()
        .args(["bench", "--engines", "seedbank,rocksdb", "--keys", "200"])
        .output()
        .expect("run seedbank bench");
    let stderr = String::from_utf8_lossy(&peer.stderr);
    assert_eq!(peer.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`peers` feature") && stderr.contains("rocksdb"),
        "{stderr}"
    );

    let bad = seedbank()
        .args(["bench", "--workload", "fil"])
        .output()
        .expect("run seedbank bench");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown workload `fil`"), "{stderr}");
}

#[test]
fn two_scales_give_two_tables_with_amplification_per_engine() {
    let dir = temp_dir("bench-scales");
    let json = dir.with_extension("jsonl");
    #[allow(clippy::disallowed_methods)] // a real-world test prepares a real directory
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = seedbank()
        .args([
            "bench",
            "--engines",
            "seedbank",
            "--workload",
            "fill,read-1,ycsb-a",
        ])
        .args(["--scales", "2k,1000", "--secs", "0.2", "--dir"])
        .arg(&dir)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run seedbank bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    #[allow(clippy::disallowed_methods)] // reads the file the command wrote
    let lines = std::fs::read_to_string(&json).expect("the --json file");
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter(|r| r["engine"] == "seedbank")
        .collect();
    let shape: Vec<(u64, &str)> = records
        .iter()
        .map(|r| (r["keys"].as_u64().unwrap(), r["workload"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shape,
        [
            (1000, "fill"),
            (1000, "read-1"),
            (1000, "ycsb-a"),
            (2000, "fill"),
            (2000, "read-1"),
            (2000, "ycsb-a")
        ],
        "smallest scale first"
    );
    for r in &records {
        let keys = r["keys"].as_u64().unwrap();
        let live_mb = (keys * 116) as f64 / 1048576.0;
        let s_amp = r["space_amp"].as_f64().expect("space_amp");
        let disk = r["disk_mb"].as_f64().unwrap();
        assert!(
            (s_amp - disk / live_mb).abs() < 1e-6 * s_amp.max(1.0),
            "{r}"
        );
        if r["workload"] == "read-1" {
            assert_eq!(r["user_bytes"], 0, "{r}");
            assert!(r.get("write_amp").is_none(), "{r}");
        } else {
            let user = r["user_bytes"].as_u64().unwrap();
            if r["workload"] == "fill" {
                assert_eq!(user, keys * 116, "{r}");
            } else {
                assert!(user > 0 && user % 116 == 0, "{r}");
            }
            // The engine writes at least what it was given (its WAL alone does).
            let own = r["engine_write_amp"].as_f64().expect("Seedbank counts");
            assert!(own >= 1.0, "{r}");
            assert!(r["written_counter"].is_string(), "{r}");
            assert!(r["write_amp"].as_f64().is_some(), "{r}");
        }
    }
    let headings: Vec<&str> = stdout.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(headings.len(), 2, "{stdout}");
    assert!(headings[0].starts_with("== 1,000 keys"), "{stdout}");
    assert!(headings[1].starts_with("== 2,000 keys"), "{stdout}");
    assert!(stdout.contains("s-amp fill"), "{stdout}");
    #[allow(clippy::disallowed_methods)] // cleans up after the test
    {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&json);
    }
}
