//! Scenarios: a workload, a topology, the faults it may suffer, and its checks.
//!
//! Adding one is a few lines — an entry in [`all`]:
//!
//! ```ignore
//! Scenario {
//!     name: "bank-embedded",
//!     about: "transfers between accounts; the total is conserved",
//!     topology: Topology::Embedded,
//!     faults: FaultSpace::EMBEDDED,
//!     clients: 4,
//!     ops: 200,
//!     keys: 8,
//!     workload: || Box::new(Bank),
//!     plan_file: None,
//!     liveness: LIVENESS,
//!     must_reach: &[must_reach("lsm.gc_keeps_old_version_for_open_snapshot", 30)],
//! }
//! ```
//!
//! The same workload on a replicated cluster is `topology: Topology::Cluster { nodes: 3 }`
//! with `faults: FaultSpace::CLUSTER` (partitions, clogged links and message faults
//! join the node faults).
//!
//! The runner does the rest: draws a fault plan from the seed within `faults` (or
//! reads `plan_file`), runs the clients, executes the plan, and checks the workload's
//! invariant after every recovery, the durability oracle (when the workload's writes
//! are unique), the history checker the workload names, recovery idempotence and
//! liveness after the last fault heals.

use super::plan::{FaultPlan, FaultSpace};
use crate::workload::{self, HistoryCheck, Workload};
use sim_runtime::cover::MustReach;
use std::time::Duration;

/// After the last fault heals, the cluster may go this long (virtual time) without
/// deciding an operation; the embedded topology must finish the workload within it.
pub const LIVENESS: Duration = Duration::from_secs(30);

/// Where the database runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One node with the embedded engine; the clients run on it (and die with it).
    Embedded,
    /// A Raft group of `nodes` replicas (the replicated database), each on its own
    /// simulated node and disk; the clients run on another node and survive replica
    /// crashes (an unknown commit outcome is retried exactly once by the client).
    Cluster { nodes: u32 },
    /// A cluster as above with an impostor beside it (forged Raft traffic and commits
    /// under five disguises, `runner::impostor`). With `authenticated` the replicas and
    /// clients use simulated credentials and the impostor must have no effect (the
    /// `impostor` check); without, it is the check's negative control.
    Impostor { nodes: u32, authenticated: bool },
}

impl Topology {
    pub fn nodes(self) -> u32 {
        match self {
            Topology::Embedded => 1,
            Topology::Cluster { nodes } | Topology::Impostor { nodes, .. } => nodes,
        }
    }
}

/// A named chaos scenario.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub topology: Topology,
    /// Fault kinds the seed may switch on (swarm testing picks a subset per seed).
    pub faults: FaultSpace,
    /// Concurrent clients.
    pub clients: usize,
    /// Client operations per run (the plan carries it, so shrinking can lower it).
    pub ops: u64,
    /// Keys, chosen Zipfian.
    pub keys: u64,
    pub workload: fn() -> Box<dyn Workload>,
    /// A fixed fault schedule (JSON, [`FaultPlan`]) instead of one drawn per seed.
    pub plan_file: Option<&'static str>,
    /// After the plan's last timed fault heals, the remaining operations must complete
    /// within this much virtual time (and a cluster must acknowledge at least one).
    pub liveness: Duration,
    /// Coverage marks every sweep of this scenario must reach, each within a stated
    /// number of seeds (`sweep` fails when it ran that many and none reached it).
    pub must_reach: &'static [MustReach],
}

