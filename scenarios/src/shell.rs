//! `seedbank shell --path DIR`: an interactive embedded database with named concurrent
//! transactions (DESIGN.md "The shell"); `seedbank shell --connect ADDR[,ADDR…]`: the
//! same commands and answers against a replicated cluster ([`connect`]).
//!
//! Commands, one per line: `begin NAME` (start a transaction and make it current),
//! `use NAME`, `get KEY`, `put KEY VALUE` (the value is the rest of the line),
//! `delete KEY`, `scan START END` (END exclusive), `commit`, `rollback`, `help`, `quit`,
//! and with `--connect`, `status` (every replica's role, term and indices).
//! With no current transaction, get/put/delete/scan run as single-operation
//! transactions. `--json` answers every command with exactly one JSON line:
//! `{"ok":true}`; get `{"ok":true,"value":"v"|null}`; scan
//! `{"ok":true,"rows":[["k","v"],…]}`; commit `{"ok":true,"committed":true,"ts":N}` or
//! `{"ok":true,"committed":false,"reason":"serialization"}`; an operation on a
//! transaction the engine already doomed `{"ok":false,"aborted":true,"reason":"…"}`;
//! any other failure `{"ok":false,"error":"…"}`. A malformed line gets an error answer
//! and the session goes on.
//!
//! Against a cluster, `ts` is the log index the transaction was applied at (a
//! read-only transaction's: its snapshot index), a conflict's reason is always
//! `"serialization"`, and a transaction lost with its leader answers
//! `{"ok":false,"aborted":true,"reason":"transaction-lost",…}`.

pub mod connect;

use engine::replicated::{ClientError, RTxn, ReplicatedClient, TxnOutcome};
use engine::{CommitOutcome, Db, Error, Txn};
use serde_json::json;
use std::collections::BTreeMap;

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success with nothing to show.
    Done,
    /// A get's value.
    Value(Option<String>),
    /// A scan's rows.
    Rows(Vec<(String, String)>),
    /// A commit (or autocommitted write) that committed at `ts`.
    Committed(u64),
    /// A commit the engine refused; `reason` is "serialization" or "write-write".
    NotCommitted { reason: String, detail: String },
    /// An operation on a transaction the engine already doomed.
    Aborted { reason: String, detail: String },
    /// Anything else that failed.
    Failed(String),
    /// The replicas' status (`--connect`): one JSON object per replica.
    Status(Vec<serde_json::Value>),
    /// The help text.
    Help,
    /// End of session.
    Quit,
}

const HELP: &str = "commands: begin NAME | use NAME | get KEY | put KEY VALUE | delete KEY | \
scan START END | commit | rollback | status | help | quit  (no current transaction: each \
get/put/delete/scan commits on its own; status needs --connect)";

impl Reply {
    /// The `--json` answer line.
    pub fn json(&self) -> String {
        let v = match self {
            Reply::Done | Reply::Quit => json!({"ok": true}),
            Reply::Value(v) => json!({"ok": true, "value": v}),
            Reply::Rows(rows) => json!({"ok": true, "rows": rows
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect::<Vec<_>>()}),
            Reply::Committed(ts) => json!({"ok": true, "committed": true, "ts": ts}),
            Reply::NotCommitted { reason, detail } => {
                json!({"ok": true, "committed": false, "reason": reason, "detail": detail})
            }
            Reply::Aborted { reason, detail } => {
                json!({"ok": false, "aborted": true, "reason": reason, "detail": detail})
            }
            Reply::Failed(e) => json!({"ok": false, "error": e}),
            Reply::Status(nodes) => json!({"ok": true, "nodes": nodes}),
            Reply::Help => json!({"ok": true, "help": HELP}),
        };
        v.to_string()
    }

    /// The interactive answer.
    pub fn human(&self) -> String {
        match self {
            Reply::Done | Reply::Quit => "ok".into(),
            Reply::Value(Some(v)) => v.clone(),
            Reply::Value(None) => "(nil)".into(),
            Reply::Rows(rows) if rows.is_empty() => "(no rows)".into(),
            Reply::Rows(rows) => rows
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
            Reply::Committed(ts) => format!("committed ts={ts}"),
            Reply::NotCommitted { reason, detail } => {
                format!("not committed: {reason} conflict ({detail}); retry the transaction")
            }
            Reply::Aborted { reason, detail } => format!(
                "aborted: {reason} conflict ({detail}); roll back and retry the transaction"
            ),
            Reply::Failed(e) => format!("error: {e}"),
            Reply::Status(nodes) => nodes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            Reply::Help => HELP.into(),
        }
    }
}

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
    Replicated(RTxn),
}

