//! The catalogue of leaks, planted the way real code leaks: a value from outside the
//! simulation steers what a task does next (how long it backs off, which branch it
//! takes), and nothing about the leak itself is traced. Each plant marks the line a
//! report must name with `// <- leak: NAME`; the leak and the step it steers are on that
//! one line, so "names the planted line" has one meaning.
//!
//! Shared by two runners: the harness in this outside crate (`tests/leaks.rs`) and the
//! built-in scenarios' runner (`scenarios/tests/leaks.rs`, which includes this file by
//! path). Every call below is one the workspace's clippy.toml bans; the allows are the
//! point.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

use std::time::Duration;

/// A leaked value as a back-off: 1 ms to 1 s of virtual time in microseconds (madsim's
/// timers keep nanoseconds above their 1 ms minimum), so two runs draw the same
/// back-off by chance with probability 1/1,000,000 (a catalogue test must not be flaky).
fn backoff(v: u64) -> Duration {
    Duration::from_micros(1_000 + v % 1_000_000)
}

/// Ordinary, deterministic work before and after the leak.
async fn settle() {
    sim_runtime::time::sleep(Duration::from_millis(1)).await;
}

/// The leaks the simulated world sees as they happen (sim-runtime's overrides of libc's
/// open, socket and syscall): a single run names them as escapes, with their line.
pub const SEEN_AS_ESCAPES: &[&str] = &[
    "rand::random",
    "thread_rng",
    "getrandom",
    "clock",
    "disk",
    "socket",
];

/// The line of `plants.rs` that ends with `// <- leak: NAME`.
pub fn line_of(name: &str) -> u32 {
    let marker = format!("// <- leak: {name}");
    let idx = include_str!("plants.rs")
        .lines()
        .position(|l| l.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no line marked {marker:?} in plants.rs"));
    u32::try_from(idx + 1).unwrap_or(u32::MAX)
}

/// `plants.rs:LINE:` for the leak `name`: what a report must contain.
pub fn place_of(name: &str) -> String {
    format!("plants.rs:{}:", line_of(name))
}

#[rustfmt::skip]
pub async fn rand_random() {
    settle().await;
    sim_runtime::time::sleep(backoff(rand::random::<u64>())).await; // <- leak: rand::random
    settle().await;
}

#[rustfmt::skip]
pub async fn rand_thread_rng() {
    use rand::Rng;
    settle().await;
    let rare = rand::thread_rng().gen_ratio(1, 1_000_000); let wait: u64 = rand::thread_rng().gen(); if rare { settle().await } else { sim_runtime::time::sleep(backoff(wait)).await } // <- leak: thread_rng
    settle().await;
}

#[rustfmt::skip]
pub async fn getrandom_bytes() {
    settle().await;
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b); sim_runtime::time::sleep(backoff(u64::from_le_bytes(b))).await; // <- leak: getrandom
    settle().await;
}

#[rustfmt::skip]
pub async fn cpu_counter() {
    settle().await;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc has no preconditions.
    sim_runtime::time::sleep(backoff(unsafe { core::arch::x86_64::_rdtsc() } / 64)).await; // <- leak: rdtsc
    settle().await;
}

#[rustfmt::skip]
pub async fn os_thread() {
    settle().await;
    let handle = std::thread::spawn(|| 7u64); // <- leak: thread
    let _ = handle.join();
    settle().await;
}

/// A hasher seeded per process from the OS (ahash's runtime RNG, as `AHashMap`'s
/// default): iteration order differs between processes, and between maps.
#[rustfmt::skip]
pub async fn hashmap_order() {
    settle().await;
    let map: std::collections::HashMap<u64, u64, ahash::RandomState> = (1..=16).map(|k| (k, k)).collect();
    for k in map.keys() { sim_runtime::time::sleep(backoff(*k)).await; } // <- leak: hashmap
    settle().await;
}

static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A process-wide counter that outlives the run (a cache, a connection pool's id).
#[rustfmt::skip]
pub async fn process_static() {
    settle().await;
    sim_runtime::time::sleep(backoff(RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))).await; // <- leak: static
    settle().await;
}

/// An environment variable the code both reads and sets (process-wide state).
#[rustfmt::skip]
pub async fn env_var() {
    settle().await;
    let seen: u64 = std::env::var("SEEDBANK_PLANTED_ENV").ok().and_then(|v| v.parse().ok()).unwrap_or(0); std::env::set_var("SEEDBANK_PLANTED_ENV", (seen + 1).to_string()); sim_runtime::time::sleep(backoff(seen)).await; // <- leak: env
    settle().await;
}

/// The real clock through a library that calls the kernel itself (madsim answers the
/// libc `clock_gettime`, not the system call).
#[rustfmt::skip]
pub async fn real_clock() {
    settle().await;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) }; sim_runtime::time::sleep(backoff(ts.tv_nsec as u64 / 64)).await; // <- leak: clock
    settle().await;
}

/// Where [`real_disk`] keeps its memory; remove it before a check.
pub fn real_disk_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("seedbank-planted-real-disk-{tag}"))
}

/// Something remembered on the real disk: each run sees what the last one left.
#[rustfmt::skip]
pub async fn real_disk(tag: &'static str) {
    settle().await;
    let path = real_disk_path(tag);
    let seen = std::fs::read(&path).map(|b| b.len() as u64).unwrap_or(0); let _ = std::fs::write(&path, vec![b'x'; seen as usize + 1]); sim_runtime::time::sleep(backoff(seen)).await; // <- leak: disk
    settle().await;
}

/// A real socket: the kernel picks the port.
#[rustfmt::skip]
pub async fn real_socket() {
    settle().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| u64::from(a.port())).unwrap_or(0); sim_runtime::time::sleep(backoff(port)).await; // <- leak: socket
    settle().await;
}

/// An unbiased `tokio::select!`: it picks among ready branches with tokio's thread-local
/// generator, seeded from a process-wide counter.
#[rustfmt::skip]
pub async fn unbiased_select() {
    settle().await;
    for _ in 0..32 {
        let pick: u64 = tokio::select! { _ = std::future::ready(()) => 1, _ = std::future::ready(()) => 2 }; sim_runtime::time::sleep(backoff(pick)).await; // <- leak: select
    }
    settle().await;
}

/// A leak inside a task started with `tokio::spawn` (madsim's, not sim-runtime's): the
/// task has no id of its own in the trace, so the report names it by its root frame.
#[rustfmt::skip]
pub async fn in_a_tokio_task() {
    settle().await;
    let task = tokio::spawn(async { sim_runtime::time::sleep(backoff(rand::random::<u64>())).await }); // <- leak: tokio::spawn
    let _ = task.await;
    settle().await;
}
