//! `seedbank shell --path DIR`: an interactive embedded database with named concurrent
//! transactions (the contract: "Model" below; D56, D57); `seedbank shell --connect ADDR[,ADDR…]`: the
//! same commands and answers against a replicated cluster ([`connect`]).
//!
//! ## Model
//! Commands, one per line: `begin NAME` (start a transaction and make it current),
//! `use NAME`, `get KEY`, `put KEY VALUE`, `delete KEY`, `scan START END` (END
//! exclusive), `commit`, `rollback`, `help`, `quit` (or `exit`), and with `--connect`,
//! `status` (every replica's role, term and indices). With no current transaction,
//! get/put/delete/scan run as single-operation transactions. Blank lines and lines
//! starting with `#` are skipped.
//!
//! Words are split as [`syntax`] says: `"a b"` and `'a b'` are one word, `\xNN` any
//! byte, so keys and values are byte strings; `put KEY V1 V2 …` joins the words of the
//! value with single spaces (quote it to keep whitespace exactly). Keys and values are
//! printed quoted when they need it, so what the shell prints can be typed back.
//!
//! `--json` answers every command with exactly one JSON line: `{"ok":true}`; get
//! `{"ok":true,"value":"v"|null}`; scan `{"ok":true,"rows":[["k","v"],…]}` (a byte
//! string that is not UTF-8 is `{"hex":"…"}`, D57); commit
//! `{"ok":true,"committed":true,"ts":N}` or
//! `{"ok":true,"committed":false,"reason":"serialization"}`; an operation on a
//! transaction the engine already doomed `{"ok":false,"aborted":true,"reason":"…"}`;
//! any other failure `{"ok":false,"error":"…"}`. Conflicts name transactions by the
//! names they were begun with (`t1 →rw t2 →rw t1`), not by engine ids.
//!
//! Against a cluster, `ts` is the log index the transaction was applied at (a
//! read-only transaction's: its snapshot index), a conflict's reason is always
//! `"serialization"`, a transaction lost with its leader answers
//! `{"ok":false,"aborted":true,"reason":"transaction-lost",…}`, and a cluster without a
//! leader says how many replicas answered (`cluster unavailable: no quorum: 1 of 3
//! replicas answered …`).
//!
//! ## Invariants
//! - Every line that is not blank or a comment gets exactly one answer, whatever its
//!   bytes: a malformed line (not UTF-8, an unterminated quote, a bad escape, an unknown
//!   command, wrong arguments) gets an error answer and the session goes on.
//! - The session ends at `quit`/`exit` or the end of the input; transactions still open
//!   then are rolled back and the answer names them (D56), never silently.
//! - The exit status is 1 if any answer was a failure ([`Reply::is_failure`]: an
//!   error, an abort, a commit that did not commit, a quit that rolled back work), else
//!   0; 2 for bad arguments, in both `--json` and text modes (D56).
//!
//! ## Fault model
//! Input is untrusted bytes (module `input` reads raw lines, never assuming UTF-8). The
//! database and the cluster fail as their own docs say; each failure becomes an answer.
//!
//! ## Non-goals
//! - The simulated world: the shell is a real-world tool (the simulated build says so).
//! - Tab completion, multi-line commands.

pub mod connect;
#[cfg(not(madsim))]
pub mod input;
mod reply;
pub mod syntax;

pub use reply::{Reply, HELP};

use engine::replicated::{ClientError, ReplicatedClient, ReplicatedTxn, TxnOutcome};
use engine::{mvcc, CommitOutcome, Conflict, Db, Error, Txn, TxnId};
use std::collections::BTreeMap;
use syntax::quote;

/// What a session runs against.
pub enum Backend {
    /// An embedded database.
    Embedded(Db),
    /// A replicated cluster.
    Replicated(ReplicatedClient),
}

/// A transaction of either backend.
enum AnyTxn {
    Embedded(Txn),
    Replicated(ReplicatedTxn),
}

/// The user's names of this session's embedded transactions, by engine id, kept after
/// they end: a conflict can name a transaction that committed long before.
#[derive(Default)]
struct Names(BTreeMap<TxnId, String>);

