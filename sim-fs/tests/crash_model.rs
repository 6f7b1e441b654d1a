//! The crash model of the simulated disk, one test per rule: rules 1 and 2 (page cache,
//! durability, power loss) here, open handles across process death and power loss in
//! `crash_model/handles.rs`, rules 3-5 (fsyncgate, EIO, ENOSPC, latency, bit flips,
//! configuration, determinism) in `crash_model/faults.rs`, the op barrier (a crash
//! after exactly the k-th operation) in `crash_model/barrier.rs`. Crashes go through
//! sim-runtime's `Node::crash`, so the madsim plugin path (`reset_node` +
//! `is_power_loss`) is what is exercised.
#![cfg(madsim)]
#![allow(clippy::unwrap_used)] // an integration test crate: unwrap is an assertion (D70)

mod common;

use common::*;
use sim_fs::sim::{self, CrashConfig};
use sim_fs::File;
use std::collections::BTreeSet;

// ---- Rule 1: the page cache, and what makes things durable ----

#[test]
fn write_is_visible_at_once_and_durable_only_after_sync() {
    run(1, || async {
        let n = new_node("n1");
        sim::set_node_fault_config(n.number(), crash_cfg(CrashConfig::lose_all()));
        let id = n.number();
        on(&n, async move {
            let f = durable_file("/f", b"").await;
            f.write_all_at(b"hello", 0).await.unwrap();
            let mut buf = [0u8; 5];
            f.read_exact_at(&mut buf, 0).await.unwrap();
            assert_eq!(&buf, b"hello", "a write is visible at once");
            assert_eq!(
                sim::durable_contents(id, "/f").unwrap(),
                b"",
                "but not durable"
            );
            assert_eq!(sim::pending_data_ops(id, "/f"), Some(1));
            f.sync_data().await.unwrap();
            assert_eq!(sim::durable_contents(id, "/f").unwrap(), b"hello");
            assert_eq!(sim::pending_data_ops(id, "/f"), Some(0));
            f.write_all_at(b"HELLO, unsynced", 0).await.unwrap();
        })
        .await;
        crash_restart(&n);
        let after = on(&n, async { read_opt("/f").await }).await;
        assert_eq!(
            after.unwrap(),
            b"hello",
            "only the synced write survives lose_all"
        );
    });
}

#[test]
fn sync_covers_only_its_own_file() {
    run(2, || async {
        let n = new_node("n1");
        sim::set_node_fault_config(n.number(), crash_cfg(CrashConfig::lose_all()));
        on(&n, async {
            let a = durable_file("/a", b"").await;
            let b = durable_file("/b", b"").await;
            a.write_all_at(b"aaaa", 0).await.unwrap();
            b.write_all_at(b"bbbb", 0).await.unwrap();
            a.sync_data().await.unwrap();
        })
        .await;
        crash_restart(&n);
        let (a, b) = on(&n, async { (read_opt("/a").await, read_opt("/b").await) }).await;
        assert_eq!(a.unwrap(), b"aaaa");
        assert_eq!(
            b.unwrap(),
            b"",
            "syncing /a must not make /b's write durable"
        );
    });
}

