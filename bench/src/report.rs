//! Results: one [`Record`] per (engine, workload), as a JSON line and as the table
//! printed at the end, where each peer's throughput is a ratio to Seedbank's.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The fields every `--json` line carries (the contract); [`Record`] may add
/// optional ones (`disk_p50_us`).
pub const JSON_FIELDS: [&str; 7] = [
    "engine",
    "workload",
    "ops_per_sec",
    "p50_us",
    "p99_us",
    "rss_mb",
    "disk_mb",
];

/// The result of one workload on one engine. The first seven fields are the contract
/// of `--json` (D24, issue 7); the rest are extra detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub engine: String,
    pub workload: String,
    /// Operations per second over the workload's wall time (see `unit`).
    pub ops_per_sec: f64,
    /// Median latency of one operation, microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency, microseconds.
    pub p99_us: f64,
    /// Peak resident memory of the engine's process during the workload, MiB (`null`
    /// when `/proc` is unavailable).
    pub rss_mb: Option<f64>,
    /// Allocated bytes under the engine's directory when the workload ended, MiB.
    pub disk_mb: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Operations counted.
    pub ops: u64,
    /// Wall time of the workload, seconds.
    pub secs: f64,
    pub threads: u32,
    /// What one operation is.
    pub unit: String,
    /// Write transactions retried after a conflict.
    pub retries: u64,
    /// Keys in the database (the fill size).
    pub keys: u64,
    /// Apparent size (file lengths) under the engine's directory, MiB.
    pub disk_apparent_mb: f64,
    /// Whether the peak RSS was reset before this workload (otherwise `rss_mb` is the
    /// process's peak so far).
    pub rss_reset: bool,
    /// YCSB: p99 of the reads and of the writes alone, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_p99_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_p99_us: Option<f64>,
    /// The machine's 1-minute load average when the workload ended (`null` without
    /// `/proc`); above the core count, other work competed with the engine.
    #[serde(default)]
    pub load_avg_1m: Option<f64>,
    /// Commit workloads: the p50 of the disk's preallocated probe
    /// ([`crate::disk`]) run just before this workload, after the engine settled,
    /// microseconds — the disk as this workload found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_p50_us: Option<f64>,
    /// How the engine ran: what made a commit durable, which API.
    pub durability: String,
    pub api: String,
    /// Bytes the user wrote in this workload (keys and values written), bytes.
    #[serde(default)]
    pub user_bytes: u64,
    /// Bytes the engine's process wrote to disk from the workload's start until its
    /// background work settled after it, MiB ([`crate::measure::IoCounters`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_mb: Option<f64>,
    /// Which `/proc/self/io` counter `written_mb` is: `write_bytes` (net of
    /// `cancelled_write_bytes`: what reached the block layer) or `wchar` (fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_counter: Option<String>,
    /// `written_mb` / `user_bytes` (`null` when the workload wrote nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_amp: Option<f64>,
    /// The same by `wchar` (bytes passed to write system calls): no page or folio
    /// rounding, so it reads lower than `write_amp` for small writes, and far lower
    /// where the kernel charges a whole large folio to `write_bytes` (see
    /// docs/performance.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_amp_syscalls: Option<f64>,
    /// The same by the engine's own counters, where it has them (Seedbank: WAL and
    /// table bytes written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_write_amp: Option<f64>,
    /// Allocated bytes on disk when the workload (and its settle) ended, over the live
    /// data (`keys` × (key + value)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_amp: Option<f64>,
    /// Seconds waited after the workload for its background writes to end (not part
    /// of `secs`); included in `written_mb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_after_secs: Option<f64>,
}

impl Record {
    /// The record as one JSON line (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a Record always serializes")
    }
}

/// The baseline every ratio divides by.
pub const BASELINE: &str = "seedbank";

/// `peer / seedbank` ops/s for this workload; `None` without a positive baseline.
pub fn ratio(records: &[Record], r: &Record) -> Option<f64> {
    let base = records
        .iter()
        .find(|b| b.engine == BASELINE && b.workload == r.workload)?;
    (base.ops_per_sec > 0.0).then(|| r.ops_per_sec / base.ops_per_sec)
}

