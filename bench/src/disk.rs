//! The disk's own floor, measured before the engines run: what one small durable write
//! costs on this filesystem, now, so a durable commit's latency can be read against it
//! (a shared VM's disk moves by 2x between runs minutes apart; a ratio taken in the
//! same run does not).
//!
//! Two probes in the bench's data directory, each [`RECORD_BYTES`]-byte write followed
//! by `fdatasync`, one thread, latency per write + sync:
//! - **`fdatasync-prealloc`**: writes at increasing offsets into a file already filled
//!   with zeros and synced (`sync_all`), so no write changes the file's size or block
//!   map: the sync flushes data only. A WAL that preallocates its segment (D29) can do
//!   no better per commit.
//! - **`fdatasync-append`**: writes at the end of a growing file, so each sync also
//!   persists the new size (on ext4, the inode or a journal commit).
//!
//! Each probe stops after [`Budget::max_ops`] writes or [`Budget::max_time`],
//! whichever comes first, and removes its file.

use crate::measure::{self, Latencies};
use crate::report::Record;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes per probe write: about one single-key commit record of the commit workloads.
pub const RECORD_BYTES: usize = 150;
/// The `engine` of the baseline's records.
pub const ENGINE: &str = "disk";
/// The `workload` of each probe's record.
pub const PREALLOC: &str = "fdatasync-prealloc";
pub const APPEND: &str = "fdatasync-append";
/// The same probes run again after the engines (a shared disk's speed drifts).
pub const PREALLOC_END: &str = "fdatasync-prealloc-end";
pub const APPEND_END: &str = "fdatasync-append-end";
/// A change of the preallocated probe's p50 between start and end beyond this factor
/// (either way) is reported: ratios against either figure are then suspect.
pub const DRIFT_WARN: f64 = 1.5;

/// How long each probe may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_ops: u64,
    pub max_time: Duration,
}

/// The bench's budget: at most 2 × 1.5 s (about 2 × 0.4 s at 200 µs a sync).
pub const DEFAULT_BUDGET: Budget = Budget {
    max_ops: 2_000,
    max_time: Duration::from_millis(1_500),
};

/// One probe's figures.
#[derive(Debug, Clone)]
pub struct Probe {
    pub ops: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// The file's length before the first timed write and after the last: equal for
    /// the preallocated probe (nothing grew), `ops × RECORD_BYTES` apart for appends.
    pub len_before: u64,
    pub len_after: u64,
    /// Allocated bytes of the file at the end.
    pub allocated: u64,
}

/// Both probes.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub prealloc: Probe,
    pub append: Probe,
}

/// The probe a child runs just before each commit workload: short, since it only
/// places that workload against the disk of the moment.
pub const BEFORE_WORKLOAD_BUDGET: Budget = Budget {
    max_ops: 300,
    max_time: Duration::from_millis(300),
};

/// Where write `i` of the preallocated probe goes: back to back, like WAL records.
pub fn prealloc_offset(i: u64) -> u64 {
    i * RECORD_BYTES as u64
}

/// The preallocated file's length for `max_ops` writes: every offset written, rounded
/// up to whole 4 KiB pages (so the last write does not touch the size either).
pub fn prealloc_len(max_ops: u64) -> u64 {
    (max_ops * RECORD_BYTES as u64).div_ceil(4096).max(1) * 4096
}

/// Runs both probes in `dir` (which must exist) and removes their files.
pub fn measure(dir: &Path, budget: Budget) -> io::Result<Baseline> {
    let prealloc = with_file(&dir.join("disk-baseline-prealloc"), |f| {
        probe_prealloc(f, budget)
    })?;
    let append = with_file(&dir.join("disk-baseline-append"), |f| {
        probe_append(f, budget)
    })?;
    Ok(Baseline { prealloc, append })
}

/// Creates `path`, runs `f` on it, and removes it whatever `f` returned.
fn with_file(path: &Path, f: impl FnOnce(&mut File) -> io::Result<Probe>) -> io::Result<Probe> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let result = f(&mut file);
    drop(file);
    let removed = std::fs::remove_file(path);
    let probe = result?;
    removed?;
    Ok(probe)
}

fn probe_prealloc(file: &mut File, budget: Budget) -> io::Result<Probe> {
    // Written zeros, not `set_len`: a sparse or fallocated (unwritten) extent would make
    // the first sync of each block persist an allocation, which is the other probe.
    let len = prealloc_len(budget.max_ops);
    file.write_all(&vec![0u8; len as usize])?;
    file.sync_all()?;
    let record = [b'r'; RECORD_BYTES];
    timed_loop(file, budget, |file, i| {
        file.write_all_at(&record, prealloc_offset(i))?;
        file.sync_data()
    })
}

