//! Rules 3-5 of the crash model: fsync failure (fsyncgate), EIO, ENOSPC, latency, bit
//! flips, fault configuration, determinism, and the missing-plugin message.

use crate::common::*;
use sim_fs::sim::{self, CrashConfig, FaultConfig, LatencyConfig};
use sim_fs::File;
use std::io::ErrorKind;

fn with<F: FnOnce(&mut FaultConfig)>(f: F) -> FaultConfig {
    let mut c = FaultConfig::default();
    f(&mut c);
    c
}

// ---- Rule 3: fsyncgate ----

#[test]
fn failed_fsync_drops_pending_writes_and_retry_lies() {
    let (_, faults) = run(10, || async {
        let n = new_node("n1");
        let id = n.number();
        // keep_all: any write still pending at the crash would survive, so losing it
        // proves the failed sync dropped it.
        sim::set_node_fault_config(id, crash_cfg(CrashConfig::keep_all()));
        on(&n, async move {
            let f = durable_file("/f", b"old").await;
            f.write_all_at(b"new", 0).await.unwrap();
            sim::set_node_fault_config(id, with(|c| c.sync_eio = 1.0));
            let err = f.sync_data().await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(5), "EIO");
            sim::set_node_fault_config(id, crash_cfg(CrashConfig::keep_all()));
            f.sync_data().await.expect("the retried sync succeeds");
            assert_eq!(
                sim_fs::read("/f").await.unwrap(),
                b"new",
                "still in the page cache"
            );
            assert_eq!(
                sim::durable_contents(id, "/f").unwrap(),
                b"old",
                "but never on disk"
            );
            assert_eq!(sim::pending_data_ops(id, "/f"), Some(0));
            sim::verify_invariants(id).unwrap();
        })
        .await;
        crash_restart(&n);
        assert_eq!(
            on(&n, async { read_opt("/f").await.unwrap() }).await,
            b"old"
        );
    });
    assert_eq!(fault(&faults, "fs.fsync_eio"), 1);
}

#[test]
fn failed_sync_dir_drops_pending_entries() {
    let (_, faults) = run(11, || async {
        let n = new_node("n1");
        let id = n.number();
        on(&n, async move {
            let f = File::create("/f").await.unwrap();
            f.write_all_at(b"data", 0).await.unwrap();
            f.sync_data().await.unwrap();
            sim::set_node_fault_config(id, with(|c| c.sync_eio = 1.0));
            assert_eq!(
                sim_fs::sync_dir("/").await.unwrap_err().raw_os_error(),
                Some(5)
            );
            sim::set_node_fault_config(id, crash_cfg(CrashConfig::keep_all()));
            sim_fs::sync_dir("/").await.unwrap();
            assert!(sim_fs::exists("/f").await.unwrap());
        })
        .await;
        crash_restart(&n);
        assert_eq!(on(&n, async { read_opt("/f").await }).await, None);
    });
    assert_eq!(fault(&faults, "fs.fsync_eio"), 1);
}

// ---- Rule 4: EIO, ENOSPC, latency, bit flips ----

#[test]
fn read_and_write_eio_fail_the_op_and_change_nothing() {
    let (counts, faults) = run(12, || async {
        let f = File::create("/f").await.unwrap();
        f.write_all_at(b"before", 0).await.unwrap();
        sim::set_fault_config(with(|c| {
            c.read_eio = 1.0;
            c.write_eio = 1.0;
        }));
        let mut buf = [0u8; 6];
        assert_eq!(
            f.read_at(&mut buf, 0).await.unwrap_err().raw_os_error(),
            Some(5)
        );
        assert_eq!(
            f.write_all_at(b"after!", 0)
                .await
                .unwrap_err()
                .raw_os_error(),
            Some(5)
        );
        assert_eq!(f.append(b"more").await.unwrap_err().raw_os_error(), Some(5));
        assert_eq!(sim::cached_contents(0, "/f").unwrap(), b"before");
        assert_eq!(sim::pending_data_ops(0, "/f"), Some(1));
        // At a partial rate, some operations fail and some do not.
        sim::set_fault_config(with(|c| c.read_eio = 0.3));
        let mut fails = 0;
        for _ in 0..200 {
            fails += f.read_at(&mut buf, 0).await.is_err() as u32;
        }
        fails
    });
    assert!(
        (20..120).contains(&counts),
        "{counts} of 200 reads failed at rate 0.3"
    );
    assert_eq!(fault(&faults, "fs.read_eio"), 1 + u64::from(counts));
    assert_eq!(fault(&faults, "fs.write_eio"), 2);
}

