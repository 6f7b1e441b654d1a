//! API conformance: one suite, written once against the public API, run in the real
//! world on a fresh temp directory (tokio runtime) and in the simulated world on
//! sim-fs (with and without injected latency). The case functions are the same in both
//! worlds; a behaviour that differs between them fails here.
#![allow(clippy::unwrap_used)] // an integration test crate: unwrap is an assertion (D70)

use sim_fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The conformance cases. Each takes a fresh, empty, existing directory.
mod cases {
    use super::*;

    pub async fn create_write_read_back(root: PathBuf) {
        let p = root.join("f");
        let f = File::create(&p).await.unwrap();
        f.write_all_at(b"hello world", 0).await.unwrap();
        f.write_all_at(b"W", 6).await.unwrap();
        let mut buf = [0u8; 11];
        f.read_exact_at(&mut buf, 0).await.unwrap();
        assert_eq!(&buf, b"hello World");
        assert_eq!(f.len().await.unwrap(), 11);
        // A write past the end zero-fills the gap.
        f.write_all_at(b"!", 15).await.unwrap();
        let mut buf = [0xffu8; 5];
        f.read_exact_at(&mut buf, 11).await.unwrap();
        assert_eq!(&buf, b"\0\0\0\0!");
        f.sync_data().await.unwrap();
        f.sync_all().await.unwrap();
        drop(f);
        assert_eq!(sim_fs::read(&p).await.unwrap(), b"hello World\0\0\0\0!");
    }

    pub async fn append_returns_offsets(root: PathBuf) {
        let f = File::create(root.join("log")).await.unwrap();
        assert_eq!(f.append(b"abc").await.unwrap(), 0);
        assert_eq!(f.append(b"de").await.unwrap(), 3);
        f.write_all_at(b"XYZ", 10).await.unwrap();
        assert_eq!(f.append(b"!").await.unwrap(), 13);
        assert_eq!(f.len().await.unwrap(), 14);
    }

