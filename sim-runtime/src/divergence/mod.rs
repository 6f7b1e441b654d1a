//! Two runs of one seed compared: where they part ([`Divergence`]) and, after a probe
//! re-run of both sides ([`crate::probe`]), which task behaved differently and the line
//! of the user's code it was at ([`Localisation`]).
//!
//! The report is self-consistent by construction: one divergence index `i`; the last
//! common event is event `i - 1` (or none when `i` is 0); each side's event `i` is shown,
//! or the report says why it cannot be (that run ended after `i` events, or it kept only
//! its first `k` events in full).

use crate::probe::{Entry, ProbeLog, TaskOrigin, Window, WINDOW_AFTER};
use crate::trace::{Event, Trace};
use std::fmt;

/// The outcome of running one seed twice.
#[derive(Debug, Clone)]
pub enum Determinism {
    /// Both runs produced the same trace.
    Same { digest: u64, events: u64 },
    /// The runs parted; the first divergent event of each side.
    Differs(Box<Divergence>),
    /// The run reached outside the simulation in a way recognised from its panic (an
    /// OS thread): both runs may fail alike, and that is not determinism.
    Escaped {
        seed: u64,
        escape: crate::escape::Escape,
        message: String,
    },
}

/// Where two runs of one seed parted.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub seed: u64,
    /// Index of the first event that differs.
    pub index: u64,
    /// The first run's event there (None: the run had ended, or it was past the keep
    /// limit; [`Divergence`]'s `Display` says which).
    pub first: Option<Event>,
    /// The second run's event there.
    pub second: Option<Event>,
    /// The last event both runs agree on (event `index - 1`).
    pub last_common: Option<Event>,
    pub digests: (u64, u64),
    pub events: (u64, u64),
    /// Events each run kept in full.
    pub kept: (u64, u64),
    /// The cause, followed by a probe re-run of both sides (None: not attempted).
    pub localisation: Option<Localisation>,
    /// Escapes noted in the runs (a real file, socket, OS entropy, the real clock),
    /// each with the user's line: often the leak itself.
    pub escapes: Vec<crate::escape::Escape>,
}

impl Divergence {
    /// Checks that the report cannot contradict itself: one divergence index, the last
    /// common event just before it, each side's event at it or a stated reason why it
    /// is not shown. What every test of a divergence asserts.
    pub fn verify(&self) -> Result<(), String> {
        let text = self.to_string();
        let fail = |why: &str| Err(format!("{why}:\n{text}"));
        if text.matches("the runs part at event #").count() != 1
            || !text.contains(&format!("the runs part at event #{} ", self.index))
        {
            return fail("not exactly one divergence index");
        }
        match (&self.last_common, self.index) {
            (Some(e), i) if e.index + 1 != i => {
                return fail("the last common event is not the one before")
            }
            (None, 0) if !text.contains("the first event differs") => {
                return fail("no last common event, and no word that the first differs")
            }
            (None, i) if i > 0 && !text.contains("not kept") => {
                return fail("no last common event, and no word why")
            }
            _ => {}
        }
        for (e, count) in [(&self.first, self.events.0), (&self.second, self.events.1)] {
            match e {
                Some(e) if e.index != self.index => {
                    return fail("a side's event is not at the index")
                }
                None if self.index >= count && !text.contains("ended after") => {
                    return fail("a side has no event and no word that it ended")
                }
                None if self.index < count && !text.contains("not kept") => {
                    return fail("a side has no event and no word that it was not kept")
                }
                _ => {}
            }
        }
        if text.contains("(no event)") {
            return fail("a side shown as (no event)");
        }
        Ok(())
    }

    fn missing(&self, run: u8, count: u64, kept: u64) -> String {
        if self.index >= count {
            format!("(none: run {run} ended after {count} events)")
        } else {
            format!(
                "(#{} not kept: run {run} kept only its first {kept} events in full)",
                self.index
            )
        }
    }

    /// The user's source line the localisation names on either side (`file:line:col`
    /// of the innermost user frame), for tests and tools.
    pub fn places(&self) -> Vec<String> {
        let mut out: Vec<String> = self.escapes.iter().filter_map(|e| e.at.clone()).collect();
        out.extend(self.localised_places());
        out
    }

