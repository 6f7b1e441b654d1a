//! The WAL's leader-based group commit (`lsm::wal::group`): submission order under
//! concurrent committers, records whose waiter went away, and a leader cancelled in the
//! middle of its batch. Both worlds: a real temp dir on a current-thread runtime (the
//! fsync goes to the blocking pool and yields), or a simulated disk whose every
//! operation takes simulated time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::with_dir;
use crate::lsm::wal::{segment_path, Hook, Wal, WalError};
use sim_runtime::time::Duration;

/// Opens segment 1 with 64 bytes of preallocation: most batches extend it.
async fn open(dir: &Path) -> Wal {
    Wal::open(
        &segment_path(dir, 1),
        Arc::new(sim_fs::FailStopDir::new(dir)),
        64,
    )
    .await
    .expect("open wal")
}

/// A hook that records `(id, outcome)` into `log`.
fn recording(log: &Arc<Mutex<Vec<(u32, bool)>>>, id: u32) -> Hook {
    let log = log.clone();
    Box::new(move |r: &Result<(), WalError>| {
        log.lock().expect("hook log").push((id, r.is_ok()));
    })
}

async fn records(dir: &Path) -> Vec<u32> {
    Wal::recover_segment(&segment_path(dir, 1), true)
        .await
        .expect("recover")
        .records
        .iter()
        .map(|r| u32::from_le_bytes([r[0], r[1], r[2], r[3]]))
        .collect()
}

#[test]
fn concurrent_committers_are_logged_and_answered_in_submission_order() {
    with_dir(|dir| async move {
        let wal = open(&dir).await;
        let hooks = Arc::new(Mutex::new(Vec::new()));
        // Submission order is decided under this lock, as the database's commit lock does.
        let order = Arc::new(Mutex::new(0u32));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (wal, hooks, order) = (wal.clone(), hooks.clone(), order.clone());
            tasks.push(sim_runtime::task::spawn(async move {
                for _ in 0..25 {
                    let wait = {
                        let mut next = order.lock().expect("order");
                        let id = *next;
                        *next += 1;
                        wal.submit(&id.to_le_bytes(), Some(recording(&hooks, id)))
                            .expect("submit")
                    };
                    wait.wait().await.expect("durable");
                }
            }));
        }
        for t in tasks {
            t.await.expect("committer task");
        }
        let want: Vec<u32> = (0..400).collect();
        let hooks: Vec<u32> = hooks.lock().expect("hooks").iter().map(|h| h.0).collect();
        assert_eq!(hooks, want, "hooks run in submission order");
        wal.close().await.expect("close");
        assert_eq!(
            records(&dir).await,
            want,
            "the log holds every record once, in order"
        );
    });
}

#[test]
fn a_record_whose_waiter_went_away_is_still_written() {
    with_dir(|dir| async move {
        let wal = open(&dir).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let hook: Hook = Box::new(move |r: &Result<(), WalError>| {
            let _ = tx.send(r.is_ok());
        });
        // Nobody ever waits on it: the standby task must lead.
        drop(wal.submit(&7u32.to_le_bytes(), Some(hook)).expect("submit"));
        assert_eq!(
            rx.await,
            Ok(true),
            "the orphaned record was written and synced"
        );
        assert_eq!(records(&dir).await, vec![7]);
        wal.close().await.expect("close");
    });
}

#[test]
fn a_leader_cancelled_mid_batch_leaves_its_batch_to_the_next() {
    with_dir(|dir| async move {
        #[cfg(madsim)]
        sim_fs::sim::set_fault_config(sim_fs::sim::FaultConfig {
            latency: sim_fs::sim::LatencyConfig {
                probability: 1.0,
                min_us: 10,
                max_us: 50,
            },
            ..Default::default()
        });
        let wal = open(&dir).await;
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let first = wal
            .submit(&1u32.to_le_bytes(), Some(recording(&hooks, 1)))
            .expect("submit");
        let second = wal
            .submit(&2u32.to_le_bytes(), Some(recording(&hooks, 2)))
            .expect("submit");
        // The first waiter leads both records and is cancelled while its write or fsync
        // is in flight. Here simulated file operations take 10–50 µs, so the cut always
        // lands there; on a real disk the fsync may win the race.
        let cut = sim_runtime::time::timeout(Duration::from_nanos(1), first.wait()).await;
        #[cfg(madsim)]
        assert!(cut.is_err(), "the leader was cancelled mid-batch");
        if cut.is_err() {
            assert!(
                hooks.lock().expect("hooks").is_empty(),
                "nothing answered yet"
            );
        }
        // The next waiter rewrites the batch at the same offset and syncs it.
        second
            .wait()
            .await
            .expect("durable after the cancelled leader");
        assert_eq!(*hooks.lock().expect("hooks"), vec![(1, true), (2, true)]);
        wal.append(&3u32.to_le_bytes()).await.expect("append");
        wal.close().await.expect("close");
        assert_eq!(
            records(&dir).await,
            vec![1, 2, 3],
            "each record once, in order"
        );
    });
}

async fn file_len(path: &Path) -> u64 {
    sim_fs::metadata(path).await.expect("stat").len
}

#[test]
fn preallocated_zeros_are_cut_by_rotation_close_and_recovery() {
    with_dir(|dir| async move {
        let (one, two) = (segment_path(&dir, 1), segment_path(&dir, 2));
        let wal = Wal::open(&one, Arc::new(sim_fs::FailStopDir::new(&dir)), 4096)
            .await
            .expect("open");
        for i in 0..3u32 {
            wal.append(&i.to_le_bytes()).await.expect("append");
        }
        // 3 records of 12 bytes; the first write carried 4,096 zeros after its record
        // and the next two overwrote some of them.
        let records_end = 3 * 12;
        assert_eq!(
            file_len(&one).await,
            12 + 4096,
            "zeros ahead of the records"
        );
        // Read as the newest segment after a crash: the zeros end the log like a torn
        // tail and are cut.
        let snapshot = sim_fs::read(&one).await.expect("read");
        let copy = dir.join("copy.log");
        sim_fs::write(&copy, &snapshot).await.expect("copy");
        let rec = Wal::recover_segment(&copy, true).await.expect("recover");
        assert_eq!(
            (rec.records.len(), rec.cut_bytes),
            (3, 12 + 4096 - records_end)
        );
        assert_eq!(file_len(&copy).await, records_end, "recovery cut the zeros");
        // Rotation cuts the old segment back to its records: a fully synced segment
        // never ends in zeros, so the strict rule for older segments holds.
        wal.rotate(&two)
            .expect("rotate")
            .wait()
            .await
            .expect("rotated");
        assert_eq!(file_len(&one).await, records_end);
        let old = Wal::recover_segment(&one, false)
            .await
            .expect("older segment is clean");
        assert_eq!((old.records.len(), old.cut_bytes), (3, 0));
        wal.append(&9u32.to_le_bytes()).await.expect("append");
        assert_eq!(file_len(&two).await, 12 + 4096);
        // Close cuts the live segment too.
        wal.close().await.expect("close");
        assert_eq!(file_len(&two).await, 12);
        let rec = Wal::recover_segment(&two, true).await.expect("recover");
        assert_eq!(
            (rec.records, rec.cut_bytes),
            (vec![9u32.to_le_bytes().to_vec()], 0)
        );
    });
}
