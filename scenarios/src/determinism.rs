//! `seedbank check-determinism <scenario> --seed N`: run the seed twice, each on a
//! fresh thread and runtime, compare the trace digests, and on a difference print the
//! first divergent event with both sides. Exit codes fit `git bisect run`: 0 same,
//! 1 differs, 125 cannot test.

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
    }
}

#[cfg(not(madsim))]
pub fn main(_scenario: &str, _seed: u64) -> ExitCode {
    eprintln!("check-determinism needs the simulated world: cargo sim check-determinism <scenario> --seed N");
    ExitCode::from(125)
}
