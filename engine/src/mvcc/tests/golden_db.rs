//! The transaction scripts (`testscripts/*`) against the real [`Db`], beside the
//! reference model (`golden::Runner`: `TxnManager` over `MemStore`), as toyDB runs its
//! MVCC scripts over each of its engines. Every command runs on both; the model's output
//! is what the script checks, and the runner panics, naming the script line's command,
//! where the `Db`'s output differs. Real world only: the `Db` runs on a current-thread
//! tokio runtime over a temp directory (each command is one `block_on`); the simulated
//! world's `Db` is what the crash and scenario sweeps drive.
//!
//! Mapping: `import` is a `Db` transaction of its own; `begin` is [`Db::begin`],
//! `begin readonly` is [`Db::begin_read_only`] (safe or tracked, as the model says);
//! `get`/`put`/`delete`/`scan`/`commit`/`rollback` are the handle's calls; `get-latest`
//! is [`Db::get`]; `state` is [`Db::txn_state`]. Errors must agree in kind and text.
//!
//! Normalised (both sides alike): a tracked read-only commit prints its commit
//! timestamp in the model, which [`ReadTxn::commit`] does not return, so it is compared
//! as `committed` alone. A snapshot is compared by the writes it sees (`snapshot @N`
//! as the newest commit with writes at or below N): a commit without writes takes a
//! timestamp in both, but the `Db` logs nothing for it, so its visibility watermark,
//! which only moves when the WAL's leader publishes a synced write, stays below it and
//! the next `begin` gets the older, equal snapshot. `state`'s `gc horizon` is not
//! compared: it is where the last `gc` (model only) left it.
//!
//! Not mapped (model only): `dump` (every stored version: the `Db` exposes no version
//! listing; its LSM keeps versions across memtable and tables) and `gc` (the `Db`
//! collects garbage inside compaction, at a horizon it picks; there is no call to run
//! it now and report what is left).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use super::golden::{describe, parse_range, render_state, Res, Runner as Model};
use crate::mvcc::{show, CommitOutcome, TxnId};
use crate::{Db, Error, Options, ReadTxn, Txn};

/// Commands the `Db` has no call for (see the module doc).
const MODEL_ONLY: [&str; 2] = ["dump", "gc"];

enum Handle {
    Rw(Txn),
    Ro(ReadTxn),
}

struct DbSide {
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    db: Db,
    txns: BTreeMap<String, Handle>,
    names: BTreeMap<TxnId, String>,
}

impl DbSide {
    fn new() -> DbSide {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "seedbank-golden-db-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        #[allow(clippy::disallowed_methods)] // real-world test: the Db runs on its own runtime
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let db = rt.block_on(async {
            sim_fs::create_dir_all(&dir).await.expect("create temp dir");
            Db::open(&dir, Options::tiny()).await.expect("open db")
        });
        DbSide {
            rt,
            dir,
            db,
            txns: BTreeMap::new(),
            names: BTreeMap::new(),
        }
    }

