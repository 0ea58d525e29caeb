"""What every part of the benchmark shares: the repository, the MB unit, the error and the log."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
MB = 1e6


class BenchError(Exception):
    """A command failed or the benchmark cannot go on."""


def log(text: str) -> None:
    """One timestamped progress line on stderr."""
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {text}", file=sys.stderr, flush=True)