    pub async fn append_mode_writes_at_end(root: PathBuf) {
        let p = root.join("a");
        sim_fs::write(&p, b"0123").await.unwrap();
        let f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&p)
            .await
            .unwrap();
        // As on Linux: with O_APPEND a positional write still lands at the end.
        f.write_all_at(b"xy", 0).await.unwrap();
        assert_eq!(sim_fs::read(&p).await.unwrap(), b"0123xy");
    }

    pub async fn set_len_truncates_and_extends(root: PathBuf) {
        let f = File::create(root.join("s")).await.unwrap();
        f.write_all_at(b"abcdef", 0).await.unwrap();
        f.set_len(3).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 3);
        f.set_len(5).await.unwrap();
        let mut buf = [0xffu8; 5];
        f.read_exact_at(&mut buf, 0).await.unwrap();
        assert_eq!(&buf, b"abc\0\0");
    }

    pub async fn short_read_only_at_eof(root: PathBuf) {
        let f = File::create(root.join("r")).await.unwrap();
        f.write_all_at(&[7u8; 100], 0).await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(f.read_at(&mut buf, 0).await.unwrap(), 64);
        assert_eq!(f.read_at(&mut buf, 60).await.unwrap(), 40);
        assert_eq!(f.read_at(&mut buf, 100).await.unwrap(), 0);
        assert_eq!(f.read_at(&mut buf, 1000).await.unwrap(), 0);
        let err = f.read_exact_at(&mut buf, 50).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    pub async fn create_truncates_existing(root: PathBuf) {
        let p = root.join("t");
        sim_fs::write(&p, b"long contents").await.unwrap();
        let f = File::create(&p).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 0);
        drop(f);
        let f = File::open(&p).await.unwrap();
        f.write_all_at(b"x", 0).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 1);
    }

    pub async fn rename_replaces_destination(root: PathBuf) {
        let (a, b) = (root.join("a"), root.join("b"));
        sim_fs::write(&a, b"new").await.unwrap();
        sim_fs::write(&b, b"old contents").await.unwrap();
        sim_fs::rename(&a, &b).await.unwrap();
        assert!(!sim_fs::exists(&a).await.unwrap());
        assert_eq!(sim_fs::read(&b).await.unwrap(), b"new");
        let err = sim_fs::rename(&a, &b).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        sim_fs::sync_dir(&root).await.unwrap();
    }

    pub async fn remove_file_and_unlinked_handle(root: PathBuf) {
        let p = root.join("gone");
        let f = File::create(&p).await.unwrap();
        f.write_all_at(b"still here", 0).await.unwrap();
        sim_fs::remove_file(&p).await.unwrap();
        assert!(!sim_fs::exists(&p).await.unwrap());
        // POSIX: the open handle keeps the unlinked file alive.
        let mut buf = [0u8; 10];
        f.read_exact_at(&mut buf, 0).await.unwrap();
        assert_eq!(&buf, b"still here");
        let err = sim_fs::remove_file(&p).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = File::open(&p).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    pub async fn read_dir_sorted(root: PathBuf) {
        for name in ["c", "a", "b10", "b2"] {
            sim_fs::write(root.join(name), b"x").await.unwrap();
        }
        sim_fs::create_dir_all(root.join("d/e")).await.unwrap();
        let entries = sim_fs::read_dir(&root).await.unwrap();
        let expected: Vec<PathBuf> = ["a", "b10", "b2", "c", "d"]
            .iter()
            .map(|n| root.join(n))
            .collect();
        assert_eq!(entries, expected);
        assert_eq!(
            sim_fs::read_dir(root.join("d")).await.unwrap(),
            vec![root.join("d/e")]
        );
        assert!(sim_fs::read_dir(root.join("d/e")).await.unwrap().is_empty());
        let err = sim_fs::read_dir(root.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    pub async fn exists_and_metadata(root: PathBuf) {
        let p = root.join("m");
        sim_fs::write(&p, [1u8; 1234]).await.unwrap();
        let m = sim_fs::metadata(&p).await.unwrap();
        assert_eq!((m.len, m.is_dir), (1234, false));
        assert!(sim_fs::metadata(&root).await.unwrap().is_dir);
        assert!(sim_fs::exists(&p).await.unwrap());
        assert!(sim_fs::exists(&root).await.unwrap());
        assert!(!sim_fs::exists(root.join("nope")).await.unwrap());
        let err = sim_fs::metadata(root.join("nope")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    pub async fn open_missing_is_not_found(root: PathBuf) {
        let err = File::open(root.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = OpenOptions::new()
            .read(true)
            .open(root.join("missing"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        // create does not create missing parents
        let err = File::create(root.join("no/such/dir/f")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    pub async fn create_new_on_existing_is_already_exists(root: PathBuf) {
        let p = root.join("x");
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        let f = opts.open(&p).await.unwrap();
        f.write_all_at(b"1", 0).await.unwrap();
        let err = opts.open(&p).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(sim_fs::read(&p).await.unwrap(), b"1");
    }

    pub async fn create_dir_all_nested_and_idempotent(root: PathBuf) {
        let d = root.join("x/y/z");
        sim_fs::create_dir_all(&d).await.unwrap();
        sim_fs::create_dir_all(&d).await.unwrap();
        assert!(sim_fs::metadata(&d).await.unwrap().is_dir);
        sim_fs::sync_dir(root.join("x/y")).await.unwrap();
        let f = root.join("file");
        sim_fs::write(&f, b"").await.unwrap();
        assert!(sim_fs::create_dir_all(&f).await.is_err());
        assert!(sim_fs::create_dir_all(f.join("sub")).await.is_err());
    }

    pub async fn invalid_options_and_access_modes(root: PathBuf) {
        let p = root.join("ro");
        sim_fs::write(&p, b"data").await.unwrap();
        let err = OpenOptions::new().open(&p).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = OpenOptions::new()
            .read(true)
            .create(true)
            .open(&p)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let ro = OpenOptions::new().read(true).open(&p).await.unwrap();
        assert!(ro.write_all_at(b"x", 0).await.is_err());
        assert!(ro.append(b"x").await.is_err());
        let wo = OpenOptions::new().write(true).open(&p).await.unwrap();
        let mut buf = [0u8; 4];
        assert!(wo.read_at(&mut buf, 0).await.is_err());
        assert_eq!(sim_fs::read(&p).await.unwrap(), b"data");
    }

    /// Issue 19, finding 5 (D54): one holder per directory; the second is told who
    /// holds it; dropping the lock frees it. Fails before D54 (no lock existed).
    pub async fn dir_lock_is_exclusive_and_names_its_holder(root: PathBuf) {
        let first = sim_fs::lock_dir(&root, "the first opener").await.unwrap();
        match sim_fs::lock_dir(&root, "the second opener").await {
            Err(sim_fs::LockError::Held { holder, .. }) => {
                assert!(holder.contains("the first opener"), "{holder}")
            }
            other => panic!("a second lock was not refused: {other:?}"),
        }
        drop(first);
        let again = sim_fs::lock_dir(&root, "the third opener").await.unwrap();
        assert_eq!(again.dir(), root.as_path());
        let missing = root.join("missing");
        assert!(matches!(
            sim_fs::lock_dir(&missing, "x").await,
            Err(sim_fs::LockError::Io { .. })
        ));
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                world::run(stringify!($case), |root| Box::pin(cases::$case(root)));
            }
        )*
    };
}

conformance!(
    create_write_read_back,
    append_returns_offsets,
    append_mode_writes_at_end,
    set_len_truncates_and_extends,
    short_read_only_at_eof,
    create_truncates_existing,
    rename_replaces_destination,
    remove_file_and_unlinked_handle,
    read_dir_sorted,
    exists_and_metadata,
    open_missing_is_not_found,
    create_new_on_existing_is_already_exists,
    create_dir_all_nested_and_idempotent,
    invalid_options_and_access_modes,
    dir_lock_is_exclusive_and_names_its_holder,
);

type Case = fn(PathBuf) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[cfg(not(madsim))]
mod world {
    use super::*;

    /// Runs `case` on a fresh directory under the system temp dir, then removes it.
    pub fn run(name: &str, case: Case) {
        let root = std::env::temp_dir().join(format!(
            "seedbank-sim-fs-conformance-{}-{name}",
            std::process::id()
        ));
        #[allow(clippy::disallowed_methods)] // the real backend's suite needs a real runtime
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                sim_fs::create_dir_all(&root).await.unwrap();
                assert!(
                    sim_fs::read_dir(&root).await.unwrap().is_empty(),
                    "fresh root"
                );
                case(root.clone()).await;
            })
        }));
        remove_tree(&root);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }

    // Test cleanup of the real temp directory; sim-fs has no recursive remove.
    #[allow(clippy::disallowed_methods)]
    fn remove_tree(root: &Path) {
        let _ = std::fs::remove_dir_all(root);
    }
}

#[cfg(madsim)]
mod world {
    use super::*;
    use sim_fs::sim::{FaultConfig, LatencyConfig};

    /// Runs `case` on sim-fs from the main task (node 0): once plainly, once with every
    /// operation delayed by a random virtual latency.
    pub fn run(name: &str, case: Case) {
        for (seed, latency) in [(1u64, false), (2, true)] {
            let report = sim_runtime::sim::Sim::new(seed)
                .plugin::<sim_fs::SimFs>()
                .run(move || async move {
                    if latency {
                        sim_fs::sim::set_fault_config(FaultConfig {
                            latency: LatencyConfig {
                                probability: 1.0,
                                min_us: 1,
                                max_us: 500,
                            },
                            ..FaultConfig::default()
                        });
                    }
                    let root = Path::new("/conformance").to_path_buf();
                    sim_fs::create_dir_all(&root).await.unwrap();
                    case(root).await;
                    sim_fs::sim::verify_invariants(0).unwrap();
                    sim_fs::sim::fault_config(0).latency.probability
                });
            match report.output {
                Ok(p) => assert_eq!(p > 0.0, latency),
                Err(e) => panic!(
                    "{name} (seed {seed}, latency {latency}) failed in the simulated world: {e}"
                ),
            }
        }
    }
}
