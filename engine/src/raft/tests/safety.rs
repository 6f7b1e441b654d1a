//! The safety checker can fail: each property fed a history that breaks it.

use crate::raft::safety::{EntryId, Event, SafetyChecker, Violation};
use crate::raft::{Index, NodeId, Term};

fn id(index: Index, term: Term, data: u64) -> EntryId {
    EntryId {
        index,
        term,
        digest: data,
    }
}

fn log(node: NodeId, entries: &[EntryId]) -> Event {
    Event::Log {
        node,
        start: (0, 0),
        entries: entries.to_vec(),
    }
}

fn term(node: NodeId, term: Term) -> Event {
    Event::Term { node, term }
}

fn leader(node: NodeId, term: Term) -> Event {
    Event::BecameLeader { node, term }
}

fn commit(node: NodeId, index: Index) -> Event {
    Event::Commit { node, index }
}

/// Feeds `events`; returns the first violation, if any.
fn run(events: Vec<Event>) -> Option<Violation> {
    let mut c = SafetyChecker::new();
    for e in events {
        if let Err(v) = c.record(e) {
            return Some(v);
        }
    }
    None
}

/// A correct history: n1 leads term 1, replicates and commits 1@1 and 2@1 on n2,
/// both apply; n2 leads term 2 with both.
fn good() -> Vec<Event> {
    let (a, b) = (id(1, 1, 10), id(2, 1, 20));
    vec![
        term(1, 1),
        term(2, 1),
        leader(1, 1),
        log(1, &[a, b]),
        log(2, &[a, b]),
        commit(1, 2),
        commit(2, 2),
        Event::Apply { node: 1, entry: a },
        Event::Apply { node: 1, entry: b },
        Event::Apply { node: 2, entry: a },
        term(2, 2),
        leader(2, 2),
        log(2, &[a, b, id(3, 2, 30)]),
    ]
}

#[test]
fn a_correct_history_passes() {
    assert_eq!(run(good()), None);
}

#[test]
fn two_leaders_in_one_term_break_election_safety() {
    let v = run(vec![term(1, 3), term(2, 3), leader(1, 3), leader(2, 3)]);
    assert!(
        matches!(
            v,
            Some(Violation::ElectionSafety {
                term: 3,
                first: 1,
                second: 2,
                ..
            })
        ),
        "{v:?}"
    );
}

#[test]
fn same_index_and_term_with_different_content_breaks_log_matching() {
    let v = run(vec![
        term(1, 1),
        term(2, 1),
        log(1, &[id(1, 1, 10)]),
        log(2, &[id(1, 1, 11)]),
    ]);
    assert!(
        matches!(v, Some(Violation::LogMatching { node: 2, .. })),
        "{v:?}"
    );
}

#[test]
fn same_entry_after_different_prefixes_breaks_log_matching() {
    // 2@3 is the same entry on both, but it follows 1@1 on n1 and 1@2 on n2.
    let v = run(vec![
        term(1, 3),
        term(2, 3),
        log(1, &[id(1, 1, 10), id(2, 3, 30)]),
        log(2, &[id(1, 2, 20), id(2, 3, 30)]),
    ]);
    assert!(
        matches!(v, Some(Violation::LogMatching { node: 2, .. })),
        "{v:?}"
    );
}

#[test]
fn a_log_with_decreasing_terms_or_a_gap_is_rejected() {
    let down = run(vec![term(1, 2), log(1, &[id(1, 2, 1), id(2, 1, 2)])]);
    assert!(
        matches!(down, Some(Violation::LogMatching { .. })),
        "{down:?}"
    );
    let gap = run(vec![term(1, 2), log(1, &[id(1, 1, 1), id(3, 1, 2)])]);
    assert!(
        matches!(gap, Some(Violation::LogMatching { .. })),
        "{gap:?}"
    );
    let future = run(vec![term(1, 1), log(1, &[id(1, 2, 1)])]);
    assert!(
        matches!(future, Some(Violation::LogMatching { .. })),
        "{future:?}"
    );
}

#[test]
fn a_leader_elected_without_a_committed_entry_breaks_leader_completeness() {
    let a = id(1, 1, 10);
    let v = run(vec![
        term(1, 1),
        leader(1, 1),
        log(1, &[a]),
        commit(1, 1),
        term(2, 2),
        log(2, &[]),
        leader(2, 2),
    ]);
    assert!(
        matches!(v, Some(Violation::LeaderCompleteness { leader: 2, term: 2, missing, .. }) if missing == a),
        "{v:?}"
    );
}

#[test]
fn committing_an_entry_a_later_leader_lacks_breaks_leader_completeness() {
    // n2 was elected in term 2 first; then n1, still in term 1, commits 1@1.
    let a = id(1, 1, 10);
    let v = run(vec![
        term(2, 2),
        leader(2, 2),
        term(1, 1),
        log(1, &[a]),
        commit(1, 1),
    ]);
    assert!(
        matches!(v, Some(Violation::LeaderCompleteness { leader: 2, .. })),
        "{v:?}"
    );
}

