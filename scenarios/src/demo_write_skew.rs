//! `seedbank demo write-skew`: the doctors-on-call anomaly, prevented.
//!
//! Alice and Bob are on call; the rule is that at least one stays on. Two transactions
//! run concurrently on two tasks of a multi-threaded runtime (real world, real disk):
//! each checks that both doctors are on call, then takes its own doctor off. Under
//! snapshot isolation both would commit and nobody would be on call. Under SSI the
//! second committer is the pivot of `t1 →rw t2 →rw t1` and is refused. The tasks take
//! turns (read, read, write, write, commit, commit), so the run prints the same story
//! every time.

use std::process::ExitCode;

#[cfg(not(madsim))]
pub fn main() -> ExitCode {
    #[allow(clippy::disallowed_methods)] // the real-world demo's entry point owns its runtime
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::env::temp_dir().join(format!("seedbank-write-skew-{}", std::process::id()));
    let result = rt.block_on(run(&dir));
    #[allow(clippy::disallowed_methods)] // the demo removes its own scratch directory
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo in `dir`; returns whether the invariant held.
#[cfg(not(madsim))]
pub async fn run(dir: &std::path::Path) -> Result<bool, engine::Error> {
    use engine::{CommitOutcome, Db, Options};
    use std::sync::Arc;

    println!("seedbank demo write-skew: doctors on call, rule = at least one stays on\n");
    let db = Db::open(dir, Options::default()).await?;
    let mut setup = db.begin();
    setup.put(b"alice".to_vec(), b"on".to_vec()).await?;
    setup.put(b"bob".to_vec(), b"on".to_vec()).await?;
    setup.commit().await?;
    println!("initial:   alice=on bob=on");

    // The schedule, step by step: t1 reads, t2 reads, t1 writes, t2 writes, t1
    // commits, t2 commits. Each task waits for its turn, so the story is repeatable.
    let steps = Arc::new(Steps::default());
    let doctor = |name: &'static str, me: &'static str, turns: [u32; 3]| {
        let db = db.clone();
        let steps = steps.clone();
        sim_runtime::task::spawn(async move {
            steps.wait_for(turns[0]).await;
            let mut txn = db.begin();
            let alice = txn.get(b"alice").await?;
            let bob = txn.get(b"bob").await?;
            let on = |v: &Option<Vec<u8>>| v.as_deref() == Some(b"on".as_slice());
            println!(
                "{name}: reads alice={} bob={} -> both on, so {me} may go off",
                if on(&alice) { "on" } else { "off" },
                if on(&bob) { "on" } else { "off" }
            );
            steps.advance();
            steps.wait_for(turns[1]).await;
            txn.put(me.as_bytes().to_vec(), b"off".to_vec()).await?;
            println!("{name}: writes {me}=off");
            steps.advance();
            steps.wait_for(turns[2]).await;
            let outcome = txn.commit().await;
            match &outcome {
                Ok(CommitOutcome::Committed { ts }) => {
                    println!("{name}: commit -> COMMITTED at ts {}", ts.0)
                }
                Ok(CommitOutcome::Aborted(c)) => {
                    println!("{name}: commit -> REFUSED, {} conflict: {c}", c.kind())
                }
                Err(e) => println!("{name}: commit -> error: {e}"),
            }
            steps.advance();
            outcome
        })
    };
    let t1 = doctor("t1", "alice", [0, 2, 4]);
    let t2 = doctor("t2", "bob", [1, 3, 5]);
    let join = |r: Result<Result<CommitOutcome, engine::Error>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(engine::Error::Poisoned(format!("task failed: {e}"))))
    };
    let o1 = join(t1.await)?;
    let o2 = join(t2.await)?;

    let read = db.begin();
    let alice = read.get(b"alice").await?;
    let bob = read.get(b"bob").await?;
    let show = |v: Option<Vec<u8>>| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned();
    let (alice, bob) = (show(alice), show(bob));
    println!("\nfinal:     alice={alice} bob={bob}");
    let held = alice == "on" || bob == "on";
    let refused = [&o1, &o2]
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Aborted(_)))
        .count();
    if held && refused == 1 {
        println!("invariant held: one doctor is on call; SSI refused exactly one transaction (retry it and it sees the other's write).");
    } else {
        println!("INVARIANT BROKEN or unexpected outcome: refused={refused}");
    }
    db.close().await?;
    Ok(held && refused == 1)
}

/// A step counter two tasks take turns on.
#[cfg(not(madsim))]
#[derive(Default)]
struct Steps {
    step: std::sync::atomic::AtomicU32,
    notify: tokio::sync::Notify,
}

#[cfg(not(madsim))]
impl Steps {
    async fn wait_for(&self, step: u32) {
        use std::sync::atomic::Ordering;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.step.load(Ordering::SeqCst) == step {
                return;
            }
            notified.await;
        }
    }

    fn advance(&self) {
        self.step.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

#[cfg(madsim)]
pub fn main() -> ExitCode {
    eprintln!("seedbank demo write-skew runs in the real world: cargo run --bin seedbank -- demo write-skew");
    ExitCode::from(2)
}
