//! The boundary assertions of the Raft core (D76) fire: the log never takes an append
//! with a gap or over committed entries, a restore never lowers the commit index, and
//! no message leaves that its receiver's `Message::validate` would drop. Hostile input
//! is still dropped with a warning, never a panic: `garbage_messages_never_panic`
//! and `validate_refuses_each_forged_number` (module `unit`) pin that side.

use super::super::log::RaftLog;
use crate::raft::{Body, Config, Entry, MemStorage, RawNode, Snapshot, SnapshotMeta};
use rand::SeedableRng;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: None,
    }
}

fn log_of(n: u64) -> RaftLog<MemStorage> {
    let mut log = RaftLog::new(MemStorage::new(), 0).expect("an empty log");
    let entries: Vec<Entry> = (1..=n).map(|i| entry(i, 1)).collect();
    log.append(&entries);
    log
}

#[test]
#[should_panic(expected = "leaves a gap")]
fn an_append_with_a_gap_is_refused() {
    let mut log = log_of(2);
    log.append(&[entry(4, 1)]);
}

#[test]
#[should_panic(expected = "rewrites committed entries")]
fn an_append_over_committed_entries_is_refused() {
    let mut log = log_of(3);
    log.commit_to(2);
    log.append(&[entry(2, 2)]);
}

#[test]
#[should_panic(expected = "does not pass commit")]
fn a_restore_never_lowers_the_commit_index() {
    let mut log = log_of(3);
    log.commit_to(3);
    log.restore(Snapshot {
        meta: SnapshotMeta { index: 2, term: 1 },
        data: Vec::new(),
    });
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "a receiver would drop")]
fn a_message_its_receiver_would_drop_is_never_sent() {
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let mut n = RawNode::new(Config::new(1, [1, 2, 3]), MemStorage::new(), rng).expect("node");
    let term = n.term;
    // An entry from a term after the message's own: `validate` drops it.
    n.send(
        2,
        Body::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![entry(1, term + 1)],
            commit: 0,
        },
    );
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "from a node in term")]
fn a_message_carries_the_senders_term() {
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let mut n = RawNode::new(Config::new(1, [1, 2, 3]), MemStorage::new(), rng).expect("node");
    let term = n.term;
    n.send_with_term(2, term + 1, Body::VoteResponse { granted: true });
}
