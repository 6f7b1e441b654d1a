//! The child process: one engine, every selected workload in order on one database,
//! one JSON [`Record`] per workload on stdout, progress on stderr.

use crate::disk;
use crate::engines::{self, Committed, Engine, EngineError, EngineResult, Key, Settled};
use crate::measure::{self, Latencies};
use crate::report::{self, Record};
use crate::run::{BenchError, Plan};
use crate::spec::{self, EngineKind, Workload, FILL_BATCH, SCAN_LEN, VALUE_LEN, ZIPF_THETA};
use crate::zipf::Zipfian;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seed of every key chooser (combined with the workload and thread), so every engine
/// sees the same sequence of keys.
const SEED: u64 = 0x5eed_ba4c;

/// Runs `plan` on `engine` in `dir`, printing each record as a JSON line on stdout.
pub fn main(engine: EngineKind, plan: &Plan, dir: &Path) -> Result<(), BenchError> {
    let db = engines::open(engine, dir)?;
    let mode = engines::mode(engine);
    let values = Values::new();
    let mut filled = false;
    for (i, &w) in plan.workloads.iter().enumerate() {
        if w.needs_data() && !filled {
            eprintln!(
                "  {engine}: loading {} keys (fill, not measured)",
                plan.keys
            );
            fill(db.as_ref(), plan.keys, &values)?;
            filled = true;
        }
        if w != Workload::Fill {
            settle(engine, db.as_ref())?;
        }
        let disk_p50_us = match w {
            Workload::Commit(_) => Some(probe_disk(engine, dir)?),
            _ => None,
        };
        let reset = measure::reset_peak_rss();
        let io_before = measure::IoCounters::now();
        let engine_before = db.bytes_written();
        let seed = SEED ^ ((i as u64 + 1) << 32);
        let sample = match w {
            Workload::Fill => {
                filled = true;
                fill(db.as_ref(), plan.keys, &values)?
            }
            _ => timed(w, plan, seed, db.as_ref(), &values)?,
        };
        let rss = measure::peak_rss(reset);
        // A writing workload's cost includes the flushes and compactions it leaves
        // behind: wait for them (the engine's own settle, then the process's writes to
        // stop) before reading the counters and the disk. Not part of `secs`.
        let settle_after_secs = if w.writes() {
            Some(settle_after(engine, db.as_ref())?)
        } else {
            None
        };
        let io_after = measure::IoCounters::now();
        let delta = io_before
            .zip(io_after)
            .map(|(before, after)| (after.since(&before), after));
        let written =
            delta.map(|(d, after)| d.disk_written(measure::IoCounters::kernel_counts_disk(&after)));
        let syscall_bytes = delta.map(|(d, _)| d.wchar);
        let engine_written = engine_before
            .zip(db.bytes_written())
            .map(|(before, after)| after.saturating_sub(before));
        let user_bytes = sample.writes_done.saturating_mul(spec::RECORD_BYTES);
        let disk = measure::disk_usage(dir).map_err(|e| BenchError::Io {
            what: format!("measuring {}", dir.display()),
            source: e,
        })?;
        let all = &sample.all;
        let ycsb = matches!(w, Workload::Ycsb(_));
        let record = Record {
            engine: engine.name().to_string(),
            workload: w.to_string(),
            ops_per_sec: sample.ops as f64 / sample.elapsed.as_secs_f64(),
            p50_us: all.quantile_us(0.5),
            p99_us: all.quantile_us(0.99),
            rss_mb: rss.peak_bytes.map(measure::mib),
            disk_mb: measure::mib(disk.allocated),
            p999_us: all.quantile_us(0.999),
            max_us: all.max_us(),
            ops: sample.ops,
            secs: sample.elapsed.as_secs_f64(),
            threads: w.threads(),
            unit: w.unit().to_string(),
            retries: sample.retries,
            keys: plan.keys,
            disk_apparent_mb: measure::mib(disk.apparent),
            rss_reset: rss.reset,
            read_p99_us: (ycsb && sample.reads.count() > 0).then(|| sample.reads.quantile_us(0.99)),
            write_p99_us: (ycsb && sample.writes.count() > 0)
                .then(|| sample.writes.quantile_us(0.99)),
            load_avg_1m: measure::load_avg_1m(),
            disk_p50_us,
            durability: mode.durability.to_string(),
            api: mode.api.to_string(),
            user_bytes,
            written_mb: written.map(|(bytes, _)| measure::mib(bytes)),
            written_counter: written.map(|(_, source)| source.name().to_string()),
            write_amp: written.and_then(|(bytes, _)| measure::amplification(bytes, user_bytes)),
            write_amp_syscalls: syscall_bytes
                .and_then(|bytes| measure::amplification(bytes, user_bytes)),
            engine_write_amp: engine_written
                .and_then(|bytes| measure::amplification(bytes, user_bytes)),
            space_amp: measure::amplification(disk.allocated, spec::live_bytes(plan.keys)),
            settle_after_secs,
        };
        eprintln!(
            "  {engine:<8} {:<9} {:>12} ops/s  p50 {:>8} µs  p99 {:>8} µs  RSS {:>5} MB  disk {:>5.0} MB  w-amp {:>5}  ({} ops, {:.1}s)",
            record.workload,
            report::thousands(record.ops_per_sec),
            report::micros(record.p50_us),
            report::micros(record.p99_us),
            record.rss_mb.map_or("?".into(), |m| format!("{m:.0}")),
            record.disk_mb,
            record.write_amp.map_or("-".into(), |x| format!("{x:.1}")),
            record.ops,
            record.secs,
        );
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", record.to_json_line())
            .and_then(|()| out.flush())
            .map_err(|e| BenchError::Io {
                what: "writing a result to the parent".into(),
                source: e,
            })?;
    }
    db.close()?;
    Ok(())
}