#[test]
fn enospc_past_node_capacity() {
    let (_, faults) = run(13, || async {
        let n = new_node("n1");
        let id = n.number();
        sim::set_node_fault_config(id, with(|c| c.capacity_bytes = Some(10_000)));
        on(&n, async {
            let a = File::create("/a").await.unwrap();
            a.write_all_at(&[1; 8000], 0).await.unwrap();
            let b = File::create("/b").await.unwrap();
            let err = b.write_all_at(&[2; 4000], 0).await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(28), "ENOSPC");
            assert_eq!(b.len().await.unwrap(), 0, "nothing written");
            assert_eq!(b.set_len(5000).await.unwrap_err().raw_os_error(), Some(28));
            b.write_all_at(&[2; 2000], 0).await.unwrap(); // exactly full
            a.write_all_at(&[3; 8000], 0)
                .await
                .expect("overwriting needs no space");
            assert_eq!(a.append(b"x").await.unwrap_err().raw_os_error(), Some(28));
            drop(a);
            sim_fs::remove_file("/a").await.unwrap();
            b.write_all_at(&[2; 4000], 2000)
                .await
                .expect("space freed by the remove");
        })
        .await;
        // The capacity is per node: node 0 has none.
        File::create("/big")
            .await
            .unwrap()
            .write_all_at(&[0; 50_000], 0)
            .await
            .unwrap();
    });
    assert_eq!(fault(&faults, "fs.enospc"), 3);
}

#[test]
fn latency_is_virtual_time_drawn_from_config() {
    let ((slow, fast), faults) = run(14, || async {
        let f = File::create("/f").await.unwrap();
        let t0 = sim_runtime::time::elapsed();
        for i in 0..10u64 {
            f.write_all_at(b"x", i).await.unwrap();
        }
        let fast = sim_runtime::time::elapsed() - t0;
        sim::set_fault_config(with(|c| {
            c.latency = LatencyConfig {
                probability: 1.0,
                min_us: 2_000,
                max_us: 3_000,
            }
        }));
        let t1 = sim_runtime::time::elapsed();
        for i in 0..10u64 {
            f.write_all_at(b"y", i).await.unwrap();
        }
        (sim_runtime::time::elapsed() - t1, fast)
    });
    assert_eq!(
        fast,
        std::time::Duration::ZERO,
        "no latency configured: no time passes"
    );
    assert!(
        slow >= std::time::Duration::from_millis(20)
            && slow <= std::time::Duration::from_millis(31),
        "{slow:?}"
    );
    assert_eq!(fault(&faults, "fs.latency"), 10);
}

#[test]
fn power_loss_bitflips_corrupt_one_bit_of_durable_data() {
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let d = data.clone();
    let (img, faults) = run(15, move || async move {
        let n = new_node("n1");
        sim::set_node_fault_config(n.number(), with(|c| c.crash_bitflip = 1.0));
        on(&n, async move { drop(durable_file("/f", &d).await) }).await;
        crash_restart(&n);
        on(&n, async { read_opt("/f").await.unwrap() }).await
    });
    let diff = bit_diff(&data, &img);
    assert_eq!(diff.len(), 1, "exactly one byte differs: {diff:?}");
    assert_eq!(diff[0].1, 1, "by exactly one bit");
    assert_eq!(fault(&faults, "fs.bitflip"), 1);
}

#[test]
fn corrupt_sector_flips_one_bit_in_that_sector() {
    let (_, faults) = run(16, || async {
        let data: Vec<u8> = vec![0x5A; 4 * 512];
        let f = durable_file("/f", &data).await;
        let (byte, bit) = sim::corrupt_sector(0, "/f", 2).unwrap();
        assert!((1024..1536).contains(&byte) && bit < 8);
        let mut now = vec![0u8; data.len()];
        f.read_exact_at(&mut now, 0).await.unwrap();
        let diff = bit_diff(&data, &now);
        assert_eq!(
            diff,
            vec![(byte as usize, 1)],
            "reads return the flipped byte"
        );
        assert_eq!(sim::durable_contents(0, "/f").unwrap(), now);
        let err = sim::corrupt_sector(0, "/f", 4).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            sim::corrupt_sector(0, "/nope", 0).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        sim::verify_invariants(0).unwrap();
    });
    assert_eq!(fault(&faults, "fs.bitflip"), 1);
}

