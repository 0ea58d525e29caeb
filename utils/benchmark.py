#!/usr/bin/env python3
"""Benchmark of the three analysers (`make bench`): one run, every figure measured.

    python -m utils.benchmark                 # 500MB corpus, 20,000 small files, one 2GB file
    python -m utils.benchmark --quick         # smoke run: 40MB, 2,000 small files, no 2GB file
    python -m utils.benchmark --size 1GB --repeat 5 --data /scratch --out reports/

It generates its corpora with utils/generate_logs.py into a scratch folder
(default bench_data/, git-ignored), reusing a corpus whose recorded
expected.json matches the requested parameters, and times each command as the
median of --repeat runs of the whole command (subprocess wall clock, process
and MPI start-up included, warm page cache):

* corpus A (--size, 8 files of different sizes, one much larger): the
  sequential program, the static-parallel one at -np 1..4, the distributed one
  at -np 2..4, an empty MPI job at -np 1..4 (the start-up floor), awk, grep,
  a per-line Python regex loop (on a 1/10 slice, scaled, when the corpus is
  large) and, in turn with them, the kernel in-process
  (loganalyser.counting.kernel.count_lines over 4 MiB chunks); every analyser run
  prints --json and must give the generator's exact counts, or the benchmark
  fails loudly;
* corpus B (--small-files x 100 lines): distributed -np 3 and sequential;
* corpus C (--big-single, one file; not with --quick): distributed -np 4 and
  sequential, and the peak RSS of every rank;
* the master's CPU time as a share of the workers' (corpus A, -np 3);
* sample_logs/ end to end at -np 4.

Every run also records its CPU time (user + sys of the command and all its
ranks), which a busy machine barely changes. The distributed analyser runs
with its default options; where it has checkpoints, each run gets an emptied
--checkpoint-dir under the scratch folder (nothing to resume: every run is a
first run), and -np 3 runs with --no-checkpoint measure what checkpoints cost.

Peak RSS and CPU time per rank come from running the distributed analyser
inside this script: `mpirun -np N python -m utils.benchmark --rank-rss-child
ARGS` runs `loganalyser.programs.distributed.main(ARGS)` and, at exit, prints
`RSS rank=R kb=K user_s=U sys_s=S startup_cpu_s=C` on stderr (getrusage of the
rank itself; C is its CPU time once Python, numpy and MPI had started).

Outputs in --out: stage1.json (raw timings, derived figures, machine),
report_stage1.txt, report_stage2_performance.txt and speedup.png. Exit code 0,
or 1 if any run failed or printed wrong counts (the reports are still written,
marked FAILED).

This file parses the command line and runs the parts in utils/bench/ in turn:
corpora (build or reuse), runners (commands, the Bench, the rank child),
machine, stages (what is measured), figures (derived numbers) and reports
(texts and plot).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import time
from pathlib import Path

from utils.bench.common import BenchError, log
from utils.bench.corpora import list_file_sizes, prepare_corpora
from utils.bench.figures import derive
from utils.bench.machine import machine_info
from utils.bench.reports import write_reports
from utils.bench.runners import CHILD_FLAG, Bench, rank_child
from utils.bench.stages import run_stages


def parse_args(argv):
    p = argparse.ArgumentParser(prog="benchmark.py", description="Benchmark the log analysers (make bench).")
    p.add_argument("--size", help="corpus A size, e.g. 500MB (default 500MB; 40MB with --quick)")
    p.add_argument("--repeat", type=int, default=3, help="runs per command; the median is reported (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 40MB, 2,000 small files, no big file")
    p.add_argument("--small-files", type=int, help="corpus B files of 100 lines (default 20000; 2000 with --quick)")
    p.add_argument("--big-single", help="corpus C: one file of this size, 0 to skip (default 2GB; skipped with --quick)")
    p.add_argument("--data", default="bench_data", help="scratch folder for the corpora (default bench_data/)")
    p.add_argument("--out", default="reports", help="where the reports go (default reports/)")
    args = p.parse_args(argv)
    from utils.generate_logs import parse_size

    try:
        args.size_bytes = parse_size(args.size or ("40MB" if args.quick else "500MB"))
        big = args.big_single if args.big_single is not None else ("0" if args.quick else "2GB")
        args.big_bytes = 0 if big.strip() in ("0", "0B") else parse_size(big)
    except ValueError as exc:
        p.error(str(exc))
    if args.small_files is None:
        args.small_files = 2000 if args.quick else 20000
    if args.repeat < 1 or args.small_files < 1:
        p.error("--repeat and --small-files must be at least 1")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [CHILD_FLAG]:
        return rank_child(argv[1:])
    args = parse_args(argv)
    started = time.perf_counter()
    data_dir, out_dir = Path(args.data).resolve(), Path(args.out).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    log(f"{machine['cpu_count']} cores, Open MPI {machine['open_mpi']}, load {machine['load_average_start']}")
    try:
        bench = Bench(args.repeat, data_dir)
        corpora = prepare_corpora(data_dir, args.size_bytes, args.small_files, args.big_bytes)
        kernel, extra = run_stages(bench, corpora, data_dir)
    except BenchError as exc:
        print(f"\nbenchmark.py: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:  # the runs' checkpoints hold hard links to the corpora: drop them
        shutil.rmtree(data_dir / "checkpoints", ignore_errors=True)
    list_file_sizes(corpora)
    stage1, stage2 = derive(bench, corpora, kernel, extra, machine["cpu_count"])
    doc = {
        "schema": 1,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "machine": machine,
        "options": {"size_bytes": args.size_bytes, "repeat": args.repeat, "quick": args.quick,
                    "small_files": args.small_files, "big_single_bytes": args.big_bytes,
                    "data": str(data_dir), "out": str(out_dir)},
        "corpora": corpora,
        "counts_check": {"passed": not bench.failures, "runs_checked": bench.checked, "failures": bench.failures},
        "retried_crashes": bench.crashes,
        "kernel": kernel,
        "stage1": stage1,
        "stage2": stage2,
        "runs": bench.public_runs(),
    }
    write_reports(doc, out_dir)
    log(f"wrote {out_dir}/stage1.json, report_stage1.txt, report_stage2_performance.txt, speedup.png"
        f" in {doc['duration_s']:.0f} s")
    if bench.failures:
        print(f"\n{'!' * 72}\nbenchmark.py: FAILED: {len(bench.failures)} run(s) printed wrong counts:\n"
              + "\n".join(f"  {f}" for f in bench.failures) + f"\n{'!' * 72}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
