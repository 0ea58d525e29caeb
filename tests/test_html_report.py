"""`--html FILE`: the page opens in a real headless browser, offline, and shows the exact figures."""

from __future__ import annotations

import re
from html import unescape

from utils import generate_logs

from .browser import dump_dom, require_browser
from .helpers import json_of, run_program


def test_the_report_page_draws_the_exact_statistics(tmp_path):
    require_browser()
    folder = tmp_path / "logs"
    expected = generate_logs.generate(str(folder), files=3, lines=3000, seed=9, noise=0.1, malformed=0.02,
                                      stats=True, bucket_s=5)
    page = tmp_path / "report.html"
    doc = json_of(run_program("base_log_analyser.py", folder, "--bucket", "5s", "--top", "3", "--by", "file",
                              "--html", page, "--json"))
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text  # no CDN

    dom = dump_dom(page.as_uri())
    assert 'data-rendered="yes"' in dom  # the page's script ran to its end

    # the timeline: one bar per (bucket, level) present, each with the oracle's count
    bars = re.findall(r'<rect [^>]*data-level="(\w+)" data-start="([^"]+)" data-count="(\d+)"', dom)
    oracle = {(start, level): n for start, counts in expected["stats"]["timeline"].items() for level, n in counts.items()}
    assert {(start, level): int(n) for level, start, n in bars} == oracle

    # the counts table and the top templates
    rows = dict(re.findall(r'<tr data-level="(\w+)">.*?<td class="n">(\d+)</td>', dom))
    assert {k: int(v) for k, v in rows.items()} == {k: v for k, v in expected["counts"].items() if v}
    shown = {unescape(t) for t in re.findall(r'<code class="template">(.*?)</code>', dom)}
    assert shown == {e["template"] for entries in doc["top_templates"].values() for e in entries}
    for level, table in expected["stats"]["templates"].items():
        best = max(table.values())
        assert any(table.get(t) == best for t in shown), level  # each level's most frequent template is shown
