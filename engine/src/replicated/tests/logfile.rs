//! The Raft log file and the hard-state file: reopen, torn tails, truncation,
//! compaction, damaged records, the two hard-state slots.

use std::path::Path;

use crate::framing::encode_record;
use crate::lsm::tests::with_dir;
use crate::raft::{Entry, HardState, Index, Term};
use crate::replicated::logfile::{HardStateFile, LogFile};
use crate::replicated::NodeError;

fn e(index: Index, term: Term) -> Entry {
    Entry {
        index,
        term,
        data: Some(format!("cmd {index}@{term} {:200}", "").into_bytes()),
    }
}

fn ids(entries: &[Entry]) -> Vec<(Index, Term)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

async fn reopen(dir: &Path) -> (LogFile, Vec<Entry>, u64) {
    let (log, entries, rec) = LogFile::open(dir).await.expect("open log");
    (log, entries, rec.cut_bytes)
}

async fn file_len(path: &Path) -> u64 {
    sim_fs::metadata(path).await.expect("metadata").len
}

async fn write_at(path: &Path, bytes: &[u8], offset: u64) {
    let f = sim_fs::File::open(path).await.expect("open");
    f.write_all_at(bytes, offset).await.expect("write");
    f.sync_data().await.expect("sync");
}

#[test]
fn entries_survive_a_reopen_and_a_torn_tail_is_cut() {
    with_dir(|dir| async move {
        let (mut log, entries, _) = reopen(&dir).await;
        assert!(entries.is_empty());
        assert_eq!((log.start(), log.last_index()), ((0, 0), 0));
        log.append(&[e(1, 1), e(2, 1)]).await.expect("append");
        log.append(&[e(3, 2)]).await.expect("append");
        drop(log);
        let path = dir.join("log");
        let good = file_len(&path).await;
        // A torn append: the first 300 bytes of a record, then nothing.
        let torn = encode_record(&[7u8; 600]).expect("frame");
        write_at(&path, &torn[..300], good).await;
        let (log, entries, cut) = reopen(&dir).await;
        assert_eq!(ids(&entries), vec![(1, 1), (2, 1), (3, 2)]);
        assert_eq!(entries[2], e(3, 2));
        assert_eq!(cut, 300);
        assert_eq!(log.term(2), Some(1));
        assert_eq!(log.term(4), None);
        drop(log);
        assert_eq!(
            file_len(&path).await,
            good,
            "the tail is gone from the file"
        );
        let (_, entries, cut) = reopen(&dir).await;
        assert_eq!((entries.len(), cut), (3, 0), "recovery is idempotent");
    });
}

#[test]
fn damage_before_intact_records_is_corruption_not_a_tail() {
    with_dir(|dir| async move {
        let (mut log, _, _) = reopen(&dir).await;
        log.append(&[e(1, 1), e(2, 1), e(3, 1)])
            .await
            .expect("append");
        drop(log);
        // Flip a byte in the payload of entry 1 (after the start record and its header).
        let path = dir.join("log");
        let bytes = sim_fs::read(&path).await.expect("read");
        let at = bytes.len() / 4;
        write_at(&path, &[bytes[at] ^ 0x40], at as u64).await;
        match LogFile::open(&dir).await {
            Err(NodeError::Corrupt { .. }) => {}
            other => panic!(
                "expected corruption, got {:?}",
                other.map(|(_, es, _)| ids(&es))
            ),
        }
    });
}

