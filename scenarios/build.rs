//! Tells the binary which optimisation level it was built at, so the simulator's
//! benchmark (`seedbank bench --workload sim`) can say what it measured.

fn main() {
    let opt_level = std::env::var("OPT_LEVEL").unwrap_or_else(|_| "?".to_owned());
    println!("cargo:rustc-env=SEEDBANK_OPT_LEVEL={opt_level}");
    println!("cargo:rerun-if-changed=build.rs");
}
