//! `seedbank-fuzz`: runs the stable fuzz targets (see the `fuzz` crate doc).
//!
//! ```text
//! seedbank-fuzz list
//! seedbank-fuzz TARGET|all [--seconds N] [--iterations N] [--seed S]
//! seedbank-fuzz seed-corpus        write each target's built-in seeds to fuzz/corpus/
//! ```
//! Exit status: 0 nothing found, 1 a finding (its input is in fuzz/findings/), 2 usage.

#[cfg(not(madsim))]
#[global_allocator]
static ALLOC: fuzz::alloc::Counting = fuzz::alloc::Counting;

#[cfg(madsim)]
fn main() {
    eprintln!("seedbank-fuzz runs in the real world only (build without --cfg madsim)");
}

#[cfg(not(madsim))]
#[allow(clippy::disallowed_methods)]
fn main() -> std::process::ExitCode {
    use std::path::Path;
    use std::process::ExitCode;
    use std::time::Duration;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (corpus, findings) = (root.join("corpus"), root.join("findings"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: seedbank-fuzz list | seed-corpus | TARGET|all [--seconds N] [--iterations N] [--seed S]");
        ExitCode::from(2)
    };
    let Some(what) = args.first() else {
        return usage();
    };
    let mut seconds = 10u64;
    let mut iterations = None;
    let mut seed = 0u64;
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--seconds", Some(v)) => seconds = v,
            ("--iterations", Some(v)) => iterations = Some(v),
            ("--seed", Some(v)) => seed = v,
            _ => return usage(),
        }
    }
    match what.as_str() {
        "list" => {
            for t in fuzz::TARGETS {
                println!("{}", t.name);
            }
            return ExitCode::SUCCESS;
        }
        "seed-corpus" => {
            for t in fuzz::TARGETS {
                let dir = corpus.join(t.name);
                let _ = std::fs::create_dir_all(&dir);
                for (i, s) in (t.seeds)().iter().enumerate() {
                    let _ = std::fs::write(dir.join(format!("seed-{i}.bin")), s);
                }
            }
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let targets: Vec<&fuzz::Target> = if what == "all" {
        fuzz::TARGETS.iter().collect()
    } else {
        match fuzz::targets::target(what) {
            Some(t) => vec![t],
            None => {
                eprintln!("unknown target {what}; see `seedbank-fuzz list`");
                return ExitCode::from(2);
            }
        }
    };
    let mut failed = false;
    for t in targets {
        let r = fuzz::run(
            t,
            seed,
            Duration::from_secs(seconds),
            iterations,
            &corpus,
            &findings,
        );
        println!(
            "{:<10} {:>9} executions, corpus {:>3}, largest allocation {} B (input {} B), {} findings",
            t.name,
            r.executions,
            r.corpus,
            r.largest_allocation.0,
            r.largest_allocation.1,
            r.findings.len()
        );
        for (path, why) in &r.findings {
            failed = true;
            println!("  FINDING {}: {why}", path.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
