//! What to run: the workloads, the engines, and their names on the command line.

use std::fmt;

/// Key length in bytes: `key` and 13 decimal digits, so byte order is numeric order.
pub const KEY_LEN: usize = 16;
/// Value length in bytes.
pub const VALUE_LEN: usize = 100;
/// Keys per commit in `fill`.
pub const FILL_BATCH: usize = 1_000;
/// Keys per range in `scan`.
pub const SCAN_LEN: u64 = 100;
/// Zipfian skew of the YCSB workloads.
pub const ZIPF_THETA: f64 = 0.99;
/// Bytes the user writes per key: one key and one value.
pub const RECORD_BYTES: u64 = (KEY_LEN + VALUE_LEN) as u64;
/// The scales a run covers unless `--keys` or `--scales` say otherwise: 1M keys (about
/// 116 MB of live data, inside Seedbank's 256 MiB block cache) and 10M (about 1.16 GB,
/// several times it).
pub const DEFAULT_SCALES: [u64; 2] = [1_000_000, 10_000_000];

/// Bytes of live data in a database of `keys` keys (every workload overwrites existing
/// keys with values of the same length, so this never changes after the fill).
pub fn live_bytes(keys: u64) -> u64 {
    keys.saturating_mul(RECORD_BYTES)
}

/// Parses one key count: digits with optional `_` or `,` separators, or a number with
/// a `k`/`K` (thousand) or `m`/`M` (million) suffix: `1M`, `10M`, `500k`, `2.5M`,
/// `1000000`.
pub fn parse_scale(text: &str) -> Result<u64, SpecError> {
    let bad = || SpecError::BadScale(text.to_string());
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1_000u64),
        Some((i, 'm' | 'M')) => (&t[..i], 1_000_000u64),
        _ => (t, 1),
    };
    let digits: String = number.chars().filter(|c| *c != '_' && *c != ',').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let n = if unit == 1 {
        digits.parse::<u64>().map_err(|_| bad())?
    } else {
        let (whole, frac) = digits.split_once('.').unwrap_or((&digits, ""));
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut n = whole.checked_mul(unit).ok_or_else(bad)?;
        let mut place = unit;
        for c in frac.chars() {
            place /= 10;
            let d = u64::from(c.to_digit(10).ok_or_else(bad)?);
            if place == 0 {
                if d != 0 {
                    return Err(bad()); // finer than one key
                }
                continue;
            }
            n = n.checked_add(d * place).ok_or_else(bad)?;
        }
        n
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(n)
}

/// Parses `--scales` (each item may itself be a comma-separated list), deduplicated,
/// smallest first; empty gives [`DEFAULT_SCALES`].
pub fn parse_scales(items: &[String]) -> Result<Vec<u64>, SpecError> {
    let mut out = Vec::new();
    for item in items {
        for part in item.split(',').filter(|p| !p.trim().is_empty()) {
            out.push(parse_scale(part)?);
        }
    }
    if out.is_empty() {
        return Ok(DEFAULT_SCALES.to_vec());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A key count for headings: `1M`, `10M`, `500k`, or the digits.
pub fn scale_name(keys: u64) -> String {
    if keys >= 1_000_000 && keys % 1_000_000 == 0 {
        format!("{}M", keys / 1_000_000)
    } else if keys >= 1_000 && keys % 1_000 == 0 {
        format!("{}k", keys / 1_000)
    } else {
        keys.to_string()
    }
}

/// The key of index `i`: 16 bytes, byte order = numeric order.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    let s = format!("key{i:013}");
    let mut k = [0u8; KEY_LEN];
    k.copy_from_slice(&s.as_bytes()[..KEY_LEN]);
    k
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// Load the keys in random order, 1,000 per durable commit.
    Fill,
    /// Durable single-key read-modify-write transactions from this many threads.
    Commit(u32),
    /// Uniform random point reads from this many threads.
    Read(u32),
    /// 100-key range scans, one thread.
    Scan,
    /// YCSB core workload with this many percent reads (A 50, B 95, C 100), the rest
    /// durable single-key writes; Zipfian keys, two threads.
    Ycsb(Ycsb),
}

/// The YCSB core workloads Seedbank runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ycsb {
    A,
    B,
    C,
}

impl Ycsb {
    /// Percent of operations that are reads.
    pub fn read_percent(self) -> u32 {
        match self {
            Ycsb::A => 50,
            Ycsb::B => 95,
            Ycsb::C => 100,
        }
    }
}

