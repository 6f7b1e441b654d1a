//! Settings drawn per seed: the sizes and timeouts that decide which rare states a run
//! can reach at all.
//!
//! A sweep with one fixed configuration explores one corner: with 32 KiB memtables a
//! 200-operation run never flushes twice, with a snapshot threshold of 40 a follower
//! rarely needs InstallSnapshot, and with one election timeout elections rarely
//! collide. Each seed therefore draws — swarm style, each setting kept at the
//! topology's default half of the time — memtable and table sizes, the level-0
//! trigger, level 1's size and the ratio between levels (the tree's depth), WAL
//! preallocation, Raft's snapshot threshold and kept tail, election and
//! heartbeat ticks, entries per append, and the client's request timeout and commit
//! deadline. The draw is part of the
//! [`super::plan::FaultPlan`], so it prints, replays from a plan file and shrinks.
//!
//! `None` everywhere (the serde default, so plan files written before it still read)
//! is the topology's fixed configuration of before.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-seed settings; `None` = the topology's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tuning {
    pub memtable_bytes: Option<usize>,
    pub table_target_bytes: Option<u64>,
    pub l0_compaction_trigger: Option<usize>,
    pub wal_preallocate_bytes: Option<u64>,
    /// Applied entries past the log start before a replica snapshots and compacts.
    pub snapshot_threshold: Option<u64>,
    /// Entries kept behind the snapshot when compacting (must be below the threshold).
    pub snapshot_keep: Option<u64>,
    /// Raft election timeout, in ticks of the replica's tick (10 ms).
    pub election_ticks: Option<u64>,
    /// Raft heartbeat interval, in ticks (below the election timeout).
    pub heartbeat_ticks: Option<u64>,
    /// How long a cluster client waits for one answer before retrying (ms).
    pub request_timeout_ms: Option<u64>,
    /// How long a cluster client keeps retrying a commit before its outcome is
    /// unknown (ms): short deadlines turn faults into indeterminate commits.
    pub commit_deadline_ms: Option<u64>,
    /// Raft entries per append message: small batches make a lagging follower
    /// acknowledge an older term's entries before the new leader's own.
    pub max_entries_per_message: Option<usize>,
    /// Level 1's size limit and the ratio between levels: small values make a deep
    /// tree out of a small data set, so compactions run over keys that deeper levels
    /// still hold (tombstones that must be kept, versions shadowed across levels).
    pub level1_max_bytes: Option<u64>,
    pub level_size_ratio: Option<u64>,
    /// A new Raft leader probes followers from its commit index
    /// (`engine::raft::Config::probe_from_commit`): appends that vouch for a prefix of
    /// a follower's log while the commit index is past them.
    pub probe_from_commit: Option<bool>,
    /// Raft's pre-vote round (`engine::raft::Config::pre_vote`), off for a quarter of
    /// the cluster seeds: a replica cut off from the others then raises its term with
    /// every election it starts, so once healed it asks for votes in a term the others
    /// have not seen, carrying whatever tail it took as a deposed leader — and the
    /// election restriction alone must refuse it (a longer log of an older term loses).
    pub pre_vote: Option<bool>,
}

impl Tuning {
    /// Draws settings: each one stays at the default with probability 1/2, else takes
    /// one of a few values chosen to reach flushes, compactions, snapshots, elections
    /// and retries within a run.
    pub fn draw(rng: &mut impl Rng, cluster: bool) -> Tuning {
        fn pick<T: Copy>(rng: &mut impl Rng, values: &[T]) -> Option<T> {
            if values.is_empty() || rng.gen_bool(0.5) {
                return None;
            }
            values.get(rng.gen_range(0..values.len())).copied()
        }
        let mut t = Tuning {
            memtable_bytes: pick(rng, &[1024, 2048, 8192, 65_536]),
            table_target_bytes: pick(rng, &[1024, 16_384]),
            l0_compaction_trigger: pick(rng, &[1, 4]),
            wal_preallocate_bytes: pick(rng, &[0, 512, 65_536]),
            ..Tuning::default()
        };
        if cluster {
            t.snapshot_threshold = pick(rng, &[4, 10, 20, 200]);
            t.snapshot_keep = pick(rng, &[0, 2]);
            t.election_ticks = pick(rng, &[4, 6, 20]);
            t.heartbeat_ticks = pick(rng, &[1, 2]);
            t.request_timeout_ms = pick(rng, &[60, 120, 1_000]);
            t.commit_deadline_ms = pick(rng, &[300, 800, 2_000]);
            t.max_entries_per_message = pick(rng, &[1, 3]);
        }
        t
    }

