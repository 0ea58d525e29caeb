#!/usr/bin/env python3
"""Per-format speed (`make bench`): every built-in format against awk on the same file.

For each built-in format, a file of --size bytes is generated once with its
exact counts (utils/format_logs.py; reused while its recorded parameters match),
then, warm in the page cache, timed --repeat times each:

* ours: the reader and the format's counting path in-process (4 MiB chunks,
  the same code every rank runs), its counts checked against the generator's;
* awk: `awk` counting the format's level field on the same file;
* a user spec: the spark format given as a user's regex spec (no vectorised
  program: the whole-chunk regex path every `--format-file` spec takes), and as
  a `fields` spec (the level is the 3rd token).

Medians, MB/s and the time ratio ours/awk go to reports/formats_bench.txt and
.json. Timings are figures, never pass/fail: this is a benchmark.

`--clock cpu` (the default) times both sides in CPU seconds (ours: this
process's user + system time; awk: its rusage as a child), so that other work
on a shared machine inflates neither; `--clock wall` times them by the clock on
the wall, which equals it on an idle machine.

    python -m utils.format_bench --size 190MB --repeat 3   # from the repository root
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

from loganalyser.counting import native
from loganalyser.counting.formats import FormatSet
from loganalyser.counting.reader import analyse_range
from loganalyser.programs.allocator import tune_allocator
from utils import format_logs
from utils.generate_logs import generate, parse_size

REPO = Path(__file__).resolve().parent.parent

# awk programs that count each format's level field (as a person would write them).
AWK = {
    "seed": ["{c[$2]++}"],
    "access": ["{c[$9]++}"],
    "apache_error": ["{c[$6]++}"],
    "bgl": ["{c[$9]++}"],
    "hdfs": ["{c[$4]++}"],
    "jsonl": ['match($0, /"level": *"?[A-Za-z0-9]+/) {c[substr($0, RSTART, RLENGTH)]++}'],
    "jul": ["-F:", "/^[A-Z]+: /{c[$1]++}"],
    "log4j": ["{c[$3]++}"],
    "logback": ["{c[$4]++}"],
    "logcat_brief": ["-F/", "{c[$1]++}"],
    "logcat_threadtime": ["{c[$5]++}"],
    "logcat_time": ["{c[substr($3, 1, 1)]++}"],
    "logfmt": ["match($0, /(^| )(level|lvl)=[^ ]+/) {c[substr($0, RSTART, RLENGTH)]++}"],
    "nginx_error": ["{c[$3]++}"],
    "openstack": ["{c[$5]++}"],
    "python": ["-F:", "{c[$1]++}"],
    "python_asctime": ["-F - ", "{c[$3]++}"],
    "spark": ["{c[$3]++}"],
    "syslog_rfc3164": ["-F>", "{c[$1]++}"],
    "syslog_rfc5424": ["-F>", "{c[$1]++}"],
    "windows_cbs": ["{c[$3]++}"],
    "zookeeper": ["{c[$4]++}"],
}
USER_SPECS = [
    {"name": "user_regex", "description": "spark written as a user would: a regex",
     "regex": r"(?P<timestamp>[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) +(?P<level>[A-Za-z]+)(?![^ \r\n])"},
    {"name": "user_fields", "description": "spark written as a user would: the 3rd token", "fields": {"level": 3}},
]


def corpus(fmt: str, folder: Path, size: int) -> tuple[Path, dict]:
    """The generated file of `fmt` and its exact totals (made once, then reused)."""
    target = folder / fmt
    meta = target / "totals.json"
    params = {"format": fmt, "size": size, "seed": 7}
    if meta.exists():
        saved = json.loads(meta.read_text())
        if saved.get("params") == params:
            return target / "node1.log", saved["totals"]
    target.mkdir(parents=True, exist_ok=True)
    traps = {"noise": 0.05, "malformed": 0.01, "blank": 0.01}
    if fmt == "seed":
        totals = generate(str(target), files=1, total_bytes=str(size), seed=7, **traps)
    else:
        totals = format_logs.generate(fmt, str(target), files=1, total_bytes=size, seed=7, traces=0.01, **traps)
    meta.write_text(json.dumps({"params": params, "totals": totals}))
    return target / "node1.log", totals


def _own_cpu() -> float:
    return time.process_time()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CLOCKS = {"cpu": (_own_cpu, _children_cpu), "wall": (time.perf_counter, time.perf_counter)}


def time_ours(path: Path, fmt: str, formats: FormatSet, repeat: int, expected: dict | None, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        result = analyse_range(str(path), fmt=fmt, formats=formats)
        times.append(clock() - start)
    if expected is not None:
        got = {k: v for k, v in result.counts.items() if v}
        want = {k: v for k, v in expected["counts"].items() if v}
        if got != want or result.lines != expected["lines"]:
            raise SystemExit(f"{fmt}: counts {got}, {result.lines} lines != generator's {want}, {expected['lines']}")
    return statistics.median(times)


def time_awk(path: Path, program: list[str], repeat: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        subprocess.run(["awk", *program, str(path)], check=True, stdout=subprocess.DEVNULL)
        times.append(clock() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="190MB", help="bytes per format file (default 190MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=str(REPO / "bench_data" / "formats"))
    parser.add_argument("--out", default=str(REPO / "reports"))
    parser.add_argument("--only", nargs="*", help="formats to measure (default: all)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="CPU seconds (default) or wall-clock seconds")
    args = parser.parse_args(argv)
    own, child = CLOCKS[args.clock]
    tune_allocator()  # as every program does at start-up
    size = parse_size(args.size)
    user_file = Path(args.data) / "user_specs.json"
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text(json.dumps(USER_SPECS))
    formats = FormatSet.standard([str(user_file)])
    rows = []
    for fmt in args.only or sorted(AWK):
        path, totals = corpus(fmt, Path(args.data), size)
        cat = time_awk(path, ["1 == 0"], 1)  # warms the page cache
        ours = time_ours(path, fmt, formats, args.repeat, totals, own)
        awk = time_awk(path, AWK[fmt], args.repeat, child)
        rows.append({"format": fmt, "bytes": path.stat().st_size, "ours_s": ours, "awk_s": awk, "warm_read_s": cat})
        print(f"{fmt:18s} ours {path.stat().st_size / ours / 1e6:7.0f} MB/s  awk {path.stat().st_size / awk / 1e6:6.0f} MB/s"
              f"  ratio {ours / awk:.2f}", flush=True)
    spark, _ = corpus("spark", Path(args.data), size)
    for spec in (s["name"] for s in USER_SPECS):
        ours = time_ours(spark, spec, formats, args.repeat, None, own)
        rows.append({"format": spec, "bytes": spark.stat().st_size, "ours_s": ours, "awk_s": None})
        print(f"{spec:18s} ours {spark.stat().st_size / ours / 1e6:7.0f} MB/s", flush=True)
    write_report(rows, Path(args.out), args.repeat, args.clock, native.in_use())
    return 0


def write_report(rows: list[dict], out: Path, repeat: int, clock: str = "wall", compiled: list[str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "formats_bench.json").write_text(json.dumps({"repeat": repeat, "clock": clock, "compiled": compiled or [],
                                                        "rows": rows}, indent=2) + "\n")
    seconds = "CPU seconds" if clock == "cpu" else "wall-clock seconds"
    scanners = ", ".join(compiled) if compiled else "none (the numpy path alone)"
    lines = ["PER-FORMAT SPEED (utils/format_bench.py, `make bench`)",
             f"one core, warm page cache, medians of {repeat} in {seconds}; ratio = our time / awk's time (goal <= 0.67)",
             f"compiled scanners (loganalyser/counting/native): {scanners}", "",
             f"{'format':18s} {'MB':>6s} {'ours MB/s':>10s} {'awk MB/s':>9s} {'ratio':>6s}"]
    for r in rows:
        mb = r["bytes"] / 1e6
        awk = f"{mb / r['awk_s']:9.0f}" if r["awk_s"] else f"{'-':>9s}"
        ratio = f"{r['ours_s'] / r['awk_s']:6.2f}" if r["awk_s"] else f"{'-':>6s}"
        lines.append(f"{r['format']:18s} {mb:6.0f} {mb / r['ours_s']:10.0f} {awk} {ratio}")
    text = "\n".join(lines) + "\n"
    (out / "formats_bench.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
