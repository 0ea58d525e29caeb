"""`--html FILE`: the result as one self-contained page (no CDN, no fonts to fetch).

The JSON document is embedded in the page and a short script draws it: the
counts per level, a stacked timeline of levels (SVG), the top templates of
each level and the groups. The page works from `file://` on an offline
cluster node and in any browser.
"""

from __future__ import annotations

import html
import json

from loganalyser.errors import AnalyserError, ExitCode
from loganalyser.persistence.atomic import write_atomic

LEVEL_COLOURS = {"FATAL": "#7b1fa2", "ERROR": "#d32f2f", "WARN": "#f9a825", "NOTICE": "#0288d1", "INFO": "#388e3c",
                 "DEBUG": "#607d8b", "TRACE": "#9e9e9e", "NONE": "#bdbdbd"}

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: .4em 0; }}
td, th {{ border: 1px solid #ccc; padding: .2em .6em; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.swatch {{ display: inline-block; width: .8em; height: .8em; margin-right: .3em; }}
code {{ font-size: .9em; }} .muted {{ color: #777; }}
</style></head>
<body>
<h1>{title}</h1>
<p id="summary" class="muted"></p>
<h2>Lines per level</h2><table id="counts"></table>
<div id="timeline-section" hidden><h2>Timeline</h2><div id="legend"></div><svg id="timeline" width="960" height="260"></svg></div>
<div id="templates-section" hidden><h2>Top templates</h2><div id="templates"></div></div>
<div id="groups-section" hidden><h2>Groups</h2><table id="groups"></table></div>
<script type="application/json" id="data">{data}</script>
<script>
"use strict";
const doc = JSON.parse(document.getElementById("data").textContent);
const COLOURS = {colours};
const colour = level => COLOURS[level] || "#5c6bc0";
const el = (tag, attrs = {{}}, text) => {{
  const svg = ["svg", "rect", "line", "text", "g"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}};
const row = (cells, numeric = []) => {{
  const tr = el("tr");
  cells.forEach((c, i) => tr.appendChild(el("td", numeric.includes(i) ? {{class: "n"}} : {{}}, String(c))));
  return tr;
}};
const levels = Object.keys(doc.counts).sort();
const range = doc.time_range;
document.getElementById("summary").textContent =
  `${{doc.lines}} lines in ${{doc.files}} files, ${{doc.records}} records, ${{doc.malformed}} malformed` +
  (range ? `; from ${{range.first}} to ${{range.last}}` : "") + `; ${{doc.elapsed_s.toFixed(2)}} s`;
const counts = document.getElementById("counts");
counts.appendChild(row(["level", "lines"]));
for (const level of levels) {{
  const tr = row(["", doc.counts[level]], [1]);
  tr.firstChild.appendChild(el("span", {{class: "swatch", style: `background:${{colour(level)}}`}}));
  tr.firstChild.appendChild(document.createTextNode(level));
  tr.setAttribute("data-level", level);
  counts.appendChild(tr);
}}
if (doc.timeline && doc.timeline.buckets.length) {{
  document.getElementById("timeline-section").hidden = false;
  const svg = document.getElementById("timeline");
  const buckets = doc.timeline.buckets, width = 960, height = 220, left = 60;
  const totals = buckets.map(b => Object.values(b.counts).reduce((a, n) => a + n, 0));
  const top = Math.max(...totals, 1), step = (width - left) / buckets.length;
  svg.appendChild(el("text", {{x: 0, y: 12, "font-size": 11}}, String(top)));
  svg.appendChild(el("line", {{x1: left, y1: height, x2: width, y2: height, stroke: "#999"}}));
  buckets.forEach((b, i) => {{
    let y = height;
    for (const level of levels) {{
      const n = b.counts[level] || 0;
      if (!n) continue;
      const h = n / top * (height - 10);
      y -= h;
      const bar = el("rect", {{x: left + i * step, y, width: Math.max(step - 1, 1), height: h, fill: colour(level),
                              "data-level": level, "data-start": b.start, "data-count": n}});
      bar.appendChild(el("title", {{}}, `${{b.start}} ${{level}}: ${{n}}`));
      svg.appendChild(bar);
    }}
  }});
  svg.appendChild(el("text", {{x: left, y: height + 16, "font-size": 11}}, buckets[0].start));
  svg.appendChild(el("text", {{x: width, y: height + 16, "font-size": 11, "text-anchor": "end"}},
                     buckets[buckets.length - 1].start + ` (${{doc.timeline.bucket}} buckets)`));
  const legend = document.getElementById("legend");
  for (const level of levels) {{
    legend.appendChild(el("span", {{class: "swatch", style: `background:${{colour(level)}}`}}));
    legend.appendChild(document.createTextNode(level + "  "));
  }}
}}
if (doc.top_templates) {{
  document.getElementById("templates-section").hidden = false;
  const box = document.getElementById("templates");
  for (const level of Object.keys(doc.top_templates)) {{
    box.appendChild(el("h3", {{}}, level));
    const table = el("table", {{"data-level": level}});
    table.appendChild(row(["count", "template", "example"]));
    for (const t of doc.top_templates[level]) {{
      const tr = row([t.count + (t.error ? ` (±${{t.error}})` : ""), "", t.example], [0]);
      tr.children[1].appendChild(el("code", {{class: "template"}}, t.template));
      table.appendChild(tr);
    }}
    box.appendChild(table);
  }}
}}
if (doc.groups) {{
  document.getElementById("groups-section").hidden = false;
  const table = document.getElementById("groups");
  table.appendChild(row([doc.groups.by, ...levels]));
  for (const [group, c] of Object.entries(doc.groups.counts))
    table.appendChild(row([group, ...levels.map(l => c[l] || 0)], levels.map((_, i) => i + 1)));
}}
document.body.setAttribute("data-rendered", "yes");
</script>
</body></html>
"""


def html_page(doc: dict, title: str = "Log analysis") -> str:
    """The page of a result document."""
    data = json.dumps(doc).replace("</", "<\\/")  # the JSON cannot end the script element early
    return _PAGE.format(title=html.escape(title), data=data, colours=json.dumps(LEVEL_COLOURS))


def write_html(doc: dict, path: str) -> None:
    try:
        write_atomic(path, html_page(doc).encode("utf-8"))
    except OSError as exc:
        raise AnalyserError(f"cannot write {path}: {exc.strerror or exc}", ExitCode.INPUT) from None
