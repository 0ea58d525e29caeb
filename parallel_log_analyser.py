#!/usr/bin/env python3
"""Static-partition MPI analyser: mpirun -np N python3 parallel_log_analyser.py DIR."""

import sys

from loganalyser.programs.allocator import single_threaded_blas, tune_allocator

single_threaded_blas()  # before numpy is imported

from loganalyser.programs.cli import run  # noqa: E402
from loganalyser.programs.static_parallel import PROG, main  # noqa: E402

if __name__ == "__main__":
    tune_allocator()  # keep per-chunk numpy temporaries out of mmap/munmap
    sys.exit(run(PROG, main))
