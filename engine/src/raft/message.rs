//! The wire and persistence types: entries, hard state, snapshots, messages, and the
//! [`Ready`] hand-off to the caller.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Index, NodeId, Term, MAX_INDEX, MAX_TERM_JUMP};

/// A log entry. `data: None` is the no-op a new leader appends (§8); the application
/// skips it when applying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, from 1.
    pub index: Index,
    /// Term of the leader that created it.
    pub term: Term,
    /// The command, or `None` for a leader's no-op.
    pub data: Option<Vec<u8>>,
}

/// The state that must be durable before a node sends anything that depends on it
/// (Figure 2, "persistent state on all servers"; the commit index is persisted too so
/// a restart need not re-learn it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term seen.
    pub term: Term,
    /// Candidate voted for in `term`.
    pub vote: Option<NodeId>,
    /// Highest index known committed.
    pub commit: Index,
}

/// Where a snapshot sits in the log: it replaces every entry up to and including
/// `index`, whose term was `term`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Last index covered.
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
}

/// The application's state machine at `meta.index`, as opaque bytes (§7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Position in the log.
    pub meta: SnapshotMeta,
    /// The application's serialized state.
    pub data: Vec<u8>,
}

/// A follower's hint on a rejected append, for fast backtracking (§5.3, the
/// optimization in the paragraph after Figure 7): the term of the follower's entry at
/// the append's previous index and the first index it holds of that term, or, when its
/// log is too short, `term: None` and its last index + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectHint {
    /// Conflicting term at the probed index, if the follower has an entry there.
    pub term: Option<Term>,
    /// First index of that term in the follower's log (or last index + 1).
    pub index: Index,
}

/// A Raft message. `term` is the sender's term, except for pre-vote requests and
/// granted pre-vote responses, which carry the *proposed* term (sender's term + 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// See the type's doc.
    pub term: Term,
    /// What the message says.
    pub body: Body,
}

/// The message kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Would you vote for me in `term`? (thesis §9.6). Changes no one's term.
    PreVote {
        /// Candidate's last log index.
        last_index: Index,
        /// Candidate's last log term.
        last_term: Term,
    },
    /// Answer to [`Body::PreVote`].
    PreVoteResponse {
        /// Whether the pre-vote is granted.
        granted: bool,
    },
    /// RequestVote (§5.2).
    Vote {
        /// Candidate's last log index.
        last_index: Index,
        /// Candidate's last log term.
        last_term: Term,
    },
    /// Answer to [`Body::Vote`].
    VoteResponse {
        /// Whether the vote is granted.
        granted: bool,
    },
    /// AppendEntries (§5.3).
    Append {
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Its term.
        prev_term: Term,
        /// Entries to store (may be empty: a probe or a commit-index update).
        entries: Vec<Entry>,
        /// Leader's commit index.
        commit: Index,
    },
    /// Answer to [`Body::Append`] or [`Body::InstallSnapshot`]. On success `index` is
    /// the highest index now known to match the leader; on rejection it is the
    /// rejected append's `prev_index`.
    AppendResponse {
        /// See the variant's doc.
        index: Index,
        /// `Some` on rejection.
        reject: Option<RejectHint>,
    },
    /// Leader heartbeat. `commit` is capped at what the follower is known to store;
    /// `read_seq` is the latest ReadIndex round this heartbeat vouches for.
    Heartbeat {
        /// Commit index the follower may adopt.
        commit: Index,
        /// ReadIndex round number (thesis §6.4).
        read_seq: u64,
    },
    /// Answer to [`Body::Heartbeat`], echoing its `read_seq`.
    HeartbeatResponse {
        /// The echoed round number.
        read_seq: u64,
    },
    /// InstallSnapshot (§7).
    InstallSnapshot {
        /// The leader's snapshot.
        snapshot: Snapshot,
    },
    /// A follower forwards a read request to the leader.
    ReadIndex {
        /// The caller's opaque request context.
        ctx: Vec<u8>,
    },
    /// The leader's answer: `Some(index)` once leadership is confirmed, `None` if it
    /// is not (or no longer) the leader.
    ReadIndexResponse {
        /// The request context.
        ctx: Vec<u8>,
        /// The read index, if granted.
        index: Option<Index>,
    },
}

impl Body {
    /// Whether only a leader sends this message (its sender is then the leader of the
    /// message's term).
    pub fn from_leader(&self) -> bool {
        matches!(
            self,
            Body::Append { .. } | Body::Heartbeat { .. } | Body::InstallSnapshot { .. }
        )
    }
}

