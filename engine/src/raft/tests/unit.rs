//! Unit tests of edge cases: configuration, storage, the Ready contract, restart
//! validation, single-node groups, and robustness against garbage messages.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raft::safety::check_send_durable;
use crate::raft::{
    Body, Config, Entry, Error, HardState, MemStorage, Message, RawNode, Role, Snapshot,
    SnapshotMeta, Storage, StorageError,
};

fn rng(seed: u64) -> Box<ChaCha8Rng> {
    Box::new(ChaCha8Rng::seed_from_u64(seed))
}

fn node(id: u64, voters: &[u64]) -> RawNode<MemStorage> {
    RawNode::new(
        Config::new(id, voters.iter().copied()),
        MemStorage::new(),
        rng(id),
    )
    .expect("valid config")
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Some(vec![index as u8]),
    }
}

/// Runs the Ready loop to quiescence, returning all messages.
fn drain(n: &mut RawNode<MemStorage>) -> Vec<(u64, Message)> {
    let mut out = Vec::new();
    while n.has_ready() {
        let rd = n.ready().expect("no ready pending");
        n.advance(&rd).expect("advance");
        out.extend(rd.messages);
    }
    out
}

#[test]
fn bad_configs_are_refused() {
    let cases = [
        Config {
            id: 4,
            ..Config::new(1, [1, 2, 3])
        },
        Config {
            id: 0,
            ..Config::new(1, [0, 1])
        },
        Config {
            heartbeat_interval_ticks: 10,
            ..Config::new(1, [1, 2, 3])
        },
        Config {
            heartbeat_interval_ticks: 0,
            ..Config::new(1, [1, 2, 3])
        },
        Config {
            max_entries_per_message: 0,
            ..Config::new(1, [1, 2, 3])
        },
    ];
    for cfg in cases {
        let r = RawNode::new(cfg.clone(), MemStorage::new(), rng(0));
        assert!(matches!(r, Err(Error::Config(_))), "{cfg:?} accepted");
    }
}

#[test]
fn mem_storage_appends_truncates_snapshots_and_compacts() {
    let mut s = MemStorage::new();
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 2)])
        .expect("append");
    assert_eq!((s.first_index(), s.last_index()), (1, 3));
    // Replacing from index 2 drops 3.
    s.append(&[entry(2, 3)]).expect("truncate");
    assert_eq!(s.last_index(), 2);
    assert_eq!(s.term(2), Ok(3));
    assert_eq!(
        s.append(&[entry(5, 3)]),
        Err(StorageError::NotContiguous {
            first: 5,
            lo: 1,
            hi: 2
        })
    );
    assert!(matches!(
        s.append(&[entry(3, 3), entry(5, 3)]),
        Err(StorageError::Malformed(_))
    ));
    assert!(
        matches!(s.compact(1), Err(StorageError::OutOfDate(_))),
        "compaction past the snapshot"
    );
    s.create_snapshot(2, b"state".to_vec()).expect("snapshot");
    s.compact(2).expect("compact");
    assert_eq!((s.first_index(), s.last_index(), s.term(2)), (3, 2, Ok(3)));
    assert_eq!(s.term(1), Err(StorageError::Compacted(1)));
    assert_eq!(s.entries(1, 3), Err(StorageError::Compacted(1)));
    assert_eq!(s.term(3), Err(StorageError::Unavailable(3)));
    assert!(matches!(
        s.create_snapshot(2, vec![]),
        Err(StorageError::OutOfDate(_))
    ));
    let snap = Snapshot {
        meta: SnapshotMeta { index: 9, term: 4 },
        data: b"x".to_vec(),
    };
    s.apply_snapshot(snap.clone()).expect("install");
    assert_eq!(
        (s.first_index(), s.last_index(), s.snapshot()),
        (10, 9, &snap)
    );
    assert!(matches!(
        s.apply_snapshot(snap),
        Err(StorageError::OutOfDate(_))
    ));
}

#[test]
fn ready_must_be_advanced_once() {
    let mut n = node(1, &[1, 2, 3]);
    n.campaign();
    let rd = n.ready().expect("first ready");
    assert_eq!(n.ready(), Err(Error::ReadyPending));
    n.advance(&rd).expect("advance");
    assert_eq!(n.advance(&rd), Err(Error::NoReadyPending));
}

