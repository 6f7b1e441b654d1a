//! The op barrier (`sim::set_op_limit`): a node freezes after exactly its k-th file
//! operation, what follows never completes, a crash clears the limit, and the count is
//! a pure function of the seed.

use crate::common::*;
use sim_fs::sim::{self, CrashConfig, FaultConfig, LatencyConfig};
use sim_fs::{File, OpenOptions};
use sim_runtime::node::Node;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<&'static str>>>;

/// Starts `f` on `node` without waiting for it (the handle detaches on drop).
fn spawn_on<F>(node: &Node, f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    drop(
        madsim::runtime::Handle::current()
            .get_node(node.id())
            .expect("node exists")
            .spawn(sim_runtime::task::Traced::new(f, node.number(), "test")),
    );
}

/// One of every counted operation, in order, logging each as it completes; the names
/// are the ops (`read` is three: open, len, read_at).
const SCRIPT: [&str; 17] = [
    "create_dir_all",
    "create",
    "write_all_at",
    "append",
    "set_len",
    "len",
    "sync_data",
    "sync_dir",
    "read_at",
    "rename",
    "sync_all",
    "metadata",
    "exists",
    "read_dir",
    "read",
    "remove_file",
    "sync_dir",
];

/// Ops `SCRIPT` performs.
const SCRIPT_OPS: u64 = SCRIPT.len() as u64 + 2;

async fn script(log: Log) {
    let done = |what: &'static str| log.lock().unwrap().push(what);
    sim_fs::create_dir_all("/d").await.unwrap();
    done("create_dir_all");
    let f = File::create("/d/a").await.unwrap();
    done("create");
    f.write_all_at(b"hello", 0).await.unwrap();
    done("write_all_at");
    f.append(b" world").await.unwrap();
    done("append");
    f.set_len(8).await.unwrap();
    done("set_len");
    assert_eq!(f.len().await.unwrap(), 8);
    done("len");
    f.sync_data().await.unwrap();
    done("sync_data");
    sim_fs::sync_dir("/d").await.unwrap();
    done("sync_dir");
    let mut buf = [0u8; 5];
    f.read_exact_at(&mut buf, 0).await.unwrap();
    done("read_at");
    sim_fs::rename("/d/a", "/d/b").await.unwrap();
    done("rename");
    f.sync_all().await.unwrap();
    done("sync_all");
    assert_eq!(sim_fs::metadata("/d/b").await.unwrap().len, 8);
    done("metadata");
    assert!(!sim_fs::exists("/d/a").await.unwrap());
    done("exists");
    assert_eq!(sim_fs::read_dir("/d").await.unwrap().len(), 1);
    done("read_dir");
    assert_eq!(sim_fs::read("/d/b").await.unwrap(), b"hello wo");
    done("read");
    // A failed op counts too (it reached the disk model).
    assert!(OpenOptions::new().read(true).open("/d/a").await.is_err());
    sim_fs::remove_file("/d/b").await.unwrap();
    done("remove_file");
    sim_fs::sync_dir("/d").await.unwrap();
    done("sync_dir");
}

/// `SCRIPT_OPS` plus the failed open.
const TOTAL_OPS: u64 = SCRIPT_OPS + 1;

/// How many of `SCRIPT`'s steps complete within `k` ops.
fn steps_within(k: u64) -> usize {
    let mut ops = 0;
    SCRIPT
        .iter()
        .take_while(|&&s| {
            ops += match s {
                "read" => 3,
                "remove_file" => 2, // after the failed open
                _ => 1,
            };
            ops <= k
        })
        .count()
}

/// Runs `SCRIPT` on a fresh node with the limit at `k` (`None`: no limit); returns
/// (ops performed, ops held, the steps that completed).
fn run_script(seed: u64, k: Option<u64>) -> (u64, u64, Vec<&'static str>) {
    run(seed, move || async move {
        let n = new_node("n1");
        let id = n.number();
        sim::set_op_limit(id, k);
        let log = Log::default();
        spawn_on(&n, script(log.clone()));
        sim_runtime::time::sleep(Duration::from_secs(1)).await;
        let first = (sim::ops_performed(id), sim::ops_held(id));
        // Held ops stay held: nothing moves in another second.
        let steps = log.lock().unwrap().len();
        sim_runtime::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((sim::ops_performed(id), sim::ops_held(id)), first);
        assert_eq!(log.lock().unwrap().len(), steps);
        sim::verify_invariants(id).unwrap();
        let done = log.lock().unwrap().clone();
        (first.0, first.1, done)
    })
    .0
}

#[test]
fn barrier_fires_after_exactly_k_ops_and_holds_the_rest() {
    let (total, held, done) = run_script(40, None);
    assert_eq!(total, TOTAL_OPS, "each op of the script counts once");
    assert_eq!(held, 0);
    assert_eq!(done, SCRIPT);
    for k in 0..=TOTAL_OPS {
        let (performed, held, done) = run_script(40, Some(k));
        assert_eq!(performed, k, "limit {k}: exactly k ops ran");
        assert_eq!(
            held,
            u64::from(k < TOTAL_OPS),
            "limit {k}: the next op is held"
        );
        assert_eq!(done, SCRIPT[..steps_within(k)], "limit {k}");
    }
}