#[test]
fn synced_data_without_dir_sync_vanishes_on_power_loss() {
    // Deterministically with every unsynced dir op lost...
    run(3, || async {
        let n = new_node("n1");
        let id = n.number();
        sim::set_node_fault_config(id, crash_cfg(CrashConfig::lose_all()));
        on(&n, async move {
            let f = File::create("/f").await.unwrap();
            f.write_all_at(b"synced data", 0).await.unwrap();
            f.sync_all().await.unwrap();
            assert_eq!(sim::synced_contents(id, "/f").unwrap(), b"synced data");
            assert_eq!(sim::durable_contents(id, "/f"), None, "entry not durable");
        })
        .await;
        crash_restart(&n);
        let (exists, listing) = on(&n, async {
            (
                sim_fs::exists("/f").await.unwrap(),
                sim_fs::read_dir("/").await.unwrap(),
            )
        })
        .await;
        assert!(!exists && listing.is_empty());
        assert_eq!(
            sim::stats(id).inodes,
            0,
            "the inode without an entry is freed"
        );
        assert!(sim::last_crash_report(id).unwrap().lost_dir_ops >= 1);
    });
    // ...and, under the default model, sometimes (never half: data was synced).
    let mut outcomes = BTreeSet::new();
    for seed in 0..64 {
        let (out, _) = run(seed, || async {
            let n = new_node("n1");
            on(&n, async {
                let f = File::create("/f").await.unwrap();
                f.write_all_at(b"synced data", 0).await.unwrap();
                f.sync_data().await.unwrap();
            })
            .await;
            crash_restart(&n);
            on(&n, async { read_opt("/f").await }).await
        });
        assert!(
            out.is_none() || out.as_deref() == Some(&b"synced data"[..]),
            "seed {seed}: {out:?}"
        );
        outcomes.insert(out.is_some());
    }
    assert_eq!(outcomes.len(), 2, "both vanished and survived must occur");
}

#[test]
fn sync_dir_makes_entries_durable_and_parents_must_be_synced_too() {
    for seed in 0..16 {
        let (out, _) = run(seed, || async {
            let n = new_node("n1");
            sim::set_node_fault_config(n.number(), crash_cfg(CrashConfig::lose_all()));
            on(&n, async {
                sim_fs::create_dir_all("/a/b").await.unwrap();
                sim_fs::sync_dir("/").await.unwrap();
                durable_file("/top", b"t").await;
                // /a/b/f's entry is synced, but /a/b's own entry (in /a) is not.
                durable_file("/a/b/f", b"f").await;
                sim_fs::create_dir_all("/c").await.unwrap();
                sim_fs::sync_dir("/").await.unwrap();
                durable_file("/c/g", b"g").await;
            })
            .await;
            crash_restart(&n);
            on(&n, async {
                (
                    read_opt("/top").await,
                    sim_fs::exists("/a").await.unwrap(),
                    sim_fs::exists("/a/b").await.unwrap(),
                    read_opt("/a/b/f").await,
                    read_opt("/c/g").await,
                )
            })
            .await
        });
        assert_eq!(out.0.as_deref(), Some(&b"t"[..]), "seed {seed}");
        assert!(out.1, "seed {seed}: /a was synced into /");
        assert!(
            !out.2 && out.3.is_none(),
            "seed {seed}: /a never synced, so /a/b and /a/b/f are gone"
        );
        assert_eq!(out.4.as_deref(), Some(&b"g"[..]), "seed {seed}");
    }
}

#[test]
fn rename_is_durable_only_after_destination_parent_sync() {
    for sync in [false, true] {
        let (out, _) = run(4, move || async move {
            let n = new_node("n1");
            sim::set_node_fault_config(n.number(), crash_cfg(CrashConfig::lose_all()));
            on(&n, async move {
                sim_fs::create_dir_all("/x").await.unwrap();
                sim_fs::create_dir_all("/y").await.unwrap();
                durable_file("/cur", b"v1").await;
                durable_file("/tmp", b"v2").await; // syncs "/": everything so far is durable
                durable_file("/x/m", b"m").await;
                sim_fs::rename("/tmp", "/cur").await.unwrap();
                assert_eq!(sim_fs::read("/cur").await.unwrap(), b"v2");
                // Cross-directory: only the destination's parent makes it durable.
                sim_fs::rename("/x/m", "/y/m").await.unwrap();
                sim_fs::sync_dir("/x").await.unwrap();
                if sync {
                    sim_fs::sync_dir("/").await.unwrap();
                    sim_fs::sync_dir("/y").await.unwrap();
                }
            })
            .await;
            crash_restart(&n);
            on(&n, async {
                let r = |p: &'static str| async move { read_opt(p).await };
                (
                    r("/cur").await,
                    r("/tmp").await,
                    r("/x/m").await,
                    r("/y/m").await,
                )
            })
            .await
        });
        let s = |v: &[u8]| Some(v.to_vec());
        if sync {
            assert_eq!(out, (s(b"v2"), None, None, s(b"m")));
        } else {
            assert_eq!(
                out,
                (s(b"v1"), s(b"v2"), s(b"m"), None),
                "unsynced renames are undone"
            );
        }
    }
}

