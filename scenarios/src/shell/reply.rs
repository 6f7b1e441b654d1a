//! The answer to one shell command, as a `--json` line or as text for a person.

use serde_json::json;

use super::syntax::quote;

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success with nothing to show.
    Done,
    /// A get's value.
    Value(Option<Vec<u8>>),
    /// A scan's rows.
    Rows(Vec<(Vec<u8>, Vec<u8>)>),
    /// A commit (or autocommitted write) that committed at `ts`.
    Committed(u64),
    /// A commit the engine refused; `reason` is "serialization" or "write-write".
    NotCommitted {
        /// The conflict's kind.
        reason: String,
        /// The conflict, in the user's transaction names.
        detail: String,
    },
    /// An operation on a transaction the engine already doomed.
    Aborted {
        /// The conflict's kind.
        reason: String,
        /// The conflict, in the user's transaction names.
        detail: String,
    },
    /// Anything else that failed.
    Failed(String),
    /// The replicas' status (`--connect`): one JSON object per replica.
    Status(Vec<serde_json::Value>),
    /// The help text.
    Help,
    /// End of session (`quit`, `exit`, or the end of the input); `rolled_back` names the
    /// transactions that were still open and were rolled back (D56).
    Quit {
        /// The open transactions rolled back, by name.
        rolled_back: Vec<String>,
    },
}

/// The `help` answer.
pub const HELP: &str = "commands: begin NAME | use NAME | get KEY | put KEY VALUE | delete KEY | \
scan START END | commit | rollback | status | help | quit  (no current transaction: each \
get/put/delete/scan commits on its own; status needs --connect; quote words with spaces \
or other bytes: \"a b\", 'a b', \"\\xff\"; quit rolls back open transactions)";

/// A byte string as JSON: a string when it is UTF-8, else `{"hex":"…"}` (D57).
fn bytes_json(b: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(b) {
        Ok(s) => json!(s),
        Err(_) => json!({ "hex": b.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
    }
}

impl Reply {
    /// Whether this answer reports a failure: an error, an operation on a doomed
    /// transaction, a commit that did not commit, or a quit that had to roll back open
    /// transactions. Any of these makes the shell's exit status 1 (D56).
    pub fn is_failure(&self) -> bool {
        match self {
            Reply::Failed(_) | Reply::Aborted { .. } | Reply::NotCommitted { .. } => true,
            Reply::Quit { rolled_back } => !rolled_back.is_empty(),
            Reply::Done
            | Reply::Value(_)
            | Reply::Rows(_)
            | Reply::Committed(_)
            | Reply::Status(_)
            | Reply::Help => false,
        }
    }

    /// The `--json` answer line.
    pub fn json(&self) -> String {
        let v = match self {
            Reply::Done => json!({"ok": true}),
            Reply::Quit { rolled_back } if rolled_back.is_empty() => json!({"ok": true}),
            Reply::Quit { rolled_back } => json!({
                "ok": false,
                "error": quit_message(rolled_back),
                "rolled_back": rolled_back,
            }),
            Reply::Value(v) => json!({"ok": true, "value": v.as_deref().map(bytes_json)}),
            Reply::Rows(rows) => json!({"ok": true, "rows": rows
                .iter()
                .map(|(k, v)| vec![bytes_json(k), bytes_json(v)])
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

    /// The interactive answer. Keys and values are quoted when they need it, so what
    /// is printed can be typed back ([`quote`]).
    pub fn human(&self) -> String {
        match self {
            Reply::Done => "ok".into(),
            Reply::Quit { rolled_back } if rolled_back.is_empty() => "ok".into(),
            Reply::Quit { rolled_back } => format!("error: {}", quit_message(rolled_back)),
            Reply::Value(Some(v)) => quote(v),
            Reply::Value(None) => "(nil)".into(),
            Reply::Rows(rows) if rows.is_empty() => "(no rows)".into(),
            Reply::Rows(rows) => rows
                .iter()
                .map(|(k, v)| format!("{} = {}", quote(k), quote(v)))
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

fn quit_message(rolled_back: &[String]) -> String {
    let names = rolled_back
        .iter()
        .map(|n| quote(n.as_bytes()))
        .collect::<Vec<_>>()
        .join(", ");
    let (what, their) = if rolled_back.len() == 1 {
        ("transaction", "its")
    } else {
        ("transactions", "their")
    };
    format!(
        "session ended with open {what} {names}: rolled back, {their} writes are discarded \
         (commit before quitting to keep them)"
    )
}