impl Workload {
    /// Every workload, in the order a run executes them.
    pub const ALL: [Workload; 10] = [
        Workload::Fill,
        Workload::Commit(1),
        Workload::Commit(4),
        Workload::Commit(16),
        Workload::Read(1),
        Workload::Read(2),
        Workload::Scan,
        Workload::Ycsb(Ycsb::A),
        Workload::Ycsb(Ycsb::B),
        Workload::Ycsb(Ycsb::C),
    ];

    /// Threads issuing operations.
    pub fn threads(self) -> u32 {
        match self {
            Workload::Fill | Workload::Scan => 1,
            Workload::Commit(n) | Workload::Read(n) => n,
            Workload::Ycsb(_) => 2,
        }
    }

    /// Whether the workload writes (so has a write amplification).
    pub fn writes(self) -> bool {
        match self {
            Workload::Fill | Workload::Commit(_) => true,
            Workload::Ycsb(y) => y.read_percent() < 100,
            Workload::Read(_) | Workload::Scan => false,
        }
    }

    /// Whether the workload reads the filled keys (so needs a fill before it).
    pub fn needs_data(self) -> bool {
        matches!(self, Workload::Read(_) | Workload::Scan | Workload::Ycsb(_))
    }

    /// What one counted operation is.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::Fill => "key (latency per 1,000-key commit)",
            Workload::Commit(_) => "durable read-modify-write txn",
            Workload::Read(_) => "point read",
            Workload::Scan => "100-key scan",
            Workload::Ycsb(_) => "read or durable write txn",
        }
    }

    /// Parses a name; `commit`, `read` and `ycsb` name their groups.
    pub fn parse_many(name: &str) -> Result<Vec<Workload>, SpecError> {
        let group: Vec<Workload> = match name {
            "commit" => vec![
                Workload::Commit(1),
                Workload::Commit(4),
                Workload::Commit(16),
            ],
            "read" => vec![Workload::Read(1), Workload::Read(2)],
            "ycsb" => vec![
                Workload::Ycsb(Ycsb::A),
                Workload::Ycsb(Ycsb::B),
                Workload::Ycsb(Ycsb::C),
            ],
            "all" => Workload::ALL.to_vec(),
            _ => Workload::ALL
                .into_iter()
                .filter(|w| w.to_string() == name)
                .collect(),
        };
        if group.is_empty() {
            return Err(SpecError::UnknownWorkload(name.to_string()));
        }
        Ok(group)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Workload::Fill => "fill".to_string(),
            Workload::Commit(n) => format!("commit-{n}"),
            Workload::Read(n) => format!("read-{n}"),
            Workload::Scan => "scan".to_string(),
            Workload::Ycsb(Ycsb::A) => "ycsb-a".to_string(),
            Workload::Ycsb(Ycsb::B) => "ycsb-b".to_string(),
            Workload::Ycsb(Ycsb::C) => "ycsb-c".to_string(),
        };
        f.pad(&name)
    }
}

/// One engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EngineKind {
    Seedbank,
    Fjall,
    Redb,
    Sled,
    Rocksdb,
}

impl EngineKind {
    /// Every engine, Seedbank first (the baseline of every ratio).
    pub const ALL: [EngineKind; 5] = [
        EngineKind::Seedbank,
        EngineKind::Fjall,
        EngineKind::Redb,
        EngineKind::Sled,
        EngineKind::Rocksdb,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Seedbank => "seedbank",
            EngineKind::Fjall => "fjall",
            EngineKind::Redb => "redb",
            EngineKind::Sled => "sled",
            EngineKind::Rocksdb => "rocksdb",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Result<EngineKind, SpecError> {
        EngineKind::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| SpecError::UnknownEngine(name.to_string()))
    }

    /// Whether this build can run it (peers need the `peers` feature).
    pub fn built(self) -> bool {
        self == EngineKind::Seedbank || cfg!(feature = "peers")
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A bad workload or engine selection.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("unknown workload `{0}`; known: {known} (and the groups commit, read, ycsb, all)", known = workload_names())]
    UnknownWorkload(String),
    #[error("unknown engine `{0}`; known: seedbank, fjall, redb, sled, rocksdb")]
    UnknownEngine(String),
    #[error(
        "engine `{0}` is not in this build: the peer engines need the `peers` feature. \
         Run scripts/install-peers once, then: \
         cargo run --release --features peers --bin seedbank -- bench …"
    )]
    NeedsPeersFeature(EngineKind),
    #[error(
        "bad key count `{0}`: give a positive whole number of keys, e.g. 1M, 10M, 500k or 2000000"
    )]
    BadScale(String),
}

