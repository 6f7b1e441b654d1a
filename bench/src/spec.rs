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
}
