//! Transaction programs, a schedule executor, and a brute-force serializability
//! checker shared by the exhaustive and property tests.
//!
//! A history is judged from what the transactions *observed*, never from the engine's
//! own timestamps or edges: it is serializable iff some order of exactly the committed
//! transactions, run one after another from the initial state, makes every read and
//! scan of every committed transaction return what it returned, and ends in the final
//! store state. Aborted transactions must leave no trace: the final state is compared
//! against the committed transactions alone, and every written value is unique.

use std::collections::BTreeMap;

use crate::mvcc::{
    CommitOutcome, Conflict, Error, Key, KeyRange, MemStore, ReadOnlyStart, ReadStart, Timestamp,
    TxnId, TxnManager, Value, Version, VersionedStore,
};

/// One operation of a transaction program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get(Key),
    Put(Key, Value),
    Delete(Key),
    /// Scan `[start, end)`.
    Scan(Key, Key),
}

impl Op {
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Put(..) | Op::Delete(..))
    }
}

/// What an operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obs {
    Get(Option<Value>),
    Scan(Vec<(Key, Value)>),
    Write,
}

/// A step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The next step (begin, an op, or commit) of transaction `i`.
    Txn(usize),
    /// Garbage-collect the store at the current horizon.
    Gc,
}

/// How one transaction of a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Committed(Timestamp),
    /// Aborted by an operation (doomed), before commit.
    AbortedAtOp(Conflict),
    /// Aborted by commit validation (or a doom reported at commit).
    AbortedAtCommit(Conflict),
    /// The schedule ended first (never happens for complete schedules).
    Unfinished,
}

/// One transaction's run.
#[derive(Debug, Clone)]
pub struct TxnRun {
    pub ops: Vec<Op>,
    /// Results of the ops executed, in order.
    pub obs: Vec<Obs>,
    pub end: End,
    /// Ran without SSI tracking ([`RunOpts::read_only`]: safe, or a point read).
    pub untracked: bool,
}

/// A run of a schedule.
#[derive(Debug, Clone)]
pub struct History {
    pub initial: BTreeMap<Key, Value>,
    pub txns: Vec<TxnRun>,
    pub final_state: BTreeMap<Key, Value>,
}

fn kv(map: &BTreeMap<&str, &str>) -> BTreeMap<Key, Value> {
    map.iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// Runs `programs` interleaved by `schedule` (each transaction: begin, its ops, commit)
/// on a fresh manager holding `initial`. An op that reports an abort ends its
/// transaction (acknowledged with rollback).
pub fn run(
    mgr: &TxnManager<MemStore>,
    initial: &BTreeMap<&str, &str>,
    programs: &[Vec<Op>],
    schedule: &[Step],
) -> History {
    run_with(mgr, initial, programs, schedule, false)
}

/// Schedule steps transaction `program` takes: begin, each op, commit, and with
/// `split_reads` one more per read.
pub fn steps(program: &[Op], split_reads: bool) -> usize {
    let reads = program.iter().filter(|op| !op.is_write()).count();
    program.len() + 2 + if split_reads { reads } else { 0 }
}

/// The first half of a split read: what the store returned, awaiting its record.
enum Half {
    /// The transaction's own write (nothing to record).
    Own(Option<Value>),
    Get(Key, Option<Version>),
    Scan(KeyRange, Vec<(Key, Value)>),
}

/// [`run`], optionally with every read split in two schedule steps as the async `Db`
/// does it: read the store at the snapshot (outside the core's lock), then, at a later
/// step, record the read — so other transactions can commit in between.
pub fn run_with(
    mgr: &TxnManager<MemStore>,
    initial: &BTreeMap<&str, &str>,
    programs: &[Vec<Op>],
    schedule: &[Step],
    split_reads: bool,
) -> History {
    run_opts(
        mgr,
        initial,
        programs,
        schedule,
        RunOpts {
            split_reads,
            read_only: false,
        },
    )
}

/// How [`run_opts`] runs the programs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOpts {
    /// Every read in two schedule steps (see [`run_with`]).
    pub split_reads: bool,
    /// A program without writes runs as a read-only transaction
    /// ([`TxnManager::begin_read_only`]: untracked at a pinned safe snapshot, or
    /// tracked), and a program of one get as an untracked point read at the watermark
    /// ([`TxnManager::get_latest`], at its op's step; its begin and commit steps do
    /// nothing) — the paths of `Db::begin_read_only`, `Db::scan` and `Db::get`.
    /// Not combined with `split_reads` (untracked reads have no record step).
    pub read_only: bool,
}

