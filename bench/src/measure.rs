//! The measuring instruments: latency histograms, peak RSS, bytes on disk.

use hdrhistogram::Histogram;
use std::io;
use std::path::Path;
use std::time::Duration;

/// Latencies in nanoseconds, 1 ns to 10 minutes, 3 significant figures.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            hist: Histogram::new_with_bounds(1, 600_000_000_000, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl Latencies {
    /// Records one operation (clamped into the histogram's range).
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.hist.saturating_record(ns.max(1));
    }

    /// Adds another thread's latencies.
    pub fn merge(&mut self, other: &Latencies) {
        self.hist
            .add(&other.hist)
            .expect("histograms with the same bounds always add");
    }

    /// Operations recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The `q`-quantile (0..=1) in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q) as f64 / 1_000.0
    }

    /// The largest latency in microseconds.
    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1_000.0
    }
}

/// Peak resident memory of this process, from `/proc/self/status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rss {
    /// `VmHWM`: peak since the last reset (or since start), in bytes.
    pub peak_bytes: Option<u64>,
    /// Whether the last reset took effect.
    pub reset: bool,
}

/// Resets the peak RSS to the current RSS (writes `5` to `/proc/self/clear_refs`,
/// Linux ≥ 4.0). Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// Reads `VmHWM` (peak RSS); `None` where `/proc` is not there.
pub fn peak_rss(reset: bool) -> Rss {
    let peak_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_status_kb(&s, "VmHWM:"))
        .map(|kb| kb * 1024);
    Rss { peak_bytes, reset }
}

/// The value in kB of `field` (e.g. `VmHWM:`) in a `/proc/PID/status` text.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The 1-minute load average (`/proc/loadavg`): a figure taken while other work
/// competes for the cores is not the engine's alone.
pub fn load_avg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Bytes under a directory: allocated on disk (`st_blocks` × 512, so preallocated
/// space counts and holes do not) and apparent (file lengths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub allocated: u64,
    pub apparent: u64,
}

/// Walks `dir` (not following symlinks). Files that vanish during the walk (an engine
/// compacting in the background) are skipped.
pub fn disk_usage(dir: &Path) -> io::Result<DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    let mut total = DiskUsage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && d != dir => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = match entry.path().symlink_metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total.allocated += meta.blocks() * 512;
                total.apparent += meta.len();
            }
        }
    }
    Ok(total)
}

/// The I/O counters of this process from `/proc/self/io` (all its threads, living and
/// exited), in bytes.
///
/// `write_bytes` counts bytes this process caused to be sent to the storage layer: a
/// buffered write is charged when it dirties a page of the page cache (a whole page,
/// once per clean-to-dirty transition — not once per `write` call and not at
/// writeback), a direct write when it is submitted. `cancelled_write_bytes` are dirty
/// bytes that never reached the disk (a file truncated or deleted before writeback);
/// [`IoCounters::disk_written`] subtracts them. `wchar` counts every byte handed to
/// `write`-like system calls, pipes and terminals included, whether or not it reaches
/// a disk: the fallback where the kernel does not keep `write_bytes` (it reads 0 in
/// some containers and without `CONFIG_TASK_IO_ACCOUNTING`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub rchar: u64,
    pub wchar: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
}

/// Which counter a write-amplification figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteSource {
    /// `write_bytes - cancelled_write_bytes`: what reached the block layer.
    BlockLayer,
    /// `wchar`: what the process passed to write system calls (no page rounding, no
    /// rewrites of a still-dirty page merged; the fallback).
    Syscalls,
}

impl WriteSource {
    pub fn name(self) -> &'static str {
        match self {
            WriteSource::BlockLayer => "write_bytes",
            WriteSource::Syscalls => "wchar",
        }
    }
}

impl IoCounters {
    /// This process's counters now; `None` where `/proc/self/io` is not readable.
    pub fn now() -> Option<IoCounters> {
        std::fs::read_to_string("/proc/self/io")
            .ok()
            .and_then(|s| IoCounters::parse(&s))
    }

    /// Parses a `/proc/PID/io` text (`name: value` lines); `None` unless `wchar` and
    /// `write_bytes` are both there.
    pub fn parse(text: &str) -> Option<IoCounters> {
        let field = |name: &str| -> Option<u64> {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().parse().ok())?
            })
        };
        Some(IoCounters {
            rchar: field("rchar").unwrap_or(0),
            wchar: field("wchar")?,
            read_bytes: field("read_bytes").unwrap_or(0),
            write_bytes: field("write_bytes")?,
            cancelled_write_bytes: field("cancelled_write_bytes").unwrap_or(0),
        })
    }

    /// The counters from `earlier` to `self` (saturating: counters only grow).
    pub fn since(&self, earlier: &IoCounters) -> IoCounters {
        IoCounters {
            rchar: self.rchar.saturating_sub(earlier.rchar),
            wchar: self.wchar.saturating_sub(earlier.wchar),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
        }
    }

    /// Whether the kernel keeps `write_bytes` for this process, judged from its
    /// lifetime counters once it has written files: a process that wrote through
    /// `write` (`wchar` > 0) and was never charged a `write_bytes` byte has no block
    /// layer accounting (some containers, kernels without task I/O accounting).
    /// Before anything is written there is nothing to judge, and the answer is yes.
    pub fn kernel_counts_disk(lifetime: &IoCounters) -> bool {
        lifetime.write_bytes > 0 || lifetime.wchar < MIN_WRITTEN_TO_JUDGE
    }

    /// Bytes written to disk over an interval (`self` a [`IoCounters::since`]
    /// difference) and which counter said so: `write_bytes - cancelled_write_bytes`
    /// where the kernel keeps `write_bytes` (`kernel_counts_disk`), else `wchar`.
    pub fn disk_written(&self, kernel_counts_disk: bool) -> (u64, WriteSource) {
        if kernel_counts_disk {
            (
                self.write_bytes.saturating_sub(self.cancelled_write_bytes),
                WriteSource::BlockLayer,
            )
        } else {
            (self.wchar, WriteSource::Syscalls)
        }
    }
}