fn workload_names() -> String {
    Workload::ALL
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses workload names (empty: all), deduplicated, in run order.
pub fn parse_workloads(names: &[String]) -> Result<Vec<Workload>, SpecError> {
    if names.is_empty() {
        return Ok(Workload::ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        out.extend(Workload::parse_many(n.trim())?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Parses engine names (empty: every engine this build has), deduplicated, Seedbank
/// first; a peer without the `peers` feature is an error naming the feature.
pub fn parse_engines(names: &[String]) -> Result<Vec<EngineKind>, SpecError> {
    let mut out: Vec<EngineKind> = if names.is_empty() {
        EngineKind::ALL.into_iter().filter(|e| e.built()).collect()
    } else {
        names
            .iter()
            .map(|n| EngineKind::parse(n.trim()))
            .collect::<Result<_, _>>()?
    };
    if let Some(missing) = out.iter().find(|e| !e.built()) {
        return Err(SpecError::NeedsPeersFeature(*missing));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_bytes_in_numeric_order() {
        assert_eq!(&key(42), b"key0000000000042");
        assert!(key(9) < key(10));
        assert!(key(999_999) < key(1_000_000));
    }

    #[test]
    fn workload_names_round_trip_and_groups_expand() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse_many(&w.to_string()).unwrap(), vec![w]);
        }
        let ws = parse_workloads(&["ycsb".into(), "fill".into(), "read-2".into()]).unwrap();
        let names: Vec<String> = ws.iter().map(|w| w.to_string()).collect();
        assert_eq!(names, ["fill", "read-2", "ycsb-a", "ycsb-b", "ycsb-c"]);
        assert!(parse_workloads(&["nope".into()]).is_err());
        assert_eq!(format!("[{:<9}]", Workload::Commit(16)), "[commit-16]");
        assert_eq!(format!("[{:<9}]", EngineKind::Redb), "[redb     ]");
    }

    #[test]
    fn a_peer_without_the_feature_names_the_feature() {
        let got = parse_engines(&["fjall".into()]);
        if cfg!(feature = "peers") {
            assert_eq!(got.unwrap(), vec![EngineKind::Fjall]);
        } else {
            let e = got.unwrap_err().to_string();
            assert!(e.contains("`peers` feature"), "{e}");
        }
        assert!(parse_engines(&["mysql".into()]).is_err());
    }

    #[test]
    fn scales_parse_with_suffixes_and_separators() {
        assert_eq!(parse_scale("1M").unwrap(), 1_000_000);
        assert_eq!(parse_scale("10m").unwrap(), 10_000_000);
        assert_eq!(parse_scale("500k").unwrap(), 500_000);
        assert_eq!(parse_scale("2.5M").unwrap(), 2_500_000);
        assert_eq!(parse_scale("0.5k").unwrap(), 500);
        assert_eq!(parse_scale(" 1_000_000 ").unwrap(), 1_000_000);
        assert_eq!(parse_scale("123").unwrap(), 123);
        for bad in [
            "",
            "M",
            "0",
            "0M",
            "-1M",
            "1G",
            "1.5",
            "1.0000001M",
            "1e6",
            "99999999999999999999",
        ] {
            assert!(parse_scale(bad).is_err(), "{bad:?} parsed");
        }
        let got = parse_scales(&["10M,1M".into(), "1000000".into(), "500k".into()]).unwrap();
        assert_eq!(got, [500_000, 1_000_000, 10_000_000]);
        assert_eq!(parse_scales(&[]).unwrap(), DEFAULT_SCALES);
        assert!(parse_scales(&["1M,x".into()]).is_err());
        assert_eq!(scale_name(10_000_000), "10M");
        assert_eq!(scale_name(500_000), "500k");
        assert_eq!(scale_name(1_500_000), "1500k");
        assert_eq!(scale_name(1_234), "1234");
    }

    #[test]
    fn live_data_is_keys_times_key_and_value() {
        assert_eq!(RECORD_BYTES, 116);
        assert_eq!(live_bytes(1_000_000), 116_000_000);
        let writers: Vec<String> = Workload::ALL
            .iter()
            .filter(|w| w.writes())
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            writers,
            [
                "fill",
                "commit-1",
                "commit-4",
                "commit-16",
                "ycsb-a",
                "ycsb-b"
            ]
        );
    }
}
