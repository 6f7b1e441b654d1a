//! Determinism proven, not assumed: a 3-node run with file and network traffic and
//! faults gives the same trace digest twice, and different seeds give different ones.
#![cfg(madsim)]

use scenarios::chatter::{self, Params};
use sim_runtime::sim::{check_determinism, Determinism, Sim};

fn sim(seed: u64) -> Sim {
    Sim::new(seed).plugin::<sim_fs::SimFs>()
}

#[test]
fn multi_node_run_with_files_network_and_faults_is_deterministic() {
    let params = Params {
        messages_per_node: 60,
        duration_ms: 2_000,
        faults: true,
    };
    let report = sim(21).run(move || chatter::run(params));
    let summary = report.output.as_ref().expect("run completes").clone();
    assert!(summary.sent > 100 && summary.received > 50, "{summary:?}");
    assert!(summary.logged_bytes > 0);
    // The faults really fired in this run.
    for kind in ["net.partition_drop", "node.crash", "fs.latency"] {
        assert!(
            report.faults.get(kind).copied().unwrap_or(0) > 0,
            "{kind}: {:?}",
            report.faults
        );
    }
    let kinds = report
        .trace
        .events
        .iter()
        .map(|e| e.kind)
        .collect::<std::collections::BTreeSet<_>>();
    for kind in [
        sim_runtime::EventKind::File,
        sim_runtime::EventKind::Send,
        sim_runtime::EventKind::Deliver,
        sim_runtime::EventKind::Node,
        sim_runtime::EventKind::Poll,
    ] {
        assert!(kinds.contains(&kind), "trace has {kind:?} events");
    }
    match check_determinism(&sim(21), move || chatter::run(params)) {
        Determinism::Same { digest, events } => {
            assert_eq!(digest, report.trace.digest);
            assert_eq!(events, report.trace.count);
        }
        Determinism::Differs(d) => panic!("{d}"),
        escaped @ Determinism::Escaped { .. } => panic!("{escaped:?}"),
    }
    let other = sim(22).run(move || chatter::run(params));
    assert_ne!(
        other.trace.digest, report.trace.digest,
        "seed 22 must differ from 21"
    );
}
