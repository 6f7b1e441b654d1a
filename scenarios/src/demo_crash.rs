//! `seedbank demo crash`: a simulated node appends checksummed records to a log,
//! fsyncing every [`SYNC_EVERY`] records, and loses power at a moment the seed picks.
//! After the restart, recovery scans the log, keeps the valid prefix and cuts the torn
//! tail, and the demo shows what survived against what was acknowledged durable.
//!
//! The promise under test is the one every storage engine makes: a record whose fsync
//! returned survives any crash; a record that was only written may survive whole, torn
//! or not at all.

use std::process::ExitCode;

/// Records between two fsyncs.
pub const SYNC_EVERY: u64 = 4;
/// Payload bytes per record: over one 512 B sector, so a torn write shows as a prefix.
pub const PAYLOAD_BYTES: usize = 700;

/// What a demo run observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Records appended before the crash.
    pub written: u64,
    /// Records whose fsync returned before the crash.
    pub durable: u64,
    /// Records recovery found intact, in order from the start of the log.
    pub recovered: u64,
    /// Bytes after the last valid record that recovery cut off.
    pub torn_tail_bytes: u64,
    /// Log length after the crash.
    pub log_bytes: u64,
    /// Virtual time of the crash, in microseconds.
    pub crash_at_us: u64,
}

impl Outcome {
    /// Whether the durability promise held.
    pub fn promise_held(&self) -> bool {
        self.recovered >= self.durable && self.recovered <= self.written
    }
}

/// Encodes record `index` in the WAL's framing (`engine::framing`: u32 length, CRC32C
/// over length and payload, payload).
pub fn encode_record(index: u64) -> Vec<u8> {
    let mut payload = format!("record {index:06} ").into_bytes();
    payload.resize(PAYLOAD_BYTES, b'a' + (index % 26) as u8);
    engine::framing::encode_record(&payload).expect("a demo record is far below the size limit")
}

/// Scans a log image: the number of valid records from the start and the offset where
/// the valid prefix ends — the WAL's own recovery scan, plus a check that each record is
/// the one that belongs at its position.
pub fn scan_log(bytes: &[u8]) -> (u64, u64) {
    let (records, _) = engine::framing::decode_records(bytes);
    let mut offset = 0u64;
    let mut count = 0u64;
    for payload in &records {
        if payload.len() != PAYLOAD_BYTES
            || !payload.starts_with(format!("record {count:06} ").as_bytes())
        {
            break;
        }
        offset += (engine::framing::HEADER_BYTES + payload.len()) as u64;
        count += 1;
    }
    (count, offset)
}

#[cfg(madsim)]
pub use sim::{main, run, sim_config};

#[cfg(madsim)]
mod sim {
    use super::*;
    use rand::Rng;
    use sim_runtime::sim::Sim;
    use sim_runtime::time::{self, Duration};
    use sim_runtime::{node, rng};
    use std::sync::{Arc, Mutex};

    const DIR: &str = "/data";
    const LOG: &str = "/data/records.log";

    #[derive(Default)]
    struct Shared {
        boots: u64,
        written: u64,
        durable: u64,
        recovery: Option<(u64, u64, u64)>,
        events: Vec<String>,
    }