impl Scenario {
    /// The checks this scenario runs, by name (what `seedbank list` prints).
    pub fn checks(&self) -> Vec<&'static str> {
        let w = (self.workload)();
        let mut out = vec!["invariant"];
        if w.unique_writes() {
            out.push("durability");
        }
        match w.history_check() {
            HistoryCheck::ListAppend => out.push("elle"),
            HistoryCheck::Register => out.push("linearizability"),
            HistoryCheck::None => {}
        }
        match self.topology {
            Topology::Embedded => {
                if self.faults.crash || self.faults.kill || self.plan_file.is_some() {
                    out.push("recovery-idempotence");
                }
            }
            Topology::Cluster { .. } => {
                out.push("raft-safety");
                out.push("whole-cluster-power-loss");
            }
            Topology::Impostor { .. } => {
                out.push("raft-safety");
                out.push("whole-cluster-power-loss");
                out.push("impostor");
            }
        }
        out.push("liveness");
        out
    }

    /// The layers whose coverage marks this scenario can reach (its report lists the
    /// marks of these layers that no seed reached).
    pub fn mark_layers(&self) -> &'static [&'static str] {
        match self.topology {
            Topology::Embedded => &["lsm", "mvcc", "db"],
            Topology::Cluster { .. } => &["lsm", "mvcc", "db", "raft", "replicated", "scenario"],
            Topology::Impostor { .. } => {
                &["lsm", "mvcc", "db", "raft", "replicated", "scenario", "net"]
            }
        }
    }

    /// The marks this scenario's report accounts for: every mark of its layers.
    pub fn mark_universe(&self) -> std::collections::BTreeSet<&'static str> {
        sim_runtime::cover::catalog_of(self.mark_layers())
    }

    /// The fixed plan, if the scenario has one.
    pub fn fixed_plan(&self) -> Option<Result<FaultPlan, String>> {
        self.plan_file.map(FaultPlan::from_json)
    }
}

