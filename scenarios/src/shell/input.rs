//! Where the shell's lines come from (real world only): raw byte lines from a pipe or a
//! file, answered byte for byte the same way every time (scripts, tests); or, on a
//! terminal, an editable line with history (rustyline: arrow keys, Ctrl-R, a history
//! file).
//!
//! ## Invariants
//! - Piped input is read as bytes, never assumed UTF-8; each line is handed to
//!   [`Session::execute`] whole, so a malformed one is answered and the next is read.
//! - A line longer than [`MAX_LINE_BYTES`] is answered with an error and skipped up to
//!   its newline; the reader never holds more than that much of one line.
//! - The end of the input ends the session as `quit` does: open transactions are
//!   rolled back and named in an answer (D56).
//! - [`Tally::exit_code`] is 1 when any answer was a failure, else 0.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Reply, Session, ShellOptions};

/// The longest line the shell reads (16 MiB: a value of 4 MiB written as `\xNN`).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// What a session answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Answers given.
    pub answered: u64,
    /// Answers that reported a failure ([`Reply::is_failure`]).
    pub failed: u64,
}

impl Tally {
    fn count(&mut self, reply: &Reply) {
        self.answered = self.answered.saturating_add(1);
        if reply.is_failure() {
            self.failed = self.failed.saturating_add(1);
        }
    }

    /// The process's exit status: 1 if any command failed, else 0 (D56).
    pub fn exit_code(&self) -> ExitCode {
        if self.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// A multi-threaded tokio runtime for a shell session, or the exit code after saying why
/// it could not start.
#[allow(clippy::disallowed_methods)] // the real-world shell's entry point owns its runtime
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("seedbank shell: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

/// One line read by [`read_line`].
enum Line {
    /// The line's bytes (without its newline).
    Bytes,
    /// A line longer than [`MAX_LINE_BYTES`], skipped; its length.
    TooLong(usize),
}

/// Reads one line into `buf` (cleared first), at most [`MAX_LINE_BYTES`] of it; `None`
/// at the end of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<Line>> {
    buf.clear();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        len = len.saturating_add(part.len());
        if len <= MAX_LINE_BYTES {
            buf.extend_from_slice(part);
        }
        let newline = done > part.len();
        input.consume(done);
        if newline {
            break;
        }
    }
    Ok(match (any, len > MAX_LINE_BYTES) {
        (false, _) => None,
        (true, false) => Some(Line::Bytes),
        (true, true) => {
            buf.clear();
            Some(Line::TooLong(len))
        }
    })
}

fn answer(out: &mut impl Write, reply: &Reply, json: bool) -> io::Result<()> {
    let text = if json { reply.json() } else { reply.human() };
    writeln!(out, "{text}")?;
    out.flush()
}

/// Runs `session` over the lines of `input`, writing one answer per command to `out`
/// (`--json` lines or text), until `quit`/`exit` or the end of the input, where open
/// transactions are rolled back with an answer that names them. Errors are only those
/// of reading `input` or writing `out`.
pub async fn run(
    session: &mut Session,
    mut input: impl BufRead,
    out: &mut impl Write,
    json: bool,
) -> io::Result<Tally> {
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    loop {
        let reply = match read_line(&mut input, &mut buf)? {
            None => {
                let reply = session.end().await;
                if reply.is_failure() {
                    tally.count(&reply);
                    answer(out, &reply, json)?;
                }
                return Ok(tally);
            }
            Some(Line::TooLong(len)) => Reply::Failed(format!(
                "line too long ({len} bytes; at most {MAX_LINE_BYTES}): skipped"
            )),
            Some(Line::Bytes) => match session.execute(&buf).await {
                Some(reply) => reply,
                None => continue,
            },
        };
        tally.count(&reply);
        answer(out, &reply, json)?;
        if matches!(reply, Reply::Quit { .. }) {
            return Ok(tally);
        }
    }
}

/// The history file: `--history FILE`, else `~/.seedbank_history` (none without a home).
fn history_file(options: &ShellOptions) -> Option<PathBuf> {
    options.history.clone().or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(".seedbank_history"))
    })
}

