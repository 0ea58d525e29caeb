"""The sequential analyser: one process, every file in order (the baseline)."""

from __future__ import annotations

import time

from loganalyser.console import warn
from loganalyser.counting.reader import SMALL_FILE, analyse_pieces
from loganalyser.work.scanning import job_formats, scan_inputs
from loganalyser.work.tasks import whole_piece

from .cli import base_parser
from .report import emit, result_document

PROG = "base_log_analyser.py"


def main(argv) -> int:
    args = base_parser(PROG, "Count log lines per level, sequentially.").parse_args(argv)
    start = time.perf_counter()
    formats = job_formats(args)
    files = scan_inputs(args, formats, warn, read_later=SMALL_FILE)  # small files: detected as they are read
    if not (args.quiet or args.json):
        print(f"Found {len(files)} log file(s) to analyse")
        print("Starting sequential analysis...", flush=True)
    result = analyse_pieces((whole_piece(f) for f in files), warn=warn, formats=formats)
    doc = result_document(result, time.perf_counter() - start, args, formats.analysis, program="sequential", ranks=1)
    emit(doc, args.json, args.output, csv_dir=args.csv, html=args.html)
    return 0
