#!/usr/bin/env python3
"""Cost of watching (`make bench`): the distributed job at -np 3 with and without `--events` and `--status`.

On the seed-format corpus of utils/analysis_bench.py (generated once, reused),
warm in the page cache, runs alternate plain and watched, --repeat times
each; every run's counts are checked. Medians and the ratio go to
reports/watch_bench.txt and .json. Figures, never pass/fail.

    python -m utils.watch_bench --size 500MB --repeat 3   # from the repository root
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from utils.analysis_bench import corpus
from utils.generate_logs import parse_size

REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def one_run(folder: Path, scratch: Path, watched: bool, expected: dict) -> float:
    extra = ["--events", str(scratch / "events.jsonl"), "--status", str(scratch / "status.json")] if watched else []
    cmd = [str(REPO / ".venv" / "bin" / "mpirun"), "-np", "3", str(REPO / ".venv" / "bin" / "python"),
           str(REPO / "distributed_log_analyser.py"), str(folder), "--json", "--no-checkpoint", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=True)
    seconds = time.perf_counter() - start
    if json.loads(proc.stdout)["lines"] != expected["lines"]:
        raise SystemExit("watch_bench: wrong line count")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="500MB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=str(REPO / "bench_data" / "analysis"))
    parser.add_argument("--out", default=str(REPO / "reports"))
    args = parser.parse_args(argv)
    folder, expected = corpus(Path(args.data), parse_size(args.size))
    plain, watched = [], []
    with tempfile.TemporaryDirectory(prefix="watch_bench_") as scratch:
        for _ in range(args.repeat):  # interleaved: the machine's noise hits both alike
            plain.append(one_run(folder, Path(scratch), False, expected))
            watched.append(one_run(folder, Path(scratch), True, expected))
    p, w = statistics.median(plain), statistics.median(watched)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "watch_bench.json").write_text(json.dumps({"plain_s": plain, "watched_s": watched}, indent=2) + "\n")
    text = (f"COST OF WATCHING (utils/watch_bench.py, `make bench`)\n"
            f"distributed -np 3, {sum(f.stat().st_size for f in folder.glob('*.log')) / 1e6:.0f} MB, no checkpoints, "
            f"medians of {args.repeat}, interleaved\n"
            f"plain: {p:.2f} s; with --events and --status: {w:.2f} s; ratio {w / p:.3f} (goal: at most 1.03)\n")
    (out / "watch_bench.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
