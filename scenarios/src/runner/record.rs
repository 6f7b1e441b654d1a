//! What one run produced, as the summary table, `--json` and the child protocol carry
//! it: the framework's one record type ([`chaos::report::record`], D94), with what is
//! Seedbank's own — the reproduce command (`cargo sim replay`) and the built-in
//! scenarios' must-reach promises — supplied as its [`Catalogue`].

pub use chaos::report::record::{
    json_lines, summarize, Catalogue, Promises, RunRecord, Summary, SweepTag,
};
use sim_runtime::cover::MustReach;

/// The command before `NAME --seed S` in every reproduce line this CLI prints.
pub const REPLAY: &str = "cargo sim replay";

/// The built-in scenario `name`'s promises: its must-reach marks and mark universe.
pub fn promises(name: &str) -> Option<Promises> {
    let sc = super::scenario::find(name)?;
    Some(Promises {
        must_reach: sc.must_reach.to_vec(),
        universe: sc.mark_universe(),
    })
}

/// Seedbank's own catalogue: `cargo sim replay`, the built-in scenarios' promises.
pub fn catalogue() -> Catalogue<'static> {
    Catalogue {
        replay: REPLAY.to_string(),
        promises: &promises,
    }
}

/// A record's reproduce command and failure line in Seedbank's own terms.
pub trait Reproduce {
    /// The one command that reproduces this run (`cargo sim replay NAME --seed S`).
    fn reproduce(&self) -> String;
    /// One line naming the failure and the command that reproduces it.
    fn failure_line(&self) -> String;
}

impl Reproduce for RunRecord {
    fn reproduce(&self) -> String {
        self.reproduce_with(REPLAY)
    }
    fn failure_line(&self) -> String {
        self.failure_line_with(REPLAY)
    }
}

/// The must-reach marks a sweep missed: per scenario, those no run reached although
/// every seed of `0..within` ran (D74: a shard, or a sweep not starting at 0, does not
/// judge a promise; the merged shards do).
pub fn missed_marks(records: &[RunRecord]) -> Vec<(String, MustReach)> {
    chaos::report::record::missed_marks(records, &catalogue())
}

/// What a sweep — or `merge` of a sweep's shards — ends with: the table, each failure
/// with its reproduce command, each missed must-reach promise; and whether all is well.
pub fn report(records: &[RunRecord], wall_s: f64) -> (String, bool) {
    chaos::report::record::report(records, wall_s, &catalogue())
}

/// The summary table a sweep ends with; `wall_s` is the sweep's elapsed time.
pub fn table(records: &[RunRecord], wall_s: f64) -> String {
    chaos::report::record::table(records, wall_s, &catalogue())
}
