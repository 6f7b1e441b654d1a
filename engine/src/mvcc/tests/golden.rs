//! Goldenscript tests: `testscripts/*`, one file per anomaly or feature.
//!
//! Commands (`tN:` names a transaction; scripts use `t1`, `t2`, …):
//! - `import k=v…`: commit the pairs in a transaction of their own.
//! - `tN: begin`, `tN: commit`, `tN: rollback`.
//! - `tN: begin readonly`: a read-only transaction ([`TxnManager::begin_read_only`]),
//!   printed `(safe)` when it runs untracked at a pinned safe snapshot, `(tracked)`
//!   otherwise. A safe one's reads go to the store alone; its commit releases the pin.
//! - `tN: get k…`, `tN: put k=v…`, `tN: delete k…`, `tN: scan [START..END]` (END exclusive,
//!   either side may be empty: `a..`, `"..c"`; no argument scans everything).
//! - `get-latest k…`: untracked point reads at the watermark ([`TxnManager::get_latest`]).
//! - `dump`: every stored version. `state`: the SSI graph. `gc`: garbage-collect.
//!
//! A conflict is printed as an outcome (`→ aborted: …`); misuse is an error, so a script
//! expects it with `!`.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;

use crate::mvcc::{
    show, CommitOutcome, Conflict, Error, KeyRange, MemStore, ReadOnlyStart, Timestamp, TxnId,
    TxnManager,
};

pub(super) struct Runner {
    mgr: TxnManager<MemStore>,
    txns: BTreeMap<String, TxnId>,
    names: BTreeMap<TxnId, String>,
    /// Safe read-only transactions (by pin id): their snapshot.
    safe: BTreeMap<TxnId, Timestamp>,
}

pub(super) type Res = Result<String, Box<dyn StdError>>;

impl Runner {
    pub(super) fn new() -> Runner {
        Runner {
            mgr: TxnManager::new(MemStore::new()),
            txns: BTreeMap::new(),
            names: BTreeMap::new(),
            safe: BTreeMap::new(),
        }
    }

    fn name(&self, id: &TxnId) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    fn conflict(&self, c: &Conflict) -> String {
        describe(c, |t| self.name(t))
    }

    /// Renders an engine abort as output; passes every other error through.
    fn aborted<T>(&self, r: Result<T, Error>, ok: impl FnOnce(T) -> String) -> Res {
        match r {
            Ok(v) => Ok(ok(v)),
            Err(Error::Aborted(c)) => Ok(format!("aborted: {}", self.conflict(&c))),
            Err(e) => Err(e.into()),
        }
    }

    fn txn(&self, prefix: &Option<String>) -> Result<TxnId, Box<dyn StdError>> {
        let name = prefix
            .as_ref()
            .ok_or("this command needs a txn prefix, e.g. t1:")?;
        Ok(*self
            .txns
            .get(name)
            .ok_or_else(|| format!("no transaction {name}"))?)
    }

    fn dump(&self) -> Res {
        let mut out = String::new();
        self.mgr.with_store(|s| {
            for (k, ts, v) in s.versions() {
                let v = v.map_or("(tombstone)".to_string(), show);
                writeln!(out, "{}{ts} = {v}", show(k)).expect("write to string");
            }
        })?;
        if out.is_empty() {
            out.push_str("(empty)\n");
        }
        Ok(out)
    }

    fn state(&self) -> Res {
        render_state(&self.mgr.state()?, |t| self.name(t))
    }
}