/// The results table: a block per workload (in the order first seen), one line per
/// engine, with ops/s as a ratio to Seedbank's; then the ratios alone, workload by
/// peer. A ratio above 1 means the peer is faster.
pub fn table(records: &[Record]) -> String {
    let mut workloads: Vec<&str> = Vec::new();
    let mut engines: Vec<&str> = Vec::new();
    for r in records {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
        if !engines.contains(&r.engine.as_str()) {
            engines.push(&r.engine);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<9} {:>3} {:>12} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>7}",
        "workload",
        "engine",
        "thr",
        "ops/s",
        "vs sb",
        "p50 µs",
        "p99 µs",
        "RSS MB",
        "disk MB",
        "s-amp",
        "w-amp",
        "retries"
    );
    for w in &workloads {
        let mut first = true;
        for r in records.iter().filter(|r| r.workload == *w) {
            let _ = writeln!(
                out,
                "{:<9} {:<9} {:>3} {:>12} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>7}",
                if first { w } else { "" },
                r.engine,
                r.threads,
                thousands(r.ops_per_sec),
                ratio(records, r).map_or("-".to_string(), |x| format!("{x:.2}x")),
                micros(r.p50_us),
                micros(r.p99_us),
                r.rss_mb.map_or("?".to_string(), |m| format!("{m:.0}")),
                format!("{:.0}", r.disk_mb),
                amp(r.space_amp),
                amp(r.write_amp),
                r.retries,
            );
            first = false;
        }
    }
    let peers: Vec<&str> = engines.iter().copied().filter(|e| *e != BASELINE).collect();
    if !peers.is_empty() && engines.contains(&BASELINE) {
        let _ = writeln!(
            out,
            "\nops/s as a ratio to seedbank's (> 1: the peer is faster)"
        );
        let _ = write!(out, "{:<9}", "workload");
        for p in &peers {
            let _ = write!(out, " {p:>9}");
        }
        out.push('\n');
        for w in &workloads {
            let _ = write!(out, "{w:<9}");
            for p in &peers {
                let cell = records
                    .iter()
                    .find(|r| r.workload == *w && r.engine == *p)
                    .and_then(|r| ratio(records, r))
                    .map_or("-".to_string(), |x| format!("{x:.2}x"));
                let _ = write!(out, " {cell:>9}");
            }
            out.push('\n');
        }
    }
    out
}

/// An amplification factor for a table cell: two decimals under 10, one above;
/// `-` where there is none.
pub fn amp(x: Option<f64>) -> String {
    match x {
        None => "-".to_string(),
        Some(x) if x < 10.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.1}"),
    }
}

/// Per engine, for one scale's records: space amplification after the fill and after
/// the last workload, write amplification of the fill, of YCSB-A and of all writing
/// workloads together (by `/proc/self/io`, and by the engine's own counters where it
/// has them), and the peak RSS over every workload.
pub fn amplification_table(records: &[Record]) -> String {
    let mut engines: Vec<&str> = Vec::new();
    for r in records {
        if !engines.contains(&r.engine.as_str()) {
            engines.push(&r.engine);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:>10} {:>9} {:>10} {:>8} {:>9} {:>8} {:>9} {:>8} {:>9} {:>11} {:>11}",
        "engine",
        "s-amp fill",
        "s-amp end",
        "w-amp fill",
        "sys fill",
        "own fill",
        "w-amp A",
        "sys A",
        "own A",
        "w-amp all",
        "peak RSS MB",
        "counter"
    );
    let mut counters: Vec<&str> = Vec::new();
    for e in &engines {
        let mine: Vec<&Record> = records.iter().filter(|r| r.engine == *e).collect();
        let find = |w: &str| mine.iter().find(|r| r.workload == w);
        let s = summary(&mine);
        let counter = mine
            .iter()
            .find_map(|r| r.written_counter.as_deref())
            .unwrap_or("-");
        if counter != "-" && !counters.contains(&counter) {
            counters.push(counter);
        }
        let _ = writeln!(
            out,
            "{:<9} {:>10} {:>9} {:>10} {:>8} {:>9} {:>8} {:>9} {:>8} {:>9} {:>11} {:>11}",
            e,
            amp(find("fill").and_then(|r| r.space_amp)),
            amp(mine.last().and_then(|r| r.space_amp)),
            amp(find("fill").and_then(|r| r.write_amp)),
            amp(find("fill").and_then(|r| r.write_amp_syscalls)),
            amp(find("fill").and_then(|r| r.engine_write_amp)),
            amp(find("ycsb-a").and_then(|r| r.write_amp)),
            amp(find("ycsb-a").and_then(|r| r.write_amp_syscalls)),
            amp(find("ycsb-a").and_then(|r| r.engine_write_amp)),
            amp(s.write_amp),
            s.peak_rss_mb.map_or("?".to_string(), |m| format!("{m:.0}")),
            counter,
        );
    }
    let _ = writeln!(
        out,
        "s-amp: allocated bytes on disk / live data (keys × (key + value)). w-amp: bytes the \
         engine's process wrote (/proc/self/io {}) / bytes of keys and values written, \
         background work after the workload included; sys: the same by wchar (bytes \
         passed to write calls); own: by the engine's own counters. write_bytes charges \
         a whole page (a whole large folio on newer kernels) each time a clean one is \
         dirtied: see docs/performance.md",
        if counters.is_empty() {
            "-".to_string()
        } else {
            counters.join(", ")
        }
    );
    out
}