#[test]
fn a_crash_lands_exactly_after_the_kth_op() {
    // create, write, sync_data, sync_dir: a crash (losing everything unsynced) after op
    // 3 loses the file, whose entry was never synced; after op 4 the file is there.
    for (k, expect) in [(1, None), (2, None), (3, None), (4, Some(b"data".to_vec()))] {
        let got = run(41, move || async move {
            let n = new_node("n1");
            let id = n.number();
            sim::set_node_fault_config(id, crash_cfg(CrashConfig::lose_all()));
            sim::set_op_limit(id, Some(k));
            spawn_on(&n, async {
                let f = File::create("/f").await.unwrap();
                f.write_all_at(b"data", 0).await.unwrap();
                f.sync_data().await.unwrap();
                sim_fs::sync_dir("/").await.unwrap();
                sim_fs::write("/never", b"x").await.unwrap();
                unreachable!("the fifth op is held");
            });
            sim_runtime::time::sleep(Duration::from_millis(10)).await;
            assert_eq!((sim::ops_performed(id), sim::ops_held(id)), (k, 1));
            crash_restart(&n);
            on(&n, async { read_opt("/f").await }).await
        })
        .0;
        assert_eq!(got, expect, "crash after op {k}");
    }
}

#[test]
fn a_crash_or_kill_clears_the_limit() {
    run(42, || async {
        let n = new_node("n1");
        let id = n.number();
        on(&n, async {
            durable_file("/f", b"x").await;
        })
        .await;
        let base = sim::ops_performed(id);
        assert_eq!(base, 4, "create, write, sync_data, sync_dir");
        sim::set_op_limit(id, Some(base + 1));
        spawn_on(&n, async {
            let _ = sim_fs::read("/f").await;
        });
        sim_runtime::time::sleep(Duration::from_millis(10)).await;
        assert_eq!((sim::ops_performed(id), sim::ops_held(id)), (base + 1, 1));
        crash_restart(&n);
        // The restarted node runs freely; the held count stays until the next limit.
        let read = on(&n, async { read_opt("/f").await }).await;
        assert_eq!(read.unwrap(), b"x");
        assert_eq!((sim::ops_performed(id), sim::ops_held(id)), (base + 4, 1));
        // Process death clears it too.
        sim::set_op_limit(id, Some(base + 4));
        spawn_on(&n, async {
            let _ = sim_fs::exists("/f").await;
        });
        sim_runtime::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sim::ops_held(id), 1);
        n.kill();
        n.restart();
        assert!(on(&n, async { sim_fs::exists("/f").await.unwrap() }).await);
        assert_eq!(sim::ops_performed(id), base + 5);
        // Lifting the limit lets new ops run; other nodes were never limited.
        sim::set_op_limit(id, Some(0));
        sim::set_op_limit(id, None);
        assert!(on(&n, async { sim_fs::exists("/f").await.unwrap() }).await);
        assert!(
            !sim_fs::exists("/f").await.unwrap(),
            "node 0 has its own disk"
        );
        sim::verify_invariants(id).unwrap();
    });
}

/// Concurrent writers with random latency: where each op lands is drawn from the seed,
/// and so is which op the barrier holds — the same on every run of the seed.
fn concurrent(seed: u64, k: Option<u64>) -> (u64, Vec<(usize, u64)>, u64) {
    run(seed, move || async move {
        sim::set_fault_config(FaultConfig {
            latency: LatencyConfig {
                probability: 1.0,
                min_us: 1,
                max_us: 500,
            },
            ..FaultConfig::default()
        });
        let n = new_node("n1");
        let id = n.number();
        sim::set_op_limit(id, k);
        let order = Arc::new(Mutex::new(Vec::new()));
        for t in 0..4usize {
            let order = order.clone();
            spawn_on(&n, async move {
                let f = File::create(format!("/t{t}")).await.unwrap();
                for i in 0..10u64 {
                    f.append(&[t as u8; 100]).await.unwrap();
                    if i % 3 == 2 {
                        f.sync_data().await.unwrap();
                    }
                    order
                        .lock()
                        .unwrap()
                        .push((t, sim::ops_performed(sim_fs::sim::current_node())));
                }
            });
        }
        sim_runtime::time::sleep(Duration::from_secs(1)).await;
        let order = order.lock().unwrap().clone();
        (sim::ops_performed(id), order, sim::ops_held(id))
    })
    .0
}

#[test]
fn op_counts_and_the_held_op_are_the_same_on_every_run_of_a_seed() {
    let (total, order, _) = concurrent(43, None);
    assert_eq!(total, 4 * (1 + 10 + 3));
    assert_eq!(concurrent(43, None), (total, order.clone(), 0));
    assert_ne!(
        concurrent(44, None).1,
        order,
        "another seed interleaves the writers differently"
    );
    for k in [1, 7, 20, total - 1] {
        let a = concurrent(43, Some(k));
        assert_eq!(a, concurrent(43, Some(k)), "limit {k}: same run twice");
        assert_eq!(a.0, k);
        assert!(a.2 >= 1, "limit {k}: the barrier fired");
        // Up to the barrier, the limited run is the unlimited one.
        assert_eq!(a.1[..], order[..a.1.len()], "limit {k}: same prefix");
    }
}
