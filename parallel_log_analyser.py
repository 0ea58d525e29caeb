#!/usr/bin/env python3
"""Static-partition MPI analyser: mpirun -np N python3 parallel_log_analyser.py DIR."""

import sys

from loganalyser.programs.allocator import tune_allocator
from loganalyser.programs.cli import run
from loganalyser.programs.static_parallel import PROG, main

if __name__ == "__main__":
    tune_allocator()  # keep per-chunk numpy temporaries out of mmap/munmap
    sys.exit(run(PROG, main))
