//! Tests of the embedded API: the handle lifecycle, serializability outcomes, snapshots
//! that outlive flushes and compactions, reopening, and (simulated world) the
//! visibility watermark and fail-stop after a failed fsync.

use crate::lsm::tests::with_dir;
use crate::{CommitOutcome, Db, Error, Options, Timestamp};

fn committed(o: CommitOutcome) -> Timestamp {
    match o {
        CommitOutcome::Committed { ts } => ts,
        CommitOutcome::Aborted(c) => panic!("aborted: {c}"),
    }
}

#[test]
fn transactions_read_their_writes_commit_and_survive_reopen() {
    with_dir(|dir| async move {
        let db = Db::open(&dir, Options::tiny()).await.unwrap();
        let mut t = db.begin();
        assert_eq!(t.get(b"a").await.unwrap(), None);
        t.put(b"a".to_vec(), b"1".to_vec()).await.unwrap();
        t.put(b"b".to_vec(), b"2".to_vec()).await.unwrap();
        t.put(b"c".to_vec(), b"3".to_vec()).await.unwrap();
        t.delete(b"c".to_vec()).await.unwrap();
        assert_eq!(t.get(b"a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(t.get(b"c").await.unwrap(), None);
        let ts = committed(t.commit().await.unwrap());
        assert_eq!(ts, Timestamp(1));
        assert_eq!(
            t.get(b"a").await,
            Err(Error::Txn(crate::mvcc::Error::NotActive(t.id())))
        );
        assert_eq!(db.latest_commit_ts().unwrap(), ts);
        {
            let mut dropped = db.begin();
            dropped.put(b"a".to_vec(), b"lost".to_vec()).await.unwrap();
        }
        let mut rolled = db.begin();
        rolled.put(b"b".to_vec(), b"lost".to_vec()).await.unwrap();
        rolled.rollback().await.unwrap();
        let t = db.begin();
        let all = t.scan(..).await.unwrap();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        assert_eq!(
            t.scan(b"b".to_vec()..b"a".to_vec()).await,
            Err(Error::Txn(crate::mvcc::Error::InvalidRange))
        );
        drop(t);
        db.close().await.unwrap();
        assert!(matches!(db.begin().get(b"a").await, Err(Error::Closed)));
        drop(db);
        let db = Db::open(&dir, Options::tiny()).await.unwrap();
        assert_eq!(db.latest_commit_ts().unwrap(), ts);
        assert_eq!(db.begin().get(b"b").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(db.recovery().replayed, 1);
        db.verify_invariants().unwrap();
        db.close().await.unwrap();
    });
}

#[test]
fn write_skew_is_an_outcome_not_an_error() {
    with_dir(|dir| async move {
        let db = Db::open(&dir, Options::tiny()).await.unwrap();
        let mut init = db.begin();
        init.put(b"alice".to_vec(), b"on".to_vec()).await.unwrap();
        init.put(b"bob".to_vec(), b"on".to_vec()).await.unwrap();
        committed(init.commit().await.unwrap());
        // Two doctors each see the other on call and go off call.
        let (mut a, mut b) = (db.begin(), db.begin());
        assert_eq!(a.scan(..).await.unwrap().len(), 2);
        assert_eq!(b.scan(..).await.unwrap().len(), 2);
        a.put(b"alice".to_vec(), b"off".to_vec()).await.unwrap();
        b.put(b"bob".to_vec(), b"off".to_vec()).await.unwrap();
        committed(a.commit().await.unwrap());
        match b.commit().await.unwrap() {
            CommitOutcome::Aborted(c) => assert_eq!(c.kind(), "serialization"),
            o => panic!("write skew committed: {o:?}"),
        }
        let on_call = db.begin().scan(..).await.unwrap();
        assert!(on_call.iter().any(|(_, v)| v == b"on"), "{on_call:?}");
        db.verify_invariants().unwrap();
        db.close().await.unwrap();
    });
}

#[test]
fn an_old_snapshot_outlives_overwrites_flushes_and_compactions() {
    with_dir(|dir| async move {
        let db = Db::open(&dir, Options::tiny()).await.unwrap();
        for i in 0..20u32 {
            let mut t = db.begin();
            t.put(format!("k{i:02}").into_bytes(), b"old".to_vec())
                .await
                .unwrap();
            committed(t.commit().await.unwrap());
        }
        let reader = db.begin();
        for round in 0..15u32 {
            let mut t = db.begin();
            for i in 0..20u32 {
                if (i + round) % 3 == 0 {
                    t.delete(format!("k{i:02}").into_bytes()).await.unwrap();
                } else {
                    t.put(
                        format!("k{i:02}").into_bytes(),
                        format!("new{round}-{}", "x".repeat(40)).into_bytes(),
                    )
                    .await
                    .unwrap();
                }
            }
            committed(t.commit().await.unwrap());
        }
        db.compact().await.unwrap();
        let stats = db.stats();
        assert!(
            stats.lsm.flushes > 3 && stats.lsm.compactions > 0,
            "{stats:?}"
        );
        // The reader pins the horizon: it still sees the world as it was.
        let rows = reader.scan(..).await.unwrap();
        assert_eq!(rows.len(), 20);
        assert!(rows.iter().all(|(_, v)| v == b"old"));
        assert_eq!(reader.get(b"k05").await.unwrap(), Some(b"old".to_vec()));
        drop(reader);
        // Without it, old versions go.
        db.compact().await.unwrap();
        assert!(db.stats().lsm.versions_dropped > 0);
        let rows = db.begin().scan(..).await.unwrap();
        assert!(
            rows.iter().all(|(_, v)| v.starts_with(b"new14")),
            "{rows:?}"
        );
        db.verify_invariants().unwrap();
        db.close().await.unwrap();
    });
}

#[test]
fn concurrent_committers_share_fsyncs_and_all_land() {
    with_dir(|dir| async move {
        let db = Db::open(&dir, Options::tiny()).await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..8u32 {
            let db = db.clone();
            tasks.push(sim_runtime::task::spawn(async move {
                let mut done = 0;
                for i in 0..20u32 {
                    let mut t = db.begin();
                    t.put(format!("w{w}-{i:02}").into_bytes(), b"v".to_vec())
                        .await
                        .unwrap();
                    if let CommitOutcome::Committed { .. } = t.commit().await.unwrap() {
                        done += 1;
                    }
                }
                done
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, 160, "disjoint writes never conflict");
        assert_eq!(db.begin().scan(..).await.unwrap().len(), 160);
        db.close().await.unwrap();
        drop(db);
        let db = Db::open(&dir, Options::tiny()).await.unwrap();
        assert_eq!(db.begin().scan(..).await.unwrap().len(), 160);
        db.close().await.unwrap();
    });
}

#[cfg(madsim)]
mod sim {
    use super::*;
    use sim_fs::{FaultConfig, LatencyConfig};
    use std::time::Duration;

    #[test]
    fn a_commit_is_invisible_until_its_wal_record_is_durable() {
        with_dir(|dir| async move {
            let db = Db::open(&dir, Options::tiny()).await.unwrap();
            // Every file operation now takes exactly 10 ms of virtual time.
            sim_fs::sim::set_fault_config(FaultConfig {
                latency: LatencyConfig {
                    probability: 1.0,
                    min_us: 10_000,
                    max_us: 10_000,
                },
                ..FaultConfig::default()
            });
            let writer = {
                let db = db.clone();
                sim_runtime::task::spawn(async move {
                    let mut t = db.begin();
                    t.put(b"k".to_vec(), b"v".to_vec()).await.unwrap();
                    t.commit().await.unwrap()
                })
            };
            // The commit is prepared (in the memtable, in the SSI graph) but its append
            // and fsync take 20 ms: a snapshot taken now must not see it.
            sim_runtime::time::sleep(Duration::from_millis(5)).await;
            let early = db.begin();
            assert_eq!(early.snapshot(), Timestamp::ZERO);
            assert_eq!(early.get(b"k").await.unwrap(), None);
            let ts = committed(writer.await.unwrap());
            // Acknowledged: every later snapshot sees it.
            let late = db.begin();
            assert_eq!(late.snapshot(), ts);
            assert_eq!(late.get(b"k").await.unwrap(), Some(b"v".to_vec()));
            // The early transaction stays in its snapshot and conflicts on write.
            assert_eq!(early.get(b"k").await.unwrap(), None);
            sim_fs::sim::set_fault_config(FaultConfig::default());
            db.close().await.unwrap();
        });
    }

    #[test]
    fn a_failed_fsync_poisons_the_database_until_reopen() {
        with_dir(|dir| async move {
            let db = Db::open(&dir, Options::tiny()).await.unwrap();
            let mut t = db.begin();
            t.put(b"a".to_vec(), b"1".to_vec()).await.unwrap();
            committed(t.commit().await.unwrap());
            let reader = db.begin();
            sim_fs::sim::set_fault_config(FaultConfig {
                sync_eio: 1.0,
                ..FaultConfig::default()
            });
            let mut t = db.begin();
            t.put(b"b".to_vec(), b"2".to_vec()).await.unwrap();
            let e = t.commit().await.unwrap_err();
            assert!(e.is_fail_stop(), "{e}");
            sim_fs::sim::set_fault_config(FaultConfig::default());
            // Fail-stop: every later call, on old and new handles, even with the disk well.
            assert!(reader.get(b"a").await.unwrap_err().is_fail_stop());
            assert!(db.begin().get(b"a").await.unwrap_err().is_fail_stop());
            let mut t = db.begin();
            assert!(t
                .put(b"c".to_vec(), b"3".to_vec())
                .await
                .unwrap_err()
                .is_fail_stop());
            assert!(t.commit().await.unwrap_err().is_fail_stop());
            drop((reader, t));
            let _ = db.close().await;
            drop(db);
            let db = Db::open(&dir, Options::tiny()).await.unwrap();
            let t = db.begin();
            assert_eq!(t.get(b"a").await.unwrap(), Some(b"1".to_vec()));
            db.close().await.unwrap();
        });
    }
}

#[test]
fn wait_idle_returns_once_flushes_and_compactions_are_done() {
    with_dir(|dir| async move {
        let opts = Options::tiny();
        let db = Db::open(&dir, opts.clone()).await.unwrap();
        // ~300 commits of ~110 bytes into 2 KiB memtables: a dozen flushes, and level 0
        // over its trigger of 2 many times over.
        for i in 0..300u32 {
            let mut t = db.begin();
            t.put(format!("key{:05}", i % 97).into_bytes(), vec![b'v'; 100])
                .await
                .unwrap();
            committed(t.commit().await.unwrap());
        }
        db.wait_idle().await.unwrap();
        let s = db.stats().lsm;
        assert_eq!(s.immutable_memtables, 0, "{s:?}");
        assert!(!s.compacting, "{s:?}");
        assert!(s.flushes >= 5 && s.compactions >= 1, "{s:?}");
        assert!(s.tables_per_level[0] < opts.l0_compaction_trigger, "{s:?}");
        // Idle stays idle: a second wait returns with nothing new done.
        db.wait_idle().await.unwrap();
        assert_eq!(db.stats().lsm.compactions, s.compactions);
        db.verify_invariants().unwrap();
        db.close().await.unwrap();
        assert_eq!(db.wait_idle().await, Err(Error::Closed));
    })
}

/// Issue 19, finding 5 (D54): a second opener of a database directory gets
/// [`Error::Locked`] naming the holder, and nothing the first acknowledged is lost;
/// once the first closes, the directory opens again with every commit. Both worlds.
/// Fails before D54: both opened and both acknowledged commits.
#[test]
fn a_second_opener_of_a_directory_is_refused_and_told_who_holds_it() {
    with_dir(|dir| async move {
        let db = Db::open(&dir, Options::tiny()).await.expect("first open");
        let mut t = db.begin();
        t.put(b"k".to_vec(), b"v".to_vec()).await.expect("put");
        committed(t.commit().await.expect("commit"));
        match Db::open(&dir, Options::tiny()).await {
            Err(Error::Locked { holder, .. }) => {
                assert!(holder.contains("embedded database"), "{holder}")
            }
            other => panic!("the second open was not refused: {other:?}"),
        }
        db.close().await.expect("close");
        let again = Db::open(&dir, Options::tiny()).await.expect("reopen");
        let got = again.begin().get(b"k").await.expect("get");
        assert_eq!(
            got.as_deref(),
            Some(&b"v"[..]),
            "the acknowledged commit survived"
        );
        again.close().await.expect("close");
    });
}
