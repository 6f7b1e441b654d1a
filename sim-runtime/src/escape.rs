//! Panics of simulated runs: where they happened, and whether they are an escape from
//! the simulation; and backtraces read as frames, split into the framework's and the
//! user's (the localisation of a divergence uses the same reading, [`crate::probe`]).
//!
//! A run's panic reaches `Sim::run` as a bare message. To report its location — and,
//! for a panic raised inside the standard library, the user's line that led there —
//! `Sim::run` installs (once per process) a panic hook that, on a thread running a
//! simulated run, records the location and a backtrace into that run's slot,
//! and prints nothing (the runners print one report per failing seed: the message and
//! location are in the run's report). Panics on any other thread go to the previous
//! hook unchanged. Every runner — the harness, the scenario runner's `run`, `sweep` and
//! `check-determinism` — reads the escape from `RunReport::panic`.
//!
//! Escapes recognized from the panic:
//! - an OS thread. madsim makes `pthread_attr_init` fail inside a run, so
//!   `std::thread::spawn` panics inside std; the backtrace shows `std::thread::…spawn`
//!   frames, and the first frame after them outside the standard library is the line
//!   that tried.
//! - real tokio. A crate that depends on the `tokio` 1.x crate itself (not through
//!   madsim-tokio), directly or through a library, finds no tokio runtime inside a
//!   simulated run and panics in tokio's source ("there is no reactor running…"); the
//!   report says so and names the innermost line of the user's code that called it,
//!   instead of leaving a bare tokio message as a seed failure.

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

/// A panic recorded by the hook.
#[derive(Debug)]
#[cfg_attr(not(madsim), allow(dead_code))]
pub(crate) struct Captured {
    pub location: Option<String>,
    pub backtrace: Backtrace,
}

pub(crate) type Slot = Arc<Mutex<Option<Captured>>>;

thread_local! {
    static SLOT: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

/// Records panics on the current thread (a seed's fresh thread) into `slot`.
#[cfg_attr(not(madsim), allow(dead_code))]
pub(crate) fn capture_on_this_thread(slot: Slot) {
    install_hook();
    SLOT.with(|s| *s.borrow_mut() = Some(slot));
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let slot = SLOT
                .try_with(|s| s.try_borrow().ok().and_then(|s| s.clone()))
                .ok()
                .flatten();
            let Some(slot) = slot else {
                return previous(info);
            };
            let captured = Captured {
                location: info.location().map(|l| l.to_string()),
                backtrace: Backtrace::force_capture(),
            };
            // Keep the last panic: a panic the body caught itself came earlier.
            *crate::sync::lock(&slot) = Some(captured);
        }));
    });
}

/// Whether a source location is inside the Rust toolchain's own library.
fn in_std(location: &str) -> bool {
    location.starts_with("/rustc/")
        || location.contains("/library/std/")
        || location.contains("/library/core/")
        || location.contains("/library/alloc/")
}

/// Path fragments of the framework's own sources: the gateway crates, the harness, the
/// built-in scenarios' runner. A frame there is where a difference became visible, not
/// where the user's code caused it.
const FRAMEWORK: &[&str] = &[
    "sim-runtime/src/",
    "sim-fs/src/",
    "sim-net/src/",
    "seedbank/src/",
    "seedbank-macros/src/",
    "scenarios/src/runner/",
];

/// Whether a frame at `location` belongs to the toolchain, a dependency from a
/// registry (tokio, madsim, futures…) or the framework, rather than to the user's code.
pub fn is_framework(location: &str) -> bool {
    in_std(location)
        || location.contains("/.cargo/registry/")
        || location.contains("/.cargo/git/")
        || FRAMEWORK.iter().any(|f| location.contains(f))
}

/// Whether `location` (`file:line:col`) is in a Rust source file (not the C library's
/// thread start, say).
fn is_rust_source(location: &str) -> bool {
    location
        .split(':')
        .next()
        .is_some_and(|f| f.ends_with(".rs"))
}

/// One frame of a backtrace: function name and, if known, `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub location: Option<String>,
}

