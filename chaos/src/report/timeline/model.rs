//! What the page draws, read from a run's trace and history: lanes, role segments,
//! marks, spans (down, paused), partitions, messages and client operations. The page's
//! script does the drawing (zoom, filter, aggregation); this is the data it is given,
//! serialized once as JSON into the page.

use super::RunView;
use serde::Serialize;
use sim_runtime::trace::{Event, EventKind};
use sim_runtime::NodeId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One lane: a simulated node.
#[derive(Debug, Serialize)]
pub struct Lane {
    /// The simulated node.
    pub node: NodeId,
    /// Its name (as created; `supervisor` for node 0).
    pub name: String,
    /// `supervisor`, `replica`, `clients`, `db` or `node`.
    pub kind: &'static str,
}

/// A replica's Raft role from `t0` to `t1`.
#[derive(Debug, Serialize, PartialEq)]
pub struct RoleSpan {
    /// The node.
    pub node: NodeId,
    /// From (virtual ns).
    pub t0: u64,
    /// To (virtual ns).
    pub t1: u64,
    /// `leader`, `candidate`, `precandidate`, `follower`.
    pub role: &'static str,
    /// The term the role is in.
    pub term: u64,
}

/// A point event on a lane.
#[derive(Debug, Serialize)]
pub struct Mark {
    /// When (virtual ns).
    pub t: u64,
    /// The lane.
    pub node: NodeId,
    /// The category the legend and the filters name (see `CATEGORIES` in page.js).
    pub kind: String,
    /// The trace event, printed.
    pub detail: String,
}

/// A state with a duration on one lane: `down` (crash or kill → restart), `paused`.
#[derive(Debug, Serialize)]
pub struct Span {
    /// The lane.
    pub node: NodeId,
    /// From (virtual ns).
    pub t0: u64,
    /// To (virtual ns; the run's end if it never ended).
    pub t1: u64,
    /// `down` or `paused`.
    pub kind: &'static str,
    /// The events that opened and closed it.
    pub detail: String,
}

/// A partition (or clog) from `t0` to `t1`: the nodes on each side.
#[derive(Debug, Serialize)]
pub struct Partition {
    /// From (virtual ns).
    pub t0: u64,
    /// To (virtual ns; the run's end if never healed).
    pub t1: u64,
    /// The nodes on one side.
    pub a: Vec<u64>,
    /// The nodes on the other side.
    pub b: Vec<u64>,
    /// `partition`, `one-way` or `clog`.
    pub kind: &'static str,
    /// The fault event, printed.
    pub detail: String,
}

/// Everything the page draws.
#[derive(Debug, Serialize)]
pub struct Model {
    /// The run's last event (virtual ns).
    pub end_ns: u64,
    /// Lanes in reading order.
    pub lanes: Vec<Lane>,
    /// Role bands.
    pub roles: Vec<RoleSpan>,
    /// Point events.
    pub marks: Vec<Mark>,
    /// Down and paused spans.
    pub spans: Vec<Span>,
    /// Partitions and clogs.
    pub partitions: Vec<Partition>,
    /// `[sent_ns, delivered_ns, from node, to node]`; sent = delivered when no send was
    /// kept.
    pub messages: Vec<[u64; 4]>,
    /// Client operations.
    pub ops: Vec<super::ops::Operation>,
    /// Rows the operations take.
    pub op_rows: usize,
    /// Involved keys and operation ids of the failed check.
    pub involved_keys: Vec<String>,
    /// See `involved_keys`.
    pub involved_ops: Vec<u64>,
}