/// Bytes a process must have passed to `write` before a `write_bytes` of 0 means the
/// kernel does not count (a few KiB could be pipes and terminals alone).
pub const MIN_WRITTEN_TO_JUDGE: u64 = 16 << 20;

/// Polls `/proc/self/io` until `write_bytes` and `wchar` have not grown for `quiet`, or
/// `max` has passed: background writes (flushes, compactions) an engine cannot be
/// asked about have stopped. Returns the time waited and whether it went quiet.
pub fn wait_io_quiet(quiet: Duration, max: Duration) -> (Duration, bool) {
    let start = std::time::Instant::now();
    let Some(mut last) = IoCounters::now() else {
        return (Duration::ZERO, false);
    };
    let mut still_since = start;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = std::time::Instant::now();
        let Some(io) = IoCounters::now() else {
            return (now - start, false);
        };
        if io.write_bytes != last.write_bytes || io.wchar != last.wchar {
            still_since = now;
            last = io;
        } else if now - still_since >= quiet {
            return (now - start, true);
        }
        if now - start >= max {
            return (now - start, false);
        }
    }
}

/// A ratio of bytes, `None` when the denominator is 0 (nothing to amplify).
pub fn amplification(bytes: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| bytes as f64 / of as f64)
}

/// Bytes to MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_status_kb(s, "VmHWM:"), Some(1234));
        assert_eq!(parse_status_kb(s, "VmSwap:"), None);
    }

    /// A `/proc/self/io` as Linux 6.1 prints it.
    const SAMPLE_IO: &str = "rchar: 1685840\nwchar: 10001699\nsyscr: 667\nsyscw: 30\n\
        read_bytes: 1232896\nwrite_bytes: 10002432\ncancelled_write_bytes: 4096\n";

    #[test]
    fn proc_io_parses_and_differences() {
        let io = IoCounters::parse(SAMPLE_IO).unwrap();
        assert_eq!(
            io,
            IoCounters {
                rchar: 1_685_840,
                wchar: 10_001_699,
                read_bytes: 1_232_896,
                write_bytes: 10_002_432,
                cancelled_write_bytes: 4096,
            }
        );
        // `syscw` must not be taken for `wchar`, nor `cancelled_write_bytes` for
        // `write_bytes`: the order of lines does not matter, the names do.
        let reordered = "cancelled_write_bytes: 7\nsyscw: 5\nwrite_bytes: 9\nwchar: 3\n";
        let r = IoCounters::parse(reordered).unwrap();
        assert_eq!((r.wchar, r.write_bytes, r.cancelled_write_bytes), (3, 9, 7));
        assert_eq!(
            IoCounters::parse("rchar: 1\nwchar: 2\n"),
            None,
            "no write_bytes"
        );
        assert_eq!(IoCounters::parse("wchar: x\nwrite_bytes: 1\n"), None);

        let before = IoCounters {
            wchar: 1_000,
            write_bytes: 8_192,
            cancelled_write_bytes: 0,
            ..IoCounters::default()
        };
        let d = io.since(&before);
        assert_eq!(d.wchar, 10_000_699);
        assert_eq!(d.write_bytes, 9_994_240);
        assert_eq!(d.cancelled_write_bytes, 4096);
        assert_eq!(d.disk_written(true), (9_990_144, WriteSource::BlockLayer));
        assert_eq!(d.disk_written(false), (10_000_699, WriteSource::Syscalls));
        assert_eq!(before.since(&io), IoCounters::default(), "saturates");
    }

    #[test]
    fn a_zero_write_bytes_means_no_accounting_only_after_real_writes() {
        let io = |wchar, write_bytes| IoCounters {
            wchar,
            write_bytes,
            ..IoCounters::default()
        };
        assert!(IoCounters::kernel_counts_disk(&io(0, 0)));
        assert!(IoCounters::kernel_counts_disk(&io(4_000, 0)), "pipes only");
        assert!(IoCounters::kernel_counts_disk(&io(100 << 20, 1)));
        assert!(!IoCounters::kernel_counts_disk(&io(100 << 20, 0)));
    }

    #[test]
    fn amplification_is_a_ratio_of_bytes() {
        assert_eq!(amplification(348, 116), Some(3.0));
        assert_eq!(amplification(58, 116), Some(0.5));
        assert_eq!(amplification(1, 0), None);
    }

    #[test]
    fn latencies_give_quantiles_in_microseconds() {
        let mut a = Latencies::default();
        let mut b = Latencies::default();
        for i in 1..=99u64 {
            a.record(Duration::from_micros(i));
        }
        b.record(Duration::from_millis(50));
        a.merge(&b);
        assert_eq!(a.count(), 100);
        let p50 = a.quantile_us(0.5);
        assert!((49.0..=51.0).contains(&p50), "p50 {p50}");
        assert!(a.quantile_us(0.999) > 49_000.0);
        assert_eq!(Latencies::default().quantile_us(0.5), 0.0);
    }
}
