//! Targeted exploration against uniform seeds on the same budget: per mark, the runs
//! each way took to reach it first and how many runs reached it (`sweep --explore
//! --compare`, `scripts/measure-exploration`).

use std::collections::BTreeMap;

/// Per mark, the runs (1-based, in seed order) it took to reach it first; `runs` gives
/// each run's seed and the marks it reached.
pub fn first_hit_in_seed_order<'a>(
    runs: impl IntoIterator<Item = (u64, &'a BTreeMap<String, u64>)>,
) -> BTreeMap<String, u64> {
    let mut sorted: Vec<(u64, &BTreeMap<String, u64>)> = runs.into_iter().collect();
    sorted.sort_by_key(|(seed, _)| *seed);
    let mut out = BTreeMap::new();
    for (i, (_, marks)) in sorted.into_iter().enumerate() {
        for m in marks.keys() {
            out.entry(m.clone()).or_insert(i as u64 + 1);
        }
    }
    out
}

/// Per mark, how many of the runs (each given by the marks it reached) reached it.
pub fn runs_reaching<'a>(
    runs: impl IntoIterator<Item = &'a BTreeMap<String, u64>>,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for marks in runs {
        for m in marks.keys() {
            *out.entry(m.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// One side of a comparison: runs to each mark's first hit, and runs that reached it.
pub struct Side<'a> {
    /// Per mark, the runs it took to reach it first.
    pub first_hit: &'a BTreeMap<String, u64>,
    /// Per mark, the runs that reached it.
    pub reaching: &'a BTreeMap<String, u64>,
}

/// The comparison `sweep --explore --compare` prints: per mark of `universe`, the runs
/// uniform seeds and exploration took to reach it first (`-`: not within the budget)
/// and their ratio uniform / explore, then how many runs of each reached it; rarest
/// (by uniform) first.
pub fn comparison(
    universe: impl IntoIterator<Item = String>,
    uniform: Side<'_>,
    explored: Side<'_>,
    budget: u64,
) -> String {
    let (uniform_reach, explored_reach) = (uniform.reaching, explored.reaching);
    let (uniform, explored) = (uniform.first_hit, explored.first_hit);
    use std::fmt::Write as _;
    let mut rows: Vec<(String, Option<u64>, Option<u64>)> = universe
        .into_iter()
        .map(|m| {
            let (u, e) = (uniform.get(&m).copied(), explored.get(&m).copied());
            (m, u, e)
        })
        .filter(|(_, u, e)| u.is_some() || e.is_some())
        .collect();
    rows.sort_by_key(|(m, u, _)| (std::cmp::Reverse(u.unwrap_or(u64::MAX)), m.clone()));
    let mut out = format!(
        "budget {budget} runs: runs to reach each mark first (uniform, explore, ratio), then \
         runs that reached it (uniform, explore)\n"
    );
    let show = |x: Option<u64>| x.map_or("-".to_string(), |n| n.to_string());
    for (m, u, e) in rows {
        let ratio = match (u, e) {
            (Some(u), Some(e)) => format!("{:.2}x", u as f64 / e as f64),
            (None, Some(_)) => "only explore".into(),
            (Some(_), None) => "only uniform".into(),
            (None, None) => String::new(),
        };
        let reach = |side: &BTreeMap<String, u64>| side.get(&m).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  {:>6} {:>6}  {:<13} {:>5} {:>5}  {m}",
            show(u),
            show(e),
            ratio,
            reach(uniform_reach),
            reach(explored_reach)
        );
    }
    out
}
