"""What the programs print: the seed's results table and the JSON document."""

from __future__ import annotations

import json
import sys

from loganalyser.counting.analysis import Analysis
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError, ExitCode
from loganalyser.persistence.atomic import write_atomic

from .html_report import write_html
from .statistics import statistics_document, summary_lines, write_csv

RULE = "=" * 49


def result_document(result: PartialResult, elapsed_s: float, analysis: Analysis | None = None, **extra) -> dict:
    """The JSON document: counts, lines, files, bytes, malformed, elapsed_s, the statistics asked for, ..."""
    doc = result.to_dict()
    doc.pop("stats", None)
    if analysis is not None:
        doc.update(statistics_document(result.stats, analysis))
    doc["elapsed_s"] = round(elapsed_s, 6)
    doc.update(extra)
    return doc


def ranks_by_host(names) -> dict:
    """`names[rank]` is each rank's host name -> {host: [ranks]}, hosts in the order of their first rank."""
    hosts: dict = {}
    for rank, name in enumerate(names):
        hosts.setdefault(name, []).append(rank)
    return hosts


def results_table(doc: dict, extra_lines=()) -> str:
    """The seed's ANALYSIS RESULTS block, plus totals a log analyst wants."""
    lines = ["", RULE, "ANALYSIS RESULTS", RULE]
    lines += [f"{level}: {count}" for level, count in sorted(doc["counts"].items())]
    lines.append(RULE)
    lines.append(f"Total lines: {doc['lines']} (malformed: {doc['malformed']}, blank: {doc['blank']})")
    lines.append(f"Files: {doc['files']}  Bytes: {doc['bytes']}")
    lines.append(f"Records: {doc.get('records', doc['lines'])} (continuation lines: {doc.get('continuation', 0)})")
    if doc.get("formats"):
        lines.append("Formats: " + ", ".join(f"{name} ({n})" for name, n in sorted(doc["formats"].items())))
    lines.append(f"Total time: {doc['elapsed_s']:.2f}s")
    lines.extend(summary_lines(doc))
    lines.extend(extra_lines)
    lines.append(RULE)
    return "\n".join(lines)


def emit(doc: dict, as_json: bool, output: str | None, extra_lines=(), csv_dir: str | None = None,
         html: str | None = None) -> None:
    """Prints the table (or the JSON); writes the JSON to `output` atomically, the CSV files to `csv_dir`
    and the HTML page to `html`."""
    text = json.dumps(doc, indent=2)
    if csv_dir:
        write_csv(doc, csv_dir)
    if html:
        write_html(doc, html)
    if output:
        try:
            write_atomic(output, (text + "\n").encode())
        except OSError as exc:
            raise AnalyserError(f"cannot write {output}: {exc.strerror or exc}", ExitCode.INPUT) from None
    if as_json:
        print(text)
    else:
        print(results_table(doc, extra_lines))
    sys.stdout.flush()