impl Names {
    /// How a message names transaction `id`: the user's name, else the engine's id
    /// (only a single-operation transaction has no name: the session is the
    /// database's one user).
    fn of(&self, id: TxnId) -> String {
        match self.0.get(&id) {
            Some(name) => quote(name.as_bytes()),
            None => format!("{id} (a single-operation transaction)"),
        }
    }

    fn conflict(&self, c: &Conflict) -> String {
        match c {
            Conflict::WriteWrite { key, committed } => {
                format!(
                    "write-write conflict on {} (committed {committed})",
                    quote(key)
                )
            }
            Conflict::Serialization { t1, pivot, t3 } => format!(
                "serialization failure: {} →rw {} →rw {} (pivot {})",
                self.of(*t1),
                self.of(*pivot),
                self.of(*t3),
                self.of(*pivot)
            ),
        }
    }

    /// An embedded engine's failure as an answer, transactions named as the user
    /// named them.
    fn failure(&self, e: Error) -> Reply {
        match e {
            Error::Txn(mvcc::Error::Aborted(c)) => Reply::Aborted {
                reason: c.kind().to_string(),
                detail: self.conflict(&c),
            },
            Error::Txn(mvcc::Error::NotActive(id)) => Reply::Failed(format!(
                "transaction {} is not active (already committed or rolled back)",
                self.of(id)
            )),
            Error::Txn(mvcc::Error::ReadOnly(id)) => Reply::Failed(format!(
                "transaction {} is read-only: it cannot write",
                self.of(id)
            )),
            e => Reply::Failed(e.to_string()),
        }
    }

    fn outcome(&self, o: CommitOutcome) -> Reply {
        match o {
            CommitOutcome::Committed { ts } => Reply::Committed(ts.0),
            CommitOutcome::Aborted(c) => Reply::NotCommitted {
                reason: c.kind().to_string(),
                detail: self.conflict(&c),
            },
        }
    }
}

/// One shell session over an open database or a cluster connection.
pub struct Session {
    backend: Backend,
    txns: BTreeMap<String, AnyTxn>,
    current: Option<String>,
    names: Names,
}

/// A replicated client's failure as an answer.
fn client_failure(e: ClientError) -> Reply {
    match e {
        ClientError::Aborted(why) => Reply::Aborted {
            reason: "transaction-lost".into(),
            detail: why,
        },
        e => Reply::Failed(e.to_string()),
    }
}

/// A replicated commit's outcome; `name` is the transaction's (none: autocommit).
fn client_outcome(o: TxnOutcome, name: Option<&str>) -> Reply {
    match o {
        TxnOutcome::Committed { index } => Reply::Committed(index),
        TxnOutcome::Aborted { key, written_at } => {
            let who = name.map_or("the transaction".to_string(), |n| quote(n.as_bytes()));
            Reply::NotCommitted {
                reason: "serialization".into(),
                detail: format!(
                    "{who} read {}, which was written at index {written_at}, after {who}'s \
                     snapshot",
                    quote(&key)
                ),
            }
        }
    }
}

/// The usage line of a known command.
fn usage(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "begin" => "begin NAME",
        "use" => "use NAME",
        "get" => "get KEY",
        "put" => "put KEY VALUE",
        "delete" => "delete KEY",
        "scan" => "scan START END  (END exclusive)",
        "commit" => "commit",
        "rollback" => "rollback",
        "status" => "status",
        "help" => "help",
        "quit" | "exit" => "quit",
        _ => return None,
    })
}

/// A parsed data operation.
enum Op {
    Get(Vec<u8>),
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Scan(Vec<u8>, Vec<u8>),
}

/// A name in an error message: in single quotes, anything unprintable escaped.
fn named(name: &str) -> String {
    format!("'{}'", name.escape_debug())
}

/// A transaction name: text (it appears in prompts and messages).
fn txn_name(word: &[u8]) -> Result<&str, Reply> {
    std::str::from_utf8(word)
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Reply::Failed("a transaction name must be non-empty text".into()))
}

impl Session {
    /// A session over an embedded database.
    pub fn new(db: Db) -> Session {
        Session::with_backend(Backend::Embedded(db))
    }

    /// A session over a replicated cluster.
    pub fn replicated(client: ReplicatedClient) -> Session {
        Session::with_backend(Backend::Replicated(client))
    }

    fn with_backend(backend: Backend) -> Session {
        Session {
            backend,
            txns: BTreeMap::new(),
            current: None,
            names: Names::default(),
        }
    }

