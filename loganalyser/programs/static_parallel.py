"""The statically partitioned MPI analyser (the seed's Stage 1).

Rank 0 scans the input and broadcasts the file list; every rank takes an equal
share of the bytes (a large file is cut at line boundaries, so N ranks share
it), counts it, and rank 0 sums the partial results. No rank waits on another
except at the broadcast and the final gather.
"""

from __future__ import annotations

import time

from loganalyser.console import warn
from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError, ExitCode, carried
from loganalyser.work.scanning import job_formats, scan_inputs
from loganalyser.work.tasks import partition_by_bytes

from .cli import base_parser
from .options import input_options
from .report import emit, result_document

PROG = "parallel_log_analyser.py"


def main(argv) -> int:
    from mpi4py import MPI  # imported here so --help and bad options need no MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    args = base_parser(PROG, "Count log lines per level, partitioned statically over MPI ranks.").parse_args(argv)
    start = time.perf_counter()

    job = None
    if rank == 0:
        try:
            inputs = input_options(args)
            formats = job_formats(inputs)
            job = (scan_inputs(inputs, formats, warn), formats)
        except Exception as exc:  # an error, or a bug: either way the other ranks must not wait in the broadcast
            job = carried(rank, exc)
    job = comm.bcast(job, root=0)  # every rank counts with rank 0's formats
    if isinstance(job, AnalyserError):
        if rank == 0:
            raise job
        return 0  # rank 0 reports the error and sets the exit code
    plan, formats = job
    if rank == 0 and not (args.quiet or args.json):
        print(f"Found {len(plan)} log file(s) to analyse")
        print(f"Starting parallel analysis on {size} rank(s)...", flush=True)

    share = partition_by_bytes(plan, size)[rank]
    try:
        part = analyse_pieces(share, warn=warn, formats=formats)
    except Exception as exc:  # rank 0 reports it, and no rank is left waiting in the gather
        part = carried(rank, exc)
    parts = comm.gather(part, root=0)
    if rank != 0:
        return 0
    for part in parts:
        if isinstance(part, AnalyserError):
            raise part
    result = PartialResult.total(parts)
    doc = result_document(result, time.perf_counter() - start, formats.analysis, program="parallel",
                          ranks=size, bytes_per_rank=[p.bytes for p in parts])
    emit(doc, args.json, args.output, csv_dir=args.csv, html=args.html)
    return int(ExitCode.OK)
