//! Coverage marks: named situations a sweep should reach, and a report of which it did.
//!
//! A check can only catch a bug in a situation the run reached. A mark names such a
//! situation at the line where the code is in it — "a leader was elected while entries
//! of an older term were uncommitted", "a compaction dropped a version an open snapshot
//! still reads" — in the manner of TigerBeetle's coverage marks and Antithesis'
//! sometimes-assertions:
//!
//! ```
//! # let older_term_uncommitted = true;
//! sim_runtime::cover!("raft.leader_with_uncommitted_older_term", older_term_uncommitted);
//! sim_runtime::cover!("lsm.flush_during_compaction");
//! ```
//!
//! ## Model
//! - Every `cover!` call site places a [`Mark`] (name, file, line) in one link-time
//!   list ([`catalog`]), so a report can name the marks *no* run reached, not only the
//!   ones some run did. Several sites may share a name (one situation, several places).
//! - A simulated run counts the hits of each name ([`hits`]; [`crate::sim::RunReport`]
//!   carries them) and records the first hit of each name as a `Mark` trace event, so a
//!   replay shows when the run first got there.
//! - [`Coverage`] folds the runs of a sweep into per-mark seed counts, the marks never
//!   reached, and the [`MustReach`] declarations a sweep missed. Both runners (the
//!   scenario runner and the `seedbank` test harness) print it.
//!
//! ## Invariants
//! - Hitting a mark never changes what the run does: it draws no randomness and its
//!   trace event is recorded only in simulation. In the real world `cover!` compiles to
//!   nothing but the site's static (the condition is not evaluated).
//! - A mark name is a dotted path whose first part is its layer (`lsm.`, `mvcc.`,
//!   `raft.`, `replicated.`, or a user's own prefix); reports group by it.
//!
//! ## Non-goals
//! - Line or branch coverage: marks are the situations a person chose to name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

#[doc(hidden)]
pub mod __private {
    pub use linkme;
}

/// One `cover!` call site (created by the macro).
#[derive(Debug)]
pub struct Mark {
    pub name: &'static str,
    pub file: &'static str,
    pub line: u32,
}

/// Every mark compiled into this binary, from every crate.
#[linkme::distributed_slice]
pub static MARKS: [Mark];

/// `cover!("layer.situation")` or `cover!("layer.situation", condition)`: the run has
/// reached the named situation (when `condition` holds). Free in the real world.
#[macro_export]
macro_rules! cover {
    ($name:literal) => {{
        #[$crate::cover::__private::linkme::distributed_slice($crate::cover::MARKS)]
        #[linkme(crate = $crate::cover::__private::linkme)]
        static MARK: $crate::cover::Mark = $crate::cover::Mark {
            name: $name,
            file: file!(),
            line: line!(),
        };
        $crate::cover::hit(&MARK);
    }};
    ($name:literal, $cond:expr) => {{
        if $crate::SIMULATED && $cond {
            $crate::cover!($name);
        }
    }};
}

/// Counts a hit of `mark` in this run (what `cover!` calls).
#[inline]
pub fn hit(mark: &'static Mark) {
    #[cfg(madsim)]
    hit_in_simulation(mark);
    #[cfg(not(madsim))]
    let _ = mark;
}

#[cfg(madsim)]
fn hit_in_simulation(mark: &'static Mark) {
    let first = crate::state::with(|s| {
        let n = s.marks.entry(mark.name).or_insert(0);
        *n = n.saturating_add(1);
        *n == 1
    });
    if !first {
        return;
    }
    // Only a first hit reads the clock. A mark may be hit outside a runtime (a
    // synchronous unit test of the code): time 0 then.
    let now = madsim::time::TimeHandle::try_current()
        .map(|h| u64::try_from(h.elapsed().as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    crate::state::with(|s| {
        s.mark_first_ns.insert(mark.name, now);
    });
    crate::trace::record_at(
        crate::trace::EventKind::Mark,
        format_args!("{}", mark.name),
        mark.file,
        mark.line,
    );
}

/// Hits of each mark in this run so far, by name.
pub fn hits() -> BTreeMap<String, u64> {
    crate::state::with(|s| s.marks.iter().map(|(k, v)| (k.to_string(), *v)).collect())
}

/// Virtual time (ns since the run started) of each mark's first hit in this run.
pub fn first_hits() -> BTreeMap<String, u64> {
    crate::state::with(|s| {
        s.mark_first_ns
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    })
}

/// The names of every mark in this binary (empty in the real world's reports, since
/// nothing is counted there), sorted.
pub fn catalog() -> BTreeSet<&'static str> {
    MARKS.iter().map(|m| m.name).collect()
}

/// The call sites of the mark `name`.
pub fn sites(name: &str) -> Vec<&'static Mark> {
    MARKS.iter().filter(|m| m.name == name).collect()
}

/// A mark that a sweep must reach: when a sweep ran at least `within` seeds and none
/// reached `mark`, the sweep fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MustReach {
    pub mark: &'static str,
    pub within: u64,
}

/// Shorthand for a [`MustReach`].
pub const fn must_reach(mark: &'static str, within: u64) -> MustReach {
    MustReach { mark, within }
}