    /// The places the localisation alone names (not the escapes).
    pub fn localised_places(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(l) = &self.localisation {
            let steps = l.tasks.iter().flat_map(|t| [&t.run1, &t.run2]);
            for e in [&l.first, &l.second].into_iter().chain(steps).flatten() {
                out.extend(e.place().map(str::to_string));
            }
        }
        out
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} is NONDETERMINISTIC: the runs part at event #{} (run 1: {} events, digest {:016x}; run 2: {} events, digest {:016x})",
            self.seed, self.index, self.events.0, self.digests.0, self.events.1, self.digests.1
        )?;
        if let Some(i) = self.localisation.as_ref().and_then(|l| l.first_pair_index) {
            if self
                .localisation
                .as_ref()
                .and_then(|l| l.rerun_index)
                .is_some()
            {
                writeln!(
                    f,
                    "  (runs 1 and 2 here are two more runs of the seed, made with probes to follow the divergence; the first two runs parted at event #{i})"
                )?;
            }
        }
        match (&self.last_common, self.index) {
            (_, 0) => writeln!(f, "  last common: (none: the first event differs)")?,
            (Some(e), _) => writeln!(f, "  last common: {e}")?,
            (None, i) => writeln!(
                f,
                "  last common: (#{} not kept: run 1 kept only its first {} events in full)",
                i - 1,
                self.kept.0
            )?,
        }
        match &self.first {
            Some(e) => writeln!(f, "  run 1:       {e}")?,
            None => writeln!(
                f,
                "  run 1:       {}",
                self.missing(1, self.events.0, self.kept.0)
            )?,
        }
        match &self.second {
            Some(e) => write!(f, "  run 2:       {e}")?,
            None => write!(
                f,
                "  run 2:       {}",
                self.missing(2, self.events.1, self.kept.1)
            )?,
        }
        if let Some(l) = &self.localisation {
            write!(f, "\n{l}")?;
        }
        for e in &self.escapes {
            write!(f, "\n  escape noted in the runs: {e}")?;
        }
        Ok(())
    }
}

/// Compares two traces of one seed.
pub fn compare(seed: u64, a: &Trace, b: &Trace) -> Determinism {
    match a.first_divergence(b) {
        None => Determinism::Same {
            digest: a.digest,
            events: a.count,
        },
        Some(index) => Determinism::Differs(Box::new(Divergence {
            seed,
            index,
            first: a.event(index).cloned(),
            second: b.event(index).cloned(),
            last_common: index.checked_sub(1).and_then(|i| a.event(i).cloned()),
            digests: (a.digest, b.digest),
            events: (a.count, b.count),
            kept: (a.events.len() as u64, b.events.len() as u64),
            localisation: None,
            escapes: Vec::new(),
        })),
    }
}

/// Which task behaved differently in two probe runs of a seed, and where.
#[derive(Debug, Clone)]
pub struct Localisation {
    pub window: Window,
    /// The probe runs' own divergence index (they are runs of a nondeterministic seed,
    /// and need not part where the first pair did).
    pub rerun_index: Option<u64>,
    /// The last entry both probe runs agree on.
    pub last_common: Option<Entry>,
    /// The first entry that differs, run 1's side (None: run 1's window ended).
    pub first: Option<Entry>,
    pub second: Option<Entry>,
    /// How the task of each side's entry was spawned (None: not through sim-runtime).
    pub origins: (Option<TaskOrigin>, Option<TaskOrigin>),
    /// The tasks of the two differing entries (one when it is the same task), each with
    /// the last step it took with the user's code on its stack before the runs parted,
    /// in each run.
    pub tasks: Vec<TaskSteps>,
    /// Why the localisation is partial or absent, if it is.
    pub note: Option<String>,
    /// Where the first pair of runs parted, when the probe runs are another pair.
    pub first_pair_index: Option<u64>,
}

/// A task's last step with the user's code on its stack before the runs parted, in
/// each run. When the two differ, this task is the one that behaved differently.
#[derive(Debug, Clone)]
pub struct TaskSteps {
    pub task: u64,
    pub origin: Option<TaskOrigin>,
    pub run1: Option<Entry>,
    pub run2: Option<Entry>,
}

impl TaskSteps {
    /// Whether the task's last steps differ between the runs.
    pub fn differ(&self) -> bool {
        match (&self.run1, &self.run2) {
            (Some(a), Some(b)) => !same(a, b),
            (None, None) => false,
            _ => true,
        }
    }
}

fn same(a: &Entry, b: &Entry) -> bool {
    a.event == b.event
        && a.what == b.what
        && a.task == b.task
        && a.node == b.node
        && a.time_ns == b.time_ns
        && a.frames == b.frames
}

/// The root of a task not spawned through sim-runtime: its outermost user frame.
fn root(e: &Entry) -> Option<&String> {
    e.frames.last()
}