impl Frame {
    /// `function at file:line:col` with the closure noise (`{{closure}}`) and generic
    /// hashes kept: they tell async blocks apart.
    pub fn describe(&self) -> String {
        match &self.location {
            Some(l) => format!("{} at {l}", self.function),
            None => self.function.clone(),
        }
    }
}

/// The frames of `text` (a backtrace) in the user's code, innermost first.
///
/// std prints a path under the current directory relative to it (`./src/…`); such a
/// path is judged by where it really is (the built-in scenarios' runner is
/// `./src/runner/` in their own tests).
pub fn user_frames(text: &str) -> Vec<Frame> {
    let cwd = std::env::current_dir().ok();
    parse_frames(text)
        .into_iter()
        .filter(|f| {
            f.location.as_deref().is_some_and(|l| {
                let full = match (l.strip_prefix("./"), &cwd) {
                    (Some(rest), Some(cwd)) => cwd.join(rest).to_string_lossy().into_owned(),
                    _ => l.to_string(),
                };
                is_rust_source(l) && !is_framework(&full)
            })
        })
        .collect()
}

/// Parses std's backtrace text (`  N: function` then `at file:line:col` lines; inlined
/// frames repeat the pair without a number).
pub fn parse_frames(text: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(loc) = trimmed.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                if last.location.is_none() {
                    last.location = Some(loc.to_string());
                }
            }
            continue;
        }
        let function = match trimmed.split_once(": ") {
            Some((n, f)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => f,
            _ => trimmed,
        };
        if !function.is_empty() {
            frames.push(Frame {
                function: function.to_string(),
                location: None,
            });
        }
    }
    frames
}

/// Where a simulated run panicked, and whether the panic is an escape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PanicAt {
    /// `file:line:col` of the panic.
    pub location: Option<String>,
    /// The escape recognised in it.
    pub escape: Option<Escape>,
}

/// What escaped the simulation, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Escape {
    /// What the code touched, in words.
    pub what: String,
    /// The user's source line that did it (`file:line:col`), when the backtrace has it.
    pub at: Option<String>,
    /// What to use instead.
    pub instead: String,
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ESCAPED THE SIMULATION: the code {}", self.what)?;
        match &self.at {
            Some(at) => write!(f, ", at {at}")?,
            None => write!(f, " (no frame of your code in the backtrace)")?,
        }
        write!(f, "; {}", self.instead)
    }
}

/// Recognizes an OS-thread spawn or a call into real tokio in a captured panic.
#[cfg_attr(not(madsim), allow(dead_code))]
pub(crate) fn classify(captured: &Captured, message: &str) -> Option<Escape> {
    // Cheap tests first: only a panic located in the standard library, or tokio's
    // message, or a location in real tokio's source can be an escape we know;
    // formatting a backtrace resolves symbols, which takes a while.
    let location = captured.location.as_deref()?;
    if is_real_tokio(location) || is_real_tokio_message(message) {
        let mut escape = real_tokio(&parse_frames(&captured.backtrace.to_string()));
        // tokio's entry points are `#[track_caller]`: the panic's location is often
        // the caller's line itself.
        if is_rust_source(location) && !is_framework(location) && !is_real_tokio(location) {
            escape.at = Some(location.to_string());
        }
        return Some(escape);
    }
    if !in_std(location) {
        return None;
    }
    let frames = parse_frames(&captured.backtrace.to_string());
    classify_frames(&frames)
}

