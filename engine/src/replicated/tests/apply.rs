//! The state machine: validation (backward OCC), deduplication, bookkeeping, bad
//! commands, snapshots.

use std::path::Path;

use crate::lsm::tests::with_dir;
use crate::raft::{Entry, Index, Snapshot};
use crate::replicated::command::{encode, Command, CommitCmd, KeySpan, Outcome, APPLIED_KEY};
use crate::replicated::state::StateMachine;
use crate::{Key, Options, Value};

fn entry(index: Index, cmd: &CommitCmd) -> Entry {
    Entry {
        index,
        term: 1,
        data: Some(encode(&Command::Commit(cmd.clone()))),
    }
}

fn cmd(client: u64, seq: u64, snapshot: Index) -> CommitCmd {
    CommitCmd {
        client,
        seq,
        snapshot,
        reads: Vec::new(),
        ranges: Vec::new(),
        writes: Vec::new(),
    }
}

fn put(k: &str, v: &str) -> (Key, Option<Value>) {
    (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
}

fn span(a: &str, b: Option<&str>) -> KeySpan {
    KeySpan {
        start: a.as_bytes().to_vec(),
        end: b.map(|b| b.as_bytes().to_vec()),
    }
}

async fn open(dir: &Path) -> StateMachine {
    StateMachine::open(&dir.join("db"), Options::tiny())
        .await
        .expect("open state machine")
}

async fn apply(sm: &mut StateMachine, index: Index, c: &CommitCmd) -> Option<Outcome> {
    sm.apply(&entry(index, c)).await.expect("apply").outcome
}

/// The user-visible rows (reserved keys excluded).
async fn user_rows(sm: &StateMachine) -> Vec<(String, String)> {
    let t = sm.db().begin();
    let rows = t.scan(b"\x01".to_vec()..).await.expect("scan");
    rows.into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

fn committed(index: Index) -> Option<Outcome> {
    Some(Outcome::Committed { index })
}

#[test]
fn a_read_overwritten_after_the_snapshot_aborts_the_commit() {
    with_dir(|dir| async move {
        let mut sm = open(&dir).await;
        let w = CommitCmd {
            writes: vec![put("a", "1")],
            ..cmd(1 << 33, 1, 0)
        };
        assert_eq!(apply(&mut sm, 1, &w).await, committed(1));
        // Read `a` at snapshot 0: `a` was written at 1, after it.
        let stale = CommitCmd {
            reads: vec![b"a".to_vec()],
            writes: vec![put("b", "2")],
            ..cmd(2 << 33, 1, 0)
        };
        let out = apply(&mut sm, 2, &stale).await;
        assert_eq!(
            out,
            Some(Outcome::Aborted {
                key: b"a".to_vec(),
                written_at: 1
            })
        );
        // The same reads at snapshot 1 saw that write: it commits.
        let fresh = CommitCmd {
            reads: vec![b"a".to_vec()],
            writes: vec![put("b", "2")],
            ..cmd(2 << 33, 2, 1)
        };
        assert_eq!(apply(&mut sm, 3, &fresh).await, committed(3));
        // A blind write never conflicts.
        let blind = CommitCmd {
            writes: vec![put("a", "3")],
            ..cmd(3 << 33, 1, 0)
        };
        assert_eq!(apply(&mut sm, 4, &blind).await, committed(4));
        assert_eq!(
            user_rows(&sm).await,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
        assert_eq!(sm.applied(), (4, 1));
    });
}

#[test]
fn a_range_read_with_a_phantom_insert_or_delete_aborts() {
    with_dir(|dir| async move {
        let mut sm = open(&dir).await;
        let seed = CommitCmd {
            writes: vec![put("b1", "x"), put("z", "x")],
            ..cmd(1 << 33, 1, 0)
        };
        assert_eq!(apply(&mut sm, 1, &seed).await, committed(1));
        // A phantom: `b2` appears in [b, c) after snapshot 1.
        let insert = CommitCmd {
            writes: vec![put("b2", "y")],
            ..cmd(1 << 33, 2, 1)
        };
        assert_eq!(apply(&mut sm, 2, &insert).await, committed(2));
        let scanner = |seq, ranges| CommitCmd {
            ranges,
            writes: vec![put("count", "1")],
            ..cmd(2 << 33, seq, 1)
        };
        let out = apply(&mut sm, 3, &scanner(1, vec![span("b", Some("c"))])).await;
        assert_eq!(
            out,
            Some(Outcome::Aborted {
                key: b"b2".to_vec(),
                written_at: 2
            })
        );
        // A range that the insert missed commits; so does an unbounded one read after it.
        let out = apply(&mut sm, 4, &scanner(2, vec![span("c", Some("d"))])).await;
        assert_eq!(out, committed(4));
        // A delete after the snapshot is a change to the range too.
        let delete = CommitCmd {
            writes: vec![(b"z".to_vec(), None)],
            ..cmd(1 << 33, 3, 4)
        };
        assert_eq!(apply(&mut sm, 5, &delete).await, committed(5));
        let late = CommitCmd {
            ranges: vec![span("y", None)],
            writes: vec![put("count", "2")],
            ..cmd(2 << 33, 3, 4)
        };
        assert_eq!(
            apply(&mut sm, 6, &late).await,
            Some(Outcome::Aborted {
                key: b"z".to_vec(),
                written_at: 5
            })
        );
        assert_eq!(
            user_rows(&sm).await,
            vec![
                ("b1".into(), "x".into()),
                ("b2".into(), "y".into()),
                ("count".into(), "1".into())
            ]
        );
    });
}

#[test]
fn a_retried_commit_is_answered_with_its_recorded_outcome_and_not_applied_again() {
    with_dir(|dir| async move {
        let mut sm = open(&dir).await;
        let c = CommitCmd {
            writes: vec![put("k", "first")],
            ..cmd(1 << 33, 1, 0)
        };
        assert_eq!(apply(&mut sm, 1, &c).await, committed(1));
        let other = CommitCmd {
            writes: vec![put("k", "second")],
            ..cmd(2 << 33, 1, 0)
        };
        assert_eq!(apply(&mut sm, 2, &other).await, committed(2));
        // The retry of (client 1, seq 1) at index 3: the recorded outcome, no write.
        let applied = sm.apply(&entry(3, &c)).await.expect("apply");
        assert_eq!(applied.request, Some((1 << 33, 1)));
        assert_eq!(applied.outcome, committed(1));
        assert_eq!(user_rows(&sm).await, vec![("k".into(), "second".into())]);
        // An aborted outcome is recorded and answered the same way.
        let doomed = CommitCmd {
            reads: vec![b"k".to_vec()],
            writes: vec![put("k", "third")],
            ..cmd(1 << 33, 2, 0)
        };
        let aborted = Some(Outcome::Aborted {
            key: b"k".to_vec(),
            written_at: 2,
        });
        assert_eq!(apply(&mut sm, 4, &doomed).await, aborted);
        let retry = CommitCmd {
            snapshot: 3,
            ..doomed.clone()
        };
        assert_eq!(apply(&mut sm, 5, &retry).await, aborted);
        // A copy of an older commit than the client's latest: nobody waits for it.
        assert_eq!(apply(&mut sm, 6, &c).await, None);
        assert_eq!(user_rows(&sm).await, vec![("k".into(), "second".into())]);
        assert_eq!(sm.applied().0, 6);
    });
}

#[cfg(feature = "canary")]
#[test]
fn the_apply_retry_twice_canary_applies_a_retry_again() {
    with_dir(|dir| async move {
        crate::canary::enable(crate::canary::Canary::ApplyRetryTwice);
        let mut sm = open(&dir).await;
        let c = CommitCmd {
            writes: vec![put("k", "first")],
            ..cmd(1 << 33, 1, 0)
        };
        assert_eq!(apply(&mut sm, 1, &c).await, committed(1));
        assert_eq!(apply(&mut sm, 2, &c).await, committed(2));
    });
}

#[test]
fn invalid_commands_are_rejected_identically_and_still_advance_applied() {
    with_dir(|dir| async move {
        let mut sm = open(&dir).await;
        let garbage = Entry {
            index: 1,
            term: 1,
            data: Some(vec![1, 0xff, 0xff, 0xff]),
        };
        let a = sm.apply(&garbage).await.expect("apply garbage");
        assert!(matches!(a.outcome, Some(Outcome::Rejected { .. })), "{a:?}");
        // Terms along the log never fall: the entries around it are of term 1 too.
        let noop = Entry {
            index: 2,
            term: 1,
            data: None,
        };
        assert_eq!(sm.apply(&noop).await.expect("noop").outcome, None);
        let reserved = CommitCmd {
            writes: vec![(b"\0sys/applied".to_vec(), Some(b"0".to_vec()))],
            ..cmd(1 << 33, 1, 0)
        };
        let out = apply(&mut sm, 3, &reserved).await;
        assert!(matches!(out, Some(Outcome::Rejected { .. })), "{out:?}");
        // A snapshot at or after the command's own index would dodge validation.
        let future = CommitCmd {
            reads: vec![b"a".to_vec()],
            writes: vec![put("a", "1")],
            ..cmd(1 << 33, 2, 9)
        };
        let out = apply(&mut sm, 4, &future).await;
        assert!(matches!(out, Some(Outcome::Rejected { .. })), "{out:?}");
        assert!(user_rows(&sm).await.is_empty());
        assert_eq!(sm.applied(), (4, 1));
        // Out of order is a bug of the caller.
        assert!(sm.apply(&noop).await.is_err());
        sm.close().await.expect("close");
        drop(sm);
        let sm = open(&dir).await;
        assert_eq!(sm.applied(), (4, 1), "the applied position is durable");
    });
}

#[test]
fn a_snapshot_replaces_the_whole_state() {
    with_dir(|dir| async move {
        let mut leader = open(&dir.join("one")).await;
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            let c = CommitCmd {
                writes: vec![put(k, "v")],
                ..cmd(1 << 33, i as u64 + 1, 0)
            };
            apply(&mut leader, i as Index + 1, &c).await;
        }
        let (meta, data) = leader.dump().await.expect("dump");
        assert_eq!((meta.index, meta.term), (3, 1));
        let mut follower = open(&dir.join("two")).await;
        let stale = CommitCmd {
            writes: vec![put("old", "x")],
            ..cmd(2 << 33, 1, 0)
        };
        apply(&mut follower, 1, &stale).await;
        let snap = Snapshot { meta, data };
        follower.install(&snap).await.expect("install");
        assert_eq!(follower.applied(), (3, 1));
        assert_eq!(user_rows(&follower).await, user_rows(&leader).await);
        // Bookkeeping came along: a retry of the leader's client is deduplicated.
        let retry = CommitCmd {
            writes: vec![put("c", "again")],
            ..cmd(1 << 33, 3, 0)
        };
        assert_eq!(apply(&mut follower, 4, &retry).await, committed(3));
        let applied = follower.db().begin().get(APPLIED_KEY).await.expect("get");
        assert!(applied.is_some());
        // A snapshot whose data contradicts its position is refused.
        let mut wrong = snap.clone();
        wrong.meta.index = 7;
        assert!(follower.install(&wrong).await.is_err());
        let junk = Snapshot {
            meta: snap.meta,
            data: vec![1, 2, 3],
        };
        assert!(follower.install(&junk).await.is_err());
    });
}
