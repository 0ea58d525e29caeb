#!/usr/bin/env python3
"""Where the time of one distributed run goes, phase by phase (`make bench`).

    python -m utils.phase_bench                      # corpus A (500 MB), -np 3, 3 runs
    python -m utils.phase_bench --size 40MB --runs 1 --out /tmp/phases

Each rank runs under this script's --rank-child mode, which notes the wall
time (time.time()) at its process start (from /proc), after the program's
imports, after MPI_Init, and when the rank's program returns; rank 0 also runs
under cProfile, for the seconds the master spends in its duties. The master's
--events file gives the first assignment and the last result. With the launch
time (just before mpirun starts) and mpirun's exit, one run splits into

    launch      mpirun starting the ranks (until rank 0's process exists)
    imports     Python and the program's modules (numpy, the analyser)
    MPI_Init    mpi4py's import, which starts MPI
    scan+plan   rank 0 finds the files, detects formats and plans the tasks
    wait ranks  the plan's broadcast: rank 0 waits for the ranks still starting
    setup       host names, objects, the first term's start
    first task  the master's start to its first assignment
    counting    first assignment to the last result accepted
    end         the last result to the rank's program returning (last checkpoint, result, stops)
    exit        MPI_Finalize and mpirun's teardown

and the master's busy seconds inside them: handling messages (the scheduler,
merging results), replication to the backups, checkpoints (storing processed
files and writing checkpoints) and writing the result. Figures are medians of
--runs runs; the plot is reports/phases.png, the text reports/phases.txt.
Every run's counts are checked against the generator's totals.
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
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
CHILD_FLAG = "--rank-child"
PHASES = ("launch", "imports", "MPI_Init", "scan+plan", "wait ranks", "setup", "first task", "counting", "end", "exit")
# The master's duties: (label, file suffix, function) of the profile's cumulative times.
DUTIES = (
    ("messages (scheduler, merging results)", "cluster/master.py", "on_message"),
    ("ticks (timeouts, status)", "cluster/master.py", "tick"),
    ("replication to backups", "cluster/master.py", "_replicate"),
    ("checkpoints", "cluster/master.py", "checkpoint"),
    ("storing processed files", "persistence/store.py", "store_some"),
    ("last checkpoint and clean-up", "cluster/master.py", "wind_down"),
    ("writing the result", "programs/distributed.py", "_report"),
    ("finding the files", "work/inputs.py", "find_log_files"),
    ("loading the formats", "work/scanning.py", "job_formats"),
    ("detecting formats, planning tasks", "programs/jobsetup.py", "plan_job"),
)
SCAN = ("finding the files", "loading the formats", "detecting formats, planning tasks")
AGREE = ("programs/distributed.py", "_agree_on_job")  # the scan, plan and their broadcast


# ------------------------------------------------------------------ one rank
def process_start() -> float:
    """This process's start as a Unix time, from /proc (10 ms resolution), or now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: since boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age  # not /proc/stat's btime: the wall clock drifts from boot time
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def rank_child(out_dir: str, argv: list[str]) -> NoReturn:
    """One rank of the distributed analyser, as its entry script runs it, with wall marks."""
    marks = {"process": process_start()}
    from loganalyser.programs.allocator import single_threaded_blas, tune_allocator

    single_threaded_blas()
    from loganalyser.programs.cli import leave, run
    from loganalyser.programs.distributed import PROG, finalize_mpi, main

    marks["imported"] = time.time()
    from mpi4py import MPI

    marks["mpi_ready"] = time.time()
    rank = MPI.COMM_WORLD.Get_rank()
    tune_allocator()
    duties = {}
    if rank == 0:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        code = profile.runcall(run, PROG, main, argv)
        duties = _duty_seconds(pstats.Stats(profile), DUTIES + (("agree",) + AGREE,))
    else:
        code = run(PROG, main, argv)
    marks["returned"] = time.time()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps({"marks": marks, "duties": duties}))
    finalize_mpi(code)
    leave(code)


def _duty_seconds(stats, duties) -> dict[str, float]:
    seconds = {}
    for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
        for label, suffix, name in duties:
            if function == name and filename.endswith(suffix):
                seconds[label] = seconds.get(label, 0.0) + cumulative
    return seconds