/// One shell session over an open database or a cluster connection.
pub struct Session {
    backend: Backend,
    txns: BTreeMap<String, AnyTxn>,
    current: Option<String>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn failure(e: Error) -> Reply {
    match e.conflict() {
        Some(c) => Reply::Aborted {
            reason: c.kind().to_string(),
            detail: c.to_string(),
        },
        None => Reply::Failed(e.to_string()),
    }
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

fn client_outcome(o: TxnOutcome) -> Reply {
    match o {
        TxnOutcome::Committed { index } => Reply::Committed(index),
        TxnOutcome::Aborted { key, written_at } => Reply::NotCommitted {
            reason: "serialization".into(),
            detail: format!(
                "{} was written at index {written_at}, after the transaction's snapshot",
                text(&key)
            ),
        },
    }
}

fn outcome(o: CommitOutcome) -> Reply {
    match o {
        CommitOutcome::Committed { ts } => Reply::Committed(ts.0),
        CommitOutcome::Aborted(c) => Reply::NotCommitted {
            reason: c.kind().to_string(),
            detail: c.to_string(),
        },
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
    Get(String),
    Put(String, String),
    Delete(String),
    Scan(String, String),
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
        }
    }

    /// The interactive prompt, naming the current transaction.
    pub fn prompt(&self) -> String {
        match &self.current {
            Some(name) => format!("seedbank({name})> "),
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

    /// Runs one command line. Blank lines and `#` comments return `None`.
    pub async fn execute(&mut self, line: &str) -> Option<Reply> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let args: Vec<&str> = rest.split_whitespace().collect();
        let reply = match (word.to_ascii_lowercase().as_str(), args.as_slice()) {
            ("help", []) => Reply::Help,
            ("quit" | "exit", []) => Reply::Quit,
            ("status", []) => self.status().await,
            ("begin", [name]) => self.begin(name).await,
            ("use", [name]) => self.use_txn(name),
            ("commit", []) => self.finish(true).await,
            ("rollback", []) => self.finish(false).await,
            ("get", [key]) => self.op(Op::Get(key.to_string())).await,
            ("put", [key, _, ..]) => {
                let value = rest[key.len()..].trim().to_string();
                self.op(Op::Put(key.to_string(), value)).await
            }
            ("delete", [key]) => self.op(Op::Delete(key.to_string())).await,
            ("scan", [start, end]) => self.op(Op::Scan(start.to_string(), end.to_string())).await,
            (cmd, _) => match usage(cmd) {
                Some(usage) => Reply::Failed(format!("usage: {usage}")),
                None => Reply::Failed(format!("unknown command '{cmd}' (try: help)")),
            },
        };
        Some(reply)
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

    async fn begin(&mut self, name: &str) -> Reply {
        if self.txns.contains_key(name) {
            return Reply::Failed(format!("transaction '{name}' already exists"));
        }
        match self.start().await {
            Ok(txn) => {
                self.txns.insert(name.to_string(), txn);
                self.current = Some(name.to_string());
                Reply::Done
            }
            Err(reply) => reply,
        }
    }

    fn use_txn(&mut self, name: &str) -> Reply {
        if !self.txns.contains_key(name) {
            return Reply::Failed(format!("no transaction '{name}'"));
        }
        self.current = Some(name.to_string());
        Reply::Done
    }

    async fn finish(&mut self, commit: bool) -> Reply {
        let Some(name) = self.current.take() else {
            return Reply::Failed("no current transaction (begin NAME first)".into());
        };
        let Some(mut txn) = self.txns.remove(&name) else {
            return Reply::Failed(format!("no transaction '{name}'"));
        };
        if commit {
            txn.commit().await
        } else {
            txn.rollback().await
        }
    }

    async fn op(&mut self, op: Op) -> Reply {
        match self.current.clone() {
            Some(name) => {
                let Some(txn) = self.txns.get_mut(&name) else {
                    return Reply::Failed(format!("no transaction '{name}'"));
                };
                txn.run(op).await
            }
            None => {
                // Autocommit: a single-operation transaction.
                let mut txn = match self.start().await {
                    Ok(t) => t,
                    Err(reply) => return reply,
                };
                let reply = txn.run(op).await;
                if !matches!(reply, Reply::Done) {
                    let _ = txn.rollback().await;
                    return reply;
                }
                txn.commit().await
            }
        }
    }
}

impl AnyTxn {
    async fn run(&mut self, op: Op) -> Reply {
        match self {
            AnyTxn::Embedded(txn) => run_op!(txn, op, failure),
            AnyTxn::Replicated(txn) => run_op!(txn, op, client_failure),
        }
    }

    async fn commit(&mut self) -> Reply {
        match self {
            AnyTxn::Embedded(txn) => match txn.commit().await {
                Ok(o) => outcome(o),
                Err(e) => failure(e),
            },
            AnyTxn::Replicated(txn) => match txn.commit().await {
                Ok(o) => client_outcome(o),
                Err(e) => client_failure(e),
            },
        }
    }

    async fn rollback(&mut self) -> Reply {
        match self {
            AnyTxn::Embedded(txn) => match txn.rollback().await {
                Ok(()) => Reply::Done,
                Err(e) => failure(e),
            },
            AnyTxn::Replicated(txn) => match txn.rollback().await {
                Ok(()) => Reply::Done,
                Err(e) => client_failure(e),
            },
        }
    }
}

/// Runs one operation on a transaction of either kind: the embedded `Txn` and the
/// replicated `RTxn` have the same methods with different error types, which `$fail`
/// turns into a reply.
macro_rules! run_op {
    ($txn:expr, $op:expr, $fail:expr) => {{
        let txn = $txn;
        let result = match $op {
            Op::Get(k) => txn
                .get(k.as_bytes())
                .await
                .map(|v| Reply::Value(v.map(|v| text(&v)))),
            Op::Put(k, v) => txn
                .put(k.into_bytes(), v.into_bytes())
                .await
                .map(|()| Reply::Done),
            Op::Delete(k) => txn.delete(k.into_bytes()).await.map(|()| Reply::Done),
            Op::Scan(start, end) => txn
                .scan(start.into_bytes()..end.into_bytes())
                .await
                .map(|rows| Reply::Rows(rows.iter().map(|(k, v)| (text(k), text(v))).collect())),
        };
        result.unwrap_or_else($fail)
    }};
}
use run_op;

/// A multi-threaded tokio runtime for a shell session, or the exit code after saying why
/// it could not start.
#[cfg(not(madsim))]
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("seedbank shell: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        })
}

/// `seedbank shell --path DIR [--json]`: reads commands from stdin until EOF or `quit`.
#[cfg(not(madsim))]
pub fn main(path: &std::path::Path, json: bool) -> std::process::ExitCode {
    let rt = match runtime() {
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
        repl(&mut session, json).await;
        if let Some(db) = session.db() {
            let _ = db.close().await;
        }
        std::process::ExitCode::SUCCESS
    })
}

/// Reads commands from stdin until EOF or `quit`, answering each on stdout.
#[cfg(not(madsim))]
pub(crate) async fn repl(session: &mut Session, json: bool) {
    use std::io::{BufRead, IsTerminal, Write};
    let interactive = !json && std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("{}", session.prompt());
            let _ = std::io::stdout().flush();
        }
        let Some(Ok(line)) = lines.next() else { break };
        let Some(reply) = session.execute(&line).await else {
            continue;
        };
        println!("{}", if json { reply.json() } else { reply.human() });
        if reply == Reply::Quit {
            break;
        }
    }
}

/// The shell needs the real world (the simulated disk lives only inside a run).
#[cfg(madsim)]
pub fn main(_path: &std::path::Path, _json: bool) -> std::process::ExitCode {
    eprintln!(
        "seedbank shell runs in the real world: cargo run --bin seedbank -- shell --path DIR"
    );
    std::process::ExitCode::from(2)
}