/// Waits for the engine's background work before a timed workload (not measured, but
/// printed: a long settle says the previous workload left the disk busy).
fn settle(engine: EngineKind, db: &dyn Engine) -> Result<(), BenchError> {
    let t0 = Instant::now();
    let settled = db.settle()?;
    let secs = t0.elapsed().as_secs_f64();
    match settled {
        Settled::Idle => {
            eprintln!("  {engine:<8} background work settled in {secs:.2}s (not measured)")
        }
        Settled::GaveUp => eprintln!(
            "  {engine:<8} background work still running after {secs:.0}s: measuring anyway"
        ),
        Settled::NotApplicable => {}
    }
    Ok(())
}

/// How long the process's writes must stay still, after a writing workload, before its
/// background work counts as done; and the most to wait for that.
const IO_QUIET: Duration = Duration::from_millis(1_000);
const IO_QUIET_MAX: Duration = Duration::from_secs(30);

/// After a writing workload: the engine's own settle, then until the process stops
/// writing (the only sign RocksDB gives through its transactional API). Returns the
/// seconds waited; printed.
fn settle_after(engine: EngineKind, db: &dyn Engine) -> Result<f64, BenchError> {
    let t0 = Instant::now();
    db.settle()?;
    let (_, quiet) = measure::wait_io_quiet(IO_QUIET, IO_QUIET_MAX);
    let secs = t0.elapsed().as_secs_f64();
    if quiet {
        eprintln!("  {engine:<8} writes after the workload ended within {secs:.2}s (not measured)");
    } else {
        eprintln!("  {engine:<8} still writing {secs:.0}s after the workload: counting what was written so far");
    }
    Ok(secs)
}

/// The preallocated-fdatasync probe's p50 right now, in the run directory beside the
/// engine's (so the engine's disk usage never counts its file). Printed.
fn probe_disk(engine: EngineKind, dir: &Path) -> Result<f64, BenchError> {
    let at = dir.parent().unwrap_or(dir);
    let b = disk::measure(at, disk::BEFORE_WORKLOAD_BUDGET).map_err(|e| BenchError::Io {
        what: format!("measuring the disk in {}", at.display()),
        source: e,
    })?;
    let p50 = b.prealloc_p50_us();
    eprintln!(
        "  {engine:<8} disk now: preallocated fdatasync p50 {} µs ({} writes)",
        report::micros(p50),
        b.prealloc.ops
    );
    Ok(p50)
}

/// What a workload measured.
struct Sample {
    ops: u64,
    /// Keys written (the fill's keys; the writes of the other workloads).
    writes_done: u64,
    elapsed: Duration,
    all: Latencies,
    reads: Latencies,
    writes: Latencies,
    retries: u64,
}

/// A pool of random printable 100-byte values (incompressible enough that engines
/// which compress do not get a free ride).
struct Values(Vec<Vec<u8>>);

impl Values {
    fn new() -> Values {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        Values(
            (0..4096)
                .map(|_| {
                    (0..VALUE_LEN)
                        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())])
                        .collect()
                })
                .collect(),
        )
    }

    fn pick(&self, rng: &mut impl Rng) -> &[u8] {
        &self.0[rng.gen_range(0..self.0.len())]
    }
}

/// The read-modify-write: the old value (or zeros) with its first 8 bytes, read as a
/// little-endian counter, incremented.
pub fn bump(old: Option<&[u8]>) -> Vec<u8> {
    let mut v = vec![b'0'; VALUE_LEN];
    if let Some(old) = old {
        let n = old.len().min(VALUE_LEN);
        v[..n].copy_from_slice(&old[..n]);
    }
    let count = u64::from_le_bytes(v[..8].try_into().expect("VALUE_LEN >= 8"));
    v[..8].copy_from_slice(&count.wrapping_add(1).to_le_bytes());
    v
}