    fn run(&mut self, command: &goldenscript::Command, context: &goldenscript::Context) -> Res {
        let mut args = command.consume_args();
        let mut out = String::new();
        let rt = &self.rt;
        match command.name.as_str() {
            "import" => {
                let mut t = self.db.begin();
                while let Some((k, v)) = args.next_key() {
                    rt.block_on(t.put(k.as_bytes().to_vec(), v.as_bytes().to_vec()))?;
                }
                match rt.block_on(t.commit())? {
                    CommitOutcome::Committed { ts } => writeln!(out, "committed {ts}")?,
                    CommitOutcome::Aborted(c) => return Err(format!("import aborted: {c}").into()),
                }
            }
            "begin" => {
                let name = context.prefix.clone().ok_or("begin needs a txn prefix")?;
                if self.txns.contains_key(&name) {
                    return Err(format!("{name} already begun").into());
                }
                let (id, handle, line) = match args.next_pos() {
                    None => {
                        let t = self.db.begin();
                        let line = format!("begin → snapshot {}", t.snapshot());
                        (t.id(), Handle::Rw(t), line)
                    }
                    Some("readonly") => {
                        let r = self.db.begin_read_only();
                        let kind = if r.is_tracked() { "tracked" } else { "safe" };
                        let line = format!("begin readonly → snapshot {} ({kind})", r.snapshot());
                        let id = r.id().ok_or("a read-only transaction that did not begin")?;
                        (id, Handle::Ro(r), line)
                    }
                    Some(other) => return Err(format!("begin takes no {other}").into()),
                };
                self.txns.insert(name.clone(), handle);
                self.names.insert(id, name);
                writeln!(out, "{line}")?;
            }
            "get" => {
                let keys: Vec<String> =
                    std::iter::from_fn(|| args.next_pos().map(str::to_string)).collect();
                for k in keys {
                    let r = match handle(&mut self.txns, &context.prefix)? {
                        Handle::Rw(t) => self.rt.block_on(t.get(k.as_bytes())),
                        Handle::Ro(r) => self.rt.block_on(r.get(k.as_bytes())),
                    };
                    let line = aborted(&self.names, r, |v| {
                        v.map_or("None".to_string(), |v| show(&v))
                    })?;
                    writeln!(out, "get {k} → {line}")?;
                }
            }
            "put" | "delete" => {
                let mut writes = Vec::new();
                if command.name == "put" {
                    while let Some((k, v)) = args.next_key() {
                        writes.push((k.to_string(), Some(v.to_string())));
                    }
                } else {
                    while let Some(k) = args.next_pos() {
                        writes.push((k.to_string(), None));
                    }
                }
                for (k, v) in writes {
                    let r = match handle(&mut self.txns, &context.prefix)? {
                        Handle::Rw(t) => match &v {
                            Some(v) => self
                                .rt
                                .block_on(t.put(k.as_bytes().to_vec(), v.as_bytes().to_vec())),
                            None => self.rt.block_on(t.delete(k.as_bytes().to_vec())),
                        },
                        Handle::Ro(r) if !r.is_tracked() => {
                            return Err("a safe read-only transaction has no writes".into())
                        }
                        Handle::Ro(r) => Err(Error::Txn(crate::mvcc::Error::ReadOnly(
                            r.id().unwrap_or(TxnId(0)),
                        ))),
                    };
                    let line = aborted(&self.names, r, |()| String::new())?;
                    if !line.is_empty() {
                        match &v {
                            Some(v) => writeln!(out, "put {k}={v} → {line}")?,
                            None => writeln!(out, "delete {k} → {line}")?,
                        }
                    }
                }
            }
            "scan" => {
                let range = parse_range(args.next_pos())?;
                let bounds = (range.start.clone(), range.end.clone());
                let r = match handle(&mut self.txns, &context.prefix)? {
                    Handle::Rw(t) => self.rt.block_on(t.scan(bounds)),
                    Handle::Ro(r) => self.rt.block_on(r.scan(bounds)),
                };
                let line = aborted(&self.names, r, |rows| {
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
                    let v = rt.block_on(self.db.get(k.as_bytes()))?;
                    writeln!(
                        out,
                        "get-latest {k} → {}",
                        v.map_or("None".to_string(), |v| show(&v))
                    )?;
                }
            }
            "commit" => {
                let line = match handle(&mut self.txns, &context.prefix)? {
                    Handle::Rw(t) => match self.rt.block_on(t.commit())? {
                        CommitOutcome::Committed { ts } => format!("committed {ts}"),
                        CommitOutcome::Aborted(c) => {
                            format!("aborted: {}", describe(&c, |t| name_of(&self.names, t)))
                        }
                    },
                    Handle::Ro(r) if !r.is_tracked() => {
                        self.rt.block_on(r.commit())?;
                        "unpinned".to_string()
                    }
                    Handle::Ro(r) => {
                        let r = self.rt.block_on(r.commit());
                        aborted(&self.names, r, |()| "committed".to_string())?
                    }
                };
                writeln!(out, "commit → {line}")?;
            }
            "rollback" => {
                let line = match handle(&mut self.txns, &context.prefix)? {
                    Handle::Rw(t) => {
                        self.rt.block_on(t.rollback())?;
                        "ok"
                    }
                    Handle::Ro(r) => {
                        let safe = !r.is_tracked();
                        self.rt.block_on(r.rollback())?;
                        if safe {
                            "unpinned"
                        } else {
                            "ok"
                        }
                    }
                };
                writeln!(out, "rollback → {line}")?;
            }
            "state" => out = render_state(&self.db.txn_state()?, |t| name_of(&self.names, t))?,
            name => return Err(format!("unknown command {name}").into()),
        }
        args.reject_next()?;
        Ok(out)
    }
}

fn name_of(names: &BTreeMap<TxnId, String>, id: &TxnId) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// An engine abort as output, as the model prints it; other errors pass through.
fn aborted<T>(
    names: &BTreeMap<TxnId, String>,
    r: Result<T, Error>,
    ok: impl FnOnce(T) -> String,
) -> Res {
    match r {
        Ok(v) => Ok(ok(v)),
        Err(Error::Txn(crate::mvcc::Error::Aborted(c))) => {
            Ok(format!("aborted: {}", describe(&c, |t| name_of(names, t))))
        }
        Err(e) => Err(e.into()),
    }
}

fn handle<'a>(
    txns: &'a mut BTreeMap<String, Handle>,
    prefix: &Option<String>,
) -> Result<&'a mut Handle, Box<dyn std::error::Error>> {
    let name = prefix
        .as_ref()
        .ok_or("this command needs a txn prefix, e.g. t1:")?;
    txns.get_mut(name)
        .ok_or_else(|| format!("no transaction {name}").into())
}