    /// The simulated run: returns what happened, and the narration lines.
    pub async fn run() -> (Outcome, Vec<String>) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = shared.clone();
        let db = node::build("db")
            .ip("10.0.0.1".parse().expect("literal address"))
            .init(move || node_main(s.clone()))
            .create();
        let crash_after = Duration::from_micros(rng::stream("demo").gen_range(20_000..150_000));
        time::sleep(crash_after).await;
        let crash_at_us = time::elapsed().as_micros() as u64;
        {
            let mut sh = shared.lock().expect("single-threaded simulation");
            let (w, d) = (sh.written, sh.durable);
            sh.events.push(format!(
                "t={:.6}s  POWER LOSS on node db: {w} records written, {d} acknowledged durable",
                crash_at_us as f64 / 1e6
            ));
        }
        db.crash();
        time::sleep(Duration::from_millis(10)).await;
        db.restart();
        loop {
            if shared.lock().expect("single-threaded").recovery.is_some() {
                break;
            }
            time::sleep(Duration::from_millis(1)).await;
        }
        let sh = shared.lock().expect("single-threaded");
        let (recovered, valid_end, log_bytes) = sh.recovery.expect("checked above");
        let outcome = Outcome {
            written: sh.written,
            durable: sh.durable,
            recovered,
            torn_tail_bytes: log_bytes - valid_end,
            log_bytes,
            crash_at_us,
        };
        (outcome, sh.events.clone())
    }

    async fn node_main(shared: Arc<Mutex<Shared>>) {
        let boot = {
            let mut sh = shared.lock().expect("single-threaded");
            sh.boots += 1;
            sh.boots
        };
        if boot > 1 {
            // Restarted after the crash: recover and report. The log may not exist at
            // all if the power failed before its directory entry was synced.
            let bytes = if sim_fs::exists(LOG).await.expect("stat the log") {
                sim_fs::read(LOG).await.expect("read the log after restart")
            } else {
                Vec::new()
            };
            let (count, valid_end) = scan_log(&bytes);
            let mut sh = shared.lock().expect("single-threaded");
            sh.events.push(format!(
                "t={:.6}s  node db restarted; recovery read {} bytes: {count} intact records, then {} bytes cut as a torn tail",
                time::elapsed().as_secs_f64(),
                bytes.len(),
                bytes.len() as u64 - valid_end
            ));
            sh.recovery = Some((count, valid_end, bytes.len() as u64));
            return;
        }
        sim_fs::create_dir_all(DIR).await.expect("create /data");
        let file = sim_fs::File::create(LOG).await.expect("create the log");
        // Make every directory entry on the way durable — the log's in /data AND /data's
        // in / — or a power loss can take the whole log (DECISIONS.md D7).
        sim_fs::sync_dir(DIR).await.expect("sync /data");
        sim_fs::sync_dir("/").await.expect("sync /");
        for index in 0u64.. {
            file.append(&encode_record(index)).await.expect("append");
            shared.lock().expect("single-threaded").written = index + 1;
            if (index + 1) % SYNC_EVERY == 0 {
                file.sync_data().await.expect("fsync");
                let mut sh = shared.lock().expect("single-threaded");
                sh.durable = index + 1;
                sh.events.push(format!(
                    "t={:.6}s  fsync returned: records 0..={index} durable",
                    time::elapsed().as_secs_f64()
                ));
            }
            let pause = rng::stream("demo").gen_range(500..5_000);
            time::sleep(Duration::from_micros(pause)).await;
        }
    }

    /// The simulation configuration of the demo.
    pub fn sim_config(seed: u64) -> Sim {
        Sim::new(seed)
            .plugin::<sim_fs::SimFs>()
            .time_limit(Duration::from_secs(60))
    }

    /// `seedbank demo crash --seed N`.
    pub fn main(seed: u64) -> ExitCode {
        println!("seedbank demo crash, seed {seed} (simulated world)");
        println!(
            "node db appends {PAYLOAD_BYTES}-byte checksummed records to {LOG}, fsync after every {SYNC_EVERY}; the seed picks when the power fails\n"
        );
        let report = sim_config(seed).run(run);
        let (outcome, events) = match report.output {
            Ok(v) => v,
            Err(panic) => {
                eprintln!("the run failed: {panic}");
                return ExitCode::FAILURE;
            }
        };
        // Narrate the first fsync, then only the last two before the crash.
        let fsyncs: Vec<usize> = (0..events.len())
            .filter(|&i| events[i].contains("fsync returned"))
            .collect();
        for (i, e) in events.iter().enumerate() {
            let rank = fsyncs.iter().position(|&f| f == i);
            match rank {
                Some(r) if r > 0 && r + 2 < fsyncs.len() => {
                    if r == 1 {
                        println!("  ... {} more fsyncs ...", fsyncs.len() - 3);
                    }
                }
                _ => println!("  {e}"),
            }
        }
        println!("\nfaults injected by the sim-fs crash model:");
        for (kind, n) in &report.faults {
            println!("  {kind:<20} {n}");
        }
        println!(
            "\nwritten {} | acknowledged durable {} | recovered intact {} | torn tail {} bytes",
            outcome.written, outcome.durable, outcome.recovered, outcome.torn_tail_bytes
        );
        println!(
            "trace: {} events, digest {:016x}, virtual time {:?}, wall time {:?}",
            report.trace.count, report.trace.digest, report.virtual_time, report.wall_time
        );
        println!("replay: cargo sim demo crash --seed {seed}");
        if outcome.promise_held() {
            println!("promise held: every record acknowledged durable survived the power loss.");
            ExitCode::SUCCESS
        } else {
            println!("PROMISE BROKEN: an acknowledged record was lost.");
            ExitCode::FAILURE
        }
    }
}

/// Real-world build: the demo needs the simulated world.
#[cfg(not(madsim))]
pub fn main(_seed: u64) -> ExitCode {
    eprintln!("seedbank demo crash runs in the simulated world. Run it with:");
    eprintln!("  cargo sim demo crash --seed 1");
    eprintln!(
        "(= RUSTFLAGS=\"--cfg madsim\" cargo run --target-dir target/sim --bin seedbank -- demo crash --seed 1)"
    );
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_stops_at_a_torn_record() {
        let mut log = Vec::new();
        for i in 0..3 {
            log.extend(encode_record(i));
        }
        assert_eq!(scan_log(&log), (3, log.len() as u64));
        let full = log.len();
        log.extend(&encode_record(3)[..300]); // torn: a prefix only
        assert_eq!(scan_log(&log), (3, full as u64));
        log.truncate(full);
        let mut bad = encode_record(3);
        bad[100] ^= 1; // a flipped bit
        log.extend(bad);
        assert_eq!(scan_log(&log), (3, full as u64));
        log.truncate(full);
        log.extend(encode_record(7)); // valid record in the wrong place
        assert_eq!(scan_log(&log), (3, full as u64));
    }
}
