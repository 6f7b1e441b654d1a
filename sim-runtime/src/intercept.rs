//! Escapes seen as they happen (simulated world, Linux): a simulated run that opens a
//! real file, creates a real socket, or asks the kernel itself for entropy or the time
//! (the `getrandom` and `clock_gettime` system calls, which rand 0.8's `OsRng` and
//! libraries with their own clock make through `syscall(2)`, past madsim's libc
//! overrides) is noted with the stack that did it; [`crate::sim::Sim::run`] reports
//! the notes as [`Escape`]s with the user's line (`RunReport::escapes`).
//!
//! How: like madsim's own overrides of `clock_gettime`, `getrandom` and
//! `pthread_attr_init`, this module defines the libc symbols `open`, `open64`,
//! `socket` and `syscall`; the executable's definitions win over libc's. Each override
//! forwards to libc's (found with `dlsym(RTLD_NEXT)`) unchanged — a simulated run that
//! escapes still does what it did, so the double-run check sees the consequences — and,
//! only on a thread running a simulated run ([`arm`]), records a backtrace first
//! (unresolved; resolved after the run). Nothing is recorded outside runs, re-entrantly,
//! or past [`MAX_NOTES`] per run.
//!
//! Not seen: the CPU's cycle counter (`rdtsc` is an instruction, not a call), and a
//! real file or socket reached through a call other than these (`openat`, `fopen` from
//! C code). Those are left to the double-run check and its localisation.

use crate::escape::{self, Escape};
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_long};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Notes kept per run (one per kind and stack is plenty to name a line).
pub const MAX_NOTES: usize = 16;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    static NOTES: RefCell<Vec<(Kind, Backtrace)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Socket,
    Entropy,
    Clock,
}

impl Kind {
    fn escape(self, at: Option<String>) -> Escape {
        let (what, instead) = match self {
            Kind::File => (
                "opened a real file (open): sim-fs's simulated disk was bypassed",
                "use sim_fs (seedbank::fs) for every file",
            ),
            Kind::Socket => (
                "created a real socket (socket): sim-net's simulated network was bypassed",
                "use sim_net (seedbank::net) for every connection",
            ),
            Kind::Entropy => (
                "drew OS entropy (the getrandom system call, e.g. rand::random, thread_rng, OsRng, getrandom)",
                "draw from a named stream: sim_runtime::rng::stream(name)",
            ),
            Kind::Clock => (
                "read the real clock (the clock_gettime system call, past madsim's virtual clock)",
                "read time through sim_runtime::time",
            ),
        };
        Escape {
            what: what.to_string(),
            at,
            instead: instead.to_string(),
        }
    }
}

/// Starts noting escapes on this thread (a simulated run's fresh thread).
pub(crate) fn arm() {
    NOTES.with(|n| n.borrow_mut().clear());
    ARMED.with(|a| a.set(true));
}

/// Stops noting, and returns what was noted as escapes with the user's line, one per
/// kind and line, in the order first seen.
pub(crate) fn disarm() -> Vec<Escape> {
    ARMED.with(|a| a.set(false));
    let notes = NOTES.with(|n| std::mem::take(&mut *n.borrow_mut()));
    let mut out: Vec<Escape> = Vec::new();
    for (kind, backtrace) in notes {
        let at = escape::user_frames(&backtrace.to_string())
            .into_iter()
            .find_map(|f| f.location);
        let e = kind.escape(at);
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

fn note(kind: Kind) {
    if !ARMED.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if IN_HOOK.try_with(|h| h.replace(true)).unwrap_or(true) {
        return;
    }
    let _ = NOTES.try_with(|n| {
        if let Ok(mut n) = n.try_borrow_mut() {
            if n.len() < MAX_NOTES {
                n.push((kind, Backtrace::force_capture()));
            }
        }
    });
    let _ = IN_HOOK.try_with(|h| h.set(false));
}

/// libc's definition of `name` (NUL-terminated), looked up once.
fn next(cache: &AtomicUsize, name: &[u8]) -> usize {
    let cached = cache.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT finds libc's definition.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
    assert!(found != 0, "libc defines {}", String::from_utf8_lossy(name));
    cache.store(found, Ordering::Relaxed);
    found
}

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;

/// Override of libc's `open` (std's `File::open` on Linux calls `open64`, below).
///
/// # Safety
/// As libc's `open`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    note(Kind::File);
    // SAFETY: the address is libc's `open`, of this type.
    let real: OpenFn = unsafe { std::mem::transmute(next(&REAL, b"open\0")) };
    unsafe { real(path, flags, mode) }
}

/// Override of libc's `open64`.
///
/// # Safety
/// As libc's `open64`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    note(Kind::File);
    // SAFETY: the address is libc's `open64`, of this type.
    let real: OpenFn = unsafe { std::mem::transmute(next(&REAL, b"open64\0")) };
    unsafe { real(path, flags, mode) }
}

/// Override of libc's `socket`.
///
/// # Safety
/// As libc's `socket`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    note(Kind::Socket);
    type SocketFn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
    // SAFETY: the address is libc's `socket`, of this type.
    let real: SocketFn = unsafe { std::mem::transmute(next(&REAL, b"socket\0")) };
    unsafe { real(domain, ty, protocol) }
}

/// Override of libc's `syscall`: notes `getrandom` and the clock calls, forwards all.
///
/// # Safety
/// As libc's `syscall` (at most six arguments, as on every Linux ABI).
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    match number {
        libc::SYS_getrandom => note(Kind::Entropy),
        libc::SYS_clock_gettime | libc::SYS_gettimeofday => note(Kind::Clock),
        _ => {}
    }
    type SyscallFn = unsafe extern "C" fn(c_long, ...) -> c_long;
    // SAFETY: the address is libc's `syscall`, of this type.
    let real: SyscallFn = unsafe { std::mem::transmute(next(&REAL, b"syscall\0")) };
    unsafe { real(number, a1, a2, a3, a4, a5, a6) }
}