/// Compares two probe runs' logs; `rerun_index` is where their traces part (None: they
/// did not).
pub fn localise(a: &ProbeLog, b: &ProbeLog, rerun_index: Option<u64>) -> Localisation {
    let window = a.window.or(b.window).unwrap_or(Window { from: 0, to: 0 });
    let common = a
        .entries
        .iter()
        .zip(&b.entries)
        .take_while(|(x, y)| same(x, y))
        .count();
    let first = a.entries.get(common).cloned();
    let second = b.entries.get(common).cloned();
    // The last step of `e`'s task with user frames: in the common prefix of the window
    // (the same in both runs), else its last probe point before the window (which need
    // not be the same).
    let last_step = |log: &ProbeLog, e: &Entry| -> Option<Entry> {
        log.entries[..common]
            .iter()
            .rev()
            .filter(|p| !p.frames.is_empty())
            .find(|p| p.task == e.task && (e.task != 0 || root(p) == root(e)))
            .or_else(|| log.before.get(&e.task).filter(|_| e.task != 0))
            .cloned()
    };
    let mut tasks: Vec<TaskSteps> = Vec::new();
    for e in [&first, &second].into_iter().flatten() {
        if tasks.iter().any(|t| t.task == e.task) {
            continue;
        }
        tasks.push(TaskSteps {
            task: e.task,
            origin: (e.task != 0)
                .then(|| {
                    a.tasks
                        .get(&e.task)
                        .or_else(|| b.tasks.get(&e.task))
                        .cloned()
                })
                .flatten(),
            run1: last_step(a, e),
            run2: last_step(b, e),
        });
    }
    // Every event before the window is the same in both runs, so a task whose last step
    // before it differs (a sleep of another length) changed what it did without a trace
    // event: a cause, even when it is not the task the scheduler picked differently.
    let keys: std::collections::BTreeSet<u64> =
        a.before.keys().chain(b.before.keys()).copied().collect();
    for task in keys {
        if tasks.iter().any(|t| t.task == task) {
            continue;
        }
        let steps = TaskSteps {
            task,
            origin: (task != 0)
                .then(|| a.tasks.get(&task).or_else(|| b.tasks.get(&task)).cloned())
                .flatten(),
            run1: a.before.get(&task).cloned(),
            run2: b.before.get(&task).cloned(),
        };
        if steps.differ() {
            tasks.push(steps);
        }
    }
    // The task whose own steps differ is the one to look at: list it first.
    tasks.sort_by_key(|t| !t.differ());
    let origin = |log: &ProbeLog, e: &Option<Entry>| {
        e.as_ref().and_then(|e| {
            (e.task != 0)
                .then(|| log.tasks.get(&e.task).cloned())
                .flatten()
        })
    };
    let note = match rerun_index {
        None => Some(
            "the re-runs did not part this time: the leak did not repeat, so only the first pair's divergence is shown"
                .to_string(),
        ),
        Some(i) if !window.contains(i) => Some(format!(
            "the re-runs parted at event #{i}, outside the window #{}..=#{} the probe watched; the entries below may not be the cause",
            window.from, window.to
        )),
        Some(_) if first.is_none() && second.is_none() => Some(
            "both probe runs did the same inside the window: the difference lies in what no probe point sees"
                .to_string(),
        ),
        Some(_) => None,
    };
    Localisation {
        window,
        rerun_index,
        last_common: common.checked_sub(1).map(|i| a.entries[i].clone()),
        tasks,
        origins: (origin(a, &first), origin(b, &second)),
        first,
        second,
        note,
        first_pair_index: None,
    }
}

/// One probe run: its trace and what the probe recorded.
pub type ProbeRun = (Trace, Option<ProbeLog>);

/// Probe pairs tried before giving up on a pair that parts inside its window.
pub const ATTEMPTS: usize = 4;

/// The widest window a retried probe pair watches (events).
pub const MAX_WINDOW: u64 = 4096;

/// Follows `first` (where the first pair of runs parted) to its cause. `pair(window)`
/// runs the seed twice more as probe runs over `window` (None: it could not). A pair
/// that parts inside its window gives the verdict: its own divergence (its index, its
/// events) with its localisation, so everything shown comes from one pair of runs. A
/// pair that parts elsewhere is followed by another whose window also covers where it
/// parted (up to `MAX_WINDOW` events), up to `ATTEMPTS` pairs; a pair that does not
/// part leaves `first`, with a note.
pub fn follow_up(
    first: Divergence,
    mut pair: impl FnMut(Window) -> Option<(ProbeRun, ProbeRun)>,
) -> Divergence {
    let escapes = first.escapes.clone();
    let mut d = follow_pairs(first, &mut pair);
    for e in escapes {
        if !d.escapes.contains(&e) {
            d.escapes.push(e);
        }
    }
    d
}

