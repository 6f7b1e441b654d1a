//! `replay … --timeline FILE.html`: one self-contained page (no fetches: its CSS and
//! script are inlined, the run's data is a JSON block in the page) that shows a run so
//! a person can read it at a glance:
//!
//! - one lane per simulated node — server nodes (a node whose log announces Raft roles,
//!   `became leader term=N`…, gets a band behind its lane with the role and term), the
//!   client nodes, the supervisor that runs the fault plan — and rows of client
//!   operations;
//! - faults drawn by kind (power loss, kill, restart, pause, clock skew, disk faults,
//!   dropped messages…), down and paused periods as spans, partitions and clogs shaded
//!   across the lanes they cut off for as long as they last;
//! - dense events aggregated: a kind with more marks in view than a lane can show is
//!   drawn as a density strip (counts per time bucket), and message arrows are drawn
//!   only when few enough are in view, else counted per pair of lanes;
//! - zoom (wheel, drag, buttons, a range), filters on kinds and lanes, a detail panel
//!   on hover and click;
//! - a failed check's name and message on top, the operations it names highlighted,
//!   and a per-key view (Porcupine's: each operation on the key as a bar from
//!   invocation to return, one row per client) of the keys it names.
//!
//! The model ([`model`]) is computed here from what every run has — the trace
//! (`sim_runtime::trace`), the client history (`checkers::history`), the plan and the
//! verdict ([`RunView`]) — and the page's script draws it (`assets/`). Seedbank's own
//! `seedbank replay --timeline` and a user crate's `chaos::cli` `run --timeline` both
//! render through here.

pub mod model;
pub mod ops;

use super::record::RunRecord;
use checkers::history::History;
use sim_runtime::trace::Trace;
use std::collections::BTreeMap;

/// The keys and client operations a failed check names, for the timeline: each
/// operation by its invocation's history index (the `T<id>` of the reports).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Involved {
    /// The keys the check names.
    pub keys: Vec<String>,
    /// The operations it names, by invocation index.
    pub ops: Vec<u64>,
    /// What the check's message calls an operation, where it numbers them its own way
    /// (the durability oracle counts only writing transactions).
    pub aliases: BTreeMap<u64, String>,
}

/// One run as the page shows it.
#[derive(Debug, Clone, Copy)]
pub struct RunView<'a> {
    /// Its record: the verdict, faults fired, digest, virtual time.
    pub record: &'a RunRecord,
    /// The fault plan, printed.
    pub plan: &'a str,
    /// The client history.
    pub history: &'a History,
    /// The trace (the events the run kept).
    pub trace: &'a Trace,
    /// What the failed check names (empty: nothing, or it passed).
    pub involved: &'a Involved,
    /// The command that reproduces the run.
    pub reproduce: &'a str,
}

const CSS: &str = include_str!("assets/page.css");
const JS: &str = include_str!("assets/page.js");
const LEGEND: &str = include_str!("assets/legend.html");

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON safe inside a `<script>` element (no `</script>` can end it early).
fn script_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/")
        .replace("<!--", "<\\!--")
}

/// The page.
pub fn render(out: &RunView) -> String {
    let r = &out.record;
    let model = model::build(out);
    let verdict = match (&r.failed_check, &r.message) {
        (Some(c), m) => {
            let involved = if out.involved.ops.is_empty() && out.involved.keys.is_empty() {
                String::new()
            } else {
                let ops: Vec<String> = out
                    .involved
                    .ops
                    .iter()
                    .map(|o| {
                        let alias = out
                            .involved
                            .aliases
                            .get(o)
                            .map(|a| format!(" ({})", esc(a)))
                            .unwrap_or_default();
                        format!(r##"<a href="#" data-op="{o}">T{o}</a>{alias}"##)
                    })
                    .collect();
                format!(
                    r#"<p class="involved">Involved: keys <b>{}</b>; operations <b>{}</b> (outlined in red below, click one to zoom to it; the per-key view is under the chart)</p>"#,
                    esc(&out.involved.keys.join(", ")),
                    ops.join(", ")
                )
            };
            format!(
                r#"<div id="verdict" class="bad"><h3>FAILED check: <b id="failed-check">{}</b></h3><pre>{}</pre>{involved}</div>"#,
                esc(c),
                esc(m.as_deref().unwrap_or(""))
            )
        }
        _ => r#"<div id="verdict" class="good"><h3>All checks passed</h3></div>"#.to_string(),
    };
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!(
        r##"<!doctype html><html><head><meta charset="utf-8"><title>{name} seed {seed}</title><style>{CSS}</style></head><body>
<h2>{name} — seed {seed}</h2>{verdict}
<p class="meta">virtual time {vt:.3} s · {events} trace events (page built from {shown}) · digest {digest} · faults fired: {faults}</p>
<div id="controls"></div>
<div id="pairs"></div>
<div id="chart"></div>
<div id="detail">Hover or click a mark for its details.</div>
<div id="keyview"></div>
{LEGEND}
<details><summary>Fault plan</summary><pre class="plan">{plan}</pre></details>
<p>Reproduce: <code>{repro}</code></p>
<script type="application/json" id="data">{data}</script>
<script>{JS}</script>
</body></html>"##,
        name = esc(&r.scenario),
        seed = r.seed,
        vt = r.virtual_time_ms / 1000.0,
        events = r.events,
        shown = out.trace.events.len(),
        digest = r.digest,
        faults = esc(&faults.join(" ")),
        plan = esc(out.plan),
        repro = esc(out.reproduce),
        data = script_json(&model),
    )
}