    /// Draws the settings added after the first ones: the LSM tree's shape
    /// ([`Tuning::level1_max_bytes`], [`Tuning::level_size_ratio`]) and, in a cluster,
    /// [`Tuning::probe_from_commit`] and [`Tuning::pre_vote`] (drawn last of these, D88).
    /// Drawn after everything else of a plan, so the
    /// faults and other settings of a seed stay those it drew before these existed.
    pub fn draw_late(&mut self, rng: &mut impl Rng, cluster: bool) {
        let mut pick = |values: &[u64]| {
            if rng.gen_bool(0.5) {
                None
            } else {
                values.get(rng.gen_range(0..values.len())).copied()
            }
        };
        self.level1_max_bytes = pick(&[512, 2048]);
        self.level_size_ratio = pick(&[2, 3]);
        if cluster {
            self.probe_from_commit = rng.gen_bool(0.5).then_some(true);
            self.pre_vote = rng.gen_bool(0.25).then_some(false);
        }
    }

    /// Whether every setting is the default.
    pub fn is_default(&self) -> bool {
        *self == Tuning::default()
    }

    /// The engine options of a node: `base` with this tuning's sizes.
    pub fn engine_options(&self, base: engine::Options) -> engine::Options {
        engine::Options {
            memtable_bytes: self.memtable_bytes.unwrap_or(base.memtable_bytes),
            table_target_bytes: self.table_target_bytes.unwrap_or(base.table_target_bytes),
            l0_compaction_trigger: self
                .l0_compaction_trigger
                .unwrap_or(base.l0_compaction_trigger),
            wal_preallocate_bytes: self
                .wal_preallocate_bytes
                .unwrap_or(base.wal_preallocate_bytes),
            level1_max_bytes: self.level1_max_bytes.unwrap_or(base.level1_max_bytes),
            level_size_ratio: self.level_size_ratio.unwrap_or(base.level_size_ratio),
            ..base
        }
    }

    /// Snapshot threshold and kept tail, given the defaults; the tail is kept below
    /// the threshold so a snapshot always compacts something.
    pub fn snapshot(&self, threshold: u64, keep: u64) -> (u64, u64) {
        let threshold = self.snapshot_threshold.unwrap_or(threshold).max(1);
        let keep = self.snapshot_keep.unwrap_or(keep).min(threshold - 1);
        (threshold, keep)
    }

    /// Election and heartbeat ticks, given the defaults; the heartbeat stays below the
    /// election timeout (a leader that beats slower than followers time out would
    /// never keep its followers).
    pub fn raft_ticks(&self, election: u64, heartbeat: u64) -> (u64, u64) {
        let election = self.election_ticks.unwrap_or(election).max(2);
        let heartbeat = self
            .heartbeat_ticks
            .unwrap_or(heartbeat)
            .clamp(1, election - 1);
        (election, heartbeat)
    }

    /// The client's commit deadline, given the default.
    pub fn commit_deadline(&self, default: Duration) -> Duration {
        self.commit_deadline_ms
            .map_or(default, Duration::from_millis)
    }

    /// Entries per Raft append message, given the default.
    pub fn max_entries(&self, default: usize) -> usize {
        self.max_entries_per_message.unwrap_or(default).max(1)
    }

    /// The client's request timeout, given the default.
    pub fn request_timeout(&self, default: Duration) -> Duration {
        self.request_timeout_ms
            .map_or(default, Duration::from_millis)
    }