#[test]
fn an_old_term_entry_committed_late_does_not_bind_earlier_leaders() {
    // Figure 8: 2@2 is committed only in term 4; the leader of term 3 lacked it.
    let (a, b) = (id(1, 1, 10), id(2, 2, 20));
    let v = run(vec![
        term(1, 3),
        log(1, &[a]),
        leader(1, 3),
        term(5, 4),
        log(5, &[a, b, id(3, 4, 40)]),
        leader(5, 4),
        commit(5, 3),
    ]);
    assert_eq!(v, None);
}

#[test]
fn different_entries_committed_or_applied_at_one_index_break_state_machine_safety() {
    let committed = run(vec![
        term(1, 1),
        log(1, &[id(1, 1, 10)]),
        commit(1, 1),
        term(2, 2),
        log(2, &[id(1, 2, 20)]),
        commit(2, 1),
    ]);
    assert!(
        matches!(
            committed,
            Some(Violation::StateMachineSafety {
                node: 2,
                what: "committed",
                ..
            })
        ),
        "{committed:?}"
    );
    let applied = run(vec![
        term(1, 1),
        log(1, &[id(1, 1, 10)]),
        commit(1, 1),
        Event::Apply {
            node: 1,
            entry: id(1, 1, 99),
        },
    ]);
    assert!(
        matches!(
            applied,
            Some(Violation::StateMachineSafety {
                node: 1,
                what: "applied",
                ..
            })
        ),
        "{applied:?}"
    );
}

#[test]
fn commit_moving_backwards_is_caught_but_not_across_a_restart() {
    let a = [id(1, 1, 1), id(2, 1, 2)];
    let back = run(vec![term(1, 1), log(1, &a), commit(1, 2), commit(1, 1)]);
    assert!(
        matches!(
            back,
            Some(Violation::CommitRegressed { from: 2, to: 1, .. })
        ),
        "{back:?}"
    );
    let restarted = run(vec![
        term(1, 1),
        log(1, &a),
        commit(1, 2),
        Event::Restart { node: 1 },
        term(1, 1),
        log(1, &a),
        commit(1, 1),
    ]);
    assert_eq!(restarted, None);
}

#[test]
fn terms_never_go_back() {
    let v = run(vec![term(1, 3), term(1, 2)]);
    assert!(
        matches!(v, Some(Violation::TermRegressed { from: 3, to: 2, .. })),
        "{v:?}"
    );
}

#[test]
fn truncating_a_committed_entry_is_caught_on_any_node() {
    let (a, b) = (id(1, 1, 1), id(2, 1, 2));
    // n1 truncates below its own commit index.
    let own = run(vec![
        term(1, 2),
        log(1, &[a, b]),
        commit(1, 2),
        log(1, &[a, id(2, 2, 3)]),
    ]);
    assert!(
        matches!(
            own,
            Some(Violation::CommittedEntryTruncated { node: 1, .. })
        ),
        "{own:?}"
    );
    // n2 drops an entry committed elsewhere (its own commit index is behind).
    let other = run(vec![
        term(1, 1),
        term(2, 2),
        log(1, &[a, b]),
        commit(1, 2),
        log(2, &[a, b]),
        log(2, &[a]),
    ]);
    assert!(
        matches!(other, Some(Violation::CommittedEntryTruncated { node: 2, entry, .. }) if entry == b),
        "{other:?}"
    );
    // An uncommitted entry may be replaced.
    let fine = run(vec![term(2, 2), log(2, &[a, b]), log(2, &[a, id(2, 2, 9)])]);
    assert_eq!(fine, None);
}

#[test]
fn impossible_transitions_are_reported() {
    let a = id(1, 1, 1);
    let beyond = run(vec![term(1, 1), log(1, &[a]), commit(1, 2)]);
    assert!(
        matches!(beyond, Some(Violation::Impossible { .. })),
        "{beyond:?}"
    );
    let out_of_order = run(vec![
        term(1, 1),
        log(1, &[a, id(2, 1, 2)]),
        commit(1, 2),
        Event::Apply {
            node: 1,
            entry: id(2, 1, 2),
        },
    ]);
    assert!(
        matches!(out_of_order, Some(Violation::Impossible { .. })),
        "{out_of_order:?}"
    );
    let uncommitted = run(vec![
        term(1, 1),
        log(1, &[a]),
        Event::Apply { node: 1, entry: a },
    ]);
    assert!(
        matches!(uncommitted, Some(Violation::Impossible { .. })),
        "{uncommitted:?}"
    );
    let snapshot = run(vec![
        term(1, 1),
        Event::Log {
            node: 1,
            start: (5, 1),
            entries: vec![],
        },
    ]);
    assert!(
        matches!(snapshot, Some(Violation::Impossible { .. })),
        "{snapshot:?}"
    );
}