#[test]
fn remove_is_durable_only_after_dir_sync() {
    for sync in [false, true] {
        let (out, _) = run(5, move || async move {
            let n = new_node("n1");
            sim::set_node_fault_config(n.number(), crash_cfg(CrashConfig::lose_all()));
            on(&n, async move {
                durable_file("/f", b"data").await;
                sim_fs::remove_file("/f").await.unwrap();
                assert!(!sim_fs::exists("/f").await.unwrap());
                if sync {
                    sim_fs::sync_dir("/").await.unwrap();
                }
            })
            .await;
            crash_restart(&n);
            on(&n, async { read_opt("/f").await }).await
        });
        if sync {
            assert_eq!(out, None);
        } else {
            assert_eq!(
                out.as_deref(),
                Some(&b"data"[..]),
                "an unsynced remove is undone"
            );
        }
    }
}

// ---- Rule 2: power loss ----

#[test]
fn unsynced_write_survives_whole_torn_or_lost_on_sector_boundaries() {
    const OLD: u8 = 0xAA;
    const NEW: u8 = 0xBB;
    let (off, len) = (700usize, 2000usize); // sectors boundaries inside: 1024..=2560
    let mut seen = BTreeSet::new();
    let (mut torn, mut garbage, mut lost) = (0u64, 0u64, 0u64);
    let (mut c_torn, mut c_garbage, mut c_lost) = (0u64, 0u64, 0u64);
    for seed in 0..64 {
        let (img, faults) = run(seed, move || async move {
            let n = new_node("n1");
            sim::set_node_fault_config(
                n.number(),
                crash_cfg(CrashConfig {
                    reorder: false,
                    ..CrashConfig::default()
                }),
            );
            on(&n, async move {
                let f = durable_file("/f", &[OLD; 4096]).await;
                f.write_all_at(&[NEW; 2000], off as u64).await.unwrap();
            })
            .await;
            crash_restart(&n);
            on(&n, async { read_opt("/f").await.unwrap() }).await
        });
        assert_eq!(img.len(), 4096, "seed {seed}");
        assert!(
            img[..off]
                .iter()
                .chain(&img[off + len..])
                .all(|&b| b == OLD),
            "seed {seed}: outside the write"
        );
        let w = &img[off..off + len];
        let kind = if w.iter().all(|&b| b == NEW) {
            "whole"
        } else if w.iter().all(|&b| b == OLD) {
            lost += 1;
            "lost"
        } else {
            let first_not_new = off + w.iter().position(|&b| b != NEW).unwrap();
            torn += 1;
            if img[first_not_new..off + len].iter().all(|&b| b == OLD) {
                let cut = first_not_new;
                assert!(
                    cut % 512 == 0 && cut > off,
                    "seed {seed}: tear at {cut} is not a sector boundary"
                );
                "torn-old"
            } else {
                // Garbage may begin with a few bytes that happen to equal NEW.
                let cut = first_not_new / 512 * 512;
                assert!(
                    cut > off && first_not_new - cut < 8,
                    "seed {seed}: tear near {first_not_new}"
                );
                garbage += 1;
                "torn-garbage"
            }
        };
        seen.insert(kind);
        c_torn += fault(&faults, "fs.torn_write");
        c_garbage += fault(&faults, "fs.garbage");
        c_lost += fault(&faults, "fs.lost_write");
    }
    assert_eq!(
        seen,
        BTreeSet::from(["whole", "lost", "torn-old", "torn-garbage"])
    );
    assert_eq!(
        (c_torn, c_garbage, c_lost),
        (torn, garbage, lost),
        "counters match outcomes"
    );
}