/// A terminal session: rustyline's editor, a prompt naming the current transaction,
/// history loaded from and saved to [`history_file`]. Ctrl-C clears the line; Ctrl-D
/// ends the session as `quit` does.
async fn terminal(session: &mut Session, options: &ShellOptions) -> io::Result<Tally> {
    use rustyline::error::ReadlineError;
    let config = rustyline::Config::builder()
        .auto_add_history(true)
        .max_history_size(10_000)
        .map_err(io::Error::other)?
        .history_ignore_dups(true)
        .map_err(io::Error::other)?
        .build();
    let mut editor = rustyline::DefaultEditor::with_config(config).map_err(io::Error::other)?;
    let history = history_file(options);
    if let Some(path) = &history {
        // A missing file is a first session; any other problem is worth a word.
        if let Err(e) = editor.load_history(path) {
            if !matches!(&e, ReadlineError::Io(io) if io.kind() == io::ErrorKind::NotFound) {
                eprintln!("seedbank shell: history {}: {e}", path.display());
            }
        }
    }
    let mut tally = Tally::default();
    let mut out = io::stdout();
    loop {
        let reply = match editor.readline(&session.prompt()) {
            Ok(line) => match session.execute(line.as_bytes()).await {
                Some(reply) => reply,
                None => continue,
            },
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                let reply = session.end().await;
                if reply.is_failure() {
                    tally.count(&reply);
                    answer(&mut out, &reply, false)?;
                }
                break;
            }
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                Reply::Failed(format!("the line is not valid UTF-8 ({e})"))
            }
            Err(e) => {
                // The terminal itself failed: end as at EOF, and count it.
                eprintln!("seedbank shell: cannot read the terminal: {e}");
                let reply = session.end().await;
                tally.count(&Reply::Failed(e.to_string()));
                if reply.is_failure() {
                    tally.count(&reply);
                    answer(&mut out, &reply, false)?;
                }
                break;
            }
        };
        tally.count(&reply);
        answer(&mut out, &reply, false)?;
        if matches!(reply, Reply::Quit { .. }) {
            break;
        }
    }
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!(
                "seedbank shell: cannot save history to {}: {e}",
                path.display()
            );
        }
    }
    Ok(tally)
}

/// Runs `session` on this process's stdin and stdout — the editor on a terminal (not
/// with `--json`), else the byte reader — and returns the exit status (module doc).
pub async fn run_stdin(session: &mut Session, options: &ShellOptions) -> ExitCode {
    let on_terminal = !options.json && io::stdin().is_terminal() && io::stdout().is_terminal();
    let result = if on_terminal {
        terminal(session, options).await
    } else {
        let stdin = io::stdin();
        run(session, stdin.lock(), &mut io::stdout(), options.json).await
    };
    match result {
        Ok(tally) => tally.exit_code(),
        Err(e) => {
            eprintln!("seedbank shell: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_splits_bytes_and_skips_overlong_lines() {
        let mut long = vec![b'a'; MAX_LINE_BYTES + 1];
        long.extend_from_slice(b"\nshort\xff\r\nlast");
        let mut input = io::BufReader::with_capacity(4096, &long[..]);
        let mut buf = Vec::new();
        let first = read_line(&mut input, &mut buf).expect("read");
        assert!(
            matches!(first, Some(Line::TooLong(n)) if n == MAX_LINE_BYTES + 1),
            "an overlong line is reported with its length"
        );
        assert!(buf.is_empty());
        assert!(matches!(
            read_line(&mut input, &mut buf),
            Ok(Some(Line::Bytes))
        ));
        assert_eq!(buf, b"short\xff\r");
        assert!(matches!(
            read_line(&mut input, &mut buf),
            Ok(Some(Line::Bytes))
        ));
        assert_eq!(buf, b"last");
        assert!(matches!(read_line(&mut input, &mut buf), Ok(None)));
    }
}
