//! Embedded-database benchmark (real world, real disk): durable single-key commits per
//! second at 1, 4 and 16 concurrent committers (group commit must show as a ratio), and
//! random point reads per second over N keys. Run: `cargo bench -p engine --bench db`
//! (`DB_BENCH_KEYS`, default 1,000,000; `DB_BENCH_SECS`, default 3 per measurement).
//! Figures are reported with ratios against the 1-committer baseline of the same run.

#[cfg(not(madsim))]
fn main() {
    #![allow(clippy::disallowed_methods)] // a benchmark measures wall time on the real disk
    use engine::{CommitOutcome, Db, Options};
    use rand::{Rng, SeedableRng};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let keys: u64 = std::env::var("DB_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let secs: u64 = std::env::var("DB_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("seedbank-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let db = Db::open(&dir, Options::default()).await.expect("open");
        let key = |i: u64| format!("key{i:013}").into_bytes(); // 16 bytes
        let value = vec![b'v'; 100];

        // Durable commits from N concurrent committers, each on its own key.
        let mut baseline = 0.0;
        for committers in [1u64, 4, 16] {
            let done = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for c in 0..committers {
                let (db, done, value) = (db.clone(), done.clone(), value.clone());
                tasks.push(tokio::spawn(async move {
                    let k = format!("commit{c:010}").into_bytes();
                    while Instant::now() < deadline {
                        let mut t = db.begin();
                        let _ = t.get(&k).await.expect("get");
                        t.put(k.clone(), value.clone()).await.expect("put");
                        if let CommitOutcome::Committed { .. } = t.commit().await.expect("commit") {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            let start = Instant::now();
            for t in tasks {
                t.await.expect("committer");
            }
            let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
            if committers == 1 {
                baseline = rate;
            }
            println!(
                "commit-{committers:<2}  {rate:>10.0} durable commits/s  ({:.1}x commit-1)",
                rate / baseline
            );
        }

        // Fill N keys in random order, 1,000 per commit.
        let fill_start = Instant::now();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut order: Vec<u64> = (0..keys).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        for chunk in order.chunks(1000) {
            let mut t = db.begin();
            for &i in chunk {
                t.put(key(i), value.clone()).await.expect("put");
            }
            t.commit().await.expect("commit");
        }
        let fill = fill_start.elapsed().as_secs_f64();
        println!(
            "fill       {:>10.0} keys/s ({keys} keys, 1,000 per commit, {fill:.1}s)",
            keys as f64 / fill
        );

        // Random point reads, each a single-read transaction.
        for threads in [1u64, 2] {
            let done = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for r in 0..threads {
                let (db, done) = (db.clone(), done.clone());
                tasks.push(tokio::spawn(async move {
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(100 + r);
                    while Instant::now() < deadline {
                        for _ in 0..256 {
                            let t = db.begin();
                            let v = t.get(key(rng.gen_range(0..keys))).await.expect("get");
                            assert!(v.is_some());
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            let start = Instant::now();
            for t in tasks {
                t.await.expect("reader");
            }
            let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
            println!("read-{threads}     {rate:>10.0} point reads/s over {keys} keys");
        }
        db.close().await.expect("close");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(madsim)]
fn main() {
    eprintln!("the db benchmark measures the real world: cargo bench -p engine --bench db");
}
