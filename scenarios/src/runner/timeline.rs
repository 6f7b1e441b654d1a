//! `replay … --timeline FILE.html`: one self-contained page (inline SVG and CSS, no
//! scripts fetched from anywhere) showing a run: one lane per node over virtual time,
//! messages as arrows from send to delivery, drops as crosses, crashes, restarts,
//! pauses and injected faults as marks, client operations as bars from invocation to
//! completion (green ok, grey refused, orange unknown), and the failed check on top.
//! Hovering any mark shows its trace event or history operation.

use super::run::RunOutput;
use crate::check::history::OpKind;
use sim_runtime::trace::EventKind;
use std::collections::BTreeMap;
use std::fmt::Write;

const LANE: f64 = 46.0;
const CLIENT_LANE: f64 = 9.0;
const LEFT: f64 = 120.0;
const WIDTH: f64 = 1400.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Parses `net A->B SIZEB…` (sim-net's message events).
fn parse_net(detail: &str) -> Option<(u64, u64, String)> {
    let rest = detail.strip_prefix("net ")?;
    let (from, rest) = rest.split_once("->")?;
    let (to, rest) = rest.split_once(' ')?;
    let size = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .to_string();
    Some((from.parse().ok()?, to.parse().ok()?, size))
}

/// The page.
pub fn render(out: &RunOutput) -> String {
    let r = &out.record;
    let events = &out.trace.events;
    let end_ns = events.iter().map(|e| e.time_ns).max().unwrap_or(0).max(1);
    let x = |t: u64| LEFT + (t as f64 / end_ns as f64) * (WIDTH - LEFT - 20.0);

    // Lanes: node 0 is the supervisor; then every node that appears.
    let mut nodes: Vec<u64> = events.iter().map(|e| e.node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let lane_of: BTreeMap<u64, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let y_node = |n: u64| 30.0 + lane_of.get(&n).copied().unwrap_or(0) as f64 * LANE;
    let clients_top = 30.0 + nodes.len() as f64 * LANE + 10.0;

    let mut processes: Vec<u64> = out.history.ops().iter().map(|o| o.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let proc_lane: BTreeMap<u64, usize> =
        processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let height = clients_top + processes.len() as f64 * CLIENT_LANE + 40.0;

    let mut svg = String::new();
    let _ = write!(svg, r#"<svg width="{WIDTH}" height="{height}">"#);
    svg.push_str(r##"<defs><marker id="a" markerWidth="6" markerHeight="6" refX="5" refY="3" orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#79a"/></marker></defs>"##);
    for n in &nodes {
        let y = y_node(*n);
        let name = if *n == 0 {
            "supervisor".to_string()
        } else {
            format!("node {n}")
        };
        let _ = write!(
            svg,
            r#"<text x="8" y="{:.1}" class="lane">{name}</text><line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="lane"/>"#,
            y + 4.0,
            WIDTH - 20.0
        );
    }
    // Time axis.
    for i in 0..=10u64 {
        let t = end_ns / 10 * i;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="14" class="axis">{:.3}s</text>"#,
            x(t) - 14.0,
            t as f64 / 1e9
        );
    }
    // Messages: pair each delivery with the oldest unmatched send of the same link and
    // size (sim-net does not number messages, so under reordering this is approximate).
    let mut in_flight: BTreeMap<(u64, u64, String), Vec<u64>> = BTreeMap::new();
    for e in events {
        let title = esc(&e.to_string());
        match e.kind {
            EventKind::Send => {
                if let Some(k) = parse_net(&e.detail) {
                    in_flight.entry(k).or_default().push(e.time_ns);
                }
            }
            EventKind::Deliver => {
                if let Some((from, to, size)) = parse_net(&e.detail) {
                    let sent = in_flight
                        .get_mut(&(from, to, size))
                        .and_then(|q| (!q.is_empty()).then(|| q.remove(0)));
                    let t0 = sent.unwrap_or(e.time_ns);
                    let _ = write!(
                        svg,
                        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" class="msg" marker-end="url(#a)"><title>{title}</title></line>"#,
                        x(t0),
                        y_node(from),
                        x(e.time_ns),
                        y_node(to)
                    );
                }
            }
            EventKind::Drop => {
                let (cx, cy) = (x(e.time_ns), y_node(e.node));
                let _ = write!(
                    svg,
                    r#"<path d="M{:.1},{:.1} l6,6 m0,-6 l-6,6" class="drop"><title>{title}</title></path>"#,
                    cx - 3.0,
                    cy - 3.0
                );
            }
            EventKind::Node => {
                let target = e
                    .detail
                    .split_whitespace()
                    .nth(2)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(e.node);
                let class = if e.detail.starts_with("crash") {
                    "crash"
                } else if e.detail.starts_with("kill") {
                    "kill"
                } else if e.detail.starts_with("restart") {
                    "restart"
                } else {
                    "nodeop"
                };
                let y = y_node(target);
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{:.1}" width="4" height="24" class="{class}"><title>{title}</title></rect>"#,
                    x(e.time_ns) - 2.0,
                    y - 12.0
                );
            }
            EventKind::Fault => {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" class="fault"><title>{title}</title></circle>"#,
                    x(e.time_ns),
                    y_node(e.node) + 8.0
                );
            }
            _ => {}
        }
    }
    // Client operations.
    let mut open: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    for op in out.history.ops() {
        let t = op.time_ns.unwrap_or(0);
        let text: Vec<String> = op.value.iter().map(crate::check::history::json).collect();
        match op.kind {
            OpKind::Invoke => {
                open.insert(op.process, (t, text.join(" ")));
            }
            kind => {
                let (t0, invoked) = open.remove(&op.process).unwrap_or((t, String::new()));
                let y = clients_top
                    + proc_lane.get(&op.process).copied().unwrap_or(0) as f64 * CLIENT_LANE;
                let class = match kind {
                    OpKind::Ok => "ok",
                    OpKind::Fail => "fail",
                    _ => "info",
                };
                let w = (x(t) - x(t0)).max(2.0);
                let title = esc(&format!(
                    "process {} {:?} at {:.6}s: {}  (invoked {:.6}s: {invoked})",
                    op.process,
                    kind,
                    t as f64 / 1e9,
                    text.join(" "),
                    t0 as f64 / 1e9
                ));
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" class="{class}"><title>{title}</title></rect>"#,
                    x(t0),
                    CLIENT_LANE - 2.0
                );
            }
        }
    }
    let _ = write!(
        svg,
        r#"<text x="8" y="{:.1}" class="lane">clients</text>"#,
        clients_top + 8.0
    );
    svg.push_str("</svg>");

    let verdict = match (&r.failed_check, &r.message) {
        (Some(c), Some(m)) => format!(
            r#"<p class="bad">FAILED check <b>{}</b>: <pre>{}</pre></p>"#,
            esc(c),
            esc(m)
        ),
        _ => r#"<p class="good">all checks passed</p>"#.to_string(),
    };
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!(
        r##"<!doctype html><html><head><meta charset="utf-8"><title>{name} seed {seed}</title><style>
body{{font:13px system-ui,sans-serif;margin:16px}} pre{{white-space:pre-wrap;background:#fee;padding:6px}}
.bad{{color:#a00}} .good{{color:#070}} text.lane{{font-size:12px}} text.axis{{font-size:10px;fill:#666}}
line.lane{{stroke:#ccc}} line.msg{{stroke:#79a;stroke-width:0.7}} path.drop{{stroke:#c00;stroke-width:1.5}}
rect.crash{{fill:#c00}} rect.kill{{fill:#e60}} rect.restart{{fill:#090}} rect.nodeop{{fill:#66c}}
circle.fault{{fill:#d40}} rect.ok{{fill:#5a5}} rect.fail{{fill:#aaa}} rect.info{{fill:#f90}}
</style></head><body>
<h2>{name} — seed {seed}</h2>{verdict}
<p>virtual time {vt:.3} s · {events} trace events (showing {shown}) · digest {digest} · faults fired: {faults}</p>
<p>Legend: red bar power loss · orange bar kill · green bar restart · blue bar pause/clock · dot injected fault · arrow message (paired send→deliver by link and size) · cross drop · client bars: green ok, grey refused, orange unknown outcome. Hover for details.</p>
<pre style="background:#f4f4f4">{plan}</pre>
{svg}
<p>Reproduce: <code>{repro}</code></p></body></html>"##,
        name = esc(&r.scenario),
        seed = r.seed,
        vt = r.virtual_time_ms / 1000.0,
        events = r.events,
        shown = events.len(),
        digest = r.digest,
        faults = esc(&faults.join(" ")),
        plan = esc(&out.plan.to_string()),
        repro = esc(&r.reproduce()),
    )
}
