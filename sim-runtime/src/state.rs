//! Per-run state. In simulation it is a thread-local created at the start of a run
//! (every run has its own fresh thread). In the real world there is one process-wide
//! instance behind a mutex, since tokio moves tasks between threads.

use crate::trace::Recorder;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Where a run branches: from virtual time `at`, streams are salted with `salt`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Branch {
    pub at: std::time::Duration,
    pub salt: u64,
    pub taken: bool,
}

/// Everything a run owns besides madsim's own state.
pub(crate) struct RunState {
    pub seed: u64,
    pub streams: BTreeMap<String, ChaCha8Rng>,
    /// Salt of every stream created from now on (0 until a branch is taken).
    pub stream_salt: u64,
    /// The run's branch points, in time order ([`crate::rng::branch_at`]).
    pub branches: Vec<Branch>,
    pub buggify_enabled: bool,
    /// Per call site: whether it is active this run.
    pub buggify_sites: BTreeMap<(&'static str, u32, u32), bool>,
    pub faults: BTreeMap<String, u64>,
    /// Hits of each coverage mark this run, by name (`cover!`).
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub marks: BTreeMap<&'static str, u64>,
    /// Virtual time (ns) of each mark's first hit this run.
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub mark_first_ns: BTreeMap<&'static str, u64>,
    pub recorder: Recorder,
    pub next_task_id: u64,
    /// Per simulated node: clock offset (ns) and drift (parts per million).
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub clocks: BTreeMap<u64, (i64, i64)>,
    /// Nodes whose next madsim `kill` is a power loss rather than a process death.
    #[cfg_attr(not(madsim), allow(dead_code))]
    pub power_loss: std::collections::BTreeSet<u64>,
    /// A probe run's recorder of steps and stacks (None: an ordinary run).
    pub probe: Option<crate::probe::Probe>,
}

impl RunState {
    pub fn new(seed: u64) -> Self {
        RunState {
            seed,
            streams: BTreeMap::new(),
            stream_salt: 0,
            branches: Vec::new(),
            buggify_enabled: cfg!(madsim),
            buggify_sites: BTreeMap::new(),
            faults: BTreeMap::new(),
            marks: BTreeMap::new(),
            mark_first_ns: BTreeMap::new(),
            recorder: Recorder::default(),
            next_task_id: 1,
            clocks: BTreeMap::new(),
            power_loss: Default::default(),
            probe: None,
        }
    }
}

#[cfg(madsim)]
mod imp {
    use super::RunState;
    use std::cell::RefCell;

    thread_local! {
        static STATE: RefCell<Option<RunState>> = const { RefCell::new(None) };
    }

    /// Install fresh state for a run on this thread.
    pub(crate) fn install(state: RunState) {
        STATE.with(|s| *s.borrow_mut() = Some(state));
    }

    /// Remove and return this thread's run state.
    pub(crate) fn take() -> Option<RunState> {
        STATE.with(|s| s.borrow_mut().take())
    }

    /// Run `f` on this thread's run state, creating it from madsim's seed when a test
    /// runs under plain `#[madsim::test]` rather than [`crate::sim::Sim`].
    pub(crate) fn with<R>(f: impl FnOnce(&mut RunState) -> R) -> R {
        STATE.with(|s| {
            let mut slot = s.borrow_mut();
            let state = slot.get_or_insert_with(|| {
                let seed = madsim::runtime::Handle::try_current()
                    .map(|h| h.seed())
                    .unwrap_or(0);
                RunState::new(seed)
            });
            f(state)
        })
    }

    /// Like [`with`] but a no-op (returning `None`) when re-entered, e.g. when the
    /// tracing layer fires while the state is already borrowed.
    pub(crate) fn try_with<R>(f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
        STATE.with(|s| {
            let mut slot = s.try_borrow_mut().ok()?;
            slot.as_mut().map(f)
        })
    }
}

#[cfg(not(madsim))]
mod imp {
    use super::RunState;
    use std::sync::{Mutex, OnceLock};

    fn global() -> &'static Mutex<RunState> {
        static STATE: OnceLock<Mutex<RunState>> = OnceLock::new();
        STATE.get_or_init(|| {
            let seed = std::env::var("SEEDBANK_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(os_seed);
            Mutex::new(RunState::new(seed))
        })
    }

    fn os_seed() -> u64 {
        use rand::RngCore;
        // The real world is allowed to be random; this is its one entropy source.
        rand::rngs::OsRng.next_u64()
    }

    pub(crate) fn with<R>(f: impl FnOnce(&mut RunState) -> R) -> R {
        let mut guard = crate::sync::lock(global());
        f(&mut guard)
    }

    pub(crate) fn try_with<R>(f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
        let mut guard = global().try_lock().ok()?;
        Some(f(&mut guard))
    }
}

pub(crate) use imp::*;

pub(crate) fn seed() -> u64 {
    with(|s| s.seed)
}