#[test]
fn the_durability_check_refuses_messages_ahead_of_the_disk() {
    // A follower grants a vote: its answer may not leave before the vote is on disk.
    let mut f = node(2, &[1, 2, 3]);
    let vote = Message {
        term: 1,
        body: Body::Vote {
            last_index: 0,
            last_term: 0,
        },
    };
    f.step(1, vote).expect("step");
    let rd = f.ready().expect("ready");
    let (to, answer) = rd.messages.first().cloned().expect("a vote answer");
    assert_eq!(answer.body, Body::VoteResponse { granted: true });
    let before = check_send_durable(f.storage(), to, &answer);
    assert!(before.is_err(), "sending before persisting must be refused");
    f.advance(&rd).expect("advance");
    assert_eq!(check_send_durable(f.storage(), to, &answer), Ok(()));
    assert_eq!(
        f.storage().hard_state(),
        HardState {
            term: 1,
            vote: Some(1),
            commit: 0
        }
    );

    // A leader's append may not leave before its entries are on disk.
    let mut l = node(1, &[1]);
    l.campaign();
    drain(&mut l);
    l.propose(b"x".to_vec()).expect("leader");
    let append = Message {
        term: 1,
        body: Body::Append {
            prev_index: 1,
            prev_term: 1,
            entries: vec![entry(2, 1)],
            commit: 1,
        },
    };
    assert!(check_send_durable(l.storage(), 2, &append).is_err());
    drain(&mut l);
    assert_eq!(check_send_durable(l.storage(), 2, &append), Ok(()));
}

#[test]
fn a_single_node_group_commits_and_reads_alone() {
    let mut n = node(7, &[7]);
    n.campaign();
    assert_eq!(n.role(), Role::Leader);
    let i = n.propose(b"v".to_vec()).expect("leader");
    assert_eq!(n.commit(), i);
    n.read_index(b"r".to_vec()).expect("read");
    let rd = n.ready().expect("ready");
    assert_eq!(rd.committed_entries.last().map(|e| e.index), Some(i));
    assert_eq!(rd.read_states.first().and_then(|r| r.index), Some(i));
    n.advance(&rd).expect("advance");
}

#[test]
fn restart_refuses_self_contradicting_storage() {
    let mut s = MemStorage::new();
    s.append(&[entry(1, 1)]).expect("append");
    s.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 3,
    });
    assert!(matches!(
        RawNode::new(Config::new(1, [1, 2, 3]), s.clone(), rng(0)),
        Err(Error::Corrupt(_))
    ));
    s.set_hard_state(HardState {
        term: 0,
        vote: None,
        commit: 1,
    });
    assert!(matches!(
        RawNode::new(Config::new(1, [1, 2, 3]), s.clone(), rng(0)),
        Err(Error::Corrupt(_))
    ));
    s.set_hard_state(HardState {
        term: 1,
        vote: Some(9),
        commit: 1,
    });
    assert!(matches!(
        RawNode::new(Config::new(1, [1, 2, 3]), s, rng(0)),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn a_restarted_node_resumes_from_persisted_state() {
    let mut n = node(1, &[1]);
    n.campaign();
    n.propose(b"a".to_vec()).expect("leader");
    drain(&mut n);
    n.snapshot(2, b"sm".to_vec()).expect("snapshot");
    n.compact(2).expect("compact");
    let r = RawNode::new(Config::new(1, [1]), n.into_storage(), rng(1)).expect("restart");
    let st = r.status();
    assert_eq!(
        (st.term, st.vote, st.commit, st.applied, st.first_index),
        (1, Some(1), 2, 2, 3)
    );
}

fn garbage(rng: &mut ChaCha8Rng) -> Message {
    let small = |rng: &mut ChaCha8Rng| rng.gen_range(0..6u64);
    let entries = |rng: &mut ChaCha8Rng| {
        let start = rng.gen_range(0..6u64);
        (0..rng.gen_range(0..4u64))
            .map(|k| Entry {
                index: start + k,
                term: rng.gen_range(0..6),
                data: None,
            })
            .collect()
    };
    let body = match rng.gen_range(0..11) {
        0 => Body::PreVote {
            last_index: small(rng),
            last_term: small(rng),
        },
        1 => Body::PreVoteResponse { granted: rng.gen() },
        2 => Body::Vote {
            last_index: small(rng),
            last_term: small(rng),
        },
        3 => Body::VoteResponse { granted: rng.gen() },
        4 => Body::Append {
            prev_index: small(rng),
            prev_term: small(rng),
            entries: entries(rng),
            commit: small(rng),
        },
        5 => Body::AppendResponse {
            index: small(rng) * 100,
            reject: None,
        },
        6 => Body::Heartbeat {
            commit: small(rng) * 100,
            read_seq: small(rng),
        },
        7 => Body::HeartbeatResponse {
            read_seq: small(rng),
        },
        8 => Body::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index: small(rng),
                    term: small(rng),
                },
                data: vec![],
            },
        },
        9 => Body::ReadIndex { ctx: vec![1] },
        _ => Body::ReadIndexResponse {
            ctx: vec![2],
            index: Some(small(rng)),
        },
    };
    Message {
        term: small(rng),
        body,
    }
}

/// Random, often nonsensical, messages from known and unknown ids never panic a node
/// nor break its local invariants (checked after every step in debug builds).
#[test]
fn garbage_messages_never_panic() {
    let mut r = ChaCha8Rng::seed_from_u64(42);
    for seed in 0..20 {
        let mut n = node(1, &[1, 2, 3]);
        for _ in 0..300 {
            match r.gen_range(0..10) {
                0 => n.tick(),
                1 => {
                    let _ = n.propose(vec![seed]);
                }
                2 => {
                    let _ = n.read_index(vec![seed]);
                }
                _ => {
                    let from = r.gen_range(0..5);
                    let msg = garbage(&mut r);
                    n.step(from, msg).expect("a bad message is not an error");
                }
            }
            drain(&mut n);
            n.verify_invariants().expect("invariants");
        }
    }
}

