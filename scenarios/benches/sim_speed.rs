//! The simulator's own speed: simulated seconds per wall second and trace events per
//! wall second for the 3-node `chatter` workload (files, network, faults), and the cost
//! of the double-run determinism check relative to one run. A benchmark, not a test:
//! run it with `cargo simbench --bench sim_speed` (simulated world only).
//!
//! Ratios, not absolute times, are what to compare between machines.

#[cfg(madsim)]
fn main() {
    use scenarios::chatter::{self, Params};
    use sim_runtime::sim::{check_determinism, Sim};
    use std::time::Duration;

    let seeds: u64 = std::env::var("SIM_SPEED_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let params = Params::default();
    let sim = |seed| Sim::new(seed).plugin::<sim_fs::SimFs>();
    let mut wall = Duration::ZERO;
    let mut virt = Duration::ZERO;
    let mut events = 0u64;
    for seed in 0..seeds {
        let r = sim(seed).run(move || chatter::run(params));
        assert!(r.output.is_ok(), "seed {seed}: {:?}", r.output.err());
        wall += r.wall_time;
        virt += r.virtual_time;
        events += r.trace.count;
    }
    let w = wall.as_secs_f64();
    println!(
        "sim_speed: {seeds} seeds of chatter (3 nodes, {} msgs/node, faults on)",
        params.messages_per_node
    );
    println!("  seeds/s (one core):              {:.2}", seeds as f64 / w);
    println!(
        "  simulated s per wall s:          {:.1}",
        virt.as_secs_f64() / w
    );
    println!(
        "  trace events per wall s:         {:.0}",
        events as f64 / w
    );
    println!(
        "  events per seed:                 {}",
        events / seeds.max(1)
    );

    // Double-run check cost against single runs of the same seeds, measured in this run.
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    let t0 = std::time::Instant::now();
    let check_seeds = seeds.min(5);
    for seed in 0..check_seeds {
        let _ = check_determinism(&sim(seed), move || chatter::run(params));
    }
    let double = t0.elapsed().as_secs_f64();
    #[allow(clippy::disallowed_methods)]
    let t1 = std::time::Instant::now();
    for seed in 0..check_seeds {
        let _ = sim(seed).run(move || chatter::run(params));
    }
    let single = t1.elapsed().as_secs_f64();
    println!("  double-run check / single run:   {:.2}x", double / single);

    // The cost of localisation (D48), measured in this run on the same seed: chatter,
    // then a back-off drawn from OS entropy, so the runs part at the end of a full-length
    // trace (the probe keeps every sleep's stack up to its window). One run; the double
    // run that only compares (what a check costs when it finds nothing to follow); the
    // check that follows the divergence to its line. A small run (the default chatter)
    // and one ten times longer: the probe's cost is mostly fixed (resolving a few hundred
    // stacks), so its ratio falls as runs grow.
    for messages_per_node in [params.messages_per_node, params.messages_per_node * 10] {
        let p = Params {
            messages_per_node,
            duration_ms: params.duration_ms * messages_per_node / params.messages_per_node.max(1),
            ..params
        };
        localisation_cost(p, check_seeds, &sim);
    }
}

#[cfg(madsim)]
fn localisation_cost(
    params: scenarios::chatter::Params,
    runs: u64,
    sim: &dyn Fn(u64) -> sim_runtime::sim::Sim,
) {
    use sim_runtime::sim::{check_determinism, compare, Determinism};
    use std::time::Duration;
    #[allow(clippy::disallowed_methods)] // the planted leak being measured
    let leaky = move || async move {
        let summary = scenarios::chatter::run(params).await;
        let backoff = rand::random::<u64>() % 1000 + 1;
        sim_runtime::time::sleep(Duration::from_millis(backoff)).await;
        summary.sent
    };
    let time = |f: &dyn Fn()| {
        #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
        let t = std::time::Instant::now();
        for _ in 0..runs {
            f();
        }
        t.elapsed().as_secs_f64()
    };
    let seed = 1;
    // Warm-up: the first stack resolved in a process loads the binary's debug info.
    let warm = check_determinism(&sim(seed), leaky);
    let (index, named) = match &warm {
        Determinism::Differs(d) => {
            let named = !d.localised_places().is_empty();
            if !named {
                println!("  (not localised this time:\n{d})");
            }
            (d.index, named)
        }
        _ => (0, false),
    };
    let one = time(&|| {
        let _ = sim(seed).run(leaky);
    });
    let compare_only = time(&|| {
        let a = sim(seed).run(leaky);
        let b = sim(seed).run(leaky);
        let _ = compare(seed, &a.trace, &b.trace);
    });
    let localised = time(&|| {
        let _ = check_determinism(&sim(seed), leaky);
    });
    let probe_only = time(&|| {
        let _ = sim(seed)
            .probe(sim_runtime::probe::Window::around(index))
            .run(leaky);
    });
    println!(
        "  localisation, chatter {} msgs/node, the runs part at event #{index} (localised: {named}; one run {:.1} ms):",
        params.messages_per_node,
        one * 1000.0 / runs as f64
    );
    println!(
        "    double run, compare only / one run:         {:.2}x",
        compare_only / one
    );
    println!(
        "    double run, followed to its line / one run: {:.2}x",
        localised / one
    );
    println!(
        "    (one probe run / one run:                    {:.2}x)",
        probe_only / one
    );
}

#[cfg(not(madsim))]
fn main() {
    eprintln!("sim_speed measures the simulated world: cargo simbench --bench sim_speed");
}