impl Message {
    /// Checks what no honest peer ever sends to a node whose term is `current` (D52): a
    /// term more than [`MAX_TERM_JUMP`] above `current`, an index above [`MAX_INDEX`],
    /// entries that do not follow `prev_index` one by one or whose terms fall or exceed
    /// the message's term, a snapshot or last-entry term above the message's term.
    /// Bounding the indexes here is what lets the rest of the core use `+ 1` on them
    /// without wrapping. `Err` says what is wrong.
    pub fn validate(&self, current: Term) -> Result<(), String> {
        let t = self.term;
        let limit = current.saturating_add(MAX_TERM_JUMP);
        if t > limit {
            return Err(format!(
                "term {t} jumps more than {MAX_TERM_JUMP} past the current term {current}"
            ));
        }
        let index_ok = |what: &str, i: Index| {
            if i > MAX_INDEX {
                Err(format!("{what} {i} above the maximum index {MAX_INDEX}"))
            } else {
                Ok(())
            }
        };
        // A term carried inside a message never exceeds the message's own term: the
        // sender's log holds no entry newer than its term.
        let term_ok = |what: &str, x: Term| {
            if x > t {
                Err(format!("{what} {x} above the message's term {t}"))
            } else {
                Ok(())
            }
        };
        match &self.body {
            Body::PreVote {
                last_index,
                last_term,
            }
            | Body::Vote {
                last_index,
                last_term,
            } => {
                index_ok("last index", *last_index)?;
                term_ok("last term", *last_term)?;
            }
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                index_ok("prev index", *prev_index)?;
                index_ok("commit", *commit)?;
                term_ok("prev term", *prev_term)?;
                let mut last = (*prev_index, *prev_term);
                for e in entries {
                    index_ok("entry index", e.index)?;
                    term_ok("entry term", e.term)?;
                    if Some(e.index) != last.0.checked_add(1) || e.term < last.1 {
                        return Err(format!(
                            "entry {}@{} does not follow {}@{}",
                            e.index, e.term, last.0, last.1
                        ));
                    }
                    last = (e.index, e.term);
                }
            }
            Body::AppendResponse { index, reject } => {
                index_ok("index", *index)?;
                if let Some(h) = reject {
                    index_ok("hint index", h.index)?;
                    if let Some(ht) = h.term {
                        term_ok("hint term", ht)?;
                    }
                }
            }
            Body::Heartbeat { commit, .. } => index_ok("commit", *commit)?,
            Body::InstallSnapshot { snapshot } => {
                index_ok("snapshot index", snapshot.meta.index)?;
                term_ok("snapshot term", snapshot.meta.term)?;
            }
            Body::ReadIndexResponse {
                index: Some(index), ..
            } => index_ok("read index", *index)?,
            Body::PreVoteResponse { .. }
            | Body::VoteResponse { .. }
            | Body::HeartbeatResponse { .. }
            | Body::ReadIndex { .. }
            | Body::ReadIndexResponse { index: None, .. } => {}
        }
        Ok(())
    }
}

/// A read request's outcome (thesis §6.4): once the application has applied through
/// `index`, it may serve the read identified by `ctx`. `index: None` means the request
/// was refused (leadership lost); retry elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's request context.
    pub ctx: Vec<u8>,
    /// The read index, or `None` if refused.
    pub index: Option<Index>,
}

/// What the node needs done, in order: persist (`snapshot`, `entries`, `hard_state`),
/// [`super::RawNode::advance`], send `messages`, apply `committed_entries` (after
/// installing `snapshot`), serve `read_states`. See the module doc for why the order is
/// a contract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    /// Term, vote and commit to persist, if they changed.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it (it replaces the whole log) and
    /// install it into the state machine.
    pub snapshot: Option<Snapshot>,
    /// Entries to persist. Any stored entry at index ≥ `entries[0].index` is replaced.
    pub entries: Vec<Entry>,
    /// Committed entries to apply, in order, after persisting.
    pub committed_entries: Vec<Entry>,
    /// Messages to send after persisting, as `(to, message)`.
    pub messages: Vec<(NodeId, Message)>,
    /// Completed read requests.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.committed_entries.is_empty()
            && self.messages.is_empty()
            && self.read_states.is_empty()
    }
}

/// Shows bytes as text when they are printable UTF-8, else as hex.
pub(crate) fn show_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_string(),
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.data {
            None => write!(f, "{}@{} noop", self.index, self.term),
            Some(d) => write!(f, "{}@{} {}", self.index, self.term, show_bytes(d)),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.term;
        match &self.body {
            Body::PreVote {
                last_index,
                last_term,
            } => {
                write!(f, "PreVote term={t} last={last_index}@{last_term}")
            }
            Body::PreVoteResponse { granted } => {
                write!(f, "PreVoteResponse term={t} granted={granted}")
            }
            Body::Vote {
                last_index,
                last_term,
            } => {
                write!(f, "Vote term={t} last={last_index}@{last_term}")
            }
            Body::VoteResponse { granted } => write!(f, "VoteResponse term={t} granted={granted}"),
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                let es: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
                write!(
                    f,
                    "Append term={t} prev={prev_index}@{prev_term} commit={commit} [{}]",
                    es.join(", ")
                )
            }
            Body::AppendResponse {
                index,
                reject: None,
            } => {
                write!(f, "AppendResponse term={t} match={index}")
            }
            Body::AppendResponse {
                index,
                reject: Some(h),
            } => {
                let ht = h.term.map_or("none".to_string(), |t| t.to_string());
                write!(
                    f,
                    "AppendResponse term={t} reject={index} hint={}@{ht}",
                    h.index
                )
            }
            Body::Heartbeat { commit, read_seq } => {
                write!(f, "Heartbeat term={t} commit={commit} read_seq={read_seq}")
            }
            Body::HeartbeatResponse { read_seq } => {
                write!(f, "HeartbeatResponse term={t} read_seq={read_seq}")
            }
            Body::InstallSnapshot { snapshot } => write!(
                f,
                "InstallSnapshot term={t} snapshot={}@{}",
                snapshot.meta.index, snapshot.meta.term
            ),
            Body::ReadIndex { ctx } => write!(f, "ReadIndex term={t} ctx={}", show_bytes(ctx)),
            Body::ReadIndexResponse { ctx, index } => {
                let i = index.map_or("refused".to_string(), |i| i.to_string());
                write!(
                    f,
                    "ReadIndexResponse term={t} ctx={} index={i}",
                    show_bytes(ctx)
                )
            }
        }
    }
}
