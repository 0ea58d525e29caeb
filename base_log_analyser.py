#!/usr/bin/env python3
"""Sequential log analyser: python3 base_log_analyser.py DIR [--json]."""

from loganalyser.programs.allocator import single_threaded_blas, tune_allocator

single_threaded_blas()  # before numpy is imported

from loganalyser.programs.cli import leave, run  # noqa: E402
from loganalyser.programs.sequential import PROG, main  # noqa: E402

if __name__ == "__main__":
    tune_allocator()  # keep per-chunk numpy temporaries out of mmap/munmap
    leave(run(PROG, main))  # no interpreter teardown: it only costs time
