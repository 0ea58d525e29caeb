"""The analysis statistics as the user reads them: JSON keys, a table summary, CSV files.

JSON keys (stable; other tools rely on them):

    "time_range": {"first": ISO, "last": ISO, "untimed": N, "files": {path: {"first", "last"}}}
    "timeline":   {"bucket": "1h", "buckets": [{"start": ISO, "counts": {level: N}}, ...]}
    "top_templates": {level: [{"template", "count", "example"} (+ "error" when not exact)]}
    "templates":  {"exact": bool, "bound": {level: N}}   (a template not listed occurred at most N times)
    "groups":     {"by": "host", "counts": {group: {level: N}}, "capped": bool}
    "filters":    {"level": [...], "grep": ..., "since": ..., "until": ...}
"""

from __future__ import annotations

import csv
import os

from loganalyser.console import shown
from loganalyser.counting.analysis import Analysis, LineStats
from loganalyser.counting.analysis.stats import COUNT, ERROR, TEXT
from loganalyser.counting.analysis.timestamps import iso
from loganalyser.errors import AnalyserError, ExitCode

SEVERITY = ("FATAL", "ERROR", "WARN", "NOTICE", "INFO", "DEBUG", "TRACE")  # worst first


def statistics_document(stats: LineStats | None, analysis: Analysis) -> dict:
    """The analysis keys of the JSON document."""
    doc: dict = {}
    if analysis.active:
        doc["filters"] = analysis.filters_document()
    if not analysis.per_line:
        return doc
    stats = stats or LineStats()
    doc["time_range"] = {
        "first": iso(stats.first_ms) if stats.first_ms is not None else None,
        "last": iso(stats.last_ms) if stats.last_ms is not None else None,
        "untimed": stats.untimed,
        "files": {shown(path): {"first": iso(a), "last": iso(b)} for path, (a, b) in sorted(stats.file_ranges.items())},
    }
    if analysis.bucket_s:
        doc["timeline"] = {"bucket": bucket_name(analysis.bucket_s), "buckets": [
            {"start": iso(start * 1000, with_ms=False), "counts": dict(sorted(counts.items()))}
            for start, counts in sorted(stats.timeline.items())]}
    if analysis.top:
        doc["top_templates"] = {level: top_entries(table, analysis.top)
                                for level, table in sorted(stats.templates.items())}
        doc["templates"] = {"exact": not stats.capped, "bound": dict(sorted(stats.bounds.items()))}
    if analysis.by:
        doc["groups"] = {"by": analysis.by, "capped": stats.groups_capped,
                         "counts": {g: dict(sorted(c.items())) for g, c in sorted(stats.groups.items())}}
    return doc


def top_entries(table: dict[str, list], n: int) -> list[dict]:
    ranked = sorted(table.items(), key=lambda item: (-item[1][COUNT], item[0]))[:n]
    out = []
    for template, entry in ranked:
        item = {"template": template, "count": entry[COUNT], "example": entry[TEXT]}
        if entry[ERROR]:
            item["error"] = entry[ERROR]
        out.append(item)
    return out


def bucket_name(seconds: int) -> str:
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def summary_lines(doc: dict) -> list[str]:
    """A compact table summary: time range, the worst level's top templates, the busiest bucket."""
    lines = []
    if doc.get("filters") and any(v is not None for v in doc["filters"].values()):
        shown_filters = ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}"
                                  for k, v in doc["filters"].items() if v is not None)
        lines.append(f"Filters: {shown_filters}")
    span = doc.get("time_range")
    if span:
        lines.append(f"Time range: {span['first']} .. {span['last']} (untimed records: {span['untimed']})")
    timeline = doc.get("timeline")
    if timeline and timeline["buckets"]:
        busiest = max(timeline["buckets"], key=lambda b: (sum(b["counts"].values()), b["start"]))
        lines.append(f"Busiest {timeline['bucket']} bucket: {busiest['start']} "
                     f"({sum(busiest['counts'].values())} records)")
    tops = doc.get("top_templates")
    if tops:
        worst = next((level for level in SEVERITY if tops.get(level)), None) or next(iter(tops), None)
        if worst:
            lines.append(f"Top {worst} templates:")
            lines += [f"  {item['count']:>10}  {item['template']}" for item in tops[worst][:5]]
    groups = doc.get("groups")
    if groups:
        lines.append(f"Groups by {groups['by']}: {len(groups['counts'])}" + (" (capped)" if groups["capped"] else ""))
    return lines


def write_csv(doc: dict, folder: str) -> None:
    """One CSV per statistic: counts.csv, timeline.csv, templates.csv, groups.csv, files.csv."""
    try:
        os.makedirs(folder, exist_ok=True)
        _write(folder, "counts.csv", ["level", "count"], sorted(doc["counts"].items()))
        levels = sorted(doc["counts"])
        if "timeline" in doc:
            _write(folder, "timeline.csv", ["start", *levels],
                   [[b["start"], *(b["counts"].get(lv, 0) for lv in levels)] for b in doc["timeline"]["buckets"]])
        if "top_templates" in doc:
            _write(folder, "templates.csv", ["level", "count", "error", "template", "example"],
                   [[level, e["count"], e.get("error", 0), e["template"], e["example"]]
                    for level, entries in doc["top_templates"].items() for e in entries])
        if "groups" in doc:
            _write(folder, "groups.csv", [doc["groups"]["by"], *levels],
                   [[g, *(c.get(lv, 0) for lv in levels)] for g, c in doc["groups"]["counts"].items()])
        if "time_range" in doc:
            _write(folder, "files.csv", ["file", "first", "last"],
                   [[f, r["first"], r["last"]] for f, r in doc["time_range"]["files"].items()])
    except OSError as exc:
        raise AnalyserError(f"cannot write CSV files to {folder}: {exc.strerror or exc}", ExitCode.INPUT) from None


def _write(folder: str, name: str, header, rows) -> None:
    with open(os.path.join(folder, name), "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