/// Loads keys `0..n` in a seeded random order, 1,000 per durable commit. One
/// operation is one key; latency is per commit.
fn fill(db: &dyn Engine, n: u64, values: &Values) -> Result<Sample, BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut order: Vec<u64> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let mut all = Latencies::default();
    let mut retries = 0;
    let start = Instant::now();
    for chunk in order.chunks(FILL_BATCH) {
        let pairs: Vec<(Key, Vec<u8>)> = chunk
            .iter()
            .map(|&i| (spec::key(i), values.pick(&mut rng).to_vec()))
            .collect();
        let t0 = Instant::now();
        let Committed { retries: r } = db.put_batch(&pairs)?;
        all.record(t0.elapsed());
        retries += u64::from(r);
    }
    Ok(Sample {
        ops: n,
        writes_done: n,
        elapsed: start.elapsed(),
        all,
        reads: Latencies::default(),
        writes: Latencies::default(),
        retries,
    })
}

/// Whether an operation read or wrote, and the retries a write needed.
enum Done {
    Read,
    Write(u32),
}

/// Per-thread tallies.
#[derive(Default)]
struct Tally {
    ops: u64,
    retries: u64,
    all: Latencies,
    reads: Latencies,
    writes: Latencies,
}

/// Runs workload `w` for `plan.secs` from `w.threads()` threads.
fn timed(
    w: Workload,
    plan: &Plan,
    seed: u64,
    db: &dyn Engine,
    values: &Values,
) -> Result<Sample, BenchError> {
    let keys = plan.keys.max(1);
    let zipf = matches!(w, Workload::Ycsb(_)).then(|| Zipfian::new(keys.max(2), ZIPF_THETA));
    let op = |rng: &mut ChaCha8Rng| -> EngineResult<Done> {
        match w {
            Workload::Fill => unreachable!("fill is not a timed workload"),
            Workload::Commit(_) => {
                let k = spec::key(rng.gen_range(0..keys));
                Ok(Done::Write(db.read_modify_write(&k, &bump)?.retries))
            }
            Workload::Read(_) => {
                let k = spec::key(rng.gen_range(0..keys));
                expect_found(db.get(&k)?, &k)?;
                Ok(Done::Read)
            }
            Workload::Scan => {
                let expect = SCAN_LEN.min(keys);
                let first = rng.gen_range(0..=keys - expect);
                let rows = db.scan(&spec::key(first), &spec::key(first + expect))?;
                if rows as u64 != expect {
                    return Err(EngineError::new(
                        "bench",
                        "scan",
                        format!("{rows} rows from key {first}, expected {expect}"),
                    ));
                }
                Ok(Done::Read)
            }
            Workload::Ycsb(y) => {
                let zipf = zipf.as_ref().expect("built for YCSB workloads");
                let k = spec::key(zipf.scrambled(rng));
                if rng.gen_range(0..100) < y.read_percent() {
                    expect_found(db.get(&k)?, &k)?;
                    Ok(Done::Read)
                } else {
                    Ok(Done::Write(db.write(&k, values.pick(rng))?.retries))
                }
            }
        }
    };
    let deadline_after = Duration::from_secs_f64(plan.secs);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<EngineError>> = Mutex::new(None);
    let start = Instant::now();
    let deadline = start + deadline_after;
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.threads())
            .map(|t| {
                let (op, stop, first_error) = (&op, &stop, &first_error);
                s.spawn(move || {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from(t));
                    let mut tally = Tally::default();
                    let mut now = Instant::now();
                    while now < deadline && !stop.load(Ordering::Relaxed) {
                        match op(&mut rng) {
                            Ok(done) => {
                                let after = Instant::now();
                                let d = after - now;
                                tally.ops += 1;
                                tally.all.record(d);
                                match done {
                                    Done::Read => tally.reads.record(d),
                                    Done::Write(r) => {
                                        tally.writes.record(d);
                                        tally.retries += u64::from(r);
                                    }
                                }
                                now = after;
                            }
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                let mut slot = sim_runtime::sync::lock(first_error);
                                slot.get_or_insert(e);
                                break;
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });
    let elapsed = start.elapsed();
    if let Some(e) = sim_runtime::sync::into_inner(first_error) {
        return Err(e.into());
    }
    let mut sample = Sample {
        ops: 0,
        writes_done: 0,
        elapsed,
        all: Latencies::default(),
        reads: Latencies::default(),
        writes: Latencies::default(),
        retries: 0,
    };
    for t in &tallies {
        sample.ops += t.ops;
        sample.retries += t.retries;
        sample.all.merge(&t.all);
        sample.reads.merge(&t.reads);
        sample.writes.merge(&t.writes);
    }
    sample.writes_done = sample.writes.count();
    Ok(sample)
}

/// A filled key must be there: a miss means the engine lost it (or the fill failed).
fn expect_found(v: Option<usize>, k: &[u8]) -> EngineResult<()> {
    match v {
        Some(_) => Ok(()),
        None => Err(EngineError::new(
            "bench",
            "read",
            format!("key {} missing after the fill", String::from_utf8_lossy(k)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::bump;

    #[test]
    fn bump_counts_up_and_keeps_the_length() {
        let v1 = bump(None);
        assert_eq!(v1.len(), 100);
        let v2 = bump(Some(&v1));
        let count = |v: &[u8]| u64::from_le_bytes(v[..8].try_into().unwrap());
        assert_eq!(count(&v2), count(&v1) + 1);
        assert_eq!(v1[8..], v2[8..]);
    }
}
