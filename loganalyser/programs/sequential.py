"""The sequential analyser: one process, every file in order (the baseline)."""

from __future__ import annotations

import time

from loganalyser.console import warn
from loganalyser.counting.reader import SMALL_FILE, analyse_pieces
from loganalyser.errors import UsageError
from loganalyser.work.scanning import job_formats, scan_inputs
from loganalyser.work.tasks import whole_piece

from .cli import add_follow_options, base_parser
from .follow import follow
from .options import input_options
from .report import emit, result_document

PROG = "base_log_analyser.py"


def build_parser():
    parser = base_parser(PROG, "Count log lines per level, sequentially.")
    group = add_follow_options(parser)
    group.add_argument("--state", metavar="FILE",
                       help="with --follow: save totals and stream offsets to FILE; a restart goes on from it")
    return parser


def main(argv) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    inputs = input_options(args)
    formats = job_formats(inputs)
    if args.follow:
        return follow(args, inputs, formats)
    if args.follow_for or args.state:
        raise UsageError("--follow-for and --state go with --follow")
    files = scan_inputs(inputs, formats, warn, read_later=SMALL_FILE)  # small files: detected as they are read
    if not (args.quiet or args.json):
        print(f"Found {len(files)} log file(s) to analyse")
        print("Starting sequential analysis...", flush=True)
    result = analyse_pieces((whole_piece(f) for f in files), warn=warn, formats=formats)
    doc = result_document(result, time.perf_counter() - start, formats.analysis, program="sequential", ranks=1)
    emit(doc, args.json, args.output, csv_dir=args.csv, html=args.html)
    return 0