# --------------------------------------------------------------- the parent
def one_run(corpus: dict, np: int, scratch: Path) -> dict:
    """Phases (seconds) and the master's duties of one run; its counts are checked."""
    from utils.bench.runners import MPIRUN, PYTHON, command_env

    marks_dir = Path(tempfile.mkdtemp(dir=scratch))
    events = marks_dir / "events.jsonl"
    cmd = [MPIRUN, "-np", str(np), PYTHON, "-m", "utils.phase_bench", CHILD_FLAG, str(marks_dir),
           str(REPO / "distributed_log_analyser.py"), corpus["path"], "--no-progress", "--quiet", "--json",
           "--checkpoint-dir", str(marks_dir / "checkpoints"), "--events", str(events)]
    launched = time.time()
    proc = subprocess.run(cmd, capture_output=True, env=command_env(), cwd=REPO, stdin=subprocess.DEVNULL, timeout=600)
    exited = time.time()
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        raise SystemExit(f"phase_bench.py: the run failed (exit {proc.returncode}): {last}")
    doc = json.loads(proc.stdout)
    if doc["counts"] != corpus["expected"]["counts"]:
        raise SystemExit(f"phase_bench.py: wrong counts {doc['counts']} != {corpus['expected']['counts']}")
    master = json.loads((marks_dir / "rank0.json").read_text())
    marks, duties = master["marks"], master["duties"]
    times = _event_times(events)
    scan = sum(duties.get(label, 0.0) for label in SCAN)
    agree = duties.pop("agree", scan)
    main_start = marks["mpi_ready"]
    phases = {
        "launch": marks["process"] - launched,
        "imports": marks["imported"] - marks["process"],
        "MPI_Init": marks["mpi_ready"] - marks["imported"],
        "scan+plan": scan,
        "wait ranks": agree - scan,
        "setup": times["job_start"] - main_start - agree,
        "first task": times["first_assign"] - times["job_start"],
        "counting": times["last_result"] - times["first_assign"],
        "end": marks["returned"] - times["last_result"],
        "exit": exited - marks["returned"],
    }
    return {"phases": phases, "duties": duties, "wall": exited - launched}


def _event_times(path: Path) -> dict[str, float]:
    from datetime import datetime

    from loganalyser.monitor.events import read_events

    def at(event):
        return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()

    events = read_events(str(path))
    return {"job_start": at(next(e for e in events if e["event"] == "job_start")),
            "first_assign": at(next(e for e in events if e["event"] == "assign")),
            "last_result": at([e for e in events if e["event"] == "result"][-1])}


def medians(runs: list[dict], key: str) -> dict[str, float]:
    names = list(dict.fromkeys(name for run in runs for name in run[key]))
    return {name: round(statistics.median(run[key].get(name, 0.0) for run in runs), 4) for name in names}


def report(doc: dict) -> str:
    phases, duties, wall = doc["phases"], doc["duties"], doc["wall_s"]
    lines = ["WHERE THE TIME GOES: one distributed run, phase by phase (utils/phase_bench.py, `make bench`)",
             f"corpus {doc['corpus']}, -np {doc['np']}, medians of {doc['runs']} run(s), wall {wall:.3f} s;"
             " event times have 1 ms resolution, the process start 10 ms", "",
             f"{'phase':<12}{'seconds':>9}{'share':>8}"]
    for name in PHASES:
        lines.append(f"{name:<12}{phases[name]:>9.3f}{100 * phases[name] / wall:>7.1f}%")
    lines += ["", "The master's busy seconds (rank 0 under cProfile, cumulative, overlapping phases above):"]
    for label, _suffix, _name in DUTIES:
        lines.append(f"  {label:<40}{duties.get(label, 0.0):>8.3f}")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 2.6))
    left = 0.0
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(PHASES):
        width = doc["phases"][name]
        ax.barh(0, width, left=left, color=colours(k), label=f"{name} {width:.3f} s")
        left += width
    ax.set_yticks([])
    ax.set_xlabel("seconds since mpirun was started")
    ax.set_title(f"One distributed run, -np {doc['np']}, corpus {doc['corpus']} (medians of {doc['runs']})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=5, fontsize=8, frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [CHILD_FLAG]:
        return rank_child(argv[1], argv[2:])
    p = argparse.ArgumentParser(prog="phase_bench.py", description="Where one distributed run's time goes.")
    p.add_argument("--size", default="500MB", help="corpus A size (default 500MB, as utils/benchmark.py)")
    p.add_argument("--np", type=int, default=3, help="ranks (default 3)")
    p.add_argument("--runs", type=int, default=3, help="runs; medians are reported (default 3)")
    p.add_argument("--data", default="bench_data", help="corpora folder, shared with utils/benchmark.py")
    p.add_argument("--out", default="reports", help="where phases.txt, phases.json and phases.png go")
    args = p.parse_args(argv)
    from utils.bench.corpora import A_SHARES, SEED, TRAPS, build_corpus_a, generator_digest, prepare_corpus
    from utils.generate_logs import parse_size

    size = parse_size(args.size)
    params = {"generator": generator_digest(), "seed": SEED, "traps": TRAPS, "kind": "A", "bytes": size,
              "shares": list(A_SHARES)}  # as utils/benchmark.py: its corpus is reused
    data = Path(args.data).resolve()
    corpus = prepare_corpus(data / "A", params, build_corpus_a(size))
    scratch = Path(tempfile.mkdtemp(prefix="phases-", dir=data))
    try:
        runs = [one_run(corpus, args.np, scratch) for _ in range(args.runs)]
    finally:
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    doc = {"corpus": f"A ({size / 1e6:.0f} MB)", "np": args.np, "runs": args.runs,
           "wall_s": round(statistics.median(r["wall"] for r in runs), 4),
           "phases": medians(runs, "phases"), "duties": medians(runs, "duties"), "each_run": runs}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "phases.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "phases.txt").write_text(report(doc))
    plot(doc, out / "phases.png")
    print(report(doc), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
