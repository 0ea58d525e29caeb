#!/usr/bin/env python3
"""Fault-tolerant distributed analyser: mpirun -np N python3 distributed_log_analyser.py DIR."""

import sys

from loganalyser.cli import run
from loganalyser.distributed import PROG, main

if __name__ == "__main__":
    sys.exit(run(PROG, main))