/// Parses `net A->B …` (sim-net's message events).
pub fn parse_net(detail: &str) -> Option<(u64, u64, String)> {
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

/// The number after `field=` in a log line.
fn field(detail: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=");
    let at = detail
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || detail.as_bytes().get(i - 1) == Some(&b' '))?
        .0;
    let rest = &detail[at + key.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The role and term a Raft log line announces (the election's INFO lines, the
/// follower transition, a replica's recovery).
pub fn role_change(detail: &str) -> Option<(&'static str, u64)> {
    let term = field(detail, "term")?;
    let role = if detail.contains("became leader") {
        "leader"
    } else if detail.contains("starting election") {
        "candidate"
    } else if detail.contains("starting pre-vote") {
        "precandidate"
    } else if detail.contains("became follower") || detail.contains("replica recovered") {
        "follower"
    } else {
        return None;
    };
    Some((role, term))
}

/// `10.0.0.1` addresses in a `[a, b] | [c]` list, mapped to node numbers.
fn nodes_of(list: &str, ips: &BTreeMap<String, u64>) -> Vec<u64> {
    let mut out: Vec<u64> = list
        .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter_map(|ip| ips.get(ip).copied())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The node a `Node` event acts on (`crash node 3 (power loss)` → 3).
fn target(e: &Event) -> u64 {
    e.detail
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(e.node)
}

/// The category of a fault counter (`fs.latency x1` → `fs.latency`), or None for the
/// counters a `Node` event already draws.
fn fault_kind(detail: &str) -> Option<String> {
    let kind = detail.split_whitespace().next().unwrap_or("");
    match kind {
        // Drawn from their own events: the `Node` event, the `Drop` event, sim-net's
        // per-message fault event (which names the link).
        // (`runner.*`: the runner's own final power loss and fail-stop restarts.)
        "node.crash" | "node.kill" | "node.pause" | "node.clock_skew" => None,
        k if k.starts_with("runner.") => None,
        "net.drop" | "net.partition_drop" | "net.delay" | "net.dup" | "net.reorder"
        | "net.clog" => None,
        "net" if detail.contains(" drop") => Some("msg-drop".into()),
        "net" => Some("net-fault".into()),
        "fs.latency" => Some("disk-latency".into()),
        k if k.starts_with("fs.") => Some("disk-fault".into()),
        "net.reset" => Some("msg-drop".into()),
        k if k.starts_with("net.") => Some("net-fault".into()),
        _ => Some("other-fault".into()),
    }
}

/// Builds the model of `out`.
pub fn build(out: &RunView) -> Model {
    let events = &out.trace.events;
    let mut end_ns = events.iter().map(|e| e.time_ns).max().unwrap_or(0);
    if let Some(t) = out.history.ops().iter().filter_map(|o| o.time_ns).max() {
        end_ns = end_ns.max(t);
    }
    let end_ns = end_ns.max(1);

    let mut names: BTreeMap<u64, String> = BTreeMap::new();
    let mut ips: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut roles: Vec<RoleSpan> = Vec::new();
    let mut role_now: BTreeMap<u64, (u64, &'static str, u64)> = BTreeMap::new();
    let mut marks = Vec::new();
    let mut spans = Vec::new();
    let mut open_spans: BTreeMap<(u64, &'static str), (u64, String)> = BTreeMap::new();
    let mut partitions = Vec::new();
    // Partitions and clogs in force (their `t1` is set when they end).
    let mut open_parts: Vec<Partition> = Vec::new();
    let mut messages = Vec::new();
    let mut in_flight: BTreeMap<(u64, u64, String), VecDeque<(u64, u64)>> = BTreeMap::new();

    let close_role =
        |roles: &mut Vec<RoleSpan>, node: NodeId, now: u64, cur: (u64, &'static str, u64)| {
            roles.push(RoleSpan {
                node,
                t0: cur.0,
                t1: now,
                role: cur.1,
                term: cur.2,
            });
        };

    for e in events {
        seen.insert(e.node);
        match e.kind {
            EventKind::Node => {
                let n = target(e);
                seen.insert(n);
                let verb = e.detail.split_whitespace().next().unwrap_or("");
                match verb {
                    "create" => {
                        if let Some(name) = e.detail.split('\'').nth(1) {
                            names.insert(n, name.to_string());
                        }
                        if let Some(ip) = e
                            .detail
                            .split("ip=Some(")
                            .nth(1)
                            .and_then(|r| r.split(')').next())
                        {
                            ips.insert(ip.to_string(), n);
                        }
                    }
                    "crash" | "kill" => {
                        if let Some(cur) = role_now.remove(&n) {
                            close_role(&mut roles, n, e.time_ns, cur);
                        }
                        open_spans
                            .entry((n, "down"))
                            .or_insert((e.time_ns, e.detail.clone()));
                    }
                    "restart" => {
                        if let Some((t0, detail)) = open_spans.remove(&(n, "down")) {
                            spans.push(Span {
                                node: n,
                                t0,
                                t1: e.time_ns,
                                kind: "down",
                                detail: format!("{detail} … {}", e.detail),
                            });
                        }
                    }
                    "pause" => {
                        open_spans
                            .entry((n, "paused"))
                            .or_insert((e.time_ns, e.detail.clone()));
                    }
                    "resume" => {
                        if let Some((t0, detail)) = open_spans.remove(&(n, "paused")) {
                            spans.push(Span {
                                node: n,
                                t0,
                                t1: e.time_ns,
                                kind: "paused",
                                detail: format!("{detail} … {}", e.detail),
                            });
                        }
                    }
                    _ => {}
                }
                let kind = match verb {
                    "crash" => "power-loss",
                    "kill" => "kill",
                    "restart" => "restart",
                    "pause" => "pause",
                    "resume" => "resume",
                    "clock" => "clock-skew",
                    _ => "node-other",
                };
                marks.push(Mark {
                    t: e.time_ns,
                    node: n,
                    kind: kind.into(),
                    detail: e.to_string(),
                });
            }
            EventKind::Log => {
                if let Some((role, term)) = role_change(&e.detail) {
                    if let Some(cur) = role_now.insert(e.node, (e.time_ns, role, term)) {
                        close_role(&mut roles, e.node, e.time_ns, cur);
                    }
                } else if e.detail.starts_with("ERROR") || e.detail.starts_with("WARN") {
                    marks.push(Mark {
                        t: e.time_ns,
                        node: e.node,
                        kind: "log-warn".into(),
                        detail: e.to_string(),
                    });
                }
            }
            EventKind::Fault => {
                let d = e.detail.as_str();
                if let Some(rest) = d.strip_prefix("net partition ") {
                    let (kind, sides) = match rest.split_once(" | ") {
                        Some(s) => ("partition", s),
                        None => ("one-way", rest.split_once(" -> ").unwrap_or((rest, ""))),
                    };
                    open_parts.push(Partition {
                        t0: e.time_ns,
                        t1: end_ns,
                        a: nodes_of(sides.0, &ips),
                        b: nodes_of(sides.1, &ips),
                        kind,
                        detail: d.to_string(),
                    });
                } else if let Some(rest) = d.strip_prefix("net clog ") {
                    let sides = rest.split_once(" -> ").unwrap_or((rest, ""));
                    open_parts.push(Partition {
                        t0: e.time_ns,
                        t1: end_ns,
                        a: nodes_of(sides.0, &ips),
                        b: nodes_of(sides.1, &ips),
                        kind: "clog",
                        detail: d.to_string(),
                    });
                } else if d == "net heal" || d.starts_with("net unclog ") {
                    // `heal` ends everything; `unclog A -> B` the clog of the same links
                    // (every clog if none names them).
                    let unclogged = d.strip_prefix("net unclog ");
                    let named = |p: &Partition| p.detail.strip_prefix("net clog ") == unclogged;
                    let any_named = open_parts.iter().any(named);
                    let (close, keep): (Vec<_>, Vec<_>) =
                        open_parts.drain(..).partition(|p| match unclogged {
                            None => true,
                            Some(_) => p.kind == "clog" && (!any_named || named(p)),
                        });
                    open_parts = keep;
                    for mut p in close {
                        p.t1 = e.time_ns;
                        partitions.push(p);
                    }
                } else if d.starts_with("net faults ") {
                    marks.push(Mark {
                        t: e.time_ns,
                        node: e.node,
                        kind: "net-config".into(),
                        detail: e.to_string(),
                    });
                } else if let Some(kind) = fault_kind(d) {
                    // A duplicated message is delivered twice from one send.
                    if d.ends_with(" dup") {
                        if let Some(q) = parse_net(d).and_then(|k| in_flight.get_mut(&k)) {
                            if let Some(front) = q.front().copied() {
                                q.push_front(front);
                            }
                        }
                    }
                    marks.push(Mark {
                        t: e.time_ns,
                        node: e.node,
                        kind,
                        detail: e.to_string(),
                    });
                }
            }
            // Messages name endpoints (a client's id is not a node number): the lanes
            // are the nodes that sent and received them.
            EventKind::Send => {
                if let Some(k) = parse_net(&e.detail) {
                    in_flight
                        .entry(k)
                        .or_default()
                        .push_back((e.time_ns, e.node));
                }
            }
            EventKind::Deliver => {
                // Pair each delivery with the oldest unmatched send of the same link
                // and size (sim-net does not number messages: approximate under
                // reordering).
                if let Some(k) = parse_net(&e.detail) {
                    let (sent, from) = in_flight
                        .get_mut(&k)
                        .and_then(|q| q.pop_front())
                        .unwrap_or((e.time_ns, e.node));
                    messages.push([sent, e.time_ns, from, e.node]);
                }
            }
            EventKind::Drop => {
                // A dropped message is never delivered: its send must not pair with a
                // later delivery on the link.
                if let Some(k) = parse_net(&e.detail) {
                    if let Some(q) = in_flight.get_mut(&k) {
                        q.pop_front();
                    }
                }
                marks.push(Mark {
                    t: e.time_ns,
                    node: e.node,
                    kind: "msg-drop".into(),
                    detail: e.to_string(),
                });
            }
            EventKind::Mark => marks.push(Mark {
                t: e.time_ns,
                node: e.node,
                kind: "coverage".into(),
                detail: e.to_string(),
            }),
            _ => {}
        }
    }
    for (node, cur) in std::mem::take(&mut role_now) {
        close_role(&mut roles, node, end_ns, cur);
    }
    for ((node, kind), (t0, detail)) in open_spans {
        spans.push(Span {
            node,
            t0,
            t1: end_ns,
            kind,
            detail,
        });
    }
    // Still in force at the end: drawn to the end.
    partitions.extend(open_parts);

    let lanes = lanes(&seen, &names);
    let (ops, op_rows) = super::ops::operations(out);
    Model {
        end_ns,
        lanes,
        roles,
        marks,
        spans,
        partitions,
        messages,
        ops,
        op_rows,
        involved_keys: out.involved.keys.clone(),
        involved_ops: out.involved.ops.clone(),
    }
}

/// Lanes in reading order: replicas (or the embedded node), clients, the supervisor.
fn lanes(seen: &BTreeSet<u64>, names: &BTreeMap<u64, String>) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = seen
        .iter()
        .map(|&node| {
            let name = match (node, names.get(&node)) {
                (0, _) => "supervisor".to_string(),
                (_, Some(n)) => n.clone(),
                (_, None) => format!("node {node}"),
            };
            let kind = if node == 0 {
                "supervisor"
            } else if name.starts_with("replica") {
                "replica"
            } else if name == "clients" {
                "clients"
            } else if name == "db" {
                "db"
            } else {
                "node"
            };
            Lane { node, name, kind }
        })
        .collect();
    let rank = |k: &str| match k {
        "replica" | "db" => 0,
        "node" => 1,
        "clients" => 2,
        _ => 3,
    };
    lanes.sort_by_key(|l| (rank(l.kind), l.node));
    lanes
}