fn probe_append(file: &mut File, budget: Budget) -> io::Result<Probe> {
    file.sync_all()?;
    let record = [b'a'; RECORD_BYTES];
    timed_loop(file, budget, |file, i| {
        file.write_all_at(&record, i * RECORD_BYTES as u64)?;
        file.sync_data()
    })
}

fn timed_loop(
    file: &mut File,
    budget: Budget,
    mut op: impl FnMut(&mut File, u64) -> io::Result<()>,
) -> io::Result<Probe> {
    use std::os::unix::fs::MetadataExt as _;
    let len_before = file.metadata()?.len();
    let mut latencies = Latencies::default();
    let start = Instant::now();
    let mut ops = 0;
    while ops < budget.max_ops && start.elapsed() < budget.max_time {
        let t0 = Instant::now();
        op(file, ops)?;
        latencies.record(t0.elapsed());
        ops += 1;
    }
    let elapsed = start.elapsed();
    let meta = file.metadata()?;
    Ok(Probe {
        ops,
        elapsed,
        latencies,
        len_before,
        len_after: meta.len(),
        allocated: meta.blocks() * 512,
    })
}

impl Probe {
    fn record(&self, workload: &str, unit: &str) -> Record {
        let l = &self.latencies;
        let secs = self.elapsed.as_secs_f64();
        Record {
            engine: ENGINE.to_string(),
            workload: workload.to_string(),
            ops_per_sec: if secs > 0.0 {
                self.ops as f64 / secs
            } else {
                0.0
            },
            p50_us: l.quantile_us(0.5),
            p99_us: l.quantile_us(0.99),
            rss_mb: None,
            disk_mb: measure::mib(self.allocated),
            p999_us: l.quantile_us(0.999),
            max_us: l.max_us(),
            ops: self.ops,
            secs,
            threads: 1,
            unit: unit.to_string(),
            retries: 0,
            keys: 0,
            disk_apparent_mb: measure::mib(self.len_after),
            rss_reset: false,
            read_p99_us: None,
            write_p99_us: None,
            load_avg_1m: measure::load_avg_1m(),
            disk_p50_us: None,
            durability: "fdatasync after each write".to_string(),
            api: "std::fs::File::write_all_at + sync_data".to_string(),
            user_bytes: 0,
            written_mb: None,
            written_counter: None,
            write_amp: None,
            write_amp_syscalls: None,
            engine_write_amp: None,
            space_amp: None,
            settle_after_secs: None,
        }
    }
}

impl Baseline {
    /// The probes as `--json` records (engine [`ENGINE`]), workloads [`PREALLOC`] and
    /// [`APPEND`], or with `end` [`PREALLOC_END`] and [`APPEND_END`].
    pub fn records(&self, end: bool) -> Vec<Record> {
        let (p, a) = if end {
            (PREALLOC_END, APPEND_END)
        } else {
            (PREALLOC, APPEND)
        };
        vec![
            self.prealloc.record(
                p,
                "150-byte write into preallocated, synced space + fdatasync",
            ),
            self.append
                .record(a, "150-byte append (file grows) + fdatasync"),
        ]
    }

    /// The preallocated probe's median, microseconds.
    pub fn prealloc_p50_us(&self) -> f64 {
        self.prealloc.latencies.quantile_us(0.5)
    }
}

/// How far the disk's speed moved between two p50s (the larger over the smaller), if
/// beyond [`DRIFT_WARN`].
pub fn drift(start_p50_us: f64, end_p50_us: f64) -> Option<f64> {
    if start_p50_us <= 0.0 || end_p50_us <= 0.0 {
        return None;
    }
    let f = (end_p50_us / start_p50_us).max(start_p50_us / end_p50_us);
    (f > DRIFT_WARN).then_some(f)
}

/// Each engine's `commit-1` p50 over the preallocated probe's p50, in the order of
/// `records`; nothing when the probe has no figure.
pub fn commit_ratios(records: &[Record], prealloc_p50_us: f64) -> Vec<(String, f64)> {
    if prealloc_p50_us <= 0.0 {
        return Vec::new();
    }
    records
        .iter()
        .filter(|r| r.workload == "commit-1" && r.engine != ENGINE && r.p50_us > 0.0)
        .map(|r| (r.engine.clone(), r.p50_us / prealloc_p50_us))
        .collect()
}

