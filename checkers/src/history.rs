//! The client history: what every client asked for and what it was told, in the
//! Jepsen/Elle JSON-lines format.
//!
//! ## Model
//! A history is a sequence of [`Op`] events. A client *process* invokes an operation
//! (`invoke`), and later the operation completes: `ok` (it happened, with the values it
//! read), `fail` (it definitely did not happen) or `info` (unknown: a timeout, a crash
//! before the reply). An invocation with no completion by the end of the history is
//! treated as `info`. The value of an operation is a transaction: a list of micro-ops.
//!
//! ```text
//! {"index":0,"type":"invoke","process":1,"value":[["append","x",1],["r","x",null]]}
//! {"index":1,"type":"ok","process":1,"value":[["append","x",1],["r","x",[1]]]}
//! {"index":2,"type":"invoke","process":2,"value":[["w","y",3],["cas","y",[3,4]]]}
//! ```
//!
//! Micro-ops are `["append",k,v]` and `["r",k,[…]]` (list-append), `["w",k,v]`,
//! `["r",k,v]` and `["cas",k,[old,new]]` (registers). A read's value is `null` while it
//! is unknown (in an invocation); in an `ok` completion `null` means "nothing there": the
//! empty list, or a register never written. Keys may be JSON strings or integers and are
//! kept as strings (an integer key comes back out as its decimal string). An optional
//! `"time"` field (nanoseconds) is kept; other fields (`"f"`, …) are ignored.
//!
//! ## Invariants (checked on every event, by the builder and by [`History::from_jsonl`])
//! - Indices strictly increase.
//! - A process has at most one outstanding operation; a completion names a process with
//!   an outstanding invocation.
//! - An `ok` completion has the invocation's micro-ops in order, with the same keys and
//!   written values; only read results may differ. `fail`/`info` completions carry the
//!   invocation's value (a parsed one's value is ignored).
//!
//! ## Non-goals
//! - Jepsen's nemesis events (`"process":"nemesis"`) and non-transactional `f`s.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A key, as a string (JSON integers are kept as their decimal form).
pub type Key = String;

/// The type of a history event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// A client began an operation.
    Invoke,
    /// It happened, with the values it read.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may or may not have happened.
    Info,
}

/// What a read returned: a list (list-append) or an integer (a register).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadValue {
    /// A list-append read: the whole list.
    List(Vec<i64>),
    /// A register read.
    Int(i64),
}

/// One micro-operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MicroOp {
    /// `["append", k, v]`: append `v` to the list at `k`.
    Append(Key, i64),
    /// `["w", k, v]`: set the register `k` to `v`.
    Write(Key, i64),
    /// `["cas", k, [old, new]]`: if register `k` is `old`, set it to `new`.
    Cas(Key, i64, i64),
    /// `["w", k, null]`: delete the register `k` (it reads `nil` again, as if never
    /// written).
    Delete(Key),
    /// `["r", k, v]`: read `k`; `None` is JSON `null` (see the module docs).
    Read(Key, Option<ReadValue>),
}

impl MicroOp {
    /// Append `value` to the list at `key`.
    pub fn append(key: impl Into<Key>, value: i64) -> MicroOp {
        MicroOp::Append(key.into(), value)
    }
    /// Set the register `key` to `value`.
    pub fn write(key: impl Into<Key>, value: i64) -> MicroOp {
        MicroOp::Write(key.into(), value)
    }
    /// Delete the register `key`.
    pub fn delete(key: impl Into<Key>) -> MicroOp {
        MicroOp::Delete(key.into())
    }
    /// If register `key` is `old`, set it to `new`.
    pub fn cas(key: impl Into<Key>, old: i64, new: i64) -> MicroOp {
        MicroOp::Cas(key.into(), old, new)
    }
    /// A read whose result is not known yet (an invocation).
    pub fn read(key: impl Into<Key>) -> MicroOp {
        MicroOp::Read(key.into(), None)
    }
    /// A list read that returned `values`.
    pub fn read_list(key: impl Into<Key>, values: Vec<i64>) -> MicroOp {
        MicroOp::Read(key.into(), Some(ReadValue::List(values)))
    }
    /// A register read that returned `value` (`None`: never written).
    pub fn read_int(key: impl Into<Key>, value: Option<i64>) -> MicroOp {
        MicroOp::Read(key.into(), value.map(ReadValue::Int))
    }

