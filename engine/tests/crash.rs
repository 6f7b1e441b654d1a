//! Simulated crash tests of the embedded database (run with `--cfg madsim`).
//!
//! A database on a simulated node runs concurrent clients; the supervisor cuts power at
//! random points, during compactions and during recovery, with torn and lost writes,
//! reordering, and (in one test) failing fsyncs and writes; and, systematically, after
//! every k-th file operation of a short workload, for every k (`crash/kth.rs`). After every recovery the
//! durability oracle must hold (every acknowledged commit present, nothing rejected or
//! half-applied, no value nobody wrote, deleted keys stay deleted) and the same bytes
//! must recover to the same state. With `--features canary`, the named engine bugs must
//! each be caught within a stated number of seeds, and by the k-sweep.
#![cfg(madsim)]

mod crash {
    pub mod harness;
    pub mod kth;
    pub mod world;
}

use crash::harness::{run_seed, Outcome, Plan, Trigger};
use crash::kth;
use sim_fs::{CrashConfig, FaultConfig, LatencyConfig};

/// Every file operation takes 20–300 µs of virtual time, so crashes land mid-operation.
fn latency() -> LatencyConfig {
    LatencyConfig {
        probability: 1.0,
        min_us: 20,
        max_us: 300,
    }
}

fn base_faults() -> FaultConfig {
    FaultConfig {
        latency: latency(),
        crash: CrashConfig::default(),
        ..FaultConfig::default()
    }
}

fn plan(triggers: &[Trigger], crashes: usize, faults: FaultConfig) -> Plan {
    Plan {
        crashes,
        triggers: triggers.to_vec(),
        faults,
        canary: None,
    }
}

/// Runs `seeds`, failing with the first violation (and the seed that reproduces it).
fn sweep(name: &str, seeds: std::ops::Range<u64>, plan: &Plan) -> Vec<Outcome> {
    let mut outs = Vec::new();
    for seed in seeds {
        let out = run_seed(seed, plan.clone());
        assert!(
            out.violations.is_empty(),
            "{name}: seed {seed} failed:\n{}\n(replay: RUSTFLAGS=\"--cfg madsim\" cargo test -p engine --test crash {name})",
            out.violations.join("\n")
        );
        outs.push(out);
    }
    let total = |f: fn(&Outcome) -> u64| outs.iter().map(f).sum::<u64>();
    eprintln!(
        "{name}: {} seeds, {} recoveries, {} acked, {} rejected, {} crashes in compaction, {} in recovery",
        outs.len(),
        total(|o| o.recoveries),
        total(|o| o.acked),
        total(|o| o.rejected),
        total(|o| o.crashes_in_compaction),
        total(|o| o.crashes_in_recovery)
    );
    outs
}

fn fault_total(outs: &[Outcome], kind: &str) -> u64 {
    outs.iter()
        .map(|o| o.faults.get(kind).copied().unwrap_or(0))
        .sum()
}

#[test]
fn crashes_at_random_points_lose_no_acknowledged_commit() {
    let outs = sweep(
        "random",
        0..48,
        &plan(&[Trigger::Random, Trigger::AfterRecovery], 6, base_faults()),
    );
    let acked: u64 = outs.iter().map(|o| o.acked).sum();
    assert!(
        acked > 48 * 100,
        "the workload did little: {acked} acked commits"
    );
    assert!(
        outs.iter().all(|o| o.recoveries == 7),
        "every crash was followed by a checked recovery"
    );
    // (`fs.reorder` cannot fire here: the engine never has two unsynced writes pending
    // on one file — every append is synced before the next is issued.)
    for kind in ["fs.torn_write", "fs.lost_write", "fs.lost_dir_op"] {
        assert!(fault_total(&outs, kind) > 0, "{kind} never fired");
    }
}

#[test]
fn crashes_during_compaction_lose_nothing() {
    let outs = sweep(
        "compaction",
        100..148,
        &plan(&[Trigger::DuringCompaction], 6, base_faults()),
    );
    let landed: u64 = outs.iter().map(|o| o.crashes_in_compaction).sum();
    assert!(
        landed >= 48,
        "only {landed} crashes landed during a compaction"
    );
}

#[test]
fn crashes_during_recovery_lose_nothing() {
    let outs = sweep(
        "recovery",
        200..248,
        &plan(
            &[
                Trigger::Random,
                Trigger::DuringRecovery,
                Trigger::DuringRecovery,
            ],
            6,
            base_faults(),
        ),
    );
    let landed: u64 = outs.iter().map(|o| o.crashes_in_recovery).sum();
    assert!(landed >= 48, "only {landed} crashes landed during recovery");
}

#[test]
fn failed_fsyncs_and_writes_fail_stop_and_lose_nothing() {
    let faults = FaultConfig {
        sync_eio: 0.01,
        write_eio: 0.005,
        read_eio: 0.002,
        ..base_faults()
    };
    let outs = sweep(
        "fsync",
        300..348,
        &plan(&[Trigger::Random, Trigger::DuringCompaction], 6, faults),
    );
    assert!(
        fault_total(&outs, "fs.fsync_eio") > 0,
        "no fsync ever failed"
    );
    let restarts: u64 = outs.iter().map(|o| o.poison_restarts).sum();
    assert!(restarts > 0, "no failure ever poisoned the database");
    eprintln!("fsync: {restarts} restarts after fail-stop errors");
    assert!(
        fault_total(&outs, "fs.write_eio") > 0,
        "no write ever failed"
    );
}