#[test]
fn messages_are_serde_types() {
    fn serde<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    serde::<Message>();
    serde::<Entry>();
    serde::<HardState>();
    serde::<Snapshot>();
}

/// D52: a node whose term is `u64::MAX` (reachable only through ~2^32 forged jumps)
/// stays a follower instead of wrapping its term to 0, however long it waits; a
/// message may move a term by at most MAX_TERM_JUMP.
#[test]
fn a_term_is_never_wrapped_and_moves_by_a_bounded_jump() {
    use crate::raft::MAX_TERM_JUMP;
    let mut st = MemStorage::new();
    st.set_hard_state(HardState {
        term: u64::MAX,
        vote: None,
        commit: 0,
    });
    let mut n = RawNode::new(Config::new(1, [1, 2, 3]), st, rng(1)).expect("valid");
    for _ in 0..100 {
        n.tick();
    }
    assert_eq!(n.term(), u64::MAX);
    assert_eq!(n.status().role, Role::Follower);
    assert!(drain(&mut n).is_empty(), "it campaigned");

    let mut n = node(1, &[1, 2, 3]);
    let beat = |term| Message {
        term,
        body: Body::Heartbeat {
            commit: 0,
            read_seq: 0,
        },
    };
    n.step(2, beat(MAX_TERM_JUMP + 1)).expect("step");
    assert_eq!(n.term(), 0, "a jump past the bound is dropped");
    n.step(2, beat(MAX_TERM_JUMP)).expect("step");
    assert_eq!(
        n.term(),
        MAX_TERM_JUMP,
        "a jump of exactly the bound is taken"
    );
}

/// D52: `Message::validate` names what is wrong with each kind of forged number.
#[test]
fn validate_refuses_each_forged_number() {
    use crate::raft::{RejectHint, MAX_INDEX, MAX_TERM_JUMP};
    let bad = |term, body| {
        Message { term, body }
            .validate(1)
            .expect_err("must be refused")
    };
    assert!(bad(u64::MAX, Body::HeartbeatResponse { read_seq: 0 }).contains("term"));
    let hb = Body::Heartbeat {
        commit: MAX_INDEX + 1,
        read_seq: 0,
    };
    assert!(bad(1, hb).contains("commit"));
    let vote = Body::Vote {
        last_index: 1,
        last_term: 5,
    };
    assert!(bad(4, vote).contains("last term"));
    let reject = Body::AppendResponse {
        index: 3,
        reject: Some(RejectHint {
            term: Some(9),
            index: 2,
        }),
    };
    assert!(bad(2, reject).contains("hint term"));
    let gap = Body::Append {
        prev_index: 1,
        prev_term: 1,
        entries: vec![entry(3, 1)],
        commit: 0,
    };
    assert!(bad(1, gap).contains("does not follow"));
    let snap = Body::InstallSnapshot {
        snapshot: Snapshot {
            meta: SnapshotMeta {
                index: u64::MAX,
                term: 1,
            },
            data: Vec::new(),
        },
    };
    assert!(bad(1, snap).contains("snapshot index"));
    let ok = Message {
        term: 1 + MAX_TERM_JUMP,
        body: Body::Append {
            prev_index: MAX_INDEX - 1,
            prev_term: 1,
            entries: vec![entry(MAX_INDEX, 2)],
            commit: MAX_INDEX,
        },
    };
    assert_eq!(ok.validate(1), Ok(()));
}

/// The Ready contract under a truncation that arrives between `ready` and `advance`:
/// the persisted entries leave the unstable tail only if they are still the log's, so
/// the entries that replaced them are handed out (and persisted) by the next Ready.
#[test]
fn entries_replaced_before_advance_stay_unstable_until_persisted() {
    let append = |term: u64, prev: (u64, u64), entries: Vec<Entry>| Message {
        term,
        body: Body::Append {
            prev_index: prev.0,
            prev_term: prev.1,
            entries,
            commit: 0,
        },
    };
    let mut n = node(2, &[1, 2, 3]);
    n.step(1, append(1, (0, 0), vec![entry(1, 1), entry(2, 1)]))
        .expect("append of term 1");
    let rd = n.ready().expect("ready");
    assert_eq!(rd.entries, vec![entry(1, 1), entry(2, 1)]);
    // A leader of term 2 replaces entry 2 while the first Ready is being persisted.
    n.step(3, append(2, (1, 1), vec![entry(2, 2)]))
        .expect("append of term 2");
    n.advance(&rd).expect("advance");
    let rd = n.ready().expect("the next ready");
    // (Entry 1 may be handed out again: persisting it twice is harmless.)
    assert_eq!(
        rd.entries.last(),
        Some(&entry(2, 2)),
        "the replacing entry is persisted"
    );
    n.advance(&rd).expect("advance");
    assert_eq!(n.storage().term(2), Ok(2));
}
