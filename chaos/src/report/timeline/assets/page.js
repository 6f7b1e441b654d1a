// The timeline's drawing: reads the run's model (the JSON block #data, built by
// timeline/model.rs) and draws it as SVG for the time range in view. Dense kinds are
// aggregated per lane (a density strip of counts per bucket), message arrows are
// drawn only when few are in view (else counted per pair of lanes), so the page stays
// readable however long or busy the run was. No libraries, no fetches.
"use strict";
(function () {
  const M = JSON.parse(document.getElementById("data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  // What each mark kind looks like, and what the legend and the filters call it.
  const KINDS = {
    "power-loss": { label: "power loss", shape: "bar", color: "#d00000" },
    "kill": { label: "kill (process)", shape: "bar", color: "#ff8c00" },
    "restart": { label: "restart", shape: "up", color: "#1a9a1a" },
    "pause": { label: "pause", shape: "down", color: "#8a4fc8" },
    "resume": { label: "resume", shape: "dot", color: "#8a4fc8" },
    "clock-skew": { label: "clock skew", shape: "diamond", color: "#1768c8" },
    "disk-fault": { label: "disk fault (torn write, fsync error, bit flip, ENOSPC…)", shape: "square", color: "#8b4513" },
    "disk-latency": { label: "disk latency", shape: "tick", color: "#00a0a0" },
    "msg-drop": { label: "message dropped", shape: "cross", color: "#c00000" },
    "net-fault": { label: "message fault (dup, delay, reorder, clog)", shape: "dot", color: "#007878" },
    "net-config": { label: "network fault settings changed", shape: "diamond", color: "#777" },
    "log-warn": { label: "warning / error logged", shape: "tri", color: "#c9a400" },
    "other-fault": { label: "other injected fault (buggify…)", shape: "dot", color: "#c000c0" },
    "coverage": { label: "coverage mark first reached", shape: "tick", color: "#aaa" },
    "node-other": { label: "node created", shape: "tick", color: "#555" },
  };
  const LAYERS = {
    "roles": "Raft role and term (band behind a replica lane)",
    "spans": "node down / paused",
    "partitions": "partitions and clogs (shaded)",
    "messages": "messages",
    "operations": "client operations",
  };
  const ROLE_COLOR = { leader: "#f5c400", candidate: "#ff9d5c", precandidate: "#ffd9b3", follower: "#bcd7f0" };
  // Past these, a kind is drawn as a density strip and messages are counted, not drawn.
  const DENSE = 40, BUCKETS = 90, MAX_ARROWS = 150;
  const LEFT = 150, AXIS = 26, LANE_H = 50, ROW_H = 11;

  const hiddenKinds = new Set(["coverage"]);
  const hiddenLanes = new Set();
  let t0 = 0, t1 = M.end_ns, pinned = false;
  const involved = new Set(M.involved_ops);
  const opById = new Map(M.ops.map((o) => [o.id, o]));
  const laneOf = new Map(M.lanes.map((l) => [l.node, l]));
  const kindsPresent = Object.keys(KINDS).filter((k) => M.marks.some((m) => m.kind === k));

  const secs = (ns) => (ns / 1e9).toFixed(ns < 1e9 && t1 - t0 < 1e7 ? 6 : 3) + "s";
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  function el(name, attrs, parent, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function opText(o) {
    const end = o.t1 === null ? "never returned" : "returned " + secs(o.t1);
    return "T" + o.id + " process " + o.process + " " + o.outcome.toUpperCase() + ": " + o.text +
      " (invoked " + secs(o.t0) + ", " + end + ")" + (involved.has(o.id) ? "  ← named by the failed check" : "");
  }

  // ---- controls -----------------------------------------------------------------
  const controls = document.getElementById("controls");
  function checkbox(parent, label, checked, onchange, attrs) {
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox";
    c.checked = checked;
    for (const k in attrs || {}) c.setAttribute(k, attrs[k]);
    c.addEventListener("change", () => onchange(c.checked));
    l.appendChild(c);
    l.appendChild(document.createTextNode(" " + label));
    parent.appendChild(l);
  }
  controls.innerHTML =
    '<div class="zoom"><b>Zoom</b> <button id="zin">+</button> <button id="zout">−</button> ' +
    '<button id="zreset">whole run</button> from <input id="from" size="9"> to <input id="to" size="9"> s ' +
    '<button id="zapply">show</button> <span class="hint">wheel over the chart zooms, drag pans, click a mark pins its details</span></div>' +
    '<div class="filters" id="fkinds"><b>Show</b> </div><div class="filters" id="flanes"><b>Lanes</b> </div>';
  const fk = document.getElementById("fkinds");
  for (const k of Object.keys(LAYERS)) {
    checkbox(fk, k, true, (on) => { on ? hiddenKinds.delete(k) : hiddenKinds.add(k); draw(); }, { "data-kind": k });
  }
  for (const k of kindsPresent) {
    checkbox(fk, KINDS[k].label.split(" (")[0], !hiddenKinds.has(k), (on) => { on ? hiddenKinds.delete(k) : hiddenKinds.add(k); draw(); }, { "data-kind": k });
  }
  const fl = document.getElementById("flanes");
  for (const l of M.lanes) {
    checkbox(fl, l.name, true, (on) => { on ? hiddenLanes.delete(l.node) : hiddenLanes.add(l.node); draw(); }, { "data-lane": l.node });
  }
  function zoomTo(a, b) {
    const span = Math.max(1000, b - a);
    a = Math.max(0, Math.min(a, M.end_ns - span));
    t0 = a;
    t1 = Math.min(M.end_ns, a + span);
    draw();
  }
  function zoomBy(f, at) {
    const c = at === undefined ? (t0 + t1) / 2 : at;
    zoomTo(c - (c - t0) * f, c + (t1 - c) * f);
  }
  document.getElementById("zin").onclick = () => zoomBy(0.5);
  document.getElementById("zout").onclick = () => zoomBy(2);
  document.getElementById("zreset").onclick = () => zoomTo(0, M.end_ns);
  document.getElementById("zapply").onclick = () => {
    const a = parseFloat(document.getElementById("from").value) * 1e9;
    const b = parseFloat(document.getElementById("to").value) * 1e9;
    if (isFinite(a) && isFinite(b) && b > a) zoomTo(a, b);
  };
  for (const a of document.querySelectorAll("a[data-op]")) {
    a.onclick = (ev) => { ev.preventDefault(); focusOp(+a.dataset.op); };
  }
  function focusOp(id) {
    const o = opById.get(id);
    if (!o) return;
    const end = o.t1 === null ? M.end_ns : o.t1;
    const pad = Math.max(2e6, (end - o.t0) * 2);
    zoomTo(o.t0 - pad, end + pad);
  }

  // ---- the chart ----------------------------------------------------------------
  const chart = document.getElementById("chart");
  const detail = document.getElementById("detail");
  let details = [];
  function showDetail(target, pin) {
    const d = target && target.closest && target.closest("[data-d]");
    if (!d) return;
    if (pinned && !pin) return;
    pinned = !!pin;
    detail.textContent = details[+d.getAttribute("data-d")];
    detail.className = pin ? "pinned" : "";
  }
  chart.addEventListener("mouseover", (e) => showDetail(e.target, false));
  chart.addEventListener("click", (e) => { if (!dragged) showDetail(e.target, true); });
  chart.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = chart.getBoundingClientRect();
    zoomBy(e.deltaY < 0 ? 0.7 : 1 / 0.7, timeAt(e.clientX - rect.left));
  }, { passive: false });
  let drag = null, dragged = false;
  chart.addEventListener("mousedown", (e) => { drag = { x: e.clientX, a: t0, b: t1 }; dragged = false; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    if (Math.abs(dx) > 3) dragged = true;
    const dt = (dx / plotW()) * (drag.b - drag.a);
    zoomTo(drag.a - dt, drag.b - dt);
  });
  const plotW = () => Math.max(600, chart.clientWidth - LEFT - 16);
  const x = (t) => LEFT + ((t - t0) / (t1 - t0)) * plotW();
  const timeAt = (px) => t0 + ((px - LEFT) / plotW()) * (t1 - t0);
  const inView = (a, b) => b >= t0 && a <= t1;
  const clampX = (t) => Math.max(LEFT, Math.min(LEFT + plotW(), x(t)));

  function shape(kind, cx, cy, g, title) {
    const k = KINDS[kind] || KINDS["other-fault"];
    const f = { fill: k.color, class: "mark k-" + kind, "data-d": details.push(title) - 1 };
    switch (k.shape) {
      case "bar": el("rect", Object.assign(f, { x: cx - 2.5, y: cy - LANE_H / 2 + 2, width: 5, height: LANE_H - 4 }), g); break;
      case "up": el("path", Object.assign(f, { d: `M${cx - 6},${cy + 7} L${cx},${cy - 5} L${cx + 6},${cy + 7} z` }), g); break;
      case "down": el("path", Object.assign(f, { d: `M${cx - 6},${cy - 7} L${cx},${cy + 5} L${cx + 6},${cy - 7} z` }), g); break;
      case "tri": el("path", Object.assign(f, { d: `M${cx - 4},${cy + 12} L${cx},${cy + 5} L${cx + 4},${cy + 12} z` }), g); break;
      case "diamond": el("path", Object.assign(f, { d: `M${cx},${cy - 7} L${cx + 6},${cy} L${cx},${cy + 7} L${cx - 6},${cy} z` }), g); break;
      case "square": el("rect", Object.assign(f, { x: cx - 4, y: cy + 5, width: 8, height: 8 }), g); break;
      case "cross": f.stroke = k.color; f["stroke-width"] = 2; el("path", Object.assign(f, { d: `M${cx - 4},${cy - 14} l8,8 m0,-8 l-8,8` }), g); break;
      case "tick": el("rect", Object.assign(f, { x: cx - 0.75, y: cy + 8, width: 1.5, height: 8 }), g); break;
      default: el("circle", Object.assign(f, { cx, cy: cy + 12, r: 3.5 }), g);
    }
  }

  function density(kind, list, cy, g, offset) {
    const counts = new Array(BUCKETS).fill(0);
    const w = (t1 - t0) / BUCKETS;
    for (const m of list) counts[Math.min(BUCKETS - 1, Math.floor((m.t - t0) / w))]++;
    const max = Math.max(...counts);
    const k = KINDS[kind] || KINDS["other-fault"];
    const bw = plotW() / BUCKETS;
    counts.forEach((n, i) => {
      if (!n) return;
      const title = `${k.label}: ${n} in ${secs(t0 + i * w)}–${secs(t0 + (i + 1) * w)} (aggregated: ${list.length} in view; zoom in to see each)`;
      el("rect", {
        x: LEFT + i * bw, y: cy + offset, width: Math.max(1, bw - 0.5), height: 5, fill: k.color,
        "fill-opacity": (0.2 + 0.8 * n / max).toFixed(2), class: "density k-" + kind, "data-d": details.push(title) - 1,
      }, g);
    });
  }

  function axis(svg, height) {
    const span = t1 - t0;
    const raw = span / 10;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      el("line", { x1: x(t), y1: AXIS - 4, x2: x(t), y2: height, class: "grid" }, svg);
      el("text", { x: x(t) + 2, y: AXIS - 8, class: "axis" }, svg, (t / 1e9).toFixed(Math.max(0, -Math.floor(Math.log10(step / 1e9)))) + "s");
    }
  }

  function draw() {
    details = [];
    document.getElementById("from").value = (t0 / 1e9).toFixed(6);
    document.getElementById("to").value = (t1 / 1e9).toFixed(6);
    const lanes = M.lanes.filter((l) => !hiddenLanes.has(l.node));
    const laneY = new Map(lanes.map((l, i) => [l.node, AXIS + i * LANE_H + LANE_H / 2]));
    const opsTop = AXIS + lanes.length * LANE_H + 14;
    const showOps = !hiddenKinds.has("operations");
    const height = opsTop + (showOps ? M.op_rows * ROW_H + 8 : 0);
    const width = LEFT + plotW() + 16;
    const svg = el("svg", { width, height, id: "timeline-svg", "data-t0": Math.round(t0), "data-t1": Math.round(t1) });
    const defs = el("defs", {}, svg);
    const mk = el("marker", { id: "arrow", markerWidth: 6, markerHeight: 6, refX: 5, refY: 3, orient: "auto" }, defs);
    el("path", { d: "M0,0 L6,3 L0,6 z", fill: "#5b8db8" }, mk);
    const clip = el("clipPath", { id: "plot" }, defs);
    el("rect", { x: LEFT, y: 0, width: plotW(), height }, clip);
    // Partitions are hatched, so they read as "cut off" over any role colour.
    for (const [id, color] of [["hatch-a", "#7b2fb8"], ["hatch-b", "#d07a00"]]) {
      const p = el("pattern", { id, width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
      el("rect", { width: 1.6, height: 8, fill: color }, p);
    }
    axis(svg, height);
    el("line", { x1: LEFT, y1: AXIS - 4, x2: LEFT + plotW(), y2: AXIS - 4, class: "axisline" }, svg);

    // Partitions first (behind everything): each side's lanes shaded for the duration.
    const parts = el("g", { id: "partitions" });
    if (!hiddenKinds.has("partitions")) {
      for (const p of M.partitions) {
        if (!inView(p.t0, p.t1)) continue;
        [["a", p.a], ["b", p.b]].forEach(([side, nodes]) => {
          for (const n of nodes) {
            if (!laneY.has(n)) continue;
            el("rect", {
              x: clampX(p.t0), y: laneY.get(n) - LANE_H / 2, width: Math.max(2, clampX(p.t1) - clampX(p.t0)), height: LANE_H,
              fill: `url(#hatch-${side})`, class: `partition side-${side} p-${p.kind}`,
              "data-d": details.push(`${p.kind} ${secs(p.t0)}–${secs(p.t1)}: ${p.detail}`) - 1,
            }, parts);
            const other = (side === "a" ? p.b : p.a).map((o) => (laneOf.get(o) || { name: "node " + o }).name);
            if (p.kind !== "clog" && clampX(p.t1) - clampX(p.t0) > 150 && other.length) {
              el("text", { x: clampX(p.t0) + 3, y: laneY.get(n) + 4, class: "part-label" }, parts,
                (p.kind === "clog" ? "clogged to " : p.kind === "one-way" ? (side === "a" ? "cannot send to " : "cannot hear ") : "cut off from ") + other.join(", "));
            }
          }
        });
      }
    }

    for (const l of lanes) {
      const cy = laneY.get(l.node);
      const g = el("g", { class: "lane", "data-lane": l.node, "data-name": l.name }, svg);
      el("line", { x1: LEFT, y1: cy + LANE_H / 2, x2: LEFT + plotW(), y2: cy + LANE_H / 2, class: "lanesep" }, g);
      el("text", { x: 6, y: cy - 2, class: "lanename" }, g, l.name);
      el("text", { x: 6, y: cy + 12, class: "lanekind" }, g,
        { replica: "Raft replica, node " + l.node, supervisor: "runs the fault plan", clients: "client node " + l.node, db: "database node " + l.node }[l.kind] || "node " + l.node);
      if (!hiddenKinds.has("roles")) {
        for (const r of M.roles) {
          if (r.node !== l.node || !inView(r.t0, r.t1)) continue;
          const a = clampX(r.t0), b = clampX(r.t1);
          el("rect", {
            x: a, y: cy - LANE_H / 2 + 1, width: Math.max(1, b - a), height: LANE_H - 2, fill: ROLE_COLOR[r.role], class: "role role-" + r.role,
            "data-d": details.push(`${l.name}: ${r.role}, term ${r.term}, ${secs(r.t0)}–${secs(r.t1)}`) - 1,
          }, g);
          if (b - a > 70) el("text", { x: a + 3, y: cy - LANE_H / 2 + 11, class: "role-label" }, g, `${r.role} · term ${r.term}`);
          else if (b - a > 22) el("text", { x: a + 2, y: cy - LANE_H / 2 + 11, class: "role-label" }, g, `${r.role[0].toUpperCase()}${r.term}`);
        }
      }
      if (!hiddenKinds.has("spans")) {
        for (const s of M.spans) {
          if (s.node !== l.node || !inView(s.t0, s.t1)) continue;
          el("rect", {
            x: clampX(s.t0), y: cy - 6, width: Math.max(2, clampX(s.t1) - clampX(s.t0)), height: 12, class: "span span-" + s.kind,
            "data-d": details.push(`${s.kind} ${secs(s.t0)}–${secs(s.t1)}: ${s.detail}`) - 1,
          }, g);
        }
      }
      // Messages sent from this lane: a strip when arrows would be a wall.
      const byKind = new Map();
      for (const m of M.marks) {
        if (m.node !== l.node || hiddenKinds.has(m.kind) || m.t < t0 || m.t > t1) continue;
        if (!byKind.has(m.kind)) byKind.set(m.kind, []);
        byKind.get(m.kind).push(m);
      }
      let strip = 0;
      for (const [kind, list] of byKind) {
        if (list.length > DENSE) density(kind, list, cy, g, LANE_H / 2 - 7 - 6 * strip++);
        else for (const m of list) shape(kind, x(m.t), cy, g, m.detail);
      }
    }

    svg.appendChild(parts);
    // Messages: arrows when few are in view, else a count per pair of lanes.
    const mg = el("g", { id: "messages", "clip-path": "url(#plot)" }, svg);
    const pairsDiv = document.getElementById("pairs");
    pairsDiv.textContent = "";
    if (!hiddenKinds.has("messages")) {
      const vis = M.messages.filter((m) => inView(m[0], m[1]) && laneY.has(m[2]) && laneY.has(m[3]));
      if (vis.length <= MAX_ARROWS) {
        for (const m of vis) {
          el("line", {
            x1: x(m[0]), y1: laneY.get(m[2]), x2: x(m[1]), y2: laneY.get(m[3]), class: "msg", "marker-end": "url(#arrow)",
            "data-d": details.push(`message ${laneOf.get(m[2]).name} → ${laneOf.get(m[3]).name}, sent ${secs(m[0])}, delivered ${secs(m[1])}`) - 1,
          }, mg);
        }
        if (vis.length) pairsDiv.textContent = `${vis.length} messages in view, drawn as arrows.`;
      } else {
        const pairs = new Map();
        for (const m of vis) {
          const k = laneOf.get(m[2]).name + " → " + laneOf.get(m[3]).name;
          pairs.set(k, (pairs.get(k) || 0) + 1);
        }
        pairsDiv.innerHTML = `<b>${vis.length} messages in view</b> — too many to draw as arrows (zoom in below ${MAX_ARROWS}). Per pair of lanes: ` +
          [...pairs].sort().map(([k, n]) => `<span class="pair">${esc(k)}: ${n}</span>`).join(" ");
      }
    }
    // Client operations, one row per client (its successive processes packed).
    if (showOps) {
      el("text", { x: 6, y: opsTop + 8, class: "lanename" }, svg, "operations");
      el("text", { x: 6, y: opsTop + 20, class: "lanekind" }, svg, M.op_rows + " rows, one per client");
      const rows = [];
      for (let i = 0; i < M.op_rows; i++) rows.push(el("g", { class: "oprow", "data-row": i }, svg));
      for (const o of M.ops) {
        const end = o.t1 === null ? M.end_ns : o.t1;
        if (!inView(o.t0, end)) continue;
        const a = clampX(o.t0), b = clampX(end);
        el("rect", {
          x: a, y: opsTop + o.row * ROW_H, width: Math.max(1.5, b - a - 1), height: ROW_H - 3,
          class: "op op-" + o.outcome + (involved.has(o.id) ? " involved" : ""), "data-op": o.id, "data-d": details.push(opText(o)) - 1,
        }, rows[o.row]);
      }
      for (const id of involved) {
        const o = opById.get(id);
        if (!o || !inView(o.t0, o.t0)) continue;
        el("line", { x1: x(o.t0), y1: AXIS, x2: x(o.t0), y2: height, class: "involved-line", "data-d": details.push(opText(o)) - 1 }, svg);
      }
    }
    chart.textContent = "";
    chart.appendChild(svg);
  }

  // ---- the per-key view (Porcupine's): each operation on a key as a bar ------------
  function keyView() {
    const root = document.getElementById("keyview");
    for (const key of M.involved_keys.slice(0, 3)) {
      const ops = M.ops.filter((o) => o.keys.includes(key) && o.outcome !== "fail");
      if (!ops.length) continue;
      // The named operations with the six before the first and two after the last:
      // what set the value the check contradicts, and what saw it.
      ops.sort((p, q) => p.t0 - q.t0);
      const at = ops.map((o, i) => (involved.has(o.id) ? i : -1)).filter((i) => i >= 0);
      const first = at.length ? Math.max(0, at[0] - 6) : 0;
      const last = at.length ? Math.min(ops.length - 1, at[at.length - 1] + 2) : ops.length - 1;
      const focus = ops.slice(first, last + 1);
      let a = Math.min(...focus.map((o) => o.t0));
      let b = Math.max(...focus.map((o) => (o.t1 === null ? o.t0 : o.t1)));
      // Through the first power loss or kill after them: a lost write's usual cause.
      const NODE_FAULTS = ["power-loss", "kill", "restart", "pause", "clock-skew", "disk-fault"];
      const crash = M.marks.find((m) => (m.kind === "power-loss" || m.kind === "kill") && m.t >= b);
      if (crash && at.length) b = Math.max(b, crash.t);
      const pad = Math.max(2e5, (b - a) * 0.05);
      a = Math.max(0, a - pad);
      b = Math.min(M.end_ns, b + pad);
      const shown = ops.filter((o) => (o.t1 === null ? M.end_ns : o.t1) >= a && o.t0 <= b);
      const rows = [...new Set(shown.map((o) => o.row))].sort((p, q) => p - q);
      const H = 22, W = Math.max(700, chart.clientWidth - 20), L = 110;
      const sx = (t) => L + ((Math.max(a, Math.min(b, t)) - a) / (b - a)) * (W - L - 10);
      const box = document.createElement("div");
      box.className = "key";
      box.innerHTML = `<h3>Key <code>${esc(key)}</code>: the operations around the failure</h3>` +
        `<p>${shown.length} of the ${ops.length} operations on this key that did not fail, ${secs(a)}–${secs(b)}; one row per client, a bar from invocation to return ` +
        `(green ok, orange unknown outcome, open end: never returned). <b>Red outline</b>: named by the failed check` +
        (M.involved_ops.length ? ` (first: T${M.involved_ops[0]}, the one that cannot be placed / was lost)` : "") + ".</p>";
      const svg = el("svg", { width: W, height: rows.length * H + 64, class: "keysvg", "data-key": key }, box);
      el("text", { x: L, y: 12, class: "axis" }, svg, secs(a));
      el("text", { x: W - 70, y: 12, class: "axis" }, svg, secs(b));
      rows.forEach((r, i) => el("text", { x: 4, y: 18 + i * H + 14, class: "lanekind" }, svg, "client row " + r));
      // The faults in the window, as lines across the rows; close labels stack.
      let lastX = -1e9, stack = 0;
      for (const m of M.marks) {
        if (!NODE_FAULTS.includes(m.kind) || m.t < a || m.t > b) continue;
        const fx = sx(m.t);
        stack = fx - lastX < 110 ? stack + 1 : 0;
        lastX = fx;
        const ly = 28 + rows.length * H + stack * 11;
        const g = el("g", { class: "kfault k-" + m.kind }, svg);
        el("line", { x1: fx, y1: 14, x2: fx, y2: ly - 8, stroke: KINDS[m.kind].color, "stroke-width": 2 }, g);
        const right = fx > W - 140;
        el("text", { x: right ? fx - 3 : fx + 3, y: ly, class: "lanekind", "text-anchor": right ? "end" : "start" }, g,
          KINDS[m.kind].label.split(" (")[0] + " (" + (laneOf.get(m.node) || { name: "node " + m.node }).name + ")");
        el("title", {}, g, m.detail);
      }
      for (const o of shown) {
        const y = 18 + rows.indexOf(o.row) * H;
        const p = sx(o.t0), q = sx(o.t1 === null ? b : o.t1);
        const g = el("g", { class: "kop" + (involved.has(o.id) ? " involved" : "") + (o.id === M.involved_ops[0] ? " offending" : ""), "data-op": o.id }, svg);
        el("rect", { x: p, y, width: Math.max(6, q - p), height: H - 6, class: "op op-" + o.outcome + (involved.has(o.id) ? " involved" : "") }, g);
        el("title", {}, g, opText(o));
        if (q - p > 60) el("text", { x: p + 3, y: y + 11, class: "oplabel" }, g, `T${o.id} ${o.text}`.slice(0, Math.floor((q - p) / 6)));
        else if (involved.has(o.id)) el("text", { x: q + 8 > W - 200 ? p - 6 : q + 8, y: y + 11, class: "oplabel named", "text-anchor": q + 8 > W - 200 ? "end" : "start" }, g, `T${o.id} ${o.text}`.slice(0, 40));
      }
      root.appendChild(box);
    }
  }

  // `page.html#from=4.0&to=4.02` opens zoomed to that range (seconds): a link to a
  // moment of the run.
  const hash = new URLSearchParams(location.hash.slice(1));
  const from = parseFloat(hash.get("from")), to = parseFloat(hash.get("to"));
  if (isFinite(from) && isFinite(to) && to > from) zoomTo(from * 1e9, to * 1e9);
  else draw();
  keyView();
  window.addEventListener("resize", draw);
  document.body.setAttribute("data-drawn", "yes");
})();