#[test]
fn surviving_writes_land_out_of_order() {
    for reorder in [true, false] {
        let mut finals = BTreeSet::new();
        let mut reorders = 0;
        for seed in 0..64 {
            let (img, faults) = run(seed, move || async move {
                let n = new_node("n1");
                sim::set_node_fault_config(
                    n.number(),
                    crash_cfg(CrashConfig {
                        reorder,
                        ..CrashConfig::keep_all()
                    }),
                );
                on(&n, async {
                    let f = durable_file("/f", b"").await;
                    f.write_all_at(&[b'A'; 512], 0).await.unwrap();
                    f.write_all_at(&[b'B'; 512], 0).await.unwrap();
                    f.write_all_at(&[b'C'; 512], 512).await.unwrap();
                })
                .await;
                crash_restart(&n);
                on(&n, async { read_opt("/f").await.unwrap() }).await
            });
            assert_eq!(img.len(), 1024, "seed {seed}: every write survived");
            assert!(img[512..].iter().all(|&b| b == b'C'));
            finals.insert(img[0]);
            reorders += fault(&faults, "fs.reorder");
        }
        if reorder {
            assert_eq!(
                finals,
                BTreeSet::from([b'A', b'B']),
                "the older write must sometimes land last"
            );
            assert!(reorders > 0);
        } else {
            assert_eq!(finals, BTreeSet::from([b'B']));
            assert_eq!(reorders, 0);
        }
    }
}

#[test]
fn unsynced_set_len_may_be_lost_synced_one_is_not() {
    let mut lens = BTreeSet::new();
    let mut lost = 0;
    for seed in 0..64 {
        let (out, faults) = run(seed, || async {
            let n = new_node("n1");
            sim::set_node_fault_config(n.number(), crash_cfg(CrashConfig::default()));
            on(&n, async {
                let data: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
                let f = durable_file("/f", &data).await;
                let g = durable_file("/g", &data).await;
                f.set_len(100).await.unwrap();
                g.set_len(200).await.unwrap();
                g.sync_data().await.unwrap();
            })
            .await;
            crash_restart(&n);
            on(&n, async {
                (read_opt("/f").await.unwrap(), read_opt("/g").await.unwrap())
            })
            .await
        });
        let data: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        assert!(
            out.0 == data || out.0 == data[..100],
            "seed {seed}: f has {} bytes",
            out.0.len()
        );
        assert_eq!(
            out.1,
            data[..200],
            "seed {seed}: a synced set_len is durable"
        );
        lens.insert(out.0.len());
        lost += fault(&faults, "fs.lost_set_len");
    }
    assert_eq!(lens, BTreeSet::from([100, 4096]));
    assert!(lost > 0);
}

#[test]
fn unsynced_dir_ops_are_lost_independently_and_survivors_apply_in_order() {
    let mut outcomes = BTreeSet::new();
    let mut lost = 0;
    for seed in 0..64 {
        let (out, faults) = run(seed, || async {
            let n = new_node("n1");
            sim::set_node_fault_config(
                n.number(),
                crash_cfg(CrashConfig {
                    dir_op_lost: 0.5,
                    ..CrashConfig::keep_all()
                }),
            );
            on(&n, async {
                let f = File::create("/x").await.unwrap(); // op 1: create x
                f.write_all_at(b"X", 0).await.unwrap();
                f.sync_data().await.unwrap();
                sim_fs::rename("/x", "/y").await.unwrap(); // op 2: rename x -> y
                durable_file("/keep", b"k").await; // synced with "/": commits ops 1-3
                let g = File::create("/z").await.unwrap(); // op 4, unsynced
                g.sync_data().await.unwrap();
                sim_fs::rename("/z", "/w").await.unwrap(); // op 5, unsynced
            })
            .await;
            crash_restart(&n);
            on(&n, async { sim_fs::read_dir("/").await.unwrap() }).await
        });
        let names: Vec<String> = out
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into())
            .collect();
        assert!(
            names.contains(&"keep".into()) && names.contains(&"y".into()),
            "seed {seed}: synced ops kept: {names:?}"
        );
        assert!(
            !names.contains(&"x".into()),
            "seed {seed}: the synced rename removed x: {names:?}"
        );
        assert!(
            !(names.contains(&"z".into()) && names.contains(&"w".into())),
            "seed {seed}: z and w both: {names:?}"
        );
        let tail: Vec<String> = names.into_iter().filter(|n| n == "z" || n == "w").collect();
        outcomes.insert(tail);
        lost += fault(&faults, "fs.lost_dir_op");
    }
    let expect: BTreeSet<Vec<String>> = [vec![], vec!["z".into()], vec!["w".into()]]
        .into_iter()
        .collect();
    assert_eq!(
        outcomes, expect,
        "create z / rename z->w each survive or not, never both names"
    );
    assert!(lost > 0);
}