    /// The key it touches.
    pub fn key(&self) -> &str {
        match self {
            MicroOp::Append(k, _)
            | MicroOp::Write(k, _)
            | MicroOp::Cas(k, ..)
            | MicroOp::Delete(k)
            | MicroOp::Read(k, _) => k,
        }
    }

    /// The Jepsen function name: `append`, `w` (a delete is a write of `null`), `cas`
    /// or `r`.
    pub fn f(&self) -> &'static str {
        match self {
            MicroOp::Append(..) => "append",
            MicroOp::Write(..) | MicroOp::Delete(..) => "w",
            MicroOp::Cas(..) => "cas",
            MicroOp::Read(..) => "r",
        }
    }

    /// Whether `self` (a completion's micro-op) may complete `invoked`: same function
    /// and key, same written values; a read's result may be filled in.
    pub fn completes(&self, invoked: &MicroOp) -> bool {
        match (invoked, self) {
            (MicroOp::Read(a, _), MicroOp::Read(b, _)) => a == b,
            (a, b) => a == b,
        }
    }

    fn from_json(v: &Value) -> Result<MicroOp, String> {
        let items = match v.as_array() {
            Some(items) if items.len() == 3 => items,
            _ => return Err(format!("a micro-op is [f, key, value], got {v}")),
        };
        let f = items[0]
            .as_str()
            .ok_or_else(|| format!("a micro-op's function is a string, got {}", items[0]))?;
        let key = match &items[1] {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            other => return Err(format!("a key is a string or an integer, got {other}")),
        };
        let int = |x: &Value, what: &str| {
            x.as_i64()
                .ok_or_else(|| format!("{what} of [\"{f}\", {key:?}, …] is an integer, got {x}"))
        };
        let value = &items[2];
        match f {
            "append" => Ok(MicroOp::Append(key.clone(), int(value, "the value")?)),
            "w" if value.is_null() => Ok(MicroOp::Delete(key.clone())),
            "w" => Ok(MicroOp::Write(key.clone(), int(value, "the value")?)),
            "cas" => match value.as_array().map(Vec::as_slice) {
                Some([old, new]) => Ok(MicroOp::Cas(
                    key.clone(),
                    int(old, "the old value")?,
                    int(new, "the new value")?,
                )),
                _ => Err(format!("cas on {key:?} takes [old, new], got {value}")),
            },
            "r" => {
                let read = match value {
                    Value::Null => None,
                    Value::Array(xs) => Some(ReadValue::List(
                        xs.iter()
                            .map(|x| int(x, "an element"))
                            .collect::<Result<_, _>>()?,
                    )),
                    x => Some(ReadValue::Int(int(x, "the value")?)),
                };
                Ok(MicroOp::Read(key, read))
            }
            other => Err(format!(
                "unknown micro-op function {other:?} (expected append, r, w or cas)"
            )),
        }
    }
}

impl Serialize for MicroOp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MicroOp::Append(k, v) | MicroOp::Write(k, v) => (self.f(), k, v).serialize(s),
            MicroOp::Cas(k, old, new) => (self.f(), k, [old, new]).serialize(s),
            MicroOp::Read(k, None) | MicroOp::Delete(k) => (self.f(), k, ()).serialize(s),
            MicroOp::Read(k, Some(ReadValue::List(xs))) => (self.f(), k, xs).serialize(s),
            MicroOp::Read(k, Some(ReadValue::Int(x))) => (self.f(), k, x).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MicroOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MicroOp, D::Error> {
        let v = Value::deserialize(d)?;
        MicroOp::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// One event of a history (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history; strictly increasing.
    pub index: u64,
    /// Invocation or completion (JSON `type`).
    #[serde(rename = "type")]
    pub kind: OpKind,
    /// The client process.
    pub process: u64,
    /// The transaction's micro-ops.
    pub value: Vec<MicroOp>,
    /// When it happened, in nanoseconds (JSON `time`), if recorded.
    #[serde(rename = "time", default, skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<u64>,
}

