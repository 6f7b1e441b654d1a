//! Process isolation at the cost of a `fork`, not of a process start: a fork server.
//!
//! [`crate::child`] runs each seed in a fresh process of the test binary. Starting one
//! costs the dynamic loader, libtest's start-up and the test function's way to its
//! sweep — most of a short test's time. So for each worker of a sweep the harness
//! starts the test binary once as a *server* (`SEEDBANK_CHILD_SERVE`): it runs the
//! test function up to the sweep, exactly as a one-seed child would, and there, before
//! any simulated run, it waits for requests on stdin. For each seed it `fork`s; the
//! forked process runs the seed and writes its outcome file like a child, then
//! `_exit`s; the server waits for it and answers on stdout.
//!
//! ## Invariants
//! - **Clean slate**: the server never runs a seed, so every forked run starts from the
//!   state a fresh child has at the same point — statics, `OnceLock`s and tokio's
//!   RNG counter untouched by earlier runs. Fork-served runs replay byte for byte
//!   what a fresh process runs.
//! - **Verified**: a fork shares the server's address-space layout and any hasher
//!   keys it drew, which a fresh process would redraw. So a seed checked twice runs
//!   first in a fresh process and then fork-served (`sweep.rs`): a leak that only a
//!   fresh process shows (addresses, a randomly keyed hasher initialised before the
//!   sweep) still makes the two runs differ, and a server that was not clean would too.
//! - The server is single-threaded at each `fork` (libtest's main thread waits in a
//!   join, and nothing else is started before the sweep), so the forked process owns
//!   every lock it needs.
//!
//! ## Fault model
//! A forked run may crash, abort or be killed: the server reports its wait status and
//! the parent reports a seed without a result, as for a child. A server that dies is
//! replaced at the next seed.
//!
//! ## Non-goals
//! Platforms without `fork` use a fresh process per seed ([`crate::Isolation::Exec`]).

use crate::child::{self, ChildRequest, RunOutcome};
use sim_runtime::probe::Window;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Set in a server's environment (with the sweep's ordinal in `SEEDBANK_CHILD_SWEEP`).
pub(crate) const ENV_SERVE: &str = "SEEDBANK_CHILD_SERVE";
/// Starts the server's answer to a request (libtest and the test may print too).
const DONE: &str = "\u{1}seedbank-forkserver-done";

/// In a server: whether this process is one, and for which sweep ordinal.
pub(crate) fn serving() -> Option<u32> {
    std::env::var_os(ENV_SERVE)?;
    Some(child::sweep_ordinal_from_env())
}

/// In a server: answers requests until stdin closes, running each in a forked process
/// with `run`. Never returns.
pub(crate) fn serve(run: impl Fn(&ChildRequest) -> RunOutcome) -> ! {
    let mut line = String::new();
    loop {
        line.clear();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => std::process::exit(0),
            Ok(_) => {}
        }
        let status = match parse_request(&line) {
            Some(request) => fork_and_run(&request, &run),
            None => format!("malformed request {line:?}"),
        };
        let mut out = std::io::stdout().lock();
        // A parent that went away ends the server at its next read.
        let _ = writeln!(out, "\n{DONE} {status}");
        let _ = out.flush();
    }
}

/// `SEED FULL PROBE LOG OUT` (PROBE `-` for none; paths last, without newlines).
fn request_line(
    seed: u64,
    full_trace: bool,
    probe: Option<Window>,
    log: &Path,
    out: &Path,
) -> String {
    format!(
        "{seed} {} {} {}\t{}\n",
        u8::from(full_trace),
        probe.map_or_else(|| "-".to_string(), |w| w.to_arg()),
        log.display(),
        out.display()
    )
}

fn parse_request(line: &str) -> Option<ChildRequest> {
    let line = line.strip_suffix('\n')?;
    let (head, out) = line.split_once('\t')?;
    let mut parts = head.splitn(4, ' ');
    let seed = parts.next()?.parse().ok()?;
    let full_trace = parts.next()? == "1";
    let probe = match parts.next()? {
        "-" => None,
        w => Some(Window::from_arg(w)?),
    };
    let log = PathBuf::from(parts.next()?);
    Some(ChildRequest {
        seed,
        out: PathBuf::from(out),
        full_trace,
        sweep: child::sweep_ordinal_from_env(),
        probe,
        log: Some(log),
    })
}

/// Forks, runs the request in the forked process, and returns its wait status as text.
fn fork_and_run(request: &ChildRequest, run: &impl Fn(&ChildRequest) -> RunOutcome) -> String {
    let _ = std::io::stdout().lock().flush();
    let _ = std::io::stderr().lock().flush();
    // SAFETY: the server has one thread here (module doc); the forked process runs the
    // seed and leaves through `_exit`, never returning into the server's loop.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return format!("fork failed: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        if let Some(log) = &request.log {
            redirect_output(log);
        }
        let outcome = run(request);
        child::write_result(&request.out, &outcome);
        // SAFETY: ends the forked process without running the server's exit handlers
        // or flushing buffers it inherited.
        unsafe { libc::_exit(0) }
    }
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return format!("waitpid failed: {e}");
        }
    }
    use std::os::unix::process::ExitStatusExt;
    std::process::ExitStatus::from_raw(status).to_string()
}