fn follow_pairs(
    first: Divergence,
    pair: &mut impl FnMut(Window) -> Option<(ProbeRun, ProbeRun)>,
) -> Divergence {
    let mut window = Window::around(first.index);
    let mut last: Option<Divergence> = None;
    for attempt in 0..ATTEMPTS {
        let Some(((ta, pa), (tb, pb))) = pair(window) else {
            break;
        };
        let empty = ProbeLog::default();
        let (pa, pb) = (pa.as_ref().unwrap_or(&empty), pb.as_ref().unwrap_or(&empty));
        match compare(first.seed, &ta, &tb) {
            Determinism::Differs(mut d) => {
                let inside = window.contains(d.index);
                let mut l = localise(pa, pb, Some(d.index));
                l.first_pair_index = Some(first.index);
                d.localisation = Some(l);
                if inside {
                    return *d;
                }
                // A random leak moves the point where runs part: watch where this pair
                // and the earlier ones parted, with a margin that grows each time
                // (128, 512, 2048 events), up to a bound.
                let around = Window::around(d.index);
                let margin = WINDOW_AFTER << (2 * (attempt as u32 + 1));
                let union = Window {
                    from: window.from.min(around.from).saturating_sub(margin / 2),
                    to: window.to.max(around.to).saturating_add(margin),
                };
                window = if union.to - union.from <= MAX_WINDOW {
                    union
                } else {
                    around
                };
                last = Some(*d);
            }
            _ => {
                if last.is_none() {
                    let mut l = localise(pa, pb, None);
                    l.first_pair_index = Some(first.index);
                    let mut first = first;
                    first.localisation = Some(l);
                    return first;
                }
                break;
            }
        }
    }
    last.unwrap_or(first)
}

/// User frames shown per side.
const FRAMES_SHOWN: usize = 4;

fn side(
    f: &mut fmt::Formatter<'_>,
    run: u8,
    e: &Option<Entry>,
    origin: &Option<TaskOrigin>,
) -> fmt::Result {
    let Some(e) = e else {
        return writeln!(f, "    run {run}: (nothing more inside the window)");
    };
    writeln!(f, "    run {run}: {e}")?;
    match origin {
        Some(o) if o.name == "main" && o.node == 0 => writeln!(
            f,
            "           task {} 'main': the run's body itself",
            e.task
        )?,
        Some(o) => writeln!(
            f,
            "           task {} '{}' on node {}, spawned at {}",
            e.task, o.name, o.node, o.spawned_at
        )?,
        None if e.task == 0 => match root(e) {
            Some(r) => writeln!(
                f,
                "           a task not spawned through sim-runtime (tokio::spawn: madsim keeps its spawn line to itself); its outermost frame in your code: {r}"
            )?,
            None => writeln!(f, "           a task not spawned through sim-runtime")?,
        },
        None => {}
    }
    if e.frames.is_empty() {
        writeln!(
            f,
            "           (no user frames: the executor's or the framework's own)"
        )?;
    }
    for (k, frame) in e.frames.iter().take(FRAMES_SHOWN).enumerate() {
        writeln!(f, "           {} {frame}", if k == 0 { "at" } else { "in" })?;
    }
    Ok(())
}

impl fmt::Display for Localisation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  followed to the cause (both runs again, with backtraces over events #{}..=#{}):",
            self.window.from, self.window.to
        )?;
        if let Some(n) = &self.note {
            writeln!(f, "    note: {n}")?;
        }
        if self.first.is_none() && self.second.is_none() {
            return Ok(());
        }
        match &self.last_common {
            Some(e) => writeln!(f, "    last common step: {e}")?,
            None => writeln!(f, "    last common step: (none inside the window)")?,
        }
        side(f, 1, &self.first, &self.origins.0)?;
        side(f, 2, &self.second, &self.origins.1)?;
        for t in &self.tasks {
            let step = |e: &Option<Entry>| match e {
                Some(e) => format!("{} ({})", e.place().unwrap_or("no user frame"), e.what),
                None => "(no step of it with your code on the stack)".to_string(),
            };
            let origin = match &t.origin {
                Some(o) => format!(
                    " ('{}' on node {}, spawned at {})",
                    o.name, o.node, o.spawned_at
                ),
                None => String::new(),
            };
            if t.differ() {
                writeln!(
                    f,
                    "    task {}{origin} behaved differently: its last step in your code before the runs parted\n      run 1: {}\n      run 2: {}",
                    t.task,
                    step(&t.run1),
                    step(&t.run2)
                )?;
            } else {
                writeln!(
                    f,
                    "    last place task {} reached in your code while the runs agreed: {}",
                    t.task,
                    step(&t.run1)
                )?;
            }
        }
        write!(
            f,
            "    the leak is in what that task did between its last common step and the lines above"
        )
    }
}

/// Adds `more` to `escapes`, without repeats.
pub fn merge_escapes(escapes: &mut Vec<crate::escape::Escape>, more: &[crate::escape::Escape]) {
    for e in more {
        if !escapes.contains(e) {
            escapes.push(e.clone());
        }
    }
}

#[cfg(test)]
mod tests;
