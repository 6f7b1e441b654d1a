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