/// The mark coverage of a set of runs (one sweep of one scenario or test).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Runs folded in.
    pub runs: u64,
    /// Per mark: how many runs hit it, and the smallest seed that did.
    pub reached: BTreeMap<String, Reached>,
}

/// How often one mark was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub runs: u64,
    pub first_seed: u64,
}

impl Coverage {
    /// Folds in one run of `seed` that hit `marks` (name → hit count).
    pub fn add(&mut self, seed: u64, marks: &BTreeMap<String, u64>) {
        self.runs = self.runs.saturating_add(1);
        for (name, &n) in marks {
            if n == 0 {
                continue;
            }
            let r = self.reached.entry(name.clone()).or_insert(Reached {
                runs: 0,
                first_seed: seed,
            });
            r.runs = r.runs.saturating_add(1);
            r.first_seed = r.first_seed.min(seed);
        }
    }

    /// The marks of `universe` no run reached.
    pub fn unreached<'a>(&self, universe: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        universe
            .into_iter()
            .filter(|m| !self.reached.contains_key(*m))
            .collect()
    }

    /// The must-reach declarations this coverage fails: at least `within` runs and no
    /// hit. (Fewer runs than `within` cannot judge.)
    pub fn missed(&self, must: &[MustReach]) -> Vec<MustReach> {
        must.iter()
            .filter(|m| self.runs >= m.within && !self.reached.contains_key(m.mark))
            .copied()
            .collect()
    }

    /// The report: each reached mark with the share of runs that hit it and the first
    /// seed, rarest first; then the marks of `universe` never reached; then the missed
    /// must-reach declarations. Indented by `indent`.
    pub fn render<'a>(
        &self,
        universe: impl IntoIterator<Item = &'a str>,
        must: &[MustReach],
        indent: &str,
    ) -> String {
        let universe: BTreeSet<&str> = universe.into_iter().collect();
        let mut out = String::new();
        let mut reached: Vec<(&String, &Reached)> = self.reached.iter().collect();
        reached.sort_by(|a, b| (a.1.runs, a.0).cmp(&(b.1.runs, b.0)));
        let _ = writeln!(
            out,
            "{indent}marks reached: {} of {} ({} runs)",
            reached.len(),
            universe.len().max(reached.len()),
            self.runs
        );
        for (name, r) in reached {
            let must_note = must
                .iter()
                .find(|m| m.mark == name)
                .map(|m| format!("  [must reach within {}]", m.within))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{indent}  {:>5} / {:<5} first seed {:<6} {name}{must_note}",
                r.runs, self.runs, r.first_seed
            );
        }
        let never = self.unreached(universe.iter().copied());
        if !never.is_empty() {
            let _ = writeln!(out, "{indent}never reached: {}", never.join(" "));
        }
        for m in self.missed(must) {
            let _ = writeln!(
                out,
                "{indent}MUST-REACH MISSED: {} (no run of {} reached it; stated within {})",
                m.mark, self.runs, m.within
            );
        }
        for m in must {
            if self.runs < m.within && !self.reached.contains_key(m.mark) {
                let _ = writeln!(
                    out,
                    "{indent}must-reach {} not reached yet ({} of {} runs)",
                    m.mark, self.runs, m.within
                );
            }
        }
        out
    }
}

/// The marks of [`catalog`] whose layer (the part before the first dot) is one of
/// `layers`; all of them when `layers` is empty.
pub fn catalog_of(layers: &[&str]) -> BTreeSet<&'static str> {
    catalog()
        .into_iter()
        .filter(|m| layers.is_empty() || layers.iter().any(|l| layer(m) == *l))
        .collect()
}

/// The layer of a mark name: the part before its first dot.
pub fn layer(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(names: &[&str]) -> BTreeMap<String, u64> {
        names.iter().map(|n| (n.to_string(), 1)).collect()
    }

    #[test]
    fn coverage_counts_runs_per_mark_and_names_the_unreached_and_the_missed() {
        let mut c = Coverage::default();
        c.add(7, &marks(&["a.x", "a.y"]));
        c.add(3, &marks(&["a.x"]));
        c.add(9, &BTreeMap::new());
        assert_eq!(c.runs, 3);
        assert_eq!(
            c.reached["a.x"],
            Reached {
                runs: 2,
                first_seed: 3
            }
        );
        assert_eq!(c.reached["a.y"].runs, 1);
        assert_eq!(c.unreached(["a.x", "a.z"]), vec!["a.z"]);
        let must = [
            must_reach("a.z", 3),
            must_reach("a.x", 3),
            must_reach("a.w", 4),
        ];
        assert_eq!(
            c.missed(&must),
            vec![must_reach("a.z", 3)],
            "a.w: too few runs"
        );
        let text = c.render(["a.x", "a.y", "a.z"], &must, "");
        assert!(text.contains("marks reached: 2 of 3 (3 runs)"), "{text}");
        assert!(text.contains("never reached: a.z"), "{text}");
        assert!(text.contains("MUST-REACH MISSED: a.z"), "{text}");
        assert!(text.contains("not reached yet (3 of 4 runs)"), "{text}");
        // Rarest first.
        assert!(
            text.find("a.y").unwrap() < text.find("a.x").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn layers_are_the_first_part_of_a_name() {
        assert_eq!(layer("raft.leader.x"), "raft");
        assert_eq!(layer("plain"), "plain");
    }
}