/// A flip in the newest synced write (or after its start) is also counted as
/// `fs.bitflip_tail`: it reads like a torn tail to a log. One in bytes an older sync
/// settled is not — a log must refuse that as damage, not cut there.
#[test]
fn a_flip_in_the_newest_synced_write_is_counted_as_a_tail_flip() {
    let (_, faults) = run(18, || async {
        let f = durable_file("/log", &[0x11; 2 * 512]).await;
        f.write_all_at(&[0x22; 2 * 512], 2 * 512).await.unwrap();
        f.sync_data().await.unwrap();
        // An unsynced append does not move the tail: it is not durable yet.
        f.write_all_at(&[0x33; 512], 4 * 512).await.unwrap();
        let (byte, _) = sim::corrupt_sector(0, "/log", 0).unwrap();
        assert!(byte < 512);
        assert_eq!(
            sim_runtime::faults::get("fs.bitflip_tail"),
            0,
            "sector 0 is older"
        );
        let (byte, _) = sim::corrupt_sector(0, "/log", 3).unwrap();
        assert!((3 * 512..4 * 512).contains(&byte));
        assert_eq!(sim_runtime::faults::get("fs.bitflip_tail"), 1);
        let (_, _) = sim::corrupt_sector(0, "/log", 1).unwrap();
        assert_eq!(
            sim_runtime::faults::get("fs.bitflip_tail"),
            1,
            "sector 1 is older"
        );
    });
    assert_eq!(fault(&faults, "fs.bitflip"), 3);
    assert_eq!(fault(&faults, "fs.bitflip_tail"), 1);
}

// ---- Rule 5: configuration, determinism, registration ----

#[test]
fn per_node_config_overrides_global() {
    run(17, || async {
        let n = new_node("n1");
        let id = n.number();
        sim::set_fault_config(with(|c| c.read_eio = 1.0));
        sim::set_node_fault_config(id, FaultConfig::default());
        assert_eq!(sim::fault_config(0).read_eio, 1.0);
        assert_eq!(sim::fault_config(id).read_eio, 0.0);
        let f = File::create("/f").await.unwrap();
        let mut buf = [0u8; 1];
        assert!(
            f.read_at(&mut buf, 0).await.is_err(),
            "node 0 follows the global config"
        );
        on(&n, async {
            let f = File::create("/f").await.unwrap();
            let mut buf = [0u8; 1];
            f.read_at(&mut buf, 0).await.expect("n1 has its own config");
        })
        .await;
        sim::clear_node_fault_config(id);
        assert_eq!(sim::fault_config(id).read_eio, 1.0);
    });
}

/// A workload touching every fault kind, with a crash in the middle.
async fn chaos_workload() -> Vec<String> {
    let n = new_node("n1");
    sim::set_fault_config(FaultConfig::chaos());
    on(&n, async {
        let _ = sim_fs::create_dir_all("/db").await;
        for i in 0..20u64 {
            if let Ok(f) = File::create(format!("/db/{}", i % 4)).await {
                let _ = f.write_all_at(&[i as u8; 1000], i * 100).await;
                let _ = f.append(b"rec").await;
                if i % 3 == 0 {
                    let _ = f.sync_data().await;
                }
            }
            let _ = sim_fs::sync_dir("/db").await;
        }
    })
    .await;
    crash_restart(&n);
    on(&n, async {
        let mut out = Vec::new();
        for p in sim_fs::read_dir("/db").await.unwrap_or_default() {
            out.push(format!(
                "{}: {:?}",
                p.display(),
                sim_fs::read(&p).await.map(|v| v.len())
            ));
        }
        out
    })
    .await
}

#[test]
fn same_seed_same_trace_digest() {
    let a = sim_runtime::sim::Sim::new(21)
        .plugin::<sim_fs::SimFs>()
        .run(chaos_workload);
    let b = sim_runtime::sim::Sim::new(21)
        .plugin::<sim_fs::SimFs>()
        .run(chaos_workload);
    let c = sim_runtime::sim::Sim::new(22)
        .plugin::<sim_fs::SimFs>()
        .run(chaos_workload);
    assert!(
        a.output.is_ok() && b.output.is_ok(),
        "{:?} {:?}",
        a.output,
        b.output
    );
    assert_eq!(a.trace.digest, b.trace.digest);
    assert_eq!(a.trace.count, b.trace.count);
    assert_eq!(a.faults, b.faults);
    assert_eq!(a.output, b.output);
    assert_ne!(
        a.trace.digest, c.trace.digest,
        "another seed takes another path"
    );
    let file_events = a
        .trace
        .events
        .iter()
        .filter(|e| e.kind == sim_runtime::EventKind::File)
        .count();
    assert!(file_events > 40, "file ops are traced ({file_events})");
    assert!(a
        .trace
        .events
        .iter()
        .any(|e| e.detail.starts_with("power loss node")));
    assert!(
        a.trace
            .events
            .iter()
            .any(|e| e.kind == sim_runtime::EventKind::File
                && e.file.ends_with("crash_model/faults.rs")),
        "events carry the caller's location"
    );
}

#[test]
fn missing_plugin_panics_with_registration_instructions() {
    let report = sim_runtime::sim::Sim::new(1).run(|| async { sim_fs::write("/x", b"a").await });
    let msg = report.output.unwrap_err();
    assert!(msg.contains("SimFs plugin is not registered"), "{msg}");
    assert!(msg.contains(".plugin::<sim_fs::SimFs>()"), "{msg}");
}