/// Whether `location` is in the source of the `tokio` 1.x crate from a registry (not
/// madsim-tokio, whose directory is `madsim-tokio-…`).
fn is_real_tokio(location: &str) -> bool {
    location.split(['/', '\\']).any(|dir| {
        dir.strip_prefix("tokio-1.")
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Whether a panic message is real tokio's complaint that no tokio runtime runs here.
fn is_real_tokio_message(message: &str) -> bool {
    message.contains("there is no reactor running")
        || message.contains("must be called from the context of a Tokio 1.x runtime")
}

/// The escape of a panic raised inside real tokio.
fn real_tokio(frames: &[Frame]) -> Escape {
    let at = frames
        .iter()
        .filter_map(|f| f.location.as_deref())
        .find(|loc| is_rust_source(loc) && !is_framework(loc))
        .map(str::to_string);
    Escape {
        what: "called real tokio (the `tokio` 1.x crate, not madsim-tokio), which has no runtime inside a simulated run (\"there is no reactor running\")".to_string(),
        at,
        instead: "depend on tokio as `tokio = { version = \"0.2\", package = \"madsim-tokio\" }`; a library that depends on real tokio itself cannot run simulated (`cargo tree -i tokio@1 -e normal` names it): put it behind a trait with a simulated implementation".to_string(),
    }
}

pub(crate) fn classify_frames(frames: &[Frame]) -> Option<Escape> {
    // Inlined frames carry DWARF's short names (`spawn<F, T>`), so look at where the
    // frame is as well as at its name.
    let is_spawn = |f: &Frame| {
        f.function.contains("spawn")
            && (f.function.starts_with("std::thread::")
                || f.location
                    .as_deref()
                    .is_some_and(|l| l.contains("/library/std/src/thread/")))
    };
    let last_spawn = frames.iter().rposition(is_spawn)?;
    let at = frames[last_spawn + 1..]
        .iter()
        .filter_map(|f| f.location.as_deref())
        .find(|loc| !is_framework(loc))
        .map(str::to_string);
    Some(Escape {
        what: "started an OS thread (std::thread::spawn): madsim refuses to create threads inside a simulated run".to_string(),
        at,
        instead: "spawn a task instead: seedbank::task::spawn (sim_runtime::task::spawn)".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_real_tokio_is_an_escape_at_the_users_line() {
        assert!(is_real_tokio(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.48.0/src/runtime/context.rs:12:5"
        ));
        assert!(!is_real_tokio(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/madsim-tokio-0.2.30/src/lib.rs:1:1"
        ));
        assert!(
            !is_real_tokio("/work/app/src/tokio-1.rs:3:1"),
            "a file, not tokio's directory"
        );
        assert!(is_real_tokio_message(
            "there is no reactor running, must be called from the context of a Tokio 1.x runtime"
        ));
        assert!(!is_real_tokio_message(
            "no events, all tasks will block forever"
        ));
        let text = "   0: tokio::runtime::context::current::with_current
             at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.48.0/src/runtime/context/current.rs:44:5
   1: tokio::task::spawn::spawn
             at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.48.0/src/task/spawn.rs:168:5
   2: app::client::connect
             at /work/app/src/client.rs:17:9
   3: seedbank::harness::run
             at /work/seedbank/seedbank/src/harness.rs:10:1
";
        let escape = real_tokio(&parse_frames(text));
        assert_eq!(escape.at.as_deref(), Some("/work/app/src/client.rs:17:9"));
        assert!(escape.what.contains("real tokio"), "{}", escape.what);
        assert!(
            escape.instead.contains("madsim-tokio"),
            "{}",
            escape.instead
        );
    }

    #[test]
    fn finds_the_user_frame_after_the_thread_spawn_frames() {
        let text = "\
   0: std::backtrace::Backtrace::force_capture
             at /rustc/abc/library/std/src/backtrace.rs:312:9
   1: core::panicking::assert_failed
             at /rustc/abc/library/core/src/panicking.rs:380:5
   2: std::thread::Builder::spawn_unchecked_
             at /rustc/abc/library/std/src/thread/mod.rs:560:30
   3: spawn<my_test::escape::{closure_env#0}, ()>
             at /rustc/abc/library/std/src/thread/functions.rs:126:5
      my_test::escape::{{closure}}
             at ./tests/escape.rs:42:13
   4: sim_runtime::task::Traced::poll
             at ./sim-runtime/src/task.rs:80:9
";
        let frames = parse_frames(text);
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[4].function, "my_test::escape::{{closure}}");
        let escape = classify_frames(&frames).expect("a thread spawn");
        assert_eq!(escape.at.as_deref(), Some("./tests/escape.rs:42:13"));
        assert!(escape.what.contains("OS thread"));
        assert!(classify_frames(&frames[..2]).is_none());
    }
}