/// Crash after every k-th I/O operation of a short workload (`crash/kth.rs`), for
/// every k, then recover, check, commit, crash and check again. The workload's own
/// restart is a process death for odd seeds and a power loss for even ones.
#[test]
fn crashes_after_every_kth_io_op_lose_nothing() {
    // KTH_SEEDS=A..B sweeps other seeds.
    let seeds = std::env::var("KTH_SEEDS")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(7..9);
    for seed in seeds {
        let restart = if seed % 2 == 1 {
            kth::Restart::Kill
        } else {
            kth::Restart::PowerLoss
        };
        let s = kth::sweep(seed, restart, false, None);
        if let Some((k, why)) = &s.failure {
            panic!(
                "kth: seed {seed}, crash after op {k} of {}:\n{why}\n(replay: KTH_SEEDS={seed}..{} RUSTFLAGS=\"--cfg madsim\" cargo test -p engine --test crash kth)",
                s.n,
                seed + 1
            );
        }
        eprintln!("{} (workload restart: {restart:?})", s.summary(seed));
        assert_eq!(s.points, s.n, "a crash after every op");
        // Each crash point: the checked crash's recovery and the last one (plus the
        // workload's own, for points after it).
        assert!(s.recoveries >= 2 * s.n, "{} recoveries", s.recoveries);
        assert!(
            s.flushes >= 2 && s.compactions >= 1 && s.in_compaction > 0 && s.in_open > 0,
            "the workload must flush and compact, and crashes land in compactions and recoveries"
        );
        assert!(
            s.acked_after_recovery >= s.n,
            "every recovered database took commits"
        );
    }
}

#[cfg(feature = "canary")]
mod canaries {
    use super::*;
    use engine::canary::Canary;

    /// The first seed in `seeds` whose run the checks fail, if any.
    fn first_caught(
        canary: Canary,
        seeds: std::ops::Range<u64>,
        mut plan: Plan,
    ) -> Option<(u64, String)> {
        plan.canary = Some(canary);
        seeds.into_iter().find_map(|seed| {
            let out = run_seed(seed, plan.clone());
            out.violations.first().map(|v| (seed, v.clone()))
        })
    }

    fn assert_caught(canary: Canary, within: u64, plan: Plan) {
        let within = std::env::var("CANARY_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(within);
        match first_caught(canary, 0..within, plan) {
            Some((seed, why)) => eprintln!("{canary:?} caught at seed {seed}: {why}"),
            None => panic!("{canary:?} survived {within} seeds"),
        }
    }

    // Measured on seeds 0..30 with these plans when written: SkipWalFsync is caught on
    // 30 of 30 seeds, KeepTornWalTail on 22 (a torn WAL tail must be followed by a crash
    // before its segment is flushed away), DeleteBeforeManifest on 23 (a crash must land
    // between the deletes and the manifest sync). The bounds leave room for that.

    /// The k-sweep can fail: acknowledging commits before their fsync is caught at
    /// nearly every crash point (measured when written, seed 7: 753 of 759, 226 of them
    /// by the oracle).
    #[test]
    fn skip_wal_fsync_is_caught_by_the_kth_sweep() {
        let s = kth::sweep(7, kth::Restart::Kill, true, Some(Canary::SkipWalFsync));
        let (k, why) = s
            .failure
            .clone()
            .expect("SkipWalFsync survived every crash point");
        // Two ways to notice: an acknowledged commit missing (the oracle), or a log
        // whose unsynced tail landed out of order (recovery refuses it as corruption).
        let lost = s
            .failed
            .iter()
            .filter(|(_, v)| v.contains("matches no allowed outcome"))
            .count();
        eprintln!(
            "SkipWalFsync caught at {} of {} crash points ({lost} by the oracle: acknowledged commits lost), first after op {k}: {why}",
            s.failed.len(),
            s.n,
        );
        assert!(lost > 0, "the oracle never saw a lost acknowledged commit");
    }

    /// The k-sweep catches the other storage canaries too, stopping at the first crash
    /// point that fails (measured when written, seed 7: KeepTornWalTail first after op
    /// 51 of 874, DeleteBeforeManifest after op 182 of 986; whole sweeps of seeds 7 and
    /// 8 fail at 14 and 9 crash points, and at 30 and 39).
    #[test]
    fn torn_wal_tail_and_early_delete_are_caught_by_the_kth_sweep() {
        for canary in [Canary::KeepTornWalTail, Canary::DeleteBeforeManifest] {
            let s = kth::sweep(7, kth::Restart::Kill, false, Some(canary));
            match s.failure {
                Some((k, why)) => eprintln!("{canary:?} caught after op {k} of {}: {why}", s.n),
                None => panic!("{canary:?} survived all {} crash points", s.n),
            }
        }
    }

    #[test]
    fn skip_wal_fsync_is_caught_within_5_seeds() {
        assert_caught(
            Canary::SkipWalFsync,
            5,
            plan(&[Trigger::Random], 4, base_faults()),
        );
    }

    #[test]
    fn keep_torn_wal_tail_is_caught_within_10_seeds() {
        assert_caught(
            Canary::KeepTornWalTail,
            10,
            plan(&[Trigger::AfterRecovery], 20, base_faults()),
        );
    }

    #[test]
    fn delete_before_manifest_is_caught_within_10_seeds() {
        assert_caught(
            Canary::DeleteBeforeManifest,
            10,
            plan(&[Trigger::DuringCompaction], 12, base_faults()),
        );
    }
}