#[test]
fn a_conflicting_append_truncates_the_stored_suffix() {
    with_dir(|dir| async move {
        let (mut log, _, _) = reopen(&dir).await;
        let first: Vec<Entry> = (1..=5).map(|i| e(i, 1)).collect();
        log.append(&first).await.expect("append");
        log.append(&[e(3, 2), e(4, 2)]).await.expect("replace 3..");
        assert_eq!(log.last_index(), 4);
        // A gap is refused; entries at or before the compaction point are skipped.
        assert!(log.append(&[e(9, 2)]).await.is_err());
        drop(log);
        let (mut log, entries, cut) = reopen(&dir).await;
        assert_eq!(ids(&entries), vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(cut, 0);
        log.append(&[e(5, 3)]).await.expect("append after reopen");
        drop(log);
        let (_, entries, _) = reopen(&dir).await;
        assert_eq!(ids(&entries).last(), Some(&(5, 3)));
    });
}

#[test]
fn compaction_rewrites_the_log_from_a_new_start() {
    with_dir(|dir| async move {
        let (mut log, _, _) = reopen(&dir).await;
        let all: Vec<Entry> = (1..=6).map(|i| e(i, 1 + i / 4)).collect();
        log.append(&all).await.expect("append");
        log.reset((4, 2), &all[4..]).await.expect("compact");
        assert_eq!((log.start(), log.last_index()), ((4, 2), 6));
        assert_eq!(log.term(4), Some(2));
        assert_eq!(log.term(3), None);
        // Resent entries the compaction covers are skipped.
        log.append(&[e(4, 2), e(5, 2), e(6, 2), e(7, 2)])
            .await
            .expect("append");
        drop(log);
        assert!(!sim_fs::exists(dir.join("log.tmp")).await.expect("exists"));
        let (log, entries, _) = reopen(&dir).await;
        assert_eq!(log.start(), (4, 2));
        assert_eq!(ids(&entries), vec![(5, 2), (6, 2), (7, 2)]);
        // Entries that do not follow the start are refused.
        let mut log = log;
        assert!(log.reset((10, 3), &[e(12, 3)]).await.is_err());
        // A snapshot install: an empty log from the snapshot's position.
        log.reset((20, 4), &[]).await.expect("reset");
        drop(log);
        let (log, entries, _) = reopen(&dir).await;
        assert_eq!((log.start(), entries.len()), ((20, 4), 0));
    });
}

#[test]
fn hard_state_keeps_the_last_save_and_survives_a_damaged_slot() {
    with_dir(|dir| async move {
        let mut hs = HardStateFile::open(&dir).await.expect("open");
        assert_eq!(hs.state(), HardState::default());
        for t in 1..=5 {
            let state = HardState {
                term: t,
                vote: Some(t % 3 + 1),
                commit: t * 10,
            };
            hs.save(state).await.expect("save");
        }
        let last = hs.state();
        drop(hs);
        let hs = HardStateFile::open(&dir).await.expect("reopen");
        assert_eq!(hs.state(), last);
        // Opening rewrote the file with the state in both slots (versions 7 and 8):
        // damage the newer slot, as a torn write would, and the other copy remains.
        drop(hs);
        let path = dir.join("hardstate");
        write_at(&path, &[0xAB; 64], 0).await;
        let hs = HardStateFile::open(&dir)
            .await
            .expect("reopen after damage");
        assert_eq!(hs.state(), last);
        drop(hs);
        // Both slots damaged: refuse to guess.
        write_at(&path, &[0xCD; 64], 0).await;
        write_at(&path, &[0xCD; 64], 512).await;
        assert!(matches!(
            HardStateFile::open(&dir).await,
            Err(NodeError::Corrupt { .. })
        ));
    });
}

/// D20: the first save of a new node's hard state fails (write or fsync EIO, the
/// node stops) and the process restarts with the page cache kept; the restarted node
/// must start from the initial state, not refuse a file that never held a valid slot.
#[cfg(madsim)]
#[test]
fn a_failed_first_save_leaves_no_file_to_refuse() {
    with_dir(|dir| async move {
        let node = sim_runtime::task::current_node_id();
        for failing in [
            sim_fs::FaultConfig {
                write_eio: 1.0,
                ..sim_fs::FaultConfig::default()
            },
            sim_fs::FaultConfig {
                sync_eio: 1.0,
                ..sim_fs::FaultConfig::default()
            },
        ] {
            sim_fs::sim::set_node_fault_config(node, failing);
            let failed = HardStateFile::open(&dir).await;
            assert!(
                matches!(failed, Err(NodeError::Io { .. })),
                "the injected fault must fail the open: {failed:?}"
            );
            sim_fs::sim::clear_node_fault_config(node);
            let hs = HardStateFile::open(&dir)
                .await
                .expect("restart after the failure");
            assert_eq!(hs.state(), HardState::default());
            drop(hs);
            assert!(
                HardStateFile::open(&dir).await.is_ok(),
                "and again, from the file it wrote"
            );
            sim_fs::sim::set_node_fault_config(node, sim_fs::FaultConfig::default());
            sim_fs::remove_file(dir.join("hardstate"))
                .await
                .expect("remove");
            sim_fs::sim::clear_node_fault_config(node);
        }
    });
}

#[test]
fn recovery_adopts_a_term_the_log_has_but_the_hard_state_missed() {
    use crate::replicated::node::recovered_hard_state;
    let stored = HardState {
        term: 1,
        vote: Some(2),
        commit: 5,
    };
    // Entries of term 2 persisted, the hard state of their Ready not: term 2, no vote.
    assert_eq!(
        recovered_hard_state(stored, 2, 5),
        Some(HardState {
            term: 2,
            vote: None,
            commit: 5
        })
    );
    // Consistent state: nothing to repair (a vote in the current term is kept).
    assert_eq!(recovered_hard_state(stored, 1, 3), None);
    // An interrupted snapshot install left the engine ahead of the stored commit.
    assert_eq!(
        recovered_hard_state(stored, 1, 9),
        Some(HardState {
            commit: 9,
            ..stored
        })
    );
}