/// The SSI graph as the scripts print it, transactions by script name.
pub(super) fn render_state(st: &crate::mvcc::ManagerState, name: impl Fn(&TxnId) -> String) -> Res {
    let mut out = format!("latest {} gc horizon {}\n", st.latest, st.gc_horizon);
    let list = |v: &[Vec<u8>]| v.iter().map(|k| show(k)).collect::<Vec<_>>().join(",");
    let names = |v: &[TxnId]| v.iter().map(&name).collect::<Vec<_>>().join(",");
    for t in &st.txns {
        let status = match t.commit_ts {
            Some(c) => format!("committed {c}"),
            None => "active".to_string(),
        };
        let ranges = t
            .ranges
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",");
        writeln!(
                out,
                "{} {status} snapshot {} reads {{{}}} ranges {{{ranges}}} writes {{{}}} in {{{}}} out {{{}}}",
                name(&t.id),
                t.snapshot,
                list(&t.reads),
                list(&t.writes),
                names(&t.in_edges),
                names(&t.out_edges),
            )?;
    }
    for (t, c) in &st.doomed {
        writeln!(out, "{} doomed: {}", name(t), describe(c, &name))?;
    }
    for (t, s) in &st.pins {
        writeln!(out, "{} pins snapshot {s}", name(t))?;
    }
    Ok(out)
}

/// A conflict as the scripts print it, transactions by script name.
pub(super) fn describe(c: &Conflict, name: impl Fn(&TxnId) -> String) -> String {
    match c {
        Conflict::WriteWrite { key, committed } => {
            format!(
                "write-write conflict on {} (committed {committed})",
                show(key)
            )
        }
        Conflict::Serialization { t1, pivot, t3 } => format!(
            "serialization failure: {} →rw {} →rw {} (pivot {})",
            name(t1),
            name(pivot),
            name(t3),
            name(pivot)
        ),
    }
}

pub(super) fn parse_range(arg: Option<&str>) -> Result<KeyRange, Box<dyn StdError>> {
    let Some(arg) = arg else {
        return Ok(KeyRange::all());
    };
    let (s, e) = arg.split_once("..").ok_or("a range looks like a..c")?;
    let bound = |x: &str| {
        if x.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Included(x.as_bytes().to_vec())
        }
    };
    let end = match bound(e) {
        std::ops::Bound::Included(e) => std::ops::Bound::Excluded(e),
        b => b,
    };
    Ok(KeyRange::new((bound(s), end))?)
}

impl goldenscript::Runner for Runner {
    type Command = goldenscript::Command;

