//! Unit tests of edges the scripts do not reach: the handle API, store failures and
//! fail-stop, resuming from a store, and the invariant checker's ability to object.

use crate::mvcc::{
    CommitOutcome, Conflict, Error, Key, KeyRange, MemStore, StoreError, Timestamp, TxnManager,
    Value, Version, VersionedStore, WriteSet,
};

#[test]
fn handle_api_reads_own_writes_and_rolls_back_on_drop() {
    let mgr = TxnManager::new(MemStore::new());
    let mut t = mgr.begin();
    assert_eq!(t.snapshot(), Timestamp::ZERO);
    t.put(b"k".to_vec(), b"v".to_vec()).unwrap();
    assert_eq!(t.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(
        t.scan(b"a".to_vec()..b"z".to_vec()).unwrap(),
        vec![(b"k".to_vec(), b"v".to_vec())]
    );
    assert_eq!(
        t.commit().unwrap(),
        CommitOutcome::Committed { ts: Timestamp(1) }
    );
    assert!(matches!(t.get(b"k"), Err(Error::NotActive(_))));
    {
        let mut dropped = mgr.begin();
        dropped.put(b"k".to_vec(), b"lost".to_vec()).unwrap();
    }
    let t = mgr.begin();
    assert_eq!(t.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert!(matches!(
        t.scan(b"z".to_vec()..b"a".to_vec()),
        Err(Error::InvalidRange)
    ));
    drop(t);
    let state = mgr.state().unwrap();
    assert!(
        state.txns.is_empty() && state.doomed.is_empty(),
        "{state:?}"
    );
}

#[test]
fn manager_resumes_its_clock_from_the_store() {
    let mut store = MemStore::new();
    store
        .apply(
            Timestamp(7),
            &WriteSet::from([(b"a".to_vec(), Some(b"1".to_vec()))]),
        )
        .unwrap();
    let mgr = TxnManager::new(store);
    let mut t = mgr.begin();
    assert_eq!(t.snapshot(), Timestamp(7));
    assert_eq!(t.get(b"a").unwrap(), Some(b"1".to_vec()));
    t.put(b"a".to_vec(), b"2".to_vec()).unwrap();
    assert_eq!(
        t.commit().unwrap(),
        CommitOutcome::Committed { ts: Timestamp(8) }
    );
}

#[test]
fn doomed_transaction_reports_the_same_conflict_everywhere() {
    let mgr = TxnManager::new(MemStore::new());
    let mut t1 = mgr.begin();
    let mut t2 = mgr.begin();
    t1.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    t2.put(b"a".to_vec(), b"2".to_vec()).unwrap();
    assert_eq!(
        t1.commit().unwrap(),
        CommitOutcome::Committed { ts: Timestamp(1) }
    );
    let want = Conflict::WriteWrite {
        key: b"a".to_vec(),
        committed: Timestamp(1),
    };
    assert_eq!(t2.get(b"a").unwrap_err().conflict(), Some(&want));
    assert_eq!(
        t2.delete(b"b".to_vec()).unwrap_err().conflict(),
        Some(&want)
    );
    assert_eq!(t2.commit().unwrap(), CommitOutcome::Aborted(want));
    assert!(matches!(t2.rollback(), Err(Error::NotActive(_))));
}

/// A MemStore whose `apply` fails on demand.
#[derive(Default)]
struct FailingStore {
    inner: MemStore,
    fail_apply: bool,
}

impl VersionedStore for FailingStore {
    fn get(&self, key: &[u8], at: Timestamp) -> Result<Option<Version>, StoreError> {
        self.inner.get(key, at)
    }
    fn scan(&self, range: &KeyRange, at: Timestamp) -> Result<Vec<(Key, Value)>, StoreError> {
        self.inner.scan(range, at)
    }
    fn latest_commit_ts(&self, key: &[u8]) -> Result<Option<Timestamp>, StoreError> {
        self.inner.latest_commit_ts(key)
    }
    fn last_commit_ts(&self) -> Timestamp {
        self.inner.last_commit_ts()
    }
    fn apply(&mut self, ts: Timestamp, writes: &WriteSet) -> Result<(), StoreError> {
        if self.fail_apply {
            return Err(StoreError::new("injected EIO"));
        }
        self.inner.apply(ts, writes)
    }
    fn gc(&mut self, below: Timestamp) -> Result<(), StoreError> {
        self.inner.gc(below)
    }
}

#[test]
fn a_failed_apply_poisons_the_manager() {
    let mgr = TxnManager::new(FailingStore {
        fail_apply: true,
        ..FailingStore::default()
    });
    let mut reader = mgr.begin();
    assert_eq!(reader.get(b"a").unwrap(), None);
    let mut t = mgr.begin();
    t.put(b"a".to_vec(), b"1".to_vec()).unwrap();
    assert!(matches!(t.commit(), Err(Error::Store(_))));
    // Fail-stop: every later call, on any transaction, reports the poisoning.
    assert!(matches!(reader.get(b"a"), Err(Error::Poisoned(_))));
    assert!(matches!(reader.commit(), Err(Error::Poisoned(_))));
    assert!(matches!(mgr.begin_id(), Err(Error::Poisoned(_))));
    assert!(mgr.verify_invariants().is_err());
}

/// The async Db reads the store between `read_start` and `record_read`, outside the
/// core's lock. A writer that commits in that window must still be caught — here by
/// the reader side, since the writer validated before the read was recorded.
#[test]
fn a_writer_committing_between_store_read_and_record_is_caught() {
    for canary in [None, Some(crate::mvcc::SsiCanary::SkipReaderSideCheck)] {
        let mgr = match canary {
            None => TxnManager::new(MemStore::new()),
            Some(c) => TxnManager::with_canaries(MemStore::new(), [c]),
        };
        let mut init = mgr.begin();
        init.put(b"a".to_vec(), b"0".to_vec()).unwrap();
        init.put(b"b".to_vec(), b"0".to_vec()).unwrap();
        init.commit().unwrap();
        let core = mgr.core();
        let (t1, _) = core.begin().unwrap();
        let (t2, _) = core.begin().unwrap();
        // t1 reads a from the store...
        let crate::mvcc::ReadStart::Snapshot(at) = core.read_start(t1, b"a").unwrap() else {
            panic!("no own write")
        };
        let seen = mgr.with_store(|s| s.get(b"a", at).unwrap()).unwrap();
        // ...t2 reads b, writes a and commits...
        assert_eq!(mgr.get(t2, b"b").unwrap(), Some(b"0".to_vec()));
        mgr.put(t2, b"a".to_vec(), b"2".to_vec()).unwrap();
        assert!(matches!(
            mgr.commit(t2).unwrap(),
            CommitOutcome::Committed { .. }
        ));
        // ...then t1's read is recorded, and t1 writes b: write skew unless caught.
        core.record_read(t1, b"a", seen.map(|v| v.ts)).unwrap();
        mgr.put(t1, b"b".to_vec(), b"1".to_vec()).unwrap();
        let outcome = mgr.commit(t1).unwrap();
        match canary {
            None => assert!(
                matches!(
                    outcome,
                    CommitOutcome::Aborted(Conflict::Serialization { .. })
                ),
                "{outcome:?}"
            ),
            Some(_) => assert!(
                matches!(outcome, CommitOutcome::Committed { .. }),
                "the canary lets it through"
            ),
        }
    }
}

/// The two halves of the safe-snapshot rule, step by step on the core (the manager
/// publishes at once, so it never shows a prepared commit waiting): a read-only
/// transaction is tracked while a writer whose snapshot predates the watermark is
/// active, or prepared but not yet published; writers that see the watermark and
/// read-only commits do not count. The lock-free `safe_read_point` agrees, a tracked
/// read-only transaction cannot write, and a safe reader's pin holds the GC horizon.
#[test]
fn safe_snapshots_wait_for_older_writers_active_or_unpublished() {
    use crate::mvcc::{Prepared, ReadOnlyStart, TxnCore, TxnId};
    let core = TxnCore::new(Timestamp(5));
    let safe = |core: &TxnCore| match core.begin_read_only().unwrap() {
        ReadOnlyStart::Safe { pin, snapshot } => {
            assert_eq!(core.safe_read_point().unwrap(), Some(snapshot));
            core.unpin(pin).unwrap();
            true
        }
        ReadOnlyStart::Tracked { id, .. } => {
            core.rollback(id).unwrap();
            false
        }
    };
    let prepare = |core: &TxnCore, id: TxnId| -> Timestamp {
        match core
            .prepare_commit(id, |ts, _| Ok::<Timestamp, StoreError>(ts))
            .unwrap()
        {
            Prepared::Committed { ts, .. } => ts,
            p => panic!("{p:?}"),
        }
    };
    assert!(safe(&core), "nothing active");
    // Writers whose snapshot is the watermark, active or prepared, and a read-only
    // commit (it takes a ts and publishes nothing): all see @5, which stays safe.
    let (a, _) = core.begin().unwrap();
    let (b, _) = core.begin().unwrap();
    let (r, _) = core.begin().unwrap();
    core.put(a, b"a".to_vec(), b"1".to_vec()).unwrap();
    core.put(b, b"b".to_vec(), b"1".to_vec()).unwrap();
    assert!(safe(&core));
    let ts_a = prepare(&core, a);
    assert!(safe(&core), "a prepared writer that saw @5");
    prepare(&core, r);
    assert!(safe(&core));
    // @ts_a published: b (active, snapshot @5) predates the new watermark.
    core.publish(ts_a);
    assert_eq!(core.safe_read_point().unwrap(), None);
    assert!(!safe(&core), "an active writer predates the watermark");
    // b prepared but not published: still there, above the watermark.
    let ts_b = prepare(&core, b);
    assert_eq!(core.safe_read_point().unwrap(), None);
    assert!(!safe(&core), "a prepared writer predates the watermark");
    // A tracked read-only transaction cannot write; once b is visible, the older
    // tracked reader does not make the watermark unsafe (it can never be a pivot).
    let ReadOnlyStart::Tracked { id: ro, .. } = core.begin_read_only().unwrap() else {
        panic!("tracked expected");
    };
    assert!(matches!(
        core.put(ro, b"x".to_vec(), b"1".to_vec()),
        Err(Error::ReadOnly(_))
    ));
    core.publish(ts_b);
    assert_eq!(core.safe_read_point().unwrap(), Some(ts_b));
    // A pin holds the GC horizon at its snapshot even after the tracked reader ends.
    let ReadOnlyStart::Safe { pin, snapshot } = core.begin_read_only().unwrap() else {
        panic!("safe expected");
    };
    core.rollback(ro).unwrap();
    let (w, _) = core.begin().unwrap();
    core.put(w, b"w".to_vec(), b"1".to_vec()).unwrap();
    let ts_w = prepare(&core, w);
    core.publish(ts_w);
    assert_eq!(core.gc_horizon().unwrap(), snapshot);
    core.unpin(pin).unwrap();
    assert_eq!(core.gc_horizon().unwrap(), ts_w);
    assert!(matches!(core.unpin(pin), Err(Error::NotActive(_))));
    core.verify_invariants().unwrap();
}
