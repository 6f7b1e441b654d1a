//! The run trace: every observable event of a simulated run.
//!
//! An event carries its kind, node, task, virtual time, a detail string and the source
//! location that recorded it. Each event is folded into a running 64-bit digest; every
//! [`CHECKPOINT_INTERVAL`] events the digest is saved as a checkpoint. Two runs of the
//! same seed must produce the same digest — that is the determinism check — and the
//! per-event digests let the check name the first event where two runs part.
//!
//! Events are kept in full up to a cap ([`Recorder::set_keep_limit`]) so a report can
//! print both sides of a divergence; past it only digests are kept.
//!
//! In the real world nothing is recorded unless [`set_recording`] turns it on.

use crate::state;
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::panic::Location;

/// Events between two saved checkpoints.
pub const CHECKPOINT_INTERVAL: u64 = 1024;
/// Default number of events kept in full per run.
pub const DEFAULT_KEEP_LIMIT: usize = 2_000_000;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A task was spawned.
    Spawn,
    /// A task was polled.
    Poll,
    /// A message was handed to the network.
    Send,
    /// A message was delivered to its receiver.
    Deliver,
    /// A message was dropped by a fault or a partition.
    Drop,
    /// A file-system operation and its result.
    File,
    /// A fault was injected.
    Fault,
    /// A node was created, crashed, killed, restarted, paused or resumed.
    Node,
    /// A client operation was invoked.
    Invoke,
    /// A client operation returned.
    Return,
    /// A `tracing` event from the code under test.
    Log,
    /// Anything else a component wants in the trace.
    Custom,
    /// A coverage mark was reached for the first time in the run (`cover!`).
    Mark,
}

impl EventKind {
    fn tag(self) -> u8 {
        self as u8
    }
}

/// One observable event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the run, from 0.
    pub index: u64,
    /// Virtual nanoseconds since the run started.
    pub time_ns: u64,
    /// Simulated node id (0 is the supervisor).
    pub node: NodeId,
    /// Seedbank task id within the run (0: a task not spawned through sim-runtime).
    pub task: u64,
    pub kind: EventKind,
    pub detail: String,
    /// Source file that recorded the event (borrowed from the binary: recording an
    /// event must not allocate for its location; owned only after deserialization).
    pub file: Cow<'static, str>,
    pub line: u32,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} t={}.{:09}s node={} task={} {:?}",
            self.index,
            self.time_ns / 1_000_000_000,
            self.time_ns % 1_000_000_000,
            self.node,
            self.task,
            self.kind,
        )?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        // A poll is recorded by the executor's wrapper, with no line of its own.
        if self.file.is_empty() {
            Ok(())
        } else {
            write!(f, " at {}:{}", self.file, self.line)
        }
    }
}

/// A saved digest after `events` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub events: u64,
    pub digest: u64,
}

/// Accumulates a run's trace.
#[derive(Debug)]
pub struct Recorder {
    enabled: bool,
    digest: u64,
    count: u64,
    checkpoints: Vec<Checkpoint>,
    /// Running digest after each event (8 bytes per event), for locating divergence.
    digests: Vec<u64>,
    events: Vec<Event>,
    keep_limit: usize,
    /// Which events to echo to stderr as they happen (`SEEDBANK_TRACE`).
    echo: Echo,
    /// Where an event's detail is formatted: it is folded into the digest from here and
    /// copied out only for an event kept in full, so a run that keeps none formats
    /// ~90,000 details without allocating for them.
    scratch: String,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            enabled: cfg!(madsim),
            digest: DIGEST_SEED,
            count: 0,
            checkpoints: Vec::new(),
            digests: Vec::new(),
            events: Vec::new(),
            keep_limit: DEFAULT_KEEP_LIMIT,
            echo: Echo::Off,
            scratch: String::new(),
        }
    }
}

/// The digest of an empty trace.
const DIGEST_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// One step of the running digest: a bijection of `h ^ word` (odd multiply, then
/// xor-shift), so any single differing word changes the result. Word at a time rather
/// than FNV's byte at a time: the digest sees ~1M events a second and FNV's serial
/// multiply per byte was 6% of a simulated run (D41).
fn mix(h: u64, word: u64) -> u64 {
    let x = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Folds `bytes` into `h`: their length, then 8-byte little-endian words (the last
/// zero-padded; the length keeps `"a\0"` apart from `"a"`).
fn fold(mut h: u64, bytes: &[u8]) -> u64 {
    h = mix(h, bytes.len() as u64);
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(w));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(w));
    }
    h
}