/// What [`amplification_table`] sums over one engine's records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Bytes written to disk over bytes the user wrote, across every workload that
    /// wrote (`None` if none did or no counter was readable).
    pub write_amp: Option<f64>,
    /// The largest peak RSS of any workload, MiB.
    pub peak_rss_mb: Option<f64>,
}

/// Sums one engine's records (of one scale).
pub fn summary(records: &[&Record]) -> Summary {
    let mut written_mb = 0.0;
    let mut user = 0u64;
    let mut any = false;
    for r in records {
        if let Some(mb) = r.written_mb {
            if r.user_bytes > 0 {
                written_mb += mb;
                user += r.user_bytes;
                any = true;
            }
        }
    }
    let write_amp = (any && user > 0).then(|| written_mb * 1024.0 * 1024.0 / user as f64);
    let peak_rss_mb = records
        .iter()
        .filter_map(|r| r.rss_mb)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    Summary {
        write_amp,
        peak_rss_mb,
    }
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds with precision that fits their size.
pub fn micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1_000.0 {
        format!("{us:.1}")
    } else {
        thousands(us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(engine: &str, workload: &str, ops: f64) -> Record {
        Record {
            engine: engine.into(),
            workload: workload.into(),
            ops_per_sec: ops,
            p50_us: 12.345,
            p99_us: 2_500.0,
            rss_mb: Some(64.0),
            disk_mb: 120.0,
            p999_us: 3_000.0,
            max_us: 9_000.0,
            ops: 1,
            secs: 1.0,
            threads: 2,
            unit: "point read".into(),
            retries: 0,
            keys: 1_000_000,
            disk_apparent_mb: 118.0,
            rss_reset: true,
            read_p99_us: None,
            write_p99_us: None,
            load_avg_1m: Some(1.5),
            disk_p50_us: None,
            durability: "d".into(),
            api: "a".into(),
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

    #[test]
    fn json_line_has_the_contract_fields_and_round_trips() {
        let r = rec("fjall", "read-2", 1234.5);
        let line = r.to_json_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for field in JSON_FIELDS {
            assert!(v.get(field).is_some(), "missing {field} in {line}");
        }
        assert_eq!(v["engine"], "fjall");
        assert_eq!(v["workload"], "read-2");
        assert_eq!(v["ops_per_sec"], 1234.5);
        assert!(
            v.get("read_p99_us").is_none(),
            "absent YCSB fields are omitted"
        );
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn table_shows_each_peer_as_a_ratio_to_seedbank() {
        let rs = vec![
            rec("seedbank", "read-1", 1000.0),
            rec("rocksdb", "read-1", 2500.0),
            rec("redb", "read-1", 500.0),
            rec("seedbank", "fill", 100.0),
            rec("sled", "fill", 300.0),
            rec("sled", "scan", 10.0), // no baseline for this workload
        ];
        let t = table(&rs);
        let line = |engine: &str, w: &str| {
            let rows: Vec<&str> = t.lines().filter(|l| l.contains(engine)).collect();
            let i = rs
                .iter()
                .filter(|r| r.engine == engine)
                .position(|r| r.workload == w)
                .unwrap();
            rows[i].to_string()
        };
        assert!(line("rocksdb", "read-1").contains(" 2.50x"), "{t}");
        assert!(line("redb", "read-1").contains(" 0.50x"), "{t}");
        assert!(line("seedbank", "read-1").contains(" 1.00x"), "{t}");
        assert!(line("sled", "fill").contains(" 3.00x"), "{t}");
        assert!(line("sled", "scan").contains(" - "), "{t}");
        assert!(t.contains("2,500"), "thousands separators: {t}");
        // The ratio matrix: one column per peer, in order of appearance.
        let matrix: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("ops/s as a ratio"))
            .collect();
        assert!(
            matrix[1]
                .split_whitespace()
                .eq(["workload", "rocksdb", "redb", "sled"]),
            "{t}"
        );
        assert!(
            matrix[2]
                .split_whitespace()
                .eq(["read-1", "2.50x", "0.50x", "-"]),
            "{t}"
        );
        assert!(
            matrix[3].split_whitespace().eq(["fill", "-", "-", "3.00x"]),
            "{t}"
        );
    }

    fn wrote(
        engine: &str,
        workload: &str,
        user_bytes: u64,
        written_mb: f64,
        space_amp: f64,
        rss: f64,
    ) -> Record {
        let mut r = rec(engine, workload, 1.0);
        r.user_bytes = user_bytes;
        r.written_mb = Some(written_mb);
        r.written_counter = Some("write_bytes".into());
        r.write_amp = crate::measure::amplification((written_mb * 1048576.0) as u64, user_bytes);
        r.space_amp = Some(space_amp);
        r.rss_mb = Some(rss);
        r
    }

    #[test]
    fn old_json_lines_without_the_amplification_fields_still_read() {
        let mut v: serde_json::Value =
            serde_json::from_str(&rec("redb", "fill", 1.0).to_json_line()).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("user_bytes");
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back.user_bytes, 0);
        assert_eq!(back.write_amp, None);
    }

    #[test]
    fn summary_weighs_write_amplification_by_bytes_and_takes_the_peak_rss() {
        const MIB: u64 = 1 << 20;
        let rs = [
            // 10 MiB written for 5 MiB of data: 2x.
            wrote("x", "fill", 5 * MIB, 10.0, 1.25, 300.0),
            // 30 MiB for 1 MiB: 30x, but only 1 MiB of the user's data.
            wrote("x", "commit-1", MIB, 30.0, 1.5, 500.0),
            // Reads: bytes written (a log, say) but no user bytes: not in the ratio.
            wrote("x", "read-1", 0, 99.0, 1.5, 200.0),
        ];
        let refs: Vec<&Record> = rs.iter().collect();
        let s = summary(&refs);
        // (10 + 30) / (5 + 1) = 6.67, not the mean of 2 and 30 (16).
        let w = s.write_amp.unwrap();
        assert!((w - 40.0 / 6.0).abs() < 1e-9, "{w}");
        assert_eq!(s.peak_rss_mb, Some(500.0));
        assert_eq!(
            summary(&[&rs[2]]).write_amp,
            None,
            "nothing written by the user"
        );

        let t = amplification_table(&rs);
        let row: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
        // engine, s-amp fill, s-amp end, w-amp fill, w-amp A, w-amp all, own fill,
        // own A, peak RSS, counter.
        assert_eq!(
            row,
            [
                "x",
                "1.25",
                "1.50",
                "2.00",
                "-",
                "-",
                "-",
                "-",
                "-",
                "6.67",
                "500",
                "write_bytes"
            ],
            "{t}"
        );
        assert!(t.contains("/proc/self/io write_bytes"), "{t}");
        let mut with_sys = rs.clone();
        with_sys[0].write_amp_syscalls = Some(1.5);
        with_sys[0].engine_write_amp = Some(1.75);
        let t = amplification_table(&with_sys);
        let row: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[3..6], ["2.00", "1.50", "1.75"], "{t}");
        assert_eq!(amp(Some(34.56)), "34.6");
        assert_eq!(amp(None), "-");
    }

    #[test]
    fn numbers_format_for_reading() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(micros(4.256), "4.26");
        assert_eq!(micros(123.45), "123.5");
        assert_eq!(micros(12_345.6), "12,346");
    }
}