    /// The interactive prompt, naming the current transaction.
    pub fn prompt(&self) -> String {
        match &self.current {
            Some(name) => format!("seedbank({})> ", quote(name.as_bytes())),
            None => "seedbank> ".into(),
        }
    }

    /// The embedded database, e.g. to close it (`None` for a cluster session).
    pub fn db(&self) -> Option<&Db> {
        match &self.backend {
            Backend::Embedded(db) => Some(db),
            Backend::Replicated(_) => None,
        }
    }

    /// Runs one command line (raw bytes; a trailing `\n` or `\r\n` is ignored). Blank
    /// lines and `#` comments return `None`; every other line gets an answer.
    pub async fn execute(&mut self, line: &[u8]) -> Option<Reply> {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            return None;
        }
        let words = match syntax::split(line) {
            Ok(words) => words,
            Err(e) => return Some(Reply::Failed(e.to_string())),
        };
        // A non-blank line that splits is at least one word (`""` is one).
        let (cmd, args) = words.split_first()?;
        let cmd = String::from_utf8_lossy(cmd).to_ascii_lowercase();
        let reply = match (cmd.as_str(), args) {
            ("help", []) => Reply::Help,
            ("quit" | "exit", []) => self.end().await,
            ("status", []) => self.status().await,
            ("begin", [name]) => match txn_name(name) {
                Ok(name) => self.begin(name.to_string()).await,
                Err(reply) => reply,
            },
            ("use", [name]) => match txn_name(name) {
                Ok(name) => self.use_txn(name),
                Err(reply) => reply,
            },
            ("commit", []) => self.finish(true).await,
            ("rollback", []) => self.finish(false).await,
            ("get", [key]) => self.op(Op::Get(key.clone())).await,
            ("put", [key, value @ ..]) if !value.is_empty() => {
                self.op(Op::Put(key.clone(), value.join(&b' '))).await
            }
            ("delete", [key]) => self.op(Op::Delete(key.clone())).await,
            ("scan", [start, end]) => self.op(Op::Scan(start.clone(), end.clone())).await,
            (cmd, _) => match usage(cmd) {
                Some(usage) => Reply::Failed(format!("usage: {usage}")),
                None => Reply::Failed(format!("unknown command {} (try: help)", named(cmd))),
            },
        };
        Some(reply)
    }

    /// Ends the session: rolls back every open transaction and names them (D56). Runs
    /// for `quit`/`exit` and at the end of the input.
    pub async fn end(&mut self) -> Reply {
        self.current = None;
        let mut rolled_back = Vec::new();
        for (name, mut txn) in std::mem::take(&mut self.txns) {
            // A failed rollback still leaves nothing committed; the name is reported
            // either way.
            let _ = txn.rollback(&self.names).await;
            rolled_back.push(name);
        }
        Reply::Quit { rolled_back }
    }

    async fn status(&self) -> Reply {
        match &self.backend {
            Backend::Embedded(_) => {
                Reply::Failed("status needs a cluster (shell --connect)".into())
            }
            Backend::Replicated(client) => Reply::Status(connect::status(client).await),
        }
    }

    /// Starts a transaction on the backend.
    async fn start(&self) -> Result<AnyTxn, Reply> {
        match &self.backend {
            Backend::Embedded(db) => Ok(AnyTxn::Embedded(db.begin())),
            Backend::Replicated(client) => client
                .begin()
                .await
                .map(AnyTxn::Replicated)
                .map_err(client_failure),
        }
    }

    async fn begin(&mut self, name: String) -> Reply {
        if self.txns.contains_key(&name) {
            return Reply::Failed(format!("transaction {} already exists", named(&name)));
        }
        match self.start().await {
            Ok(txn) => {
                if let AnyTxn::Embedded(t) = &txn {
                    self.names.0.insert(t.id(), name.clone());
                }
                self.txns.insert(name.clone(), txn);
                self.current = Some(name);
                Reply::Done
            }
            Err(reply) => reply,
        }
    }

    fn use_txn(&mut self, name: &str) -> Reply {
        if !self.txns.contains_key(name) {
            return Reply::Failed(format!("no transaction {}", named(name)));
        }
        self.current = Some(name.to_string());
        Reply::Done
    }

    async fn finish(&mut self, commit: bool) -> Reply {
        let Some(name) = self.current.take() else {
            return Reply::Failed("no current transaction (begin NAME first)".into());
        };
        let Some(mut txn) = self.txns.remove(&name) else {
            return Reply::Failed(format!("no transaction {}", named(&name)));
        };
        if commit {
            txn.commit(&self.names, Some(&name)).await
        } else {
            txn.rollback(&self.names).await
        }
    }

    async fn op(&mut self, op: Op) -> Reply {
        match self.current.clone() {
            Some(name) => {
                let Some(txn) = self.txns.get_mut(&name) else {
                    return Reply::Failed(format!("no transaction {}", named(&name)));
                };
                txn.run(op, &self.names).await
            }
            None => {
                // Autocommit: a single-operation transaction.
                let mut txn = match self.start().await {
                    Ok(t) => t,
                    Err(reply) => return reply,
                };
                let reply = txn.run(op, &self.names).await;
                if !matches!(reply, Reply::Done) {
                    let _ = txn.rollback(&self.names).await;
                    return reply;
                }
                txn.commit(&self.names, None).await
            }
        }
    }
}