impl Recorder {
    /// Turns this recorder on or off (a run's recorder starts on in simulation).
    #[cfg(madsim)]
    pub(crate) fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Keeps at most `limit` events in full (digests are always kept).
    pub fn set_keep_limit(&mut self, limit: usize) {
        self.keep_limit = limit;
    }

    #[cfg(madsim)]
    pub(crate) fn set_echo(&mut self, echo: Echo) {
        self.echo = echo;
    }

    /// Folds one event into the digest (always) and keeps it in full (up to the keep
    /// limit, or to echo it).
    fn push(&mut self, mut event: EventRef<'_>) {
        if !self.enabled {
            return;
        }
        event.index = self.count;
        let mut h = self.digest;
        h = mix(h, u64::from(event.kind.tag()));
        h = mix(h, event.time_ns);
        h = mix(h, event.node);
        h = mix(h, event.task);
        h = fold(h, event.detail.as_bytes());
        h = fold(h, event.file.as_bytes());
        h = mix(h, u64::from(event.line));
        self.digest = h;
        self.count += 1;
        self.digests.push(h);
        if self.count % CHECKPOINT_INTERVAL == 0 {
            self.checkpoints.push(Checkpoint {
                events: self.count,
                digest: h,
            });
        }
        let keep = self.events.len() < self.keep_limit;
        let echo = match self.echo {
            Echo::Off => false,
            Echo::Notable => !matches!(event.kind, EventKind::Poll | EventKind::Spawn),
            Echo::All => true,
        };
        if echo || keep {
            let event = event.to_owned();
            if echo {
                eprintln!("[trace] {event}");
            }
            if keep {
                self.events.push(event);
            }
        }
    }

    /// Virtual time of the last kept event (0 if none).
    pub fn last_time_ns(&self) -> u64 {
        self.events.last().map(|e| e.time_ns).unwrap_or(0)
    }

    /// The digest so far.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Events recorded so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Turns this recorder into the run's final trace.
    pub fn finish(self) -> Trace {
        Trace {
            digest: self.digest,
            count: self.count,
            checkpoints: self.checkpoints,
            digests: self.digests,
            events: self.events,
        }
    }
}

/// The finished trace of one run.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Digest of the whole run.
    pub digest: u64,
    /// Number of events.
    pub count: u64,
    pub checkpoints: Vec<Checkpoint>,
    /// Running digest after each event.
    pub digests: Vec<u64>,
    /// The first events of the run, in full (up to the keep limit).
    pub events: Vec<Event>,
}

impl Trace {
    /// Index of the first event at which `self` and `other` differ, or `None` when the
    /// traces are identical. When one trace is a prefix of the other, the index is the
    /// shorter one's length.
    pub fn first_divergence(&self, other: &Trace) -> Option<u64> {
        if self.digest == other.digest && self.count == other.count {
            return None;
        }
        // Find the first differing checkpoint, then scan that window event by event.
        let start_window = self
            .checkpoints
            .iter()
            .zip(other.checkpoints.iter())
            .take_while(|(a, b)| a == b)
            .last()
            .map(|c| c.0.events)
            .unwrap_or(0);
        let n = self.digests.len().min(other.digests.len());
        let first = (start_window as usize..n).find(|&i| self.digests[i] != other.digests[i]);
        Some(first.unwrap_or(n) as u64)
    }

    /// The event at `index`, if it was kept in full.
    pub fn event(&self, index: u64) -> Option<&Event> {
        self.events.get(usize::try_from(index).ok()?)
    }
}

/// Records an event of `kind` at the caller's source location.
#[track_caller]
pub fn record(kind: EventKind, detail: impl fmt::Display) {
    let loc = Location::caller();
    record_at(kind, detail, loc.file(), loc.line());
}