#[test]
fn dir_ops_that_no_longer_apply_are_skipped() {
    let mut skipped = 0;
    let mut kinds = BTreeSet::new();
    for seed in 0..64 {
        let (kind, _) = run(seed, || async {
            let n = new_node("n1");
            let id = n.number();
            sim::set_node_fault_config(
                id,
                crash_cfg(CrashConfig {
                    dir_op_lost: 0.5,
                    ..CrashConfig::keep_all()
                }),
            );
            on(&n, async {
                durable_file("/d", b"file").await; // durable: /d is a file
                sim_fs::remove_file("/d").await.unwrap(); // may be lost...
                sim_fs::create_dir_all("/d").await.unwrap(); // ...then this mkdir no longer applies
            })
            .await;
            crash_restart(&n);
            let kind = on(&n, async {
                match sim_fs::metadata("/d").await {
                    Ok(m) if m.is_dir => "dir",
                    Ok(_) => "file",
                    Err(_) => "none",
                }
            })
            .await;
            (kind, sim::last_crash_report(id).unwrap().skipped_dir_ops)
        });
        kinds.insert(kind.0);
        skipped += kind.1;
    }
    assert_eq!(kinds, BTreeSet::from(["dir", "file", "none"]));
    assert!(
        skipped > 0,
        "a surviving mkdir over a surviving file must be skipped"
    );
}

#[test]
fn after_power_loss_reads_see_exactly_the_durable_image() {
    for seed in 0..16 {
        run(seed, || async {
            let n = new_node("n1");
            let id = n.number();
            sim::set_node_fault_config(id, crash_cfg(CrashConfig::default()));
            on(&n, async move {
                sim_fs::create_dir_all("/db").await.unwrap();
                sim_fs::sync_dir("/").await.unwrap();
                for i in 0..4 {
                    let f = durable_file(&format!("/db/{i}"), &vec![i as u8; 1500]).await;
                    for j in 0..6u64 {
                        f.write_all_at(&vec![0x40 + j as u8; 700], j * 333)
                            .await
                            .unwrap();
                    }
                    f.append(b"tail").await.unwrap();
                }
                File::create("/db/new")
                    .await
                    .unwrap()
                    .write_all_at(b"n", 0)
                    .await
                    .unwrap();
                assert_ne!(
                    sim::cached_contents(id, "/db/0"),
                    sim::durable_contents(id, "/db/0")
                );
            })
            .await;
            crash_restart(&n);
            let listing = on(&n, async { sim_fs::read_dir("/db").await.unwrap() }).await;
            let durable: Vec<_> = sim::durable_paths(id)
                .into_iter()
                .filter(|p| p.parent() == Some(std::path::Path::new("/db")))
                .collect();
            assert_eq!(listing, durable, "the namespace is the durable one");
            assert_eq!(sim::pending_dir_ops(id), 0);
            for p in listing {
                let p2 = p.clone();
                let read = on(&n, async move { sim_fs::read(&p2).await.unwrap() }).await;
                assert_eq!(
                    Some(&read),
                    sim::durable_contents(id, &p).as_ref(),
                    "{}",
                    p.display()
                );
                assert_eq!(sim::pending_data_ops(id, &p), Some(0));
            }
            sim::verify_invariants(id).unwrap();
        });
    }
}

#[path = "crash_model/barrier.rs"]
mod barrier;
#[path = "crash_model/faults.rs"]
mod faults;
#[path = "crash_model/handles.rs"]
mod handles;
