//! The chaos commands over the counter (D90), as a user's crate would offer them:
//!
//! ```sh
//! RUSTFLAGS="--cfg madsim" cargo run -p replicated-counter --bin counter-chaos -- list
//! RUSTFLAGS="--cfg madsim" cargo run -p replicated-counter --bin counter-chaos -- sweep --seeds 0..64 --jobs 2
//! ```
//!
//! `counter` is the correct counter; `counter-ack-before-fsync` the same scenario with
//! the planted bug switched on at run time (the same plan for each seed);
//! `counter-leaking-the-pid` a correct counter whose runs depend on the process id (a
//! planted leak that `check-determinism` catches).

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    use replicated_counter::chaos_scenario::{scenario, system, system_leaking_the_pid};
    use seedbank::chaos::cli::{Cli, Entry};
    let bug = cfg!(feature = "ack-before-fsync");
    Cli::new(vec![
        Entry::new("counter", scenario(), system(bug))
            .about("three counter nodes under every cluster fault"),
        Entry::new("counter-ack-before-fsync", scenario(), system(true))
            .about("the same, with the planted bug: acknowledge before fsync"),
        Entry::new(
            "counter-leaking-the-pid",
            scenario(),
            system_leaking_the_pid(),
        )
        .about("correct, but think times read the process id: check-determinism fails"),
    ])
    .reproduce_with(Cli::cargo_bin(
        env!("CARGO_PKG_NAME"),
        env!("CARGO_BIN_NAME"),
    ))
    .main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "the chaos commands run in the simulated world: RUSTFLAGS=\"--cfg madsim\" cargo run -p replicated-counter --bin counter-chaos -- --help"
    );
    std::process::ExitCode::from(2)
}
