//! What a sweep found: one [`Failure`] per failing seed, with everything needed to act
//! on it, and the [`SweepReport`] over all seeds.

use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use sim_runtime::cover::{Coverage, MustReach};
use sim_runtime::escape::Escape;
use sim_runtime::sim::Divergence;
use sim_runtime::trace::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Why a seed failed.
#[derive(Debug, Clone)]
pub enum FailureKind {
    /// The body (or a task it started) panicked.
    Panicked {
        message: String,
        /// `file:line:col` of the panic.
        location: Option<String>,
    },
    /// The body returned `Err`.
    Returned(String),
    /// The code reached outside the simulation in a way the harness recognizes.
    Escaped { escape: Escape, message: String },
    /// Two runs of the seed produced different traces.
    Nondeterministic(Box<Divergence>),
}

/// One failing seed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The test's libtest name.
    pub test: String,
    pub seed: u64,
    pub kind: FailureKind,
    /// The first run's verdict when `kind` is a divergence (`None`: it passed).
    pub first_run_error: Option<String>,
    /// Faults injected in the (first) run, by kind.
    pub faults: BTreeMap<String, u64>,
    /// The disk fault configuration of the run (`None`: no disk faults).
    pub fs_faults: Option<FaultConfig>,
    /// The network fault configuration of the run (`None`: no network faults).
    pub net_faults: Option<NetFaultConfig>,
    pub virtual_time: Duration,
    /// Trace events of the run.
    pub events: u64,
    pub digest: u64,
    /// The events around the run's last faults (and each node's last fault), then its
    /// last events; task polls and spawns left out; in trace order.
    pub recent: Vec<Event>,
    /// The one command that replays this failure.
    pub reproduce: String,
    /// Escapes noted in the (first) run, each with the user's line.
    pub escapes: Vec<Escape>,
}

