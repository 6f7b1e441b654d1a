//! The driver: runs a target over its corpus, then over mutations of it, until the
//! time or iteration budget is spent; reports findings (see the crate doc).

use crate::alloc;
use crate::mutate::mutate;
use crate::targets::Target;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Target executions (raw and fixed inputs each count).
    pub executions: u64,
    /// Corpus inputs loaded.
    pub corpus: usize,
    /// The largest single allocation seen, and the input length that made it.
    pub largest_allocation: (usize, usize),
    /// Findings written, with what went wrong.
    pub findings: Vec<(PathBuf, String)>,
}

/// Allocation bound for an input of `len` bytes (see the crate doc).
pub fn allocation_limit(target: &Target, len: usize) -> usize {
    64 * len + 64 * 1024 + target.slack
}

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Keeps panic messages for the report instead of printing each one.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = msg);
    }));
}

/// The corpus of `target`: files in `dir/NAME/`, sorted, or its built-in seeds.
pub fn load_corpus(target: &Target, dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join(target.name))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    let mut inputs: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if inputs.is_empty() {
        inputs = (target.seeds)();
    }
    inputs
}

/// Runs `target` once on `input`; `Err` says what went wrong.
pub fn check(target: &Target, input: &[u8]) -> Result<usize, String> {
    let limit = allocation_limit(target, input.len());
    let outcome = std::panic::catch_unwind(|| alloc::largest_allocation(|| (target.run)(input)));
    match outcome {
        Ok(((), largest)) if largest > limit => Err(format!(
            "allocated {largest} bytes at once for a {}-byte input (limit {limit})",
            input.len()
        )),
        Ok(((), largest)) => Ok(largest),
        Err(_) => {
            alloc::stop();
            Err(format!(
                "panic: {}",
                LAST_PANIC.with(|p| p.borrow().clone())
            ))
        }
    }
}

/// Runs `target` for `time` (or `iterations` mutations, whichever ends first) from
/// `seed`, over the corpus in `corpus_dir`; findings go to `findings_dir`.
pub fn run(
    target: &Target,
    seed: u64,
    time: Duration,
    iterations: Option<u64>,
    corpus_dir: &Path,
    findings_dir: &Path,
) -> RunReport {
    quiet_panics();
    let corpus = load_corpus(target, corpus_dir);
    let mut report = RunReport {
        corpus: corpus.len(),
        ..RunReport::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = sim_runtime::time::now();
    let exec = |input: &[u8], report: &mut RunReport| {
        let mut variants = vec![input.to_vec()];
        if let Some(fix) = target.fix {
            let mut fixed = input.to_vec();
            fix(&mut fixed);
            if fixed != input {
                variants.push(fixed);
            }
        }
        for v in variants {
            report.executions += 1;
            match check(target, &v) {
                Ok(largest) if largest > report.largest_allocation.0 => {
                    report.largest_allocation = (largest, v.len());
                }
                Ok(_) => {}
                Err(why) => report
                    .findings
                    .push((write_finding(target, &v, findings_dir), why)),
            }
        }
    };
    for input in &corpus {
        exec(input, &mut report);
    }
    // Mutants join a bounded pool, so mutations stack (a random walk from the corpus).
    let mut pool: Vec<Vec<u8>> = corpus.clone();
    let mut n = 0u64;
    while report.findings.len() < 8 {
        if iterations.is_some_and(|max| n >= max) || (n % 64 == 0 && start.elapsed() >= time) {
            break;
        }
        n += 1;
        let Some(parent) = pool.get(rng.gen_range(0..pool.len().max(1))).cloned() else {
            break;
        };
        let other = pool
            .get(rng.gen_range(0..pool.len()))
            .cloned()
            .unwrap_or_default();
        let child = mutate(&mut rng, &parent, &other);
        exec(&child, &mut report);
        if pool.len() < corpus.len() + 256 {
            pool.push(child);
        } else {
            let i = rng.gen_range(corpus.len()..pool.len());
            pool[i] = child;
        }
    }
    report
}

/// Writes a failing input to `dir/TARGET-CRC.bin`; returns the path.
fn write_finding(target: &Target, input: &[u8], dir: &Path) -> PathBuf {
    let path = dir.join(format!("{}-{:08x}.bin", target.name, crc32c::crc32c(input)));
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(&path, input);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hog(data: &[u8]) {
        // Trusts a length prefix: what every decoder must not do.
        let n = data.first().map_or(0, |&b| usize::from(b) << 20);
        std::hint::black_box(vec![0u8; n]);
    }

    fn boom(data: &[u8]) {
        if data.first() == Some(&0x42) {
            panic!("boom");
        }
    }

    fn none() -> Vec<Vec<u8>> {
        vec![vec![0]]
    }

    /// The driver's two checks fire: an allocation beyond the bound, and a panic.
    #[test]
    fn allocation_and_panic_checks_fire() {
        let hog = Target {
            name: "hog",
            run: hog,
            fix: None,
            slack: 0,
            seeds: none,
        };
        assert!(check(&hog, &[0]).is_ok());
        let why = check(&hog, &[4]).expect_err("4 MiB from a 1-byte input");
        assert!(why.contains("allocated"), "{why}");
        let boom = Target {
            name: "boom",
            run: boom,
            fix: None,
            slack: 0,
            seeds: none,
        };
        quiet_panics();
        assert!(check(&boom, &[1]).is_ok());
        let why = check(&boom, &[0x42]).expect_err("panics");
        assert!(why.contains("boom"), "{why}");
        // A mutation run reaches the panicking byte and writes the input down.
        let dir = std::env::temp_dir().join(format!("seedbank-fuzz-test-{}", std::process::id()));
        let report = run(&boom, 1, Duration::from_secs(60), Some(20_000), &dir, &dir);
        assert!(!report.findings.is_empty(), "{report:?}");
        let input = std::fs::read(&report.findings[0].0).expect("finding written");
        assert_eq!(input.first(), Some(&0x42));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every target survives its own seeds, raw and with checksums fixed.
    #[test]
    fn every_target_accepts_its_seeds() {
        for t in crate::TARGETS {
            for s in (t.seeds)() {
                assert!(!s.is_empty(), "{}: empty seed", t.name);
                check(t, &s).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            }
        }
    }
}