    fn run(&mut self, command: &goldenscript::Command, context: &goldenscript::Context) -> Res {
        let mut args = command.consume_args();
        let mut out = String::new();
        match command.name.as_str() {
            "commit" | "rollback" if self.safe.contains_key(&self.txn(&context.prefix)?) => {
                let id = self.txn(&context.prefix)?;
                self.mgr.unpin(id)?;
                self.safe.remove(&id);
                writeln!(out, "{} → unpinned", command.name)?;
            }
            "put" | "delete" if self.safe.contains_key(&self.txn(&context.prefix)?) => {
                return Err("a safe read-only transaction has no writes".into());
            }
            "import" => {
                let mut t = self.mgr.begin();
                while let Some((k, v)) = args.next_key() {
                    t.put(k.as_bytes(), v.as_bytes())?;
                }
                match t.commit()? {
                    CommitOutcome::Committed { ts } => writeln!(out, "committed {ts}")?,
                    CommitOutcome::Aborted(c) => return Err(format!("import aborted: {c}").into()),
                }
            }
            "begin" => {
                let name = context.prefix.clone().ok_or("begin needs a txn prefix")?;
                if self.txns.contains_key(&name) {
                    return Err(format!("{name} already begun").into());
                }
                let (id, line) = match args.next_pos() {
                    None => {
                        let (id, snapshot) = self.mgr.begin_id()?;
                        (id, format!("begin → snapshot {snapshot}"))
                    }
                    Some("readonly") => match self.mgr.begin_read_only()? {
                        ReadOnlyStart::Safe { pin, snapshot } => {
                            self.safe.insert(pin, snapshot);
                            (pin, format!("begin readonly → snapshot {snapshot} (safe)"))
                        }
                        ReadOnlyStart::Tracked { id, snapshot } => (
                            id,
                            format!("begin readonly → snapshot {snapshot} (tracked)"),
                        ),
                    },
                    Some(other) => return Err(format!("begin takes no {other}").into()),
                };
                self.txns.insert(name.clone(), id);
                self.names.insert(id, name);
                writeln!(out, "{line}")?;
            }
            "get" => {
                let id = self.txn(&context.prefix)?;
                while let Some(k) = args.next_pos() {
                    let r = match self.safe.get(&id) {
                        Some(&at) => self.mgr.get_untracked(k.as_bytes(), at),
                        None => self.mgr.get(id, k.as_bytes()),
                    };
                    let line = self.aborted(r, |v| v.map_or("None".to_string(), |v| show(&v)))?;
                    writeln!(out, "get {k} → {line}")?;
                }
            }
            "put" => {
                let id = self.txn(&context.prefix)?;
                while let Some((k, v)) = args.next_key() {
                    let r = self
                        .mgr
                        .put(id, k.as_bytes().to_vec(), v.as_bytes().to_vec());
                    let line = self.aborted(r, |()| String::new())?;
                    if !line.is_empty() {
                        writeln!(out, "put {k}={v} → {line}")?;
                    }
                }
            }
            "delete" => {
                let id = self.txn(&context.prefix)?;
                while let Some(k) = args.next_pos() {
                    let r = self.mgr.delete(id, k.as_bytes().to_vec());
                    let line = self.aborted(r, |()| String::new())?;
                    if !line.is_empty() {
                        writeln!(out, "delete {k} → {line}")?;
                    }
                }
            }
            "scan" => {
                let id = self.txn(&context.prefix)?;
                let range = parse_range(args.next_pos())?;
                let r = match self.safe.get(&id) {
                    Some(&at) => self.mgr.scan_untracked(&range, at),
                    None => self.mgr.scan(id, range.clone()),
                };
                let line = self.aborted(r, |rows| {
                    if rows.is_empty() {
                        "(empty)".to_string()
                    } else {
                        rows.iter()
                            .map(|(k, v)| format!("{}={}", show(k), show(v)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                })?;
                writeln!(out, "scan {range} → {line}")?;
            }
            "get-latest" => {
                while let Some(k) = args.next_pos() {
                    let v = self.mgr.get_latest(k.as_bytes())?;
                    writeln!(
                        out,
                        "get-latest {k} → {}",
                        v.map_or("None".to_string(), |v| show(&v))
                    )?;
                }
            }
            "commit" => {
                let id = self.txn(&context.prefix)?;
                match self.mgr.commit(id)? {
                    CommitOutcome::Committed { ts } => writeln!(out, "commit → committed {ts}")?,
                    CommitOutcome::Aborted(c) => {
                        writeln!(out, "commit → aborted: {}", self.conflict(&c))?
                    }
                }
            }
            "rollback" => {
                let id = self.txn(&context.prefix)?;
                self.mgr.rollback(id)?;
                writeln!(out, "rollback → ok")?;
            }
            "dump" => out = self.dump()?,
            "state" => out = self.state()?,
            "gc" => {
                let horizon = self.mgr.gc()?;
                let n = self.mgr.with_store(|s| s.version_count())?;
                writeln!(out, "gc → horizon {horizon}, versions left: {n}")?;
            }
            name => return Err(format!("unknown command {name}").into()),
        }
        args.reject_next()?;
        Ok(out)
    }

    fn end_script(&mut self) -> Result<(), Box<dyn StdError>> {
        Ok(self.mgr.verify_invariants()?)
    }
}

/// Every script in `testscripts/`, on the reference model (`TxnManager` over
/// `MemStore`); `golden_db` runs the same files against `Db`.
#[test]
fn every_script_on_the_model() {
    let dir = crate::testscripts::folder("src/mvcc/testscripts");
    crate::testscripts::run_folder(&dir, Runner::new);
}
