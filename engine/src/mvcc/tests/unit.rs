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
            return Err(StoreError("injected EIO".into()));
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