/// A commit workload's p50 over the probe its child ran just before it
/// ([`Record::disk_p50_us`]), if it has one.
pub fn ratio_to_probe_before(r: &Record) -> Option<f64> {
    let d = r.disk_p50_us.filter(|d| *d > 0.0)?;
    (r.p50_us > 0.0).then(|| r.p50_us / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "seedbank-bench-disk-test-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_preallocated_probe_never_grows_its_file_and_appends_do() {
        let dir = scratch("probes");
        let budget = Budget {
            max_ops: 40,
            max_time: Duration::from_secs(60),
        };
        let b = measure(&dir, budget).unwrap();
        assert_eq!(b.prealloc.ops, 40);
        assert_eq!(b.prealloc.len_before, prealloc_len(40));
        assert_eq!(b.prealloc.len_after, b.prealloc.len_before);
        assert_eq!(b.append.ops, 40);
        assert_eq!(b.append.len_before, 0);
        assert_eq!(b.append.len_after, 40 * RECORD_BYTES as u64);
        assert_eq!(b.prealloc.latencies.count(), 40);
        // Both files are gone; the directory is the caller's.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn preallocated_writes_stay_inside_the_file() {
        for n in [1, 27, 28, 2_000] {
            let len = prealloc_len(n);
            assert_eq!(len % 4096, 0);
            assert!(prealloc_offset(n - 1) + RECORD_BYTES as u64 <= len, "{n}");
            assert!(prealloc_offset(1) == RECORD_BYTES as u64);
        }
    }

    #[test]
    fn records_carry_the_json_contract_fields() {
        let dir = scratch("records");
        let budget = Budget {
            max_ops: 5,
            max_time: Duration::from_secs(60),
        };
        let b = measure(&dir, budget).unwrap();
        let recs = b.records(false);
        let ends: Vec<String> = b.records(true).into_iter().map(|r| r.workload).collect();
        assert_eq!(ends, [PREALLOC_END, APPEND_END]);
        std::fs::remove_dir(&dir).unwrap();
        let names: Vec<(&str, &str)> = recs
            .iter()
            .map(|r| (r.engine.as_str(), r.workload.as_str()))
            .collect();
        assert_eq!(names, [("disk", PREALLOC), ("disk", APPEND)]);
        for r in &recs {
            assert_eq!(r.ops, 5);
            assert!(r.p50_us > 0.0 && r.p99_us >= r.p50_us);
            let v: serde_json::Value = serde_json::from_str(&r.to_json_line()).unwrap();
            for f in crate::report::JSON_FIELDS {
                assert!(v.get(f).is_some(), "{f} missing");
            }
        }
    }

    #[test]
    fn commit_ratios_divide_each_engines_commit_1_p50() {
        let probe = || Probe {
            ops: 1,
            elapsed: Duration::from_secs(1),
            latencies: Latencies::default(),
            len_before: 0,
            len_after: 0,
            allocated: 0,
        };
        let template = Baseline {
            prealloc: probe(),
            append: probe(),
        }
        .records(false)
        .remove(0);
        let rec = |engine: &str, workload: &str, p50: f64| Record {
            engine: engine.into(),
            workload: workload.into(),
            p50_us: p50,
            ..template.clone()
        };
        let records = [
            rec("seedbank", "fill", 900.0),
            rec("seedbank", "commit-1", 214.0),
            rec("rocksdb", "commit-1", 400.0),
            rec("redb", "commit-4", 100.0),
            rec("disk", "commit-1", 1.0),
        ];
        let got = commit_ratios(&records, 200.0);
        assert_eq!(
            got,
            [("seedbank".to_string(), 1.07), ("rocksdb".to_string(), 2.0)]
        );
        assert!(commit_ratios(&records, 0.0).is_empty());
        let probed = Record {
            disk_p50_us: Some(100.0),
            ..records[1].clone()
        };
        assert_eq!(ratio_to_probe_before(&probed), Some(2.14));
        assert_eq!(ratio_to_probe_before(&records[1]), None);
        let zero = Record {
            disk_p50_us: Some(0.0),
            ..records[1].clone()
        };
        assert_eq!(ratio_to_probe_before(&zero), None);
    }

    #[test]
    fn drift_is_reported_either_way_beyond_the_threshold() {
        assert_eq!(drift(100.0, 140.0), None);
        assert_eq!(drift(100.0, 300.0), Some(3.0));
        assert_eq!(drift(300.0, 100.0), Some(3.0));
        assert_eq!(drift(0.0, 100.0), None);
    }
}
