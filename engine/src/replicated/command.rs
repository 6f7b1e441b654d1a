//! The state machine's commands (what the Raft log carries), their outcomes, and the
//! reserved key namespace the state machine keeps its bookkeeping in.
//!
//! ## Encoding
//! A command is one version byte ([`COMMAND_VERSION`]) followed by its postcard
//! encoding. [`decode`] never panics: bytes that do not decode give an error, which
//! the state machine turns into a no-op with a [`Outcome::Rejected`] — identically on
//! every replica, since every replica sees the same bytes.
//!
//! ## Reserved keys
//! Every key whose first byte is `\0` belongs to the state machine:
//! - `\0sys/applied` → `(index, term)` of the last applied entry;
//! - `\0lw/<key>` → the index of the last committed write (put or delete) of `<key>`;
//! - `\0client/<id as 8 big-endian bytes>` → the client's last `(seq, outcome)`.
//!
//! Clients can neither read nor write them: [`check_user_key`] refuses such keys, and
//! scans start at `\x01`.
//!
//! ## Invariants
//! - Every reserved key sorts before [`FIRST_USER_KEY`]; last-write keys of a user range
//!   `[a, b)` are exactly the keys in `[\0lw/a, \0lw/b)`.
//! - Decoding is total: any byte string gives a command or an error.
//!
//! ## Fault model
//! The log's framing (CRC32C) and the transport's catch damaged bytes; what reaches
//! [`decode`] is what some leader proposed, possibly from a buggy or hostile client.
//!
//! ## Non-goals
//! - Schema evolution beyond the version byte; compact encodings of large write sets.

use serde::{Deserialize, Serialize};

use crate::raft::{Index, Term};
use crate::{Key, Value};

/// The first byte of every command encoding.
pub const COMMAND_VERSION: u8 = 1;
/// The first byte of every reserved key.
pub const RESERVED: u8 = 0;
/// The key of the applied `(index, term)`.
pub const APPLIED_KEY: &[u8] = b"\0sys/applied";
/// Prefix of the last-write index of each user key.
pub const LAST_WRITE_PREFIX: &[u8] = b"\0lw/";
/// Prefix of each client's last `(seq, outcome)`.
pub const CLIENT_PREFIX: &[u8] = b"\0client/";
/// The smallest user key (scans of user data start here).
pub const FIRST_USER_KEY: &[u8] = b"\x01";

/// A half-open key range `[start, end)`; `end: None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeySpan {
    /// First key included.
    pub start: Key,
    /// First key excluded, or `None` for "to the end".
    pub end: Option<Key>,
}

impl KeySpan {
    /// Whether `key` lies in the span.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice()
            && match &self.end {
                Some(e) => key < e.as_slice(),
                None => true,
            }
    }
}

/// A transaction to commit: what it read (at snapshot `snapshot`) and what it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCmd {
    /// The client's id (unique per client instance).
    pub client: u64,
    /// The client's sequence number of this commit (retries reuse it).
    pub seq: u64,
    /// The applied index the transaction's reads saw.
    pub snapshot: Index,
    /// Keys read from the snapshot.
    pub reads: Vec<Key>,
    /// Ranges scanned in the snapshot.
    pub ranges: Vec<KeySpan>,
    /// Writes: `Some(value)` puts, `None` deletes.
    pub writes: Vec<(Key, Option<Value>)>,
}

/// A state machine command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Validate and apply a transaction.
    Commit(CommitCmd),
}

/// What became of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Validated and applied at log index `index` (its serialization point).
    Committed {
        /// The entry's index.
        index: Index,
    },
    /// A key the transaction read (`key`) was written at `written_at`, after its
    /// snapshot: nothing was applied; retry the transaction.
    Aborted {
        /// The first conflicting key found.
        key: Key,
        /// Index of the write that conflicts.
        written_at: Index,
    },
    /// The command is invalid (undecodable, a reserved key, a snapshot not before its
    /// own index): nothing was applied.
    Rejected {
        /// Why.
        why: String,
    },
}

/// A client's last commit, as the state machine records it for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The sequence number.
    pub seq: u64,
    /// Its outcome.
    pub outcome: Outcome,
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Empty input.
    #[error("empty command")]
    Empty,
    /// An unknown version byte.
    #[error("unknown command version {0}")]
    Version(u8),
    /// The payload is not a valid encoding.
    #[error("malformed command: {0}")]
    Malformed(String),
}

/// Encodes a command for the log.
pub fn encode(cmd: &Command) -> Vec<u8> {
    let mut out = vec![COMMAND_VERSION];
    // Serializing plain data into a Vec cannot fail (postcard only fails on writers
    // that run out of room and on types serde cannot describe).
    out.extend(postcard::to_allocvec(cmd).unwrap_or_default());
    out
}

/// Decodes a command from the log. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&COMMAND_VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        Some((&v, _)) => Err(DecodeError::Version(v)),
    }
}

/// Checks that a client may use `key`.
pub fn check_user_key(key: &[u8]) -> Result<(), String> {
    if key.first() == Some(&RESERVED) {
        return Err("keys starting with a NUL byte are reserved".into());
    }
    Ok(())
}

/// The reserved key holding the last-write index of user key `key`.
pub fn last_write_key(key: &[u8]) -> Key {
    [LAST_WRITE_PREFIX, key].concat()
}

/// The reserved-key range holding the last-write indices of the user keys in `span`.
pub fn last_write_span(span: &KeySpan) -> (Key, Key) {
    let start = last_write_key(&span.start);
    let end = match &span.end {
        Some(e) => last_write_key(e),
        None => prefix_end(LAST_WRITE_PREFIX),
    };
    (start, end)
}

/// The first key after every key that starts with `prefix` (which must not end in 0xff).
pub fn prefix_end(prefix: &[u8]) -> Key {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = last.saturating_add(1);
    }
    end
}

/// The reserved key of client `id`'s record.
pub fn client_key(id: u64) -> Key {
    [CLIENT_PREFIX, &id.to_be_bytes()].concat()
}

/// Encodes an index for `\0lw/…`.
pub fn encode_index(index: Index) -> Value {
    index.to_le_bytes().to_vec()
}

/// Decodes an index stored by [`encode_index`].
pub fn decode_index(bytes: &[u8]) -> Option<Index> {
    Some(Index::from_le_bytes(bytes.try_into().ok()?))
}

/// Encodes the applied `(index, term)`.
pub fn encode_applied(index: Index, term: Term) -> Value {
    [index.to_le_bytes(), term.to_le_bytes()].concat()
}

/// Decodes the applied `(index, term)`.
pub fn decode_applied(bytes: &[u8]) -> Option<(Index, Term)> {
    let (i, t) = (bytes.get(..8)?, bytes.get(8..)?);
    Some((
        Index::from_le_bytes(i.try_into().ok()?),
        Term::from_le_bytes(t.try_into().ok()?),
    ))
}

/// Encodes a client record.
pub fn encode_client_record(rec: &ClientRecord) -> Value {
    postcard::to_allocvec(rec).unwrap_or_default()
}

/// Decodes a client record.
pub fn decode_client_record(bytes: &[u8]) -> Option<ClientRecord> {
    postcard::from_bytes(bytes).ok()
}
