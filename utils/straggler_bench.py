#!/usr/bin/env python3
"""Stragglers and heterogeneous ranks (`make bench`): how work stealing ends a job.

    python -m utils.straggler_bench                    # 400MB file, -np 3, one worker 4x slower
    python -m utils.straggler_bench --size 1GB --np 4 --slow 4 --repeat 5

It runs the distributed analyser on one generated file (reused from
--data/straggler/ when its size matches), each run with --events, twice per
repeat: all workers alike, and with the last rank made --slow times slower
(`--inject slow:RANK@0:FACTOR`: it sleeps FACTOR-1 times each counting step).
From the event log of each run it derives:

* span: the first assignment to the last result (the counting, start-up excluded);
* each worker's rate: the bytes it counted over the time from its first
  assignment to its last result; the ideal: total bytes / the sum of the rates;
  span / ideal is the goal's ratio (issue 12: at most 1.15 with one worker 4x slower);
* straggling: from the first worker's last result (it is idle for good:
  nothing was left that could be split for it) to the end; and the tail from
  the first moment a worker had nothing left with every planned task handed
  out (stealing starts) to the end; both also in chunk-times (STEP_BYTES at
  the fastest rate);
* the slow rank's share of the bytes, and the share its rate deserves.

Every run's counts must equal the generator's, or the benchmark fails. Medians
of --repeat runs are printed and written to --out/stragglers.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from loganalyser.cluster.stealing import STEP_BYTES
from utils import generate_logs
from utils.bench.common import MB, BenchError, log
from utils.bench.runners import DISTRIBUTED, PYTHON, count_differences, mpi, run_once
from utils.generate_logs import parse_size


def corpus(data: Path, size: int) -> tuple[Path, dict]:
    """One generated file of `size` bytes and its exact totals (reused when they match)."""
    folder = data / "straggler"
    record = folder / "expected.json"
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.get("size") == size:
            return folder / "logs", saved["expected"]
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.iterdir():
        old.unlink()
    log(f"generating {size / MB:.0f} MB into {logs}")
    expected = generate_logs.generate(logs, files=1, seed=404, prefix="big", total_bytes=size)
    record.write_text(json.dumps({"size": size, "expected": expected}))
    return logs, expected


def when(event: dict) -> float:
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def figures(events: list[dict], slow_rank: int | None) -> dict:
    """What one run's event log says about its end (see the module docstring)."""
    planned = next(e["tasks"] for e in events if e["event"] == "job_start")
    sizes, held, first, last, done = {}, {}, {}, {}, {}
    handed_out, idle_at, start = set(), None, None
    for e in events:
        t = when(e)
        kind = e["event"]
        if kind == "assign":
            start = t if start is None else start
            sizes[e["task"]] = e["bytes"]
            held.setdefault(e["worker"], set()).add(e["task"])
            first.setdefault(e["worker"], t)
            handed_out.add(e["task"])
        elif kind == "split":
            mine = held.setdefault(e["worker"], set())
            mine.discard(e["task"])
            if e["kept"] is not None:
                mine.add(e["kept"])
                sizes[e["kept"]] = e["kept_bytes"]
        elif kind == "result":
            held.get(e["worker"], set()).discard(e["task"])
            done[e["worker"]] = done.get(e["worker"], 0) + sizes.get(e["task"], 0)
            last[e["worker"]] = t
            if idle_at is None and len(handed_out) >= planned and not held[e["worker"]]:
                idle_at = t
    end = max(last.values())
    rates = {w: done[w] / (last[w] - first[w]) for w in done if last[w] > first[w]}
    total = sum(done.values())
    ideal = total / sum(rates.values())
    chunk_time = STEP_BYTES / max(rates.values())
    out = {"span_s": end - start, "ideal_s": ideal, "span_over_ideal": (end - start) / ideal,
           "tail_s": end - idle_at if idle_at is not None else 0.0, "chunk_time_s": chunk_time,
           "straggling_s": end - min(last.values()),
           "rates_mb_s": {str(w): round(r / MB, 1) for w, r in sorted(rates.items())},
           "splits": sum(e["event"] == "split" for e in events)}
    out["tail_chunk_times"] = out["tail_s"] / chunk_time
    out["straggling_chunk_times"] = out["straggling_s"] / chunk_time
    if slow_rank is not None and slow_rank in rates:
        out["slow_share"] = done.get(slow_rank, 0) / total
        out["slow_fair_share"] = rates[slow_rank] / sum(rates.values())
    return out


def one_run(folder: Path, expected: dict, np: int, slow: float | None, scratch: Path) -> dict:
    events = scratch / "events.jsonl"
    events.unlink(missing_ok=True)
    cmd = [PYTHON, DISTRIBUTED, str(folder), "--no-checkpoint", "--no-progress", "--quiet", "--json",
           "--events", str(events)]
    if slow is not None:
        cmd += ["--inject", f"slow:{np - 1}@0:{slow:g}"]
    wall, _, proc = run_once(mpi(np, *cmd))
    problems = count_differences(json.loads(proc.stdout), expected)
    if problems:
        raise BenchError(f"wrong counts: {problems}")
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    return {"wall_s": wall, **figures(lines, np - 1 if slow is not None else None)}


def medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys if all(k in r for r in runs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="straggler_bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="400MB", help="the file's size (default 400MB)")
    p.add_argument("--np", type=int, default=3, help="ranks: a master and NP-1 workers (default 3)")
    p.add_argument("--slow", type=float, default=4.0, help="how many times slower the last rank counts (default 4)")
    p.add_argument("--repeat", type=int, default=3, help="runs per case; medians are reported (default 3)")
    p.add_argument("--data", default="bench_data", help="scratch folder for the corpus (default bench_data/)")
    p.add_argument("--out", default="reports", help="where stragglers.json goes (default reports/)")
    args = p.parse_args(argv)
    try:
        folder, expected = corpus(Path(args.data).resolve(), parse_size(args.size))
        results = {"alike": [], f"one {args.slow:g}x slower": []}
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(args.repeat):  # the two cases in turn, so a busy spell hits both
                for case, slow in zip(results, (None, args.slow)):
                    log(f"{case}, run {i + 1}/{args.repeat}")
                    results[case].append(one_run(folder, expected, args.np, slow, Path(scratch)))
    except BenchError as exc:
        print(f"straggler_bench.py: FAILED: {exc}", file=sys.stderr)
        return 1
    summary = {case: medians(runs) for case, runs in results.items()}
    for case, m in summary.items():
        line = (f"{case:>18}: wall {m['wall_s']:.2f} s, counting {m['span_s']:.2f} s, ideal {m['ideal_s']:.2f} s "
                f"(x{m['span_over_ideal']:.2f}), straggling {m['straggling_s']:.3f} s = {m['straggling_chunk_times']:.1f} "
                f"chunk-times, tail {m['tail_s']:.3f} s = {m['tail_chunk_times']:.1f} chunk-times, "
                f"{m['splits']:.0f} split(s)")
        if "slow_share" in m:
            line += f"; slow rank did {m['slow_share']:.0%} of the bytes (its rate deserves {m['slow_fair_share']:.0%})"
        print(line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stragglers.json").write_text(json.dumps({"options": vars(args), "medians": summary, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
