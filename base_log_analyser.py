#!/usr/bin/env python3
"""Sequential log analyser: python3 base_log_analyser.py DIR [--json]."""

import sys

from loganalyser.programs.allocator import tune_allocator
from loganalyser.programs.cli import run
from loganalyser.programs.sequential import PROG, main

if __name__ == "__main__":
    tune_allocator()  # keep per-chunk numpy temporaries out of mmap/munmap
    sys.exit(run(PROG, main))
