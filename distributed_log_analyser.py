#!/usr/bin/env python3
"""Fault-tolerant distributed analyser: mpirun -np N python3 distributed_log_analyser.py DIR."""

import sys

from loganalyser.programs.allocator import tune_allocator
from loganalyser.programs.cli import run
from loganalyser.programs.distributed import PROG, finalize_mpi, main

if __name__ == "__main__":
    tune_allocator()  # keep per-chunk numpy temporaries out of mmap/munmap
    code = run(PROG, main)
    finalize_mpi(code)
    sys.exit(code)
