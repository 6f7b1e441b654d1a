//! Rule 2, continued: open handles and inodes across process death and power loss.

use crate::common::*;
use sim_fs::sim::{self, CrashConfig};
use sim_fs::File;
use std::sync::{Arc, Mutex};

#[test]
fn unlinked_open_file_is_freed_by_power_loss() {
    run(6, || async {
        let n = new_node("n1");
        let id = n.number();
        on(&n, async move {
            let f = durable_file("/f", b"x").await;
            sim_fs::remove_file("/f").await.unwrap();
            sim_fs::sync_dir("/").await.unwrap();
            f.write_all_at(b"still usable", 0).await.unwrap();
            f.sync_data().await.unwrap();
            assert_eq!(sim::stats(id).inodes, 1, "the open handle keeps the inode");
            std::mem::forget(f); // keep the handle open until the crash
        })
        .await;
        crash_restart(&n);
        assert_eq!(sim::stats(id).inodes, 0);
        assert_eq!(sim::durable_paths(id), vec![std::path::PathBuf::from("/")]);
    });
}

#[test]
fn process_death_keeps_page_cache_and_kills_handles() {
    run(7, || async {
        let n = new_node("n1");
        let id = n.number();
        sim::set_node_fault_config(id, crash_cfg(CrashConfig::lose_all()));
        let stash: Arc<Mutex<Option<File>>> = Arc::default();
        let s = stash.clone();
        on(&n, async move {
            let f = durable_file("/f", b"durable").await;
            f.write_all_at(b"CACHED!", 0).await.unwrap();
            *s.lock().unwrap() = Some(f);
        })
        .await;
        n.kill();
        n.restart();
        let after_kill = on(&n, async { read_opt("/f").await.unwrap() }).await;
        assert_eq!(
            after_kill, b"CACHED!",
            "the OS survived: the page cache is intact"
        );
        assert_eq!(sim::durable_contents(id, "/f").unwrap(), b"durable");
        let old = stash.lock().unwrap().take().unwrap();
        let mut buf = [0u8; 7];
        let err = old.read_at(&mut buf, 0).await.unwrap_err();
        assert!(err.to_string().contains("stale handle"), "{err}");
        assert!(old.write_all_at(b"zombie!", 0).await.is_err());
        assert!(old.sync_data().await.is_err());
        drop(old);
        assert_eq!(
            sim::cached_contents(id, "/f").unwrap(),
            b"CACHED!",
            "the old handle touched nothing"
        );
        // Still unsynced: a power loss now drops it.
        crash_restart(&n);
        assert_eq!(
            on(&n, async { read_opt("/f").await.unwrap() }).await,
            b"durable"
        );
    });
}

#[test]
fn handles_opened_before_power_loss_fail_after_it() {
    run(8, || async {
        let n = new_node("n1");
        let id = n.number();
        let stash: Arc<Mutex<Option<File>>> = Arc::default();
        let s = stash.clone();
        on(&n, async move {
            *s.lock().unwrap() = Some(durable_file("/f", b"v1").await);
        })
        .await;
        crash_restart(&n);
        on(&n, async {
            durable_file("/f", b"v2").await;
        })
        .await;
        let old = stash.lock().unwrap().take().unwrap();
        assert!(old.write_all_at(b"XX", 0).await.is_err());
        assert!(old.len().await.is_err());
        assert_eq!(sim::cached_contents(id, "/f").unwrap(), b"v2");
    });
}

/// Issue 19, finding 5 (D54): a directory lock is per simulated disk and dies with its
/// process: a power loss or a kill releases it, so the restarted node locks the
/// directory again; while the process lives, a second locker on that node is refused
/// and another node's disk is unaffected. Fails before D54 (no lock existed).
#[test]
fn a_dir_lock_is_released_by_a_crash_and_a_kill() {
    run(7, || async {
        let n = new_node("n1");
        let other = new_node("n2");
        let lock_d = || async {
            sim_fs::create_dir_all("/d").await.unwrap();
            let lock = sim_fs::lock_dir("/d", "db").await.unwrap();
            let second = sim_fs::lock_dir("/d", "second").await;
            assert!(
                matches!(&second, Err(sim_fs::LockError::Held { holder, .. }) if holder.contains("db")),
                "{second:?}"
            );
            // Held until the process dies.
            std::future::pending::<()>().await;
            drop(lock);
        };
        let held = n.spawn(lock_d());
        sim_runtime::time::sleep(std::time::Duration::from_millis(10)).await;
        // Another node's disk has its own /d.
        on(&other, async {
            sim_fs::create_dir_all("/d").await.unwrap();
            drop(sim_fs::lock_dir("/d", "other").await.unwrap());
        })
        .await;
        crash_restart(&n);
        drop(held);
        on(&n, async {
            // The directory's entry was never synced: recreate it if the crash took it.
            sim_fs::create_dir_all("/d").await.unwrap();
            let lock = sim_fs::lock_dir("/d", "after the crash").await.unwrap();
            std::mem::forget(lock);
        })
        .await;
        n.kill();
        n.restart();
        on(&n, async {
            drop(sim_fs::lock_dir("/d", "after the kill").await.unwrap());
        })
        .await;
    });
}