    /// One line for the plan's printout (empty when everything is the default).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name} {v}"));
            }
        };
        add("memtable", self.memtable_bytes.map(|b| format!("{b} B")));
        add(
            "table target",
            self.table_target_bytes.map(|b| format!("{b} B")),
        );
        add(
            "L0 trigger",
            self.l0_compaction_trigger.map(|n| n.to_string()),
        );
        add(
            "WAL prealloc",
            self.wal_preallocate_bytes.map(|b| format!("{b} B")),
        );
        add(
            "snapshot every",
            self.snapshot_threshold.map(|n| format!("{n} entries")),
        );
        add("snapshot keeps", self.snapshot_keep.map(|n| n.to_string()));
        add(
            "election",
            self.election_ticks.map(|n| format!("{n} ticks")),
        );
        add(
            "heartbeat",
            self.heartbeat_ticks.map(|n| format!("{n} ticks")),
        );
        add(
            "request timeout",
            self.request_timeout_ms.map(|n| format!("{n} ms")),
        );
        add(
            "commit deadline",
            self.commit_deadline_ms.map(|n| format!("{n} ms")),
        );
        add(
            "entries per append",
            self.max_entries_per_message.map(|n| n.to_string()),
        );
        add("L1 max", self.level1_max_bytes.map(|b| format!("{b} B")));
        add("level ratio", self.level_size_ratio.map(|n| n.to_string()));
        add(
            "probe from commit",
            self.probe_from_commit.map(|b| b.to_string()),
        );
        add("pre-vote", self.pre_vote.map(|b| b.to_string()));
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_vary_every_setting_and_stay_within_what_the_engine_accepts() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut seen_default = [false; 15];
        let mut seen_set = [false; 15];
        for _ in 0..200 {
            let mut t = Tuning::draw(&mut rng, true);
            t.draw_late(&mut rng, true);
            let fields = [
                t.memtable_bytes.is_some(),
                t.table_target_bytes.is_some(),
                t.l0_compaction_trigger.is_some(),
                t.wal_preallocate_bytes.is_some(),
                t.snapshot_threshold.is_some(),
                t.snapshot_keep.is_some(),
                t.election_ticks.is_some(),
                t.heartbeat_ticks.is_some(),
                t.request_timeout_ms.is_some(),
                t.commit_deadline_ms.is_some(),
                t.max_entries_per_message.is_some(),
                t.level1_max_bytes.is_some(),
                t.level_size_ratio.is_some(),
                t.probe_from_commit.is_some(),
                t.pre_vote.is_some(),
            ];
            for (i, set) in fields.into_iter().enumerate() {
                seen_set[i] |= set;
                seen_default[i] |= !set;
            }
            let opts = t.engine_options(engine::Options::tiny());
            assert!(opts.validate().is_ok(), "{t:?}");
            let (threshold, keep) = t.snapshot(40, 10);
            assert!(keep < threshold, "{t:?}");
            let (election, heartbeat) = t.raft_ticks(10, 3);
            assert!(heartbeat < election, "{t:?}");
            let back: Tuning = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t);
        }
        assert_eq!(seen_set, [true; 15], "every setting is drawn sometimes");
        assert_eq!(seen_default, [true; 15], "and left alone sometimes");
        for _ in 0..20 {
            let mut embedded = Tuning::draw(&mut rng, false);
            embedded.draw_late(&mut rng, false);
            assert_eq!(
                (
                    embedded.election_ticks,
                    embedded.probe_from_commit,
                    embedded.pre_vote
                ),
                (None, None, None),
                "no Raft settings without a cluster"
            );
        }
    }

    #[test]
    fn the_default_tuning_changes_nothing() {
        let t = Tuning::default();
        assert!(t.is_default());
        assert_eq!(t.describe(), "");
        assert_eq!(t.snapshot(40, 10), (40, 10));
        assert_eq!(t.raft_ticks(10, 3), (10, 3));
        assert_eq!(t.max_entries(64), 64);
        assert_eq!(
            t.commit_deadline(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
        let base = engine::Options::tiny();
        assert_eq!(t.engine_options(base.clone()), base);
    }
}
