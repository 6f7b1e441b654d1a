//! `seedbank check-determinism <scenario> --seed N`: run the seed twice, each on a
//! fresh thread and runtime, compare the trace digests, and on a difference print the
//! first divergent event with both sides, followed to the task that behaved
//! differently and its line (a probe re-run of both sides). An escape recognised in the
//! run's panic (an OS thread) is reported as such with its line, exit 1: both runs may
//! fail alike, and that is not determinism. Exit codes fit `git bisect run`: 0 same,
//! 1 differs (or escaped), 125 cannot test.

use std::process::ExitCode;

#[cfg(madsim)]
pub fn main(scenario: &str, seed: u64) -> ExitCode {
    use sim_runtime::sim::{check_determinism, Determinism};
    let outcome = match scenario {
        "demo-crash" => {
            check_determinism(&crate::demo_crash::sim_config(seed), crate::demo_crash::run)
        }
        other => match crate::runner::commands::check_determinism(other, seed) {
            Ok(verdict) => verdict,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(125);
            }
        },
    };
    match outcome {
        Determinism::Same { digest, events } => {
            println!("seed {seed} of {scenario} is deterministic: {events} events, digest {digest:016x} both runs");
            ExitCode::SUCCESS
        }
        Determinism::Differs(d) => {
            println!("{d}");
            ExitCode::from(1)
        }
        Determinism::Escaped {
            seed,
            escape,
            message,
        } => {
            println!("seed {seed} of {scenario} cannot be deterministic: {escape}");
            println!("  the run failed: {}", message.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

#[cfg(not(madsim))]
pub fn main(_scenario: &str, _seed: u64) -> ExitCode {
    eprintln!("check-determinism needs the simulated world: cargo sim check-determinism <scenario> --seed N");
    ExitCode::from(125)
}
