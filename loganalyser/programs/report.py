"""What the programs print: the seed's results table and the JSON document."""

from __future__ import annotations

import json
import sys

from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError, ExitCode
from loganalyser.persistence.atomic import write_atomic

RULE = "=" * 49


def result_document(result: PartialResult, elapsed_s: float, **extra) -> dict:
    """The JSON document: counts, lines, files, bytes, malformed, elapsed_s, ..."""
    doc = result.to_dict()
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
    lines.extend(extra_lines)
    lines.append(RULE)
    return "\n".join(lines)


def emit(doc: dict, as_json: bool, output: str | None, extra_lines=()) -> None:
    """Prints the table (or the JSON) and writes the JSON to `output` atomically."""
    text = json.dumps(doc, indent=2)
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
