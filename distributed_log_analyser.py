#!/usr/bin/env python3
"""Fault-tolerant distributed analyser: mpirun -np N python3 distributed_log_analyser.py DIR."""

from loganalyser.programs.allocator import single_threaded_blas, tune_allocator

single_threaded_blas()  # before numpy is imported

from loganalyser.programs.cli import leave, run  # noqa: E402
from loganalyser.programs.distributed import PROG, finalize_mpi, main  # noqa: E402

if __name__ == "__main__":
    tune_allocator()  # keep per-chunk numpy temporaries out of mmap/munmap
    code = run(PROG, main)
    finalize_mpi(code)
    leave(code)  # no interpreter teardown: it only costs time
