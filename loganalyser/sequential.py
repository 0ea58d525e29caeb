"""The sequential analyser: one process, every file in order (the baseline)."""

from __future__ import annotations

import time

from .cli import base_parser, warn
from .inputs import find_log_files
from .reader import analyse_pieces
from .report import emit, result_document
from .tasks import Piece

PROG = "base_log_analyser.py"


def main(argv) -> int:
    args = base_parser(PROG, "Count log lines per level, sequentially.").parse_args(argv)
    start = time.perf_counter()
    files = find_log_files(args.paths, args.glob, args.recursive, warn=warn)
    if not (args.quiet or args.json):
        print(f"Found {len(files)} log file(s) to analyse")
        print("Starting sequential analysis...", flush=True)
    result = analyse_pieces((Piece(f.path, 0, f.size, f.identity, whole=True, file_size=f.size) for f in files), warn=warn)
    doc = result_document(result, time.perf_counter() - start, program="sequential", ranks=1)
    emit(doc, args.json, args.output)
    return 0