/// Why a history could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// A JSON line that is not an event (1-based line number).
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// An event's index does not exceed the previous one.
    IndexOrder {
        /// The event's index.
        index: u64,
        /// The index before it.
        previous: u64,
    },
    /// An invocation by a process that already has one outstanding.
    Busy {
        /// The offending event.
        index: u64,
        /// The process.
        process: u64,
        /// Its outstanding invocation's index.
        outstanding: u64,
    },
    /// A completion by a process with nothing outstanding.
    NoInvocation {
        /// The completion's index.
        index: u64,
        /// The process.
        process: u64,
    },
    /// An `ok` completion whose micro-ops do not match its invocation's.
    Mismatch {
        /// The completion.
        index: u64,
        /// The invocation it was meant to complete.
        invoke: u64,
        /// What differs.
        message: String,
    },
    /// A handle that does not name an outstanding invocation (one from another
    /// history).
    StaleHandle {
        /// The handle's process.
        process: u64,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Parse { line, message } => write!(f, "line {line}: {message}"),
            HistoryError::IndexOrder { index, previous } => {
                write!(f, "index {index} follows index {previous}: indices must increase")
            }
            HistoryError::Busy { index, process, outstanding } => write!(
                f,
                "event {index}: process {process} invokes while its event {outstanding} is outstanding"
            ),
            HistoryError::NoInvocation { index, process } => write!(
                f,
                "event {index}: process {process} completes an operation it never invoked"
            ),
            HistoryError::Mismatch { index, invoke, message } => write!(
                f,
                "event {index} does not complete invocation {invoke}: {message}"
            ),
            HistoryError::StaleHandle { process } => write!(
                f,
                "handle of process {process} names no outstanding invocation of this history"
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

/// An outstanding invocation, returned by [`History::invoke`] and consumed by its
/// completion (so an operation cannot be completed twice).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "complete the operation with ok, fail or info"]
pub struct Handle {
    process: u64,
    position: usize,
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Completed `ok`: it took effect.
    Ok,
    /// Completed `fail`: it did not.
    Fail,
    /// Completed `info`, or never completed.
    Info,
}

/// An invocation paired with its completion (borrowing the history's micro-ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Txn<'a> {
    /// The invocation's index: the transaction's name (`T<id>`) in reports.
    pub id: u64,
    /// The client process.
    pub process: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The completion's index; `None` if the history ends first.
    pub complete: Option<u64>,
    /// The completion's micro-ops for `ok`, the invocation's otherwise.
    pub ops: &'a [MicroOp],
}

/// A client history. Build it with [`invoke`](History::invoke) and a completion per
/// handle, or parse it with [`from_jsonl`](History::from_jsonl).
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Op>,
    /// Process → position (in `ops`) of its outstanding invocation.
    outstanding: BTreeMap<u64, usize>,
    time_ns: Option<u64>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Every event, in index order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// No events yet.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Stamps the events recorded from now on with `time_ns` (`None`: no `"time"`).
    pub fn set_time(&mut self, time_ns: Option<u64>) {
        self.time_ns = time_ns;
    }

    /// Records an invocation of `ops` by `process`.
    pub fn invoke(&mut self, process: u64, ops: Vec<MicroOp>) -> Result<Handle, HistoryError> {
        let op = self.event(OpKind::Invoke, process, ops);
        self.push(op)?;
        Ok(Handle {
            process,
            position: self.ops.len() - 1,
        })
    }

    /// Records that the operation happened; `ops` are its micro-ops with read results.
    /// On a mismatch nothing is recorded, and the invocation stays outstanding.
    pub fn ok(&mut self, handle: Handle, ops: Vec<MicroOp>) -> Result<(), HistoryError> {
        self.complete(handle, OpKind::Ok, Some(ops))
    }

    /// Records that the operation definitely did not happen.
    pub fn fail(&mut self, handle: Handle) -> Result<(), HistoryError> {
        self.complete(handle, OpKind::Fail, None)
    }

    /// Records that the outcome is unknown.
    pub fn info(&mut self, handle: Handle) -> Result<(), HistoryError> {
        self.complete(handle, OpKind::Info, None)
    }

    fn complete(
        &mut self,
        handle: Handle,
        kind: OpKind,
        ops: Option<Vec<MicroOp>>,
    ) -> Result<(), HistoryError> {
        if self.outstanding.get(&handle.process) != Some(&handle.position) {
            return Err(HistoryError::StaleHandle {
                process: handle.process,
            });
        }
        let ops = ops.unwrap_or_else(|| self.ops[handle.position].value.clone());
        let op = self.event(kind, handle.process, ops);
        self.push(op)
    }

    /// The history index of `handle`'s invocation (the transaction's `T<id>`).
    pub fn index_of(&self, handle: &Handle) -> Option<u64> {
        self.ops.get(handle.position).map(|o| o.index)
    }

    fn event(&self, kind: OpKind, process: u64, value: Vec<MicroOp>) -> Op {
        Op {
            index: self.ops.last().map_or(0, |o| o.index + 1),
            kind,
            process,
            value,
            time_ns: self.time_ns,
        }
    }

    /// Appends `op` after checking the invariants of the module docs.
    fn push(&mut self, mut op: Op) -> Result<(), HistoryError> {
        if let Some(prev) = self.ops.last() {
            if op.index <= prev.index {
                return Err(HistoryError::IndexOrder {
                    index: op.index,
                    previous: prev.index,
                });
            }
        }
        match op.kind {
            OpKind::Invoke => {
                if let Some(&pos) = self.outstanding.get(&op.process) {
                    return Err(HistoryError::Busy {
                        index: op.index,
                        process: op.process,
                        outstanding: self.ops[pos].index,
                    });
                }
                self.outstanding.insert(op.process, self.ops.len());
            }
            kind => {
                let Some(&pos) = self.outstanding.get(&op.process) else {
                    return Err(HistoryError::NoInvocation {
                        index: op.index,
                        process: op.process,
                    });
                };
                let invoked = &self.ops[pos];
                if kind == OpKind::Ok {
                    check_completes(&op, invoked)?;
                } else {
                    op.value = invoked.value.clone();
                }
                self.outstanding.remove(&op.process);
            }
        }
        self.ops.push(op);
        Ok(())
    }

    /// Pairs every invocation with its completion, in invocation order.
    pub fn txns(&self) -> Vec<Txn<'_>> {
        let mut txns: Vec<Txn> = Vec::new();
        // Process → position in `txns` of its open transaction.
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        for op in &self.ops {
            if op.kind == OpKind::Invoke {
                open.insert(op.process, txns.len());
                txns.push(Txn {
                    id: op.index,
                    process: op.process,
                    outcome: Outcome::Info,
                    complete: None,
                    ops: &op.value,
                });
            } else if let Some(t) = open.remove(&op.process) {
                let txn = &mut txns[t];
                txn.complete = Some(op.index);
                txn.outcome = match op.kind {
                    OpKind::Ok => Outcome::Ok,
                    OpKind::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                if op.kind == OpKind::Ok {
                    txn.ops = &op.value;
                }
            }
        }
        txns
    }

    /// One JSON object per line, each ending in `\n`.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for op in &self.ops {
            out.push_str(
                &serde_json::to_string(op)
                    .expect("an Op serializes: no maps, no floats, only strings and integers"),
            );
            out.push('\n');
        }
        out
    }

    /// Parses JSON lines (blank lines are skipped), checking every invariant.
    pub fn from_jsonl(text: &str) -> Result<History, HistoryError> {
        let mut history = History::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let op: Op = serde_json::from_str(line).map_err(|e| HistoryError::Parse {
                line: n + 1,
                message: e.to_string(),
            })?;
            history.push(op).map_err(|e| HistoryError::Parse {
                line: n + 1,
                message: e.to_string(),
            })?;
        }
        Ok(history)
    }
}

fn check_completes(op: &Op, invoked: &Op) -> Result<(), HistoryError> {
    let mismatch = |message: String| HistoryError::Mismatch {
        index: op.index,
        invoke: invoked.index,
        message,
    };
    if op.value.len() != invoked.value.len() {
        return Err(mismatch(format!(
            "{} micro-ops completed, {} invoked",
            op.value.len(),
            invoked.value.len()
        )));
    }
    for (i, (done, asked)) in op.value.iter().zip(&invoked.value).enumerate() {
        if !done.completes(asked) {
            return Err(mismatch(format!(
                "micro-op {i} is {}, invoked as {}",
                json(done),
                json(asked)
            )));
        }
    }
    Ok(())
}

/// A micro-op as its JSON text, for messages.
pub fn json(op: &MicroOp) -> String {
    serde_json::to_string(op).expect("a MicroOp serializes")
}