/// How a running program holds the manager.
#[derive(Debug, Clone, Copy)]
enum Handle {
    Txn(TxnId),
    /// A safe read-only transaction: its pin and snapshot.
    Safe(TxnId, Timestamp),
    /// An untracked point read.
    Point,
}

/// [`run`] with [`RunOpts`].
pub fn run_opts(
    mgr: &TxnManager<MemStore>,
    initial: &BTreeMap<&str, &str>,
    programs: &[Vec<Op>],
    schedule: &[Step],
    opts: RunOpts,
) -> History {
    assert!(
        !(opts.split_reads && opts.read_only),
        "untracked reads are not split"
    );
    let split_reads = opts.split_reads;
    let initial = kv(initial);
    if !initial.is_empty() {
        let mut t = mgr.begin();
        for (k, v) in &initial {
            t.put(k.clone(), v.clone()).expect("setup put");
        }
        assert!(matches!(
            t.commit().expect("setup commit"),
            CommitOutcome::Committed { .. }
        ));
    }
    let mut txns: Vec<TxnRun> = programs
        .iter()
        .map(|ops| TxnRun {
            ops: ops.clone(),
            obs: Vec::new(),
            end: End::Unfinished,
            untracked: false,
        })
        .collect();
    let mut ids: Vec<Option<Handle>> = vec![None; programs.len()];
    let mut halves: Vec<Option<Half>> = (0..programs.len()).map(|_| None).collect();
    let core = mgr.core();
    for step in schedule {
        let i = match step {
            Step::Gc => {
                mgr.gc().expect("gc");
                continue;
            }
            Step::Txn(i) => *i,
        };
        let t = &mut txns[i];
        if t.end != End::Unfinished {
            continue; // aborted early: its remaining steps are skipped
        }
        let Some(handle) = ids[i] else {
            let handle = begin(mgr, &t.ops, opts.read_only);
            t.untracked = !matches!(handle, Handle::Txn(_));
            ids[i] = Some(handle);
            continue;
        };
        let id = match handle {
            Handle::Txn(id) => id,
            Handle::Safe(..) | Handle::Point => {
                untracked_step(mgr, handle, t);
                continue;
            }
        };
        let result = if let Some(half) = halves[i].take() {
            match half {
                Half::Own(v) => Ok(Obs::Get(v)),
                Half::Get(k, found) => core
                    .record_read(id, &k, found.as_ref().map(|v| v.ts))
                    .map(|()| Obs::Get(found.and_then(|v| v.value))),
                Half::Scan(range, rows) => core.record_scan(id, range, rows).map(Obs::Scan),
            }
        } else if t.obs.len() == t.ops.len() {
            t.end = match mgr.commit(id).expect("commit") {
                CommitOutcome::Committed { ts } => End::Committed(ts),
                CommitOutcome::Aborted(c) => End::AbortedAtCommit(c),
            };
            continue;
        } else {
            let op = &t.ops[t.obs.len()];
            let first_half = match op {
                Op::Get(k) if split_reads => Some(core.read_start(id, k).map(|r| {
                    match r {
                        ReadStart::Own(v) => Half::Own(v),
                        ReadStart::Snapshot(at) => Half::Get(
                            k.clone(),
                            mgr.with_store(|s| s.get(k, at).expect("store get"))
                                .expect("store"),
                        ),
                    }
                })),
                Op::Scan(s, e) if split_reads => {
                    let range = KeyRange::new(s.clone()..e.clone()).expect("range");
                    Some(core.scan_start(id, &range).map(|at| match at {
                        None => Half::Scan(range, Vec::new()),
                        Some(at) => {
                            let rows = mgr
                                .with_store(|st| st.scan(&range, at).expect("store scan"))
                                .expect("store");
                            Half::Scan(range, rows)
                        }
                    }))
                }
                _ => None,
            };
            match first_half {
                Some(Ok(half)) => {
                    halves[i] = Some(half);
                    continue;
                }
                Some(Err(e)) => Err(e),
                None => match op {
                    Op::Get(k) => mgr.get(id, k).map(Obs::Get),
                    Op::Put(k, v) => mgr.put(id, k.clone(), v.clone()).map(|()| Obs::Write),
                    Op::Delete(k) => mgr.delete(id, k.clone()).map(|()| Obs::Write),
                    Op::Scan(s, e) => mgr
                        .scan(id, KeyRange::new(s.clone()..e.clone()).expect("range"))
                        .map(Obs::Scan),
                },
            }
        };
        match result {
            Ok(obs) => t.obs.push(obs),
            Err(Error::Aborted(c)) => {
                mgr.rollback(id).expect("acknowledge abort");
                t.end = End::AbortedAtOp(c);
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    let final_state = mgr
        .with_store(|s| s.scan(&KeyRange::all(), Timestamp::MAX).expect("scan"))
        .expect("store")
        .into_iter()
        .collect();
    mgr.verify_invariants().expect("invariants");
    History {
        initial,
        txns,
        final_state,
    }
}

/// Begins a program's transaction as [`RunOpts::read_only`] says.
fn begin(mgr: &TxnManager<MemStore>, ops: &[Op], read_only: bool) -> Handle {
    if !read_only || ops.iter().any(Op::is_write) {
        return Handle::Txn(mgr.begin_id().expect("begin").0);
    }
    if matches!(ops, [Op::Get(_)]) {
        return Handle::Point;
    }
    match mgr.begin_read_only().expect("begin read-only") {
        ReadOnlyStart::Safe { pin, snapshot } => Handle::Safe(pin, snapshot),
        ReadOnlyStart::Tracked { id, .. } => Handle::Txn(id),
    }
}

/// The next step (an op, or the end) of an untracked program: it never aborts.
fn untracked_step(mgr: &TxnManager<MemStore>, handle: Handle, t: &mut TxnRun) {
    let Some(op) = t.ops.get(t.obs.len()) else {
        t.end = match handle {
            Handle::Safe(pin, at) => {
                mgr.unpin(pin).expect("unpin");
                End::Committed(at)
            }
            _ => End::Committed(Timestamp::ZERO),
        };
        return;
    };
    let obs = match (handle, op) {
        (Handle::Safe(_, at), Op::Get(k)) => Obs::Get(mgr.get_untracked(k, at).expect("get")),
        (Handle::Safe(_, at), Op::Scan(s, e)) => {
            let range = KeyRange::new(s.clone()..e.clone()).expect("range");
            Obs::Scan(mgr.scan_untracked(&range, at).expect("scan"))
        }
        (Handle::Point, Op::Get(k)) => Obs::Get(mgr.get_latest(k).expect("get")),
        (h, op) => unreachable!("{op:?} in an untracked {h:?}"),
    };
    t.obs.push(obs);
}

/// A compact, readable account of a history, for failure reports.
pub fn describe(h: &History, schedule: &[Step]) -> String {
    use crate::mvcc::show;
    use std::fmt::Write as _;
    let mut out = format!(
        "schedule {:?}\n",
        schedule
            .iter()
            .map(|s| match s {
                Step::Txn(i) => format!("t{i}"),
                Step::Gc => "gc".into(),
            })
            .collect::<Vec<_>>()
    );
    let rows = |rows: &[(Key, Value)]| {
        rows.iter()
            .map(|(k, v)| format!("{}={}", show(k), show(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (i, t) in h.txns.iter().enumerate() {
        let ops: Vec<String> = t
            .ops
            .iter()
            .enumerate()
            .map(|(j, op)| {
                let obs = t.obs.get(j);
                match (op, obs) {
                    (Op::Get(k), Some(Obs::Get(v))) => format!(
                        "get {} → {}",
                        show(k),
                        v.as_ref().map_or("None".into(), |v| show(v))
                    ),
                    (Op::Scan(s, e), Some(Obs::Scan(r))) => {
                        format!("scan {}..{} → [{}]", show(s), show(e), rows(r))
                    }
                    (Op::Put(k, v), _) => format!("put {}={}", show(k), show(v)),
                    (Op::Delete(k), _) => format!("delete {}", show(k)),
                    (op, _) => format!("{op:?} (not run)"),
                }
            })
            .collect();
        let _ = writeln!(out, "t{i}: {} ⇒ {:?}", ops.join("; "), t.end);
    }
    let _ = writeln!(
        out,
        "final: {}",
        rows(
            &h.final_state
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        )
    );
    out
}

/// Replays `t` on `state`; false if an observation differs.
fn replay(t: &TxnRun, state: &mut BTreeMap<Key, Value>) -> bool {
    for (op, obs) in t.ops.iter().zip(&t.obs) {
        match (op, obs) {
            (Op::Get(k), Obs::Get(v)) => {
                if state.get(k) != v.as_ref() {
                    return false;
                }
            }
            (Op::Scan(s, e), Obs::Scan(rows)) => {
                let want: Vec<(Key, Value)> = state
                    .range(s.clone()..e.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if &want != rows {
                    return false;
                }
            }
            (Op::Put(k, v), Obs::Write) => {
                state.insert(k.clone(), v.clone());
            }
            (Op::Delete(k), Obs::Write) => {
                state.remove(k);
            }
            _ => unreachable!("observation does not match its op"),
        }
    }
    true
}

/// A serial order of the committed transactions that explains the history, or `None`.
pub fn serial_order(h: &History) -> Option<Vec<usize>> {
    let committed: Vec<usize> = (0..h.txns.len())
        .filter(|&i| matches!(h.txns[i].end, End::Committed(_)))
        .collect();
    let mut order = Vec::new();
    let mut used = vec![false; committed.len()];
    search(h, &committed, &mut used, &mut order, h.initial.clone())
}

fn search(
    h: &History,
    committed: &[usize],
    used: &mut [bool],
    order: &mut Vec<usize>,
    state: BTreeMap<Key, Value>,
) -> Option<Vec<usize>> {
    if order.len() == committed.len() {
        return (state == h.final_state).then(|| order.clone());
    }
    for j in 0..committed.len() {
        if used[j] {
            continue;
        }
        let mut next = state.clone();
        if !replay(&h.txns[committed[j]], &mut next) {
            continue;
        }
        used[j] = true;
        order.push(committed[j]);
        if let Some(found) = search(h, committed, used, order, next) {
            return Some(found);
        }
        order.pop();
        used[j] = false;
    }
    None
}

/// Liveness checks every correct manager must pass on any history: a transaction that
/// never wrote is never aborted by commit validation, and a history in which the
/// transactions ran one after another (`serial`) commits them all.
pub fn check_no_needless_abort(h: &History, serial: bool) -> Result<(), String> {
    for (i, t) in h.txns.iter().enumerate() {
        let wrote = t.ops.iter().take(t.obs.len()).any(Op::is_write);
        if let End::AbortedAtCommit(c) = &t.end {
            if !wrote {
                return Err(format!("read-only t{i} aborted at commit: {c}"));
            }
        }
        if serial && !matches!(t.end, End::Committed(_)) {
            return Err(format!("serial history aborted t{i}: {:?}", t.end));
        }
    }
    Ok(())
}

/// Whether a schedule runs each transaction's steps contiguously.
pub fn is_serial(schedule: &[Step]) -> bool {
    let txn_steps: Vec<usize> = schedule
        .iter()
        .filter_map(|s| if let Step::Txn(i) = s { Some(*i) } else { None })
        .collect();
    let mut seen = Vec::new();
    for w in txn_steps.windows(2) {
        if w[0] != w[1] {
            if seen.contains(&w[1]) {
                return false;
            }
            seen.push(w[0]);
        }
    }
    true
}

/// Shorthands for building programs.
pub fn get(k: &str) -> Op {
    Op::Get(k.as_bytes().to_vec())
}
pub fn put(k: &str, v: &str) -> Op {
    Op::Put(k.as_bytes().to_vec(), v.as_bytes().to_vec())
}
pub fn del(k: &str) -> Op {
    Op::Delete(k.as_bytes().to_vec())
}
pub fn scan(s: &str, e: &str) -> Op {
    Op::Scan(s.as_bytes().to_vec(), e.as_bytes().to_vec())
}

#[test]
fn checker_rejects_write_skew_and_accepts_serial() {
    // Hand-built histories: the checker itself must be able to say no.
    let ws = |end2: End| History {
        initial: kv(&BTreeMap::from([("a", "1"), ("b", "1")])),
        txns: vec![
            TxnRun {
                ops: vec![get("b"), put("a", "0")],
                obs: vec![Obs::Get(Some(b"1".to_vec())), Obs::Write],
                end: End::Committed(Timestamp(2)),
                untracked: false,
            },
            TxnRun {
                ops: vec![get("a"), put("b", "0")],
                obs: vec![Obs::Get(Some(b"1".to_vec())), Obs::Write],
                end: end2,
                untracked: false,
            },
        ],
        final_state: kv(&BTreeMap::from([("a", "0"), ("b", "0")])),
    };
    assert_eq!(serial_order(&ws(End::Committed(Timestamp(3)))), None);
    let mut one = ws(End::AbortedAtCommit(Conflict::WriteWrite {
        key: b"b".to_vec(),
        committed: Timestamp(2),
    }));
    assert_eq!(
        serial_order(&one),
        None,
        "the aborted write to b is in the final state"
    );
    one.final_state = kv(&BTreeMap::from([("a", "0"), ("b", "1")]));
    assert_eq!(serial_order(&one), Some(vec![0]));
    assert!(is_serial(&[
        Step::Txn(0),
        Step::Txn(0),
        Step::Gc,
        Step::Txn(1)
    ]));
    assert!(!is_serial(&[Step::Txn(0), Step::Txn(1), Step::Txn(0)]));
}