impl AnyTxn {
    async fn run(&mut self, op: Op, names: &Names) -> Reply {
        match self {
            AnyTxn::Embedded(txn) => run_op!(txn, op, |e| names.failure(e)),
            AnyTxn::Replicated(txn) => run_op!(txn, op, client_failure),
        }
    }

    async fn commit(&mut self, names: &Names, name: Option<&str>) -> Reply {
        match self {
            AnyTxn::Embedded(txn) => match txn.commit().await {
                Ok(o) => names.outcome(o),
                Err(e) => names.failure(e),
            },
            AnyTxn::Replicated(txn) => match txn.commit().await {
                Ok(o) => client_outcome(o, name),
                Err(e) => client_failure(e),
            },
        }
    }

    async fn rollback(&mut self, names: &Names) -> Reply {
        match self {
            AnyTxn::Embedded(txn) => match txn.rollback().await {
                Ok(()) => Reply::Done,
                Err(e) => names.failure(e),
            },
            AnyTxn::Replicated(txn) => match txn.rollback().await {
                Ok(()) => Reply::Done,
                Err(e) => client_failure(e),
            },
        }
    }
}

/// Runs one operation on a transaction of either kind: the embedded `Txn` and the
/// `ReplicatedTxn` have the same methods with different error types, which `$fail` turns
/// into a reply.
macro_rules! run_op {
    ($txn:expr, $op:expr, $fail:expr) => {{
        let txn = $txn;
        let result = match $op {
            Op::Get(k) => txn.get(&k).await.map(Reply::Value),
            Op::Put(k, v) => txn.put(k, v).await.map(|()| Reply::Done),
            Op::Delete(k) => txn.delete(k).await.map(|()| Reply::Done),
            Op::Scan(start, end) => txn.scan(start..end).await.map(Reply::Rows),
        };
        result.unwrap_or_else($fail)
    }};
}
use run_op;

/// The shell needs the real world (the simulated disk lives only inside a run).
#[cfg(madsim)]
pub fn main(_path: &std::path::Path, _options: &ShellOptions) -> std::process::ExitCode {
    eprintln!(
        "seedbank shell runs in the real world: cargo run --bin seedbank -- shell --path DIR"
    );
    std::process::ExitCode::from(2)
}

/// How a session reads and answers, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ShellOptions {
    /// One JSON answer per command, no prompt.
    pub json: bool,
    /// The line-editing history file (terminal only); `None`: `~/.seedbank_history`.
    pub history: Option<std::path::PathBuf>,
}

/// `seedbank shell --path DIR [--json] [--history FILE]`: reads commands from stdin
/// until EOF or `quit`; exit status as the module doc says.
#[cfg(not(madsim))]
pub fn main(path: &std::path::Path, options: &ShellOptions) -> std::process::ExitCode {
    let rt = match input::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let db = match Db::open(path, engine::Options::default()).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("seedbank shell: cannot open {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
        };
        let mut session = Session::new(db);
        let code = input::run_stdin(&mut session, options).await;
        if let Some(db) = session.db() {
            let _ = db.close().await;
        }
        code
    })
}
