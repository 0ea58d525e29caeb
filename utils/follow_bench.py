#!/usr/bin/env python3
"""Following growing files (`make bench`): latency at 1,000 lines/s, and the cost of following idly.

Latency: a writer appends 1,000 lines per second (flushed one by one) for
--seconds while `base_log_analyser.py --follow --state FILE` follows; every
10 ms the bench reads the state file (written after each round that counted
something) and, for each line written so far, notes when the totals first
held it. The latency of a line is that moment minus its write time. Idle:
the same program follows a folder where nothing is written for --idle
seconds; its CPU time (user + sys, from /proc) over that time is reported.
Writes reports/follow_bench.txt and .json. Figures, never pass/fail.

With --distributed NP the same is measured for `mpirun -np NP
distributed_log_analyser.py --follow`, whose totals are read from its --status
file (which the master rewrites at most every 0.25 s: the latency is what a
watcher of the job sees), and whose idle CPU is the sum over its ranks.

    python -m utils.follow_bench --seconds 10 --idle 60   # from the repository root
    python -m utils.follow_bench --distributed 3 --out /tmp/x
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
LINE = "[2026-01-01T00:00:00] [INFO] request {i} served in 12 ms\n"


NP = 0  # --distributed: ranks of the followed job (0: the sequential program)


def follower(folder: Path, state: Path) -> subprocess.Popen:
    if NP:
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        return subprocess.Popen([str(REPO / ".venv" / "bin" / "mpirun"), "-np", str(NP), str(PYTHON),
                                 str(REPO / "distributed_log_analyser.py"), str(folder), "--follow", "--quiet",
                                 "--no-checkpoint", "--status", str(state)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return subprocess.Popen([str(PYTHON), str(REPO / "base_log_analyser.py"), str(folder), "--follow", "--json",
                             "--state", str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def counted(state: Path) -> int:
    try:
        doc = json.loads(state.read_text())
        return doc["lines"] if NP else doc["totals"]["lines"]
    except (OSError, ValueError, KeyError):
        return -1


def follower_pids(proc: subprocess.Popen, state: Path) -> list[int]:
    """The processes whose CPU counts: the follower, or every rank of the distributed job."""
    if not NP:
        return [proc.pid]
    from utils.jobcontrol import job_pids

    return [pid for pid in job_pids(str(state)) if pid != proc.pid]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("follow_bench: the follower did not catch up in time")
        time.sleep(0.01)


def latency(scratch: Path, seconds: float, rate: float) -> dict:
    folder, state = scratch / "latency", scratch / "latency.json"
    folder.mkdir()
    log = folder / "app.log"
    log.write_text(LINE.format(i=0))
    proc = follower(folder, state)
    try:
        wait_until(lambda: counted(state) == 1, 30)
        written: list[float] = []
        seen: list[float] = []
        with open(log, "a", buffering=1) as f:
            start = time.monotonic()
            next_poll = start
            for i in range(int(seconds * rate)):
                f.write(LINE.format(i=i + 1))
                written.append(time.monotonic())
                target = start + (i + 1) / rate
                while True:  # until the next line is due: look at the totals every 10 ms
                    now = time.monotonic()
                    if now >= next_poll:
                        seen += [now] * max(0, counted(state) - 1 - len(seen))
                        next_poll = now + 0.01
                    if now >= target:
                        break
                    time.sleep(min(0.001, target - now))
        wait_until(lambda: counted(state) - 1 >= len(written), 30)
        now = time.monotonic()
        seen += [now] * (len(written) - len(seen))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    delays = sorted(s - w for s, w in zip(seen, written))
    return {"lines": len(written), "rate": rate, "median_s": statistics.median(delays),
            "p95_s": delays[int(0.95 * (len(delays) - 1))], "max_s": delays[-1]}


def idle(scratch: Path, seconds: float) -> dict:
    folder, state = scratch / "idle", scratch / "idle.json"
    folder.mkdir()
    (folder / "app.log").write_text(LINE.format(i=0))
    proc = follower(folder, state)
    try:
        wait_until(lambda: counted(state) == 1, 30)
        pids = follower_pids(proc, state)
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(seconds)
        used = sum(cpu_seconds(pid) for pid in pids) - before
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    return {"seconds": seconds, "cpu_s": round(used, 3), "cpu_percent": round(100 * used / seconds, 3),
            "processes": len(pids)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="writing time for the latency run (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0, help="lines per second written (default 1000)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle following measured (default 60)")
    parser.add_argument("--distributed", type=int, default=0, metavar="NP",
                        help="measure mpirun -np NP distributed_log_analyser.py --follow instead")
    parser.add_argument("--out", default=str(REPO / "reports"))
    args = parser.parse_args(argv)
    global NP
    NP = args.distributed
    name = f"follow_bench_np{NP}" if NP else "follow_bench"
    with tempfile.TemporaryDirectory(prefix="follow_bench_") as scratch:
        lat = latency(Path(scratch), args.seconds, args.rate)
        quiet = idle(Path(scratch), args.idle)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"latency": lat, "idle": quiet, "np": NP}, indent=2) + "\n")
    what = f"mpirun -np {NP} distributed_log_analyser.py --follow, totals from --status" if NP else \
        "base_log_analyser.py --follow, totals from --state"
    text = "\n".join([
        f"FOLLOWING GROWING FILES (utils/follow_bench.py, `make bench`): {what}",
        f"latency, {lat['lines']} lines written at {lat['rate']:.0f} lines/s, each flushed; totals read every 10 ms:",
        f"  median {lat['median_s'] * 1000:.0f} ms, p95 {lat['p95_s'] * 1000:.0f} ms, max {lat['max_s'] * 1000:.0f} ms "
        "(goal: at most 1 s)",
        f"idle following for {quiet['seconds']:.0f} s: {quiet['cpu_s']:.3f} s of CPU ({quiet['cpu_percent']:.3f}%)"
        + (f", summed over {quiet['processes']} ranks" if NP else ""), ""])
    (out / f"{name}.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
