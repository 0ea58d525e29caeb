"""The dashboard page: one file, no CDN, no web fonts (clusters are offline).

The live page polls `/status.json`; the static page (`--dashboard-html`,
written at the end) carries the final document inside it and opens from
`file://`. Both draw the same things: the master and its epoch, totals so
far (counts per level, lines, bytes, rate, ETA), the ranks as a row of
coloured cells and a table, the queue, failures and elections, the
checkpoint in force, and the throughput over time (`history` in the
document).
"""

from __future__ import annotations

import json

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log analyser: live</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .4em; } h2 { font-size: 1.05em; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .15em .5em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
#cells span { display: inline-block; min-width: 2.2em; padding: .3em; margin: 0 .2em .2em 0; text-align: center;
  color: #fff; border-radius: 3px; }
.master { background: #1565c0; } .counting { background: #2e7d32; } .idle { background: #9e9e9e; }
.failed { background: #c62828; } .paused, .feigning { background: #ef6c00; } .released, .stopped { background: #616161; }
#banner { padding: .3em .6em; background: #eee; display: inline-block; }
#banner.done { background: #c8e6c9; } #banner.lost { background: #ffcdd2; }
</style></head>
<body>
<h1>Log analyser</h1>
<div id="banner">waiting for the first status...</div>
<h2>Ranks</h2><div id="cells"></div><table id="ranks"></table>
<h2>Totals so far</h2><table id="counts"></table><p id="totals"></p>
<svg id="rate" width="640" height="120"></svg>
<h2>Queue, failures, checkpoints</h2><p id="queue"></p><p id="faults"></p><p id="checkpoint"></p>
<script type="application/json" id="embedded">__EMBEDDED__</script>
<script>
"use strict";
const $ = id => document.getElementById(id);
const el = (tag, attrs = {}, text) => {
  const svg = ["svg", "polyline", "line", "text"].includes(tag);
  const n = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
};
const fmt = x => (x === null || x === undefined) ? "-" : (typeof x === "number" ? x.toLocaleString("en") : String(x));
const mb = b => (b / 1e6).toFixed(1) + " MB";
function table(node, header, rows) {
  node.replaceChildren();
  const h = el("tr"); header.forEach(t => h.appendChild(el("th", {}, t))); node.appendChild(h);
  for (const r of rows) {
    const tr = el("tr");
    r.forEach(c => tr.appendChild(el("td", typeof c === "number" ? {class: "n"} : {}, fmt(c))));
    node.appendChild(tr);
  }
}
function draw(s, live) {
  const b = $("banner");
  b.className = s.done ? "done" : "";
  b.textContent = (s.done ? "finished" : "running") + ` - master: rank ${s.master_rank}, epoch ${s.epoch}` +
    (s.updated ? ` - updated ${s.updated}` : "") + (live ? "" : " (final)");
  b.setAttribute("data-epoch", s.epoch); b.setAttribute("data-master", s.master_rank);
  b.setAttribute("data-done", s.done ? "yes" : "no");
  const cells = $("cells"); cells.replaceChildren();
  for (const r of s.ranks || []) {
    const state = r.role === "master" ? "master" : r.state;
    cells.appendChild(el("span", {class: state, title: `rank ${r.rank}: ${r.role}, ${r.state}`,
                                  "data-rank": r.rank, "data-state": r.state}, String(r.rank)));
  }
  table($("ranks"), ["rank", "role", "state", "task", "tasks done", "bytes done", "MB/s", "last heard (s)"],
        (s.ranks || []).map(r => [r.rank, r.role, r.state, r.task || "", r.tasks_done, r.bytes_done,
                                  r.rate_mb_s, r.last_heard_s]));
  const counts = s.counts || {};
  table($("counts"), ["level", "lines"], Object.keys(counts).sort().map(k => [k, counts[k]]));
  $("counts").setAttribute("data-counts", JSON.stringify(counts));
  $("totals").textContent = `${fmt(s.lines)} lines, ${mb(s.bytes_done || 0)} of ${mb(s.bytes_total || 0)}` +
    `, ${(s.rate_mb_s || 0).toFixed(1)} MB/s` + (s.eta_s !== null && s.eta_s !== undefined && !s.done ? `, ETA ${s.eta_s.toFixed(0)} s` : "");
  const q = s.queue || {};
  $("queue").textContent = `pending: ${fmt(q.tasks_pending)} tasks (${mb(q.bytes_pending || 0)}), in flight: ${fmt(q.in_flight)}, done: ${fmt(q.tasks_done)} of ${fmt(q.tasks_total)}`;
  $("faults").textContent = `failed ranks: ${JSON.stringify(s.failed || [])}, tasks re-queued: ${fmt(s.requeued)}, elections: ${fmt(s.elections)}`;
  $("checkpoint").textContent = s.checkpoint ? `checkpoint in force: ${s.checkpoint}` : "no checkpoint yet";
  const svg = $("rate"); svg.replaceChildren();
  const hist = s.history || [];
  if (hist.length > 1) {
    const t0 = hist[0][0], t1 = hist[hist.length - 1][0], top = Math.max(...hist.map(h => h[1]), 1);
    const pts = hist.map(h => `${(h[0] - t0) / Math.max(t1 - t0, 1e-9) * 620 + 10},${110 - h[1] / top * 100}`);
    svg.appendChild(el("polyline", {points: pts.join(" "), fill: "none", stroke: "#1565c0", "stroke-width": 2}));
    svg.appendChild(el("text", {x: 12, y: 12, "font-size": 11}, `bytes done (max ${mb(top)})`));
  }
  document.body.setAttribute("data-rendered", String(Number(document.body.getAttribute("data-rendered") || 0) + 1));
}
const embedded = $("embedded").textContent.trim();
if (embedded && embedded !== "null") {
  draw(JSON.parse(embedded), false);
} else {
  async function poll() {
    try {
      const r = await fetch("status.json", {cache: "no-store"});
      if (r.ok) { const s = await r.json(); if (s.epoch !== undefined) draw(s, true); }
    } catch (e) {
      $("banner").className = "lost";  // the master is gone; the next one will answer at this address
    }
    setTimeout(poll, 400);
  }
  poll();
}
</script>
</body></html>
"""


def live_page() -> str:
    return _PAGE.replace("__EMBEDDED__", "null")


def static_page(doc: dict) -> str:
    """The page with `doc` inside it: readable from file:// after the job."""
    return _PAGE.replace("__EMBEDDED__", json.dumps(doc).replace("</", "<\\/"))