/// Records an event with an explicit source location (for events recorded on behalf of
/// another call site, e.g. a `tracing` callsite or a buggify site). `detail` is any
/// `Display` — pass `format_args!(…)` rather than `format!(…)`: it is written into the
/// recorder's scratch buffer, not allocated.
pub fn record_at(kind: EventKind, detail: impl fmt::Display, file: &'static str, line: u32) {
    // The real world's run state sits behind a process-wide lock: do not touch it for
    // an event that would be dropped.
    #[cfg(not(madsim))]
    if !is_recording() {
        return;
    }
    // Borrow the scratch buffer out of the run state while formatting, so a `Display`
    // that itself records (or reads the run state) cannot meet a held borrow.
    let Some(mut text) = state::try_with(|s| {
        s.recorder
            .enabled
            .then(|| std::mem::take(&mut s.recorder.scratch))
    })
    .flatten() else {
        return;
    };
    text.clear();
    let _infallible = write!(text, "{detail}");
    let (node, time_ns) = context();
    let task = crate::task::current_id();
    state::try_with(|s| {
        push_event(s, kind, &text, file, line, (node, time_ns, task));
        s.recorder.scratch = text;
    });
}

/// Records a task's poll: the event [`record_at`]`(EventKind::Poll, "", "", 0)` would,
/// with one borrow of the run state and no formatting (a run polls ~200,000 times).
pub(crate) fn record_poll() {
    #[cfg(not(madsim))]
    if !is_recording() {
        return;
    }
    // The context is read before the borrow, as `record_at` does: reading madsim's
    // clock never touches the run state.
    if !state::try_with(|s| s.recorder.enabled).unwrap_or(false) {
        return;
    }
    let (node, time_ns) = context();
    let task = crate::task::current_id();
    state::try_with(|s| push_event(s, EventKind::Poll, "", "", 0, (node, time_ns, task)));
}

/// Folds one event into the run's recorder and shows it to a probe run's probe.
fn push_event(
    s: &mut state::RunState,
    kind: EventKind,
    text: &str,
    file: &'static str,
    line: u32,
    (node, time_ns, task): (NodeId, u64, u64),
) {
    let index = s.recorder.count();
    s.recorder.push(EventRef {
        index: 0,
        time_ns,
        node,
        task,
        kind,
        detail: text,
        file,
        line,
    });
    if let Some(probe) = s.probe.as_mut() {
        probe.on_event(
            index,
            format_args!("{kind:?} {text}"),
            task,
            node,
            time_ns,
            file,
            line,
            kind == EventKind::Poll,
        );
    }
}

/// An event being recorded, borrowing its detail and file.
struct EventRef<'a> {
    index: u64,
    time_ns: u64,
    node: NodeId,
    task: u64,
    kind: EventKind,
    detail: &'a str,
    file: &'static str,
    line: u32,
}

impl EventRef<'_> {
    fn to_owned(&self) -> Event {
        Event {
            index: self.index,
            time_ns: self.time_ns,
            node: self.node,
            task: self.task,
            kind: self.kind,
            detail: self.detail.to_owned(),
            file: Cow::Borrowed(self.file),
            line: self.line,
        }
    }
}

