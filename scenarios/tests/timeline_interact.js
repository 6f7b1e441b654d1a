// Drives the timeline page's own handlers the way a person would — buttons, filters,
// the wheel, a drag, a click that pins a mark, the range inputs, a link to a named
// operation — and writes what each did into <pre id="interaction">, one line per
// step: `name ok detail` or `name FAIL detail`. Appended to a copy of a page by
// `scenarios/tests/timeline_browser.rs`, which opens it in headless Chromium; the
// page itself carries no test code.
"use strict";
(function () {
  const out = [];
  const svg = () => document.getElementById("timeline-svg");
  const range = () => [+svg().getAttribute("data-t0"), +svg().getAttribute("data-t1")];
  const step = (name, ok, detail) => out.push(`${name} ${ok ? "ok" : "FAIL"} ${detail}`);
  const skip = (name, why) => out.push(`${name} skip ${why}`);
  const click = (el) => el.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
  try {
    const [a0, b0] = range();
    const whole = b0 - a0;
    step("starts-whole", a0 === 0 && whole > 0, `${a0}..${b0}`);

    click(document.getElementById("zin"));
    let [a, b] = range();
    step("zoom-in-halves", Math.abs((b - a) - whole / 2) <= 2, `${a}..${b}`);

    // Drag to the right pans towards earlier time by the dragged share of the range.
    const chart = document.getElementById("chart");
    const before = range();
    chart.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, clientX: 800, clientY: 60 }));
    window.dispatchEvent(new MouseEvent("mousemove", { clientX: 900, clientY: 60 }));
    window.dispatchEvent(new MouseEvent("mouseup", { clientX: 900, clientY: 60 }));
    [a, b] = range();
    step("drag-pans-earlier", a < before[0] && Math.abs((b - a) - (before[1] - before[0])) <= 2, `${before[0]}..${before[1]} -> ${a}..${b}`);

    // The wheel over the chart zooms in around the pointer.
    const r = chart.getBoundingClientRect();
    const span = b - a;
    chart.dispatchEvent(new WheelEvent("wheel", { bubbles: true, cancelable: true, deltaY: -100, clientX: r.left + 700, clientY: r.top + 60 }));
    [a, b] = range();
    step("wheel-zooms-in", b - a < span * 0.75, `${span} -> ${b - a}`);

    click(document.getElementById("zout"));
    click(document.getElementById("zreset"));
    [a, b] = range();
    step("reset-shows-whole-run", a === 0 && b - a === whole, `${a}..${b}`);

    // Filters: messages off empties the arrows and the per-pair counts; a lane off
    // removes its lane; both come back when switched on.
    const kindBox = (k) => document.querySelector(`#fkinds input[data-kind="${k}"]`);
    const pairs = () => document.getElementById("pairs").textContent.length;
    const hadPairs = pairs();
    if (hadPairs === 0) {
      skip("messages-filter-hides", "no messages in this run");
    } else {
      click(kindBox("messages"));
      step("messages-filter-hides", pairs() === 0 && !document.querySelector("line.msg"), `pairs text ${hadPairs} -> ${pairs()}`);
      click(kindBox("messages"));
      step("messages-filter-restores", pairs() === hadPairs, `${pairs()}`);
    }
    const laneBox = document.querySelector("#flanes input[data-lane]");
    const lane = laneBox.getAttribute("data-lane");
    const lanes = () => document.querySelectorAll("g.lane").length;
    const n = lanes();
    click(laneBox);
    step("lane-filter-hides", lanes() === n - 1 && !document.querySelector(`g.lane[data-lane="${lane}"]`), `${n} -> ${lanes()}`);
    click(laneBox);
    step("lane-filter-restores", lanes() === n, `${lanes()}`);
    const opsBox = kindBox("operations");
    const ops = () => document.querySelectorAll("#timeline-svg rect.op").length;
    const nOps = ops();
    click(opsBox);
    step("operations-filter-hides", nOps > 0 && ops() === 0, `${nOps} -> ${ops()}`);
    click(opsBox);

    // A click pins a mark's details; hovering another then leaves them.
    const detail = document.getElementById("detail");
    const marks = document.querySelectorAll("#timeline-svg [data-d]");
    const first = marks[0], other = marks[marks.length - 1];
    first.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, clientX: 10 }));
    window.dispatchEvent(new MouseEvent("mouseup", { clientX: 10 }));
    click(first);
    const pinned = detail.textContent;
    other.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    step("click-pins-details", detail.className === "pinned" && pinned.length > 0 && detail.textContent === pinned && marks.length > 1, pinned.slice(0, 60));

    // The range inputs (seconds), a tenth of the run from a fifth of the way in.
    const want = [Math.round(whole * 0.2), Math.round(whole * 0.3)];
    document.getElementById("from").value = (want[0] / 1e9).toFixed(9);
    document.getElementById("to").value = (want[1] / 1e9).toFixed(9);
    click(document.getElementById("zapply"));
    [a, b] = range();
    step("range-inputs-apply", Math.abs(a - want[0]) <= 2 && Math.abs(b - want[1]) <= 2, `${want[0]}..${want[1]} -> ${a}..${b}`);

    // A link to an operation the failed check named zooms to it, outlined.
    const link = document.querySelector("a[data-op]");
    if (link) {
      const id = link.getAttribute("data-op");
      click(link);
      [a, b] = range();
      const rect = document.querySelector(`rect.op.involved[data-op="${id}"]`);
      step("op-link-zooms-to-it", !!rect && b - a < whole / 4, `T${id}: ${a}..${b}`);
    } else {
      skip("op-link-zooms-to-it", "no failed check names an operation");
    }
  } catch (e) {
    step("script", false, String(e && e.stack || e).replace(/\s+/g, " "));
  }
  const pre = document.createElement("pre");
  pre.id = "interaction";
  pre.textContent = out.join("\n");
  document.body.appendChild(pre);
})();