/// In a forked run: stdout (and stderr, unless the trace is being shown) go to `log`,
/// so the server's answer channel carries only answers.
fn redirect_output(log: &Path) {
    use std::os::fd::AsRawFd;
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
    // the harness's own log file, before the run
    let Ok(file) = std::fs::File::create(log) else {
        return;
    };
    let show_trace = std::env::var_os("SEEDBANK_TRACE").is_some_and(|v| v == "1" || v == "all");
    // SAFETY: duplicates a file descriptor we own onto the standard ones.
    unsafe {
        libc::dup2(file.as_raw_fd(), 1);
        if !show_trace {
            libc::dup2(file.as_raw_fd(), 2);
        }
    }
}

/// The parent's side: a running server for one sweep of one test.
struct Server {
    name: String,
    sweep: u32,
    process: Child,
    /// `None` once closed (on drop).
    requests: Option<ChildStdin>,
    answers: BufReader<ChildStdout>,
    stderr: PathBuf,
}

thread_local! {
    /// Each worker thread of a sweep keeps its own server.
    static SERVER: RefCell<Option<Server>> = const { RefCell::new(None) };
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn temp_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "seedbank-{}-{}.{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Server {
    fn start(name: &str, sweep: u32) -> Result<Server, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
        let stderr = temp_path("server-stderr");
        #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
        // the harness's own log file, outside any run
        let stderr_file = std::fs::File::create(&stderr)
            .map_err(|e| format!("cannot create {}: {e}", stderr.display()))?;
        let mut command = Command::new(&exe);
        command
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(ENV_SERVE, "1")
            .env(child::ENV_SWEEP, sweep.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr_file);
        child::clear_request_env(&mut command);
        if std::env::var_os("SEEDBANK_TRACE").is_some_and(|v| v == "1" || v == "all") {
            command.stderr(Stdio::inherit());
        }
        let mut process = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let (Some(requests), Some(answers)) = (process.stdin.take(), process.stdout.take()) else {
            return Err("the fork server's pipes were not set up".to_string());
        };
        Ok(Server {
            name: name.to_string(),
            sweep,
            process,
            requests: Some(requests),
            answers: BufReader::new(answers),
            stderr,
        })
    }

    fn run(
        &mut self,
        seed: u64,
        full_trace: bool,
        probe: Option<Window>,
    ) -> Result<RunOutcome, String> {
        let out = temp_path("result");
        let log = temp_path("log");
        let request = request_line(seed, full_trace, probe, &log, &out);
        let sent = match self.requests.as_mut() {
            Some(r) => r.write_all(request.as_bytes()).and_then(|()| r.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        let status = match sent {
            Ok(()) => self.answer(),
            Err(e) => Err(format!("cannot reach the fork server: {e}")),
        };
        let result = status.and_then(|status| {
            child::read_result(&out).ok_or_else(|| {
                format!(
                    "the forked run of seed {seed} ({} --exact, fork server) left no result ({status}); \
                     the end of its output:\n{}",
                    self.name,
                    child::tail(&log)
                )
            })
        });
        #[allow(clippy::disallowed_methods)] // the harness's own files
        {
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(&log);
        }
        result
    }

    /// Reads up to the server's answer (skipping what libtest and the test print).
    fn answer(&mut self) -> Result<String, String> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.answers.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "the fork server of {} exited; the end of its stderr:\n{}",
                        self.name,
                        child::tail(&self.stderr)
                    ))
                }
                Ok(_) => {}
            }
            // libtest's "test NAME ... " has no newline yet: the answer may share its line.
            if let Some(at) = line.find(DONE) {
                return Ok(line[at + DONE.len()..].trim().to_string());
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing stdin ends the server's loop (it is between runs: runs are waited for).
        drop(self.requests.take());
        let _ = self.process.wait();
        #[allow(clippy::disallowed_methods)] // the harness's own file
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Runs `seed` of test `name` in a process forked from this thread's server for the
/// sweep (started on first use, replaced if it died).
pub(crate) fn run_forked(
    name: &str,
    sweep: u32,
    seed: u64,
    full_trace: bool,
    probe: Option<Window>,
) -> Result<RunOutcome, String> {
    SERVER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let reuse = slot
            .as_ref()
            .is_some_and(|s| s.name == name && s.sweep == sweep);
        if !reuse {
            *slot = Some(Server::start(name, sweep)?);
        }
        let Some(server) = slot.as_mut() else {
            return Err("no fork server".to_string());
        };
        let result = server.run(seed, full_trace, probe);
        if result.is_err() {
            // Start afresh next time: the server may be gone or confused.
            *slot = None;
        }
        result
    })
}

/// Stops this thread's server (at the end of a worker's share of a sweep).
pub(crate) fn shutdown() {
    SERVER.with(|slot| {
        slot.borrow_mut().take();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_round_trips_through_its_parser() {
        let log = Path::new("/tmp/a dir/x.log");
        let out = Path::new("/tmp/a dir/x y.result");
        for probe in [None, Some(Window { from: 3, to: 9 })] {
            let line = request_line(42, true, probe, log, out);
            let r = parse_request(&line).expect("parses");
            assert_eq!(r.seed, 42);
            assert!(r.full_trace);
            assert_eq!(
                r.probe.map(|w| (w.from, w.to)),
                probe.map(|w| (w.from, w.to))
            );
            assert_eq!(r.out, out);
            assert_eq!(r.log.as_deref(), Some(log));
        }
        assert!(parse_request("17 1 -\n").is_none(), "no paths: refused");
        assert!(
            parse_request("x 1 - /l\t/o\n").is_none(),
            "bad seed: refused"
        );
    }
}