/// Turns recording on or off for the current run (simulation default: on; real world:
/// off).
pub fn set_recording(on: bool) {
    state::with(|s| s.recorder.enabled = on);
    #[cfg(not(madsim))]
    REAL_RECORDING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The real world's copy of its (process-wide) recorder's `enabled`, so that a hot path
/// can ask [`is_recording`] without the run state's lock.
#[cfg(not(madsim))]
static REAL_RECORDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`record`] would record anything now: callers skip building an event's
/// text when it would not be (the real world, by default). In the simulated world this
/// is exactly the recorder's switch, so what is recorded does not change.
pub fn is_recording() -> bool {
    #[cfg(madsim)]
    {
        state::try_with(|s| s.recorder.enabled).unwrap_or(false)
    }
    #[cfg(not(madsim))]
    {
        REAL_RECORDING.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Digest and event count of the current run so far.
pub fn current_digest() -> (u64, u64) {
    state::with(|s| (s.recorder.digest(), s.recorder.count()))
}

/// (node, virtual ns) of the current moment, as events record them.
#[cfg_attr(not(madsim), allow(dead_code))]
pub(crate) fn context_now() -> (u64, u64) {
    context()
}

#[cfg(madsim)]
fn context() -> (u64, u64) {
    let time_ns = madsim::time::TimeHandle::try_current()
        .map(|t| u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    (crate::task::current_node_id(), time_ns)
}

#[cfg(not(madsim))]
fn context() -> (u64, u64) {
    (0, 0)
}

/// Which events a run echoes to stderr as they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// None (the default).
    Off,
    /// Every event but task polls and spawns (`SEEDBANK_TRACE=1`).
    Notable,
    /// Every event (`SEEDBANK_TRACE=all`).
    All,
}

impl Echo {
    /// The echo `SEEDBANK_TRACE` asks for: `1` (polls and spawns hidden), `all`.
    pub fn from_env_value(value: Option<&str>) -> Echo {
        match value {
            Some("all") => Echo::All,
            Some("1") => Echo::Notable,
            _ => Echo::Off,
        }
    }
}

/// Sets a run's recorder up; with an echo on, prints a line that opens the run's echo
/// (a double run, or a sweep on threads, echoes several runs to one stderr).
#[cfg(madsim)]
pub(crate) fn configure(recorder: &mut Recorder, keep_limit: usize, seed: u64) {
    recorder.set_keep_limit(keep_limit);
    let value = std::env::var("SEEDBANK_TRACE").ok();
    let echo = Echo::from_env_value(value.as_deref());
    recorder.set_echo(echo);
    if echo != Echo::Off {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        eprintln!(
            "[trace] ======== seed {seed}: run {run} of this process starts ({}) ========",
            if echo == Echo::All {
                "every event"
            } else {
                "task polls and spawns hidden; SEEDBANK_TRACE=all shows them"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seedbank_trace_1_hides_polls_and_all_shows_them() {
        assert_eq!(Echo::from_env_value(None), Echo::Off);
        assert_eq!(Echo::from_env_value(Some("0")), Echo::Off);
        assert_eq!(Echo::from_env_value(Some("1")), Echo::Notable);
        assert_eq!(Echo::from_env_value(Some("all")), Echo::All);
    }

    fn digest_of(events: &[(EventKind, u64, u64, u64, &str, &'static str, u32)]) -> u64 {
        let mut r = Recorder {
            enabled: true,
            ..Recorder::default()
        };
        for &(kind, time_ns, node, task, detail, file, line) in events {
            r.push(EventRef {
                index: 0,
                time_ns,
                node,
                task,
                kind,
                detail,
                file,
                line,
            });
        }
        r.digest()
    }

    #[test]
    fn the_digest_changes_with_any_field_of_any_event() {
        let base = (EventKind::Send, 5, 1, 2, "net 1->2 40B", "a.rs", 7);
        let d = digest_of(&[base, base]);
        assert_eq!(d, digest_of(&[base, base]), "a pure function of the events");
        let variants = [
            (EventKind::Deliver, 5, 1, 2, "net 1->2 40B", "a.rs", 7),
            (EventKind::Send, 6, 1, 2, "net 1->2 40B", "a.rs", 7),
            (EventKind::Send, 5, 3, 2, "net 1->2 40B", "a.rs", 7),
            (EventKind::Send, 5, 1, 4, "net 1->2 40B", "a.rs", 7),
            (EventKind::Send, 5, 1, 2, "net 1->2 41B", "a.rs", 7),
            (EventKind::Send, 5, 1, 2, "net 1->2 40B\0", "a.rs", 7),
            (EventKind::Send, 5, 1, 2, "net 1->2 40B", "b.rs", 7),
            (EventKind::Send, 5, 1, 2, "net 1->2 40B", "a.rs", 8),
        ];
        for v in variants {
            assert_ne!(d, digest_of(&[base, v]), "{v:?} left the digest unchanged");
            assert_ne!(
                d,
                digest_of(&[v, base]),
                "{v:?} first left the digest unchanged"
            );
        }
        // Where one field's bytes end and the next begin matters.
        assert_ne!(
            digest_of(&[(EventKind::Log, 0, 0, 0, "ab", "c", 0)]),
            digest_of(&[(EventKind::Log, 0, 0, 0, "a", "bc", 0)]),
        );
        assert_ne!(digest_of(&[base]), digest_of(&[base, base]));
    }
}