impl Failure {
    /// Whether the failure is a difference between two runs of the seed.
    pub fn is_nondeterministic(&self) -> bool {
        matches!(self.kind, FailureKind::Nondeterministic(_))
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `kind count, kind count…`, or `none`.
pub(crate) fn fault_list(faults: &BTreeMap<String, u64>) -> String {
    if faults.is_empty() {
        return "none".to_string();
    }
    faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hint(message: &str) -> Option<&'static str> {
    if message.contains("no events, all tasks will block forever") {
        Some("deadlock: every task is waiting and no timer is pending (a recv nobody will send to, a lock never released)")
    } else if message.contains("time limit exceeded") {
        Some("the run passed its virtual time limit: a livelock, or a body that never returns (raise it with Test::time_limit if the test is just long)")
    } else {
        None
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seedbank: {} FAILED on seed {}", self.test, self.seed)?;
        match &self.kind {
            FailureKind::Panicked { message, location } => {
                match location {
                    Some(l) => writeln!(f, "  panicked at {l}:")?,
                    None => writeln!(f, "  panicked:")?,
                }
                writeln!(f, "{}", indent(message, "    "))?;
                if let Some(h) = hint(message) {
                    writeln!(f, "  ({h})")?;
                }
            }
            FailureKind::Returned(e) => writeln!(f, "  {e}")?,
            FailureKind::Escaped { escape, message } => {
                writeln!(f, "  ESCAPED THE SIMULATION: the test {}", escape.what)?;
                match &escape.at {
                    Some(at) => writeln!(f, "    at {at}")?,
                    None => writeln!(f, "    (no frame of your code in the backtrace)")?,
                }
                writeln!(f, "    {}", escape.instead)?;
                writeln!(f, "    the panic: {}", message.replace('\n', " "))?;
            }
            FailureKind::Nondeterministic(d) => {
                writeln!(f, "{}", indent(&d.to_string(), "  "))?;
                writeln!(
                    f,
                    "  one seed, two different runs: something outside the simulation leaked in (OS \
                     randomness such as rand::thread_rng, the CPU counter, the real clock, the real \
                     disk or a real socket, process-wide state, a randomly seeded hasher's iteration \
                     order); {}",
                    if d.localisation.as_ref().is_some_and(|l| l.first.is_some() || l.second.is_some()) {
                        "the lines above are where the task that behaved differently was in your code"
                    } else {
                        "look at or just before run 1's event above"
                    }
                )?;
                match &self.first_run_error {
                    Some(e) => writeln!(
                        f,
                        "  the check's first run also failed: {}",
                        e.replace('\n', " ")
                    )?,
                    None => writeln!(f, "  the check's first run passed")?,
                }
            }
        }
        if !self.is_nondeterministic() {
            for e in &self.escapes {
                writeln!(f, "  escape noted in the run: {e}")?;
            }
        }
        writeln!(f, "  faults fired: {}", fault_list(&self.faults))?;
        match &self.fs_faults {
            Some(c) => writeln!(f, "  disk fault rates: {c:?}")?,
            None => writeln!(f, "  disk fault rates: none injected")?,
        }
        match &self.net_faults {
            Some(c) => writeln!(f, "  network fault rates: {c:?}")?,
            None => writeln!(f, "  network fault rates: none injected")?,
        }
        writeln!(
            f,
            "  {}: {:?} of virtual time, {} trace events, digest {:016x}",
            if self.is_nondeterministic() {
                "the check's first run"
            } else {
                "run"
            },
            self.virtual_time,
            self.events,
            self.digest
        )?;
        if !self.recent.is_empty() {
            writeln!(
                f,
                "  events around the last faults, and the last events (polls hidden; `…` skips):"
            )?;
            let mut previous: Option<u64> = None;
            for e in &self.recent {
                if previous.is_some_and(|p| e.index > p + 1) {
                    writeln!(f, "    …")?;
                }
                let mark = if matches!(
                    e.kind,
                    sim_runtime::trace::EventKind::Fault | sim_runtime::trace::EventKind::Node
                ) {
                    ">"
                } else {
                    " "
                };
                writeln!(f, "  {mark} {e}")?;
                previous = Some(e.index);
            }
        }
        writeln!(f, "  reproduce (SEEDBANK_TRACE=1 prints the run's events):")?;
        write!(f, "    {}", self.reproduce)
    }
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// The test's libtest name.
    pub test: String,
    /// The seeds the sweep was asked to run.
    pub planned: Range<u64>,
    /// Seeds that ran (fewer than planned when the sweep stopped at a failure).
    pub seeds_run: u64,
    /// Seeds that ran twice for the determinism check.
    pub checked_twice: u64,
    /// Failing seeds, lowest first.
    pub failures: Vec<Failure>,
    /// Faults injected over all runs, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Which coverage marks the runs reached.
    pub coverage: Coverage,
    /// The marks the report accounts for (its unreached list draws from these).
    pub mark_universe: BTreeSet<&'static str>,
    /// What the test declared it must reach.
    pub must_reach: Vec<MustReach>,
    /// Virtual time over all runs.
    pub virtual_time: Duration,
    /// Wall-clock time of the sweep.
    pub wall_time: Duration,
}

impl SweepReport {
    /// The lowest failing seed's failure.
    pub fn first_failure(&self) -> Option<&Failure> {
        self.failures.first()
    }

    /// Whether every seed passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The must-reach marks that no seed reached (judged only when every planned seed
    /// ran: a sweep stopped early by a failure reports that failure instead).
    pub fn missed_marks(&self) -> Vec<MustReach> {
        let all_ran = self.seeds_run >= self.planned.end.saturating_sub(self.planned.start);
        if !all_ran {
            return Vec::new();
        }
        self.must_reach
            .iter()
            .filter(|m| !self.coverage.reached.contains_key(m.mark))
            .copied()
            .collect()
    }

    /// The failing seeds, lowest first.
    pub fn failing_seeds(&self) -> Vec<u64> {
        self.failures.iter().map(|f| f.seed).collect()
    }

    /// One paragraph: seeds run and failed, determinism checks, time, faults fired.
    pub fn summary(&self) -> String {
        let verdict = if self.passed() {
            format!("{} seeds passed", self.seeds_run)
        } else {
            format!(
                "{} of {} seeds FAILED {:?}",
                self.failures.len(),
                self.seeds_run,
                self.failing_seeds()
            )
        };
        format!(
            "seedbank: {}: {verdict} (planned {}..{}), {} run twice for determinism; \
             {:.1?} virtual in {:.1?} wall\n  faults fired: {}",
            self.test,
            self.planned.start,
            self.planned.end,
            self.checked_twice,
            self.virtual_time,
            self.wall_time,
            fault_list(&self.faults)
        ) + "\n"
            + self
                .coverage
                .render(self.mark_universe.iter().copied(), &[], "  ")
                .trim_end()
            + &self
                .missed_marks()
                .iter()
                .map(|m| {
                    format!(
                        "\n  MUST-REACH MISSED: no seed reached coverage mark {}",
                        m.mark
                    )
                })
                .collect::<String>()
    }
}