impl Drop for DbSide {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.db.close());
        #[allow(clippy::disallowed_methods)] // cleaning the test's own temp dir
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs each command on the model and on the `Db`; returns the model's output.
struct Both {
    model: Model,
    db: DbSide,
    /// Script names of tracked read-only transactions (their commit is normalised).
    tracked_read_only: BTreeSet<String>,
    /// Script names of transactions that wrote.
    writers: BTreeSet<String>,
    /// Commit timestamps of transactions that wrote (imports included).
    write_ts: BTreeSet<u64>,
}

impl Both {
    /// `snapshot @N` as the newest commit with writes at or below N: the same data.
    fn snapshots_by_writes(&self, out: &str) -> String {
        let mut rest = out;
        let mut norm = String::new();
        while let Some(at) = rest.find("snapshot @") {
            let (head, tail) = rest.split_at(at + "snapshot @".len());
            norm.push_str(head);
            let digits = tail.chars().take_while(char::is_ascii_digit).count();
            let n: u64 = tail[..digits].parse().unwrap_or(0);
            let seen = self.write_ts.range(..=n).next_back().copied().unwrap_or(0);
            norm.push_str(&seen.to_string());
            rest = &tail[digits..];
        }
        norm.push_str(rest);
        norm
    }

    /// Remembers who wrote and the timestamps of commits with writes, from the model.
    fn note_writes(&mut self, command: &str, prefix: &str, out: &str) {
        match command {
            "put" | "delete" => {
                self.writers.insert(prefix.to_string());
            }
            "import" | "commit" if command == "import" || self.writers.contains(prefix) => {
                if let Some((_, ts)) = out.trim_end().rsplit_once("committed @") {
                    if let Ok(ts) = ts.parse() {
                        self.write_ts.insert(ts);
                    }
                }
            }
            _ => {}
        }
    }
}

impl goldenscript::Runner for Both {
    type Command = goldenscript::Command;

    fn run(&mut self, command: &goldenscript::Command, context: &goldenscript::Context) -> Res {
        let model = goldenscript::Runner::run(&mut self.model, command, context);
        if MODEL_ONLY.contains(&command.name.as_str()) {
            return model;
        }
        let db = self.db.run(command, context);
        let prefix = context.prefix.clone().unwrap_or_default();
        if command.name == "begin" {
            if let Ok(line) = &db {
                if line.ends_with("(tracked)\n") {
                    self.tracked_read_only.insert(prefix.clone());
                }
            }
        }
        let normalise = |out: &str| -> String {
            if command.name == "commit" && self.tracked_read_only.contains(&prefix) {
                match out.split_once(" @") {
                    Some((head, _)) if head.ends_with("committed") => format!("{head}\n"),
                    _ => out.to_string(),
                }
            } else if command.name == "state" {
                // The horizon is where the last `gc` left it: model only.
                let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
                let first = first.split(" gc horizon").next().unwrap_or(first);
                self.snapshots_by_writes(&format!("{first}\n{rest}"))
            } else {
                self.snapshots_by_writes(out)
            }
        };
        let agree = match (&model, &db) {
            (Ok(m), Ok(d)) => normalise(m) == normalise(d),
            (Err(m), Err(d)) => m.to_string() == d.to_string(),
            _ => false,
        };
        assert!(
            agree,
            "the Db and the model differ at `{}{}`\n  model: {model:?}\n     db: {db:?}",
            context
                .prefix
                .as_ref()
                .map_or(String::new(), |p| format!("{p}: ")),
            command.name,
        );
        if let Ok(out) = &model {
            self.note_writes(&command.name, &prefix, out);
        }
        model
    }

    fn end_script(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        goldenscript::Runner::end_script(&mut self.model)?;
        Ok(self.db.db.verify_invariants()?)
    }
}

/// Every script in `testscripts/`, each command on the model and the `Db` at once.
#[test]
fn every_script_on_the_db_matches_the_model() {
    let dir = crate::testscripts::folder("src/mvcc/testscripts");
    crate::testscripts::run_folder(&dir, || Both {
        model: Model::new(),
        db: DbSide::new(),
        tracked_read_only: BTreeSet::new(),
        writers: BTreeSet::new(),
        write_ts: BTreeSet::new(),
    });
}