/// Every built-in scenario.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "bank-embedded",
            about: "transfers between 8 accounts and snapshot reads of all; total conserved, no overdraft",
            topology: Topology::Embedded,
            faults: FaultSpace::EMBEDDED,
            clients: 4,
            ops: 200,
            keys: workload::bank::ACCOUNTS,
            workload: || Box::new(workload::bank::Bank),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::BANK_EMBEDDED,
        },
        Scenario {
            name: "list-append-embedded",
            about: "Elle list-append transactions over Zipfian keys; serializability from the values read",
            topology: Topology::Embedded,
            faults: FaultSpace::EMBEDDED,
            clients: 4,
            ops: 200,
            keys: 8,
            workload: || Box::new(workload::list_append::ListAppend::new()),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::LIST_APPEND_EMBEDDED,
        },
        Scenario {
            name: "register-embedded",
            about: "single-key reads (half through range scans), writes of unique values, deletes, and a write or delete read back in one transaction; per-key linearizability",
            topology: Topology::Embedded,
            faults: FaultSpace::EMBEDDED,
            clients: 4,
            ops: 200,
            keys: 4,
            workload: || Box::new(workload::register::Register::new()),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::REGISTER_EMBEDDED,
        },
        Scenario {
            name: "write-skew-embedded",
            about: "doctors on call: go off call after a range scan shows another on call; one always on call",
            topology: Topology::Embedded,
            faults: FaultSpace::EMBEDDED,
            clients: 4,
            ops: 200,
            keys: 6,
            workload: || Box::new(workload::write_skew::WriteSkew),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::WRITE_SKEW_EMBEDDED,
        },
        Scenario {
            name: "crash-durability",
            about: "list-append with 1 KiB values under power loss with torn writes and fsync failures, on a fixed crash schedule (a data file); every acknowledged commit survives",
            topology: Topology::Embedded,
            faults: FaultSpace::EMBEDDED,
            clients: 4,
            ops: 300,
            keys: 16,
            workload: || Box::new(workload::list_append::ListAppend::padded(1024)),
            plan_file: Some(include_str!("../../plans/crash-durability.json")),
            liveness: LIVENESS,
            must_reach: super::must_reach::CRASH_DURABILITY,
        },
        Scenario {
            name: "bitrot-embedded",
            about: "list-append under power loss that may flip a bit of synced data: the engine must refuse damaged bytes with a typed corruption error (the run ends there) or recover a state every check accepts, never wrong data",
            topology: Topology::Embedded,
            faults: FaultSpace {
                bitflips: true,
                ..FaultSpace::EMBEDDED
            },
            clients: 4,
            ops: 200,
            keys: 8,
            workload: || Box::new(workload::list_append::ListAppend::padded(200)),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::BITROT_EMBEDDED,
        },
        Scenario {
            name: "bank-cluster",
            about: "bank transfers on a 3-replica Raft cluster under crashes, partitions and message faults; total conserved",
            topology: Topology::Cluster { nodes: 3 },
            faults: FaultSpace::CLUSTER,
            clients: 4,
            ops: 200,
            keys: workload::bank::ACCOUNTS,
            workload: || Box::new(workload::bank::Bank),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::BANK_CLUSTER,
        },
        Scenario {
            name: "list-append-cluster",
            about: "Elle list-append on a 5-replica Raft cluster (two may fail at once); strict serializability from the values read",
            topology: Topology::Cluster { nodes: 5 },
            faults: FaultSpace::CLUSTER,
            clients: 4,
            ops: 200,
            keys: 8,
            workload: || Box::new(workload::list_append::ListAppend::new()),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::LIST_APPEND_CLUSTER,
        },
        Scenario {
            name: "register-cluster",
            about: "register-embedded's reads, writes and deletes on a 3-replica Raft cluster; per-key linearizability with unknown outcomes",
            topology: Topology::Cluster { nodes: 3 },
            faults: FaultSpace::CLUSTER,
            clients: 4,
            ops: 200,
            keys: 4,
            workload: || Box::new(workload::register::Register::new()),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::REGISTER_CLUSTER,
        },
        Scenario {
            name: "write-skew-cluster",
            about: "doctors on call on a 3-replica Raft cluster: the replicated layer's range validation must refuse the second doctor going off call",
            topology: Topology::Cluster { nodes: 3 },
            faults: FaultSpace::CLUSTER,
            clients: 4,
            ops: 200,
            keys: 6,
            workload: || Box::new(workload::write_skew::WriteSkew),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::WRITE_SKEW_CLUSTER,
        },
        Scenario {
            name: "partition-heal",
            about: "a 3-replica cluster partitioned every way in turn (a data file), then healed: it must serve again within 5 s, linearizably",
            topology: Topology::Cluster { nodes: 3 },
            faults: FaultSpace::CLUSTER,
            clients: 4,
            ops: 600,
            keys: 4,
            workload: || Box::new(workload::register::Register::new()),
            plan_file: Some(include_str!("../../plans/partition-heal.json")),
            liveness: Duration::from_secs(5),
            must_reach: super::must_reach::PARTITION_HEAL,
        },
        Scenario {
            name: "impostor-cluster",
            about: "register reads and writes on a 3-replica cluster with simulated credentials, beside an impostor (no or foreign credentials, a client speaking Raft, forged votes/appends/heartbeats with terms up to 2^64-1); its effect must be nil",
            topology: Topology::Impostor {
                nodes: 3,
                authenticated: true,
            },
            faults: FaultSpace::CLUSTER,
            clients: 4,
            ops: 200,
            keys: 4,
            workload: || Box::new(workload::register::Register::new()),
            plan_file: None,
            liveness: LIVENESS,
            must_reach: super::must_reach::IMPOSTOR_CLUSTER,
        },
    ]
}

/// Demonstration scenarios with a planted bug: they are expected to fail, so they are
/// not in [`all`] (a sweep of every scenario must be clean), but every command finds
/// them by name. The README walks a newcomer through one: sweep, shrink, replay, look.
pub fn demos() -> Vec<Scenario> {
    vec![Scenario {
        name: "demo-unknown-as-acked",
        about: "DEMO, fails by design: crash-durability's workload and faults, but the client counts a commit whose outcome is unknown (a failed fsync) as acknowledged; the durability oracle must catch the lost write",
        topology: Topology::Embedded,
        faults: FaultSpace::EMBEDDED,
        clients: 4,
        ops: 300,
        keys: 16,
        workload: || {
            Box::new(workload::planted::UnknownAsAcknowledged(Box::new(
                workload::list_append::ListAppend::padded(1024),
            )))
        },
        plan_file: None,
        liveness: LIVENESS,
        must_reach: &[],
    }]
}

/// The scenario named `name` (a built-in one or a demo).
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().chain(demos()).find(|s| s.name == name)
}
