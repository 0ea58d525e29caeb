#!/usr/bin/env python3
"""Cost of each statistic (`make bench`): the sequential program with and without them.

On one seed-format corpus (generated once with its oracle, reused while its
parameters match), warm in the page cache, `base_log_analyser.py --json` is
timed --repeat times plain and with each statistic (`--level`, `--bucket 1h`,
`--top 10`, `--by file`, `--grep`, and `--bucket 1h --top 10` together), the
cases taking turns within each round so that a load that comes and goes
weighs on all of them; every run's counts are checked against the
generator's. `--clock cpu` (the default) times each run by the CPU seconds
of its process (user + system, start-up included), which other work on a
shared machine inflates less than the clock on the wall (`--clock wall`).
Medians and the ratio to the plain run go to reports/analysis_bench.txt and
.json. Figures, never pass/fail.

    python -m utils.analysis_bench --size 500MB --repeat 3   # from the repository root
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from utils.generate_logs import generate, parse_size

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
CASES = [
    ("plain", []),
    ("--level ERROR", ["--level", "ERROR"]),
    ("--bucket 1h", ["--bucket", "1h"]),
    ("--top 10", ["--top", "10"]),
    ("--by file", ["--by", "file"]),
    ("--grep failed", ["--grep", "failed"]),
    ("--bucket 1h --top 10", ["--bucket", "1h", "--top", "10"]),
]


def corpus(folder: Path, size: int) -> tuple[Path, dict]:
    """The corpus and its totals, generated unless the same parameters made it before."""
    params = {"size": size, "files": 8, "seed": 3, "noise": 0.05, "generator": "seed+stats"}
    marker = folder / "expected.json"
    if marker.is_file():
        saved = json.loads(marker.read_text())
        if saved["params"] == params:
            return folder, saved["expected"]
    folder.mkdir(parents=True, exist_ok=True)
    expected = generate(str(folder), files=8, total_bytes=size, seed=3, noise=0.05, stats=True, bucket_s=3600)
    marker.write_text(json.dumps({"params": params, "expected": expected}))
    return folder, expected


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CLOCKS = {"cpu": _cpu_of_children, "wall": time.perf_counter}


def time_case(folder: Path, options: list[str], expected: dict, clock) -> float:
    """The seconds of one run, its result checked."""
    start = clock()
    proc = subprocess.run([str(PYTHON), str(REPO / "base_log_analyser.py"), str(folder), "--json", *options],
                          capture_output=True, text=True, check=True)
    seconds = clock() - start
    doc = json.loads(proc.stdout)
    if doc["lines"] != expected["lines"]:
        raise SystemExit(f"{options}: {doc['lines']} lines != the generator's {expected['lines']}")
    if not options and doc["counts"] != {k: v for k, v in expected["counts"].items() if v}:
        raise SystemExit(f"plain counts {doc['counts']} != the generator's {expected['counts']}")
    if "--bucket" in options:
        got = {b["start"]: b["counts"] for b in doc["timeline"]["buckets"]}
        if got != expected["stats"]["timeline"]:
            raise SystemExit(f"{options}: the timeline differs from the generator's")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="500MB", help="corpus size (default 500MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=str(REPO / "bench_data" / "analysis"))
    parser.add_argument("--out", default=str(REPO / "reports"))
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="CPU seconds (default) or wall-clock seconds")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    folder, expected = corpus(Path(args.data), parse_size(args.size))
    subprocess.run(["cat", *map(str, sorted(folder.glob("*.log")))], stdout=subprocess.DEVNULL, check=True)  # warm
    runs: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for round_ in range(args.repeat):
        for name, options in CASES:
            runs[name].append(time_case(folder, options, expected, clock))
        print(f"round {round_ + 1}: " + ", ".join(f"{name} {times[-1]:.2f}" for name, times in runs.items()), flush=True)
    rows = [{"case": name, "seconds": statistics.median(times)} for name, times in runs.items()]
    size = sum(p.stat().st_size for p in folder.glob("*.log"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "analysis_bench.json").write_text(json.dumps({"bytes": size, "repeat": args.repeat, "clock": args.clock,
                                                             "rows": rows}, indent=2))
    lines = ["COST OF EACH STATISTIC (utils/analysis_bench.py, `make bench`)",
             f"base_log_analyser.py --json on {size / 1e6:.0f} MB of the seed format (8 files), warm page cache,",
             f"start-up included, {'CPU' if args.clock == 'cpu' else 'wall-clock'} seconds, medians of {args.repeat}"
             f" (cases in turn); goal for --bucket 1h --top 10: <= 1.5x plain", "",
             f"{'case':24s} {'seconds':>8s} {'x plain':>8s} {'MB/s':>7s}"]
    for r in rows:
        lines.append(f"{r['case']:24s} {r['seconds']:8.2f} {r['seconds'] / rows[0]['seconds']:8.2f} "
                     f"{size / r['seconds'] / 1e6:7.0f}")
    text = "\n".join(lines) + "\n"
    (out / "analysis_bench.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
