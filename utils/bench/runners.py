"""Running what is measured: one command (plain or under mpirun), the Bench, one rank, the kernel.

`Bench` keeps every timing of every declared command and checks each
analyser's --json counts against the generator's. `rank_child` is the
--rank-rss-child mode of utils/benchmark.py: one rank of the distributed
analyser that reports its own peak RSS and CPU time. `kernel_pass` runs the
counting kernel in this process, for its raw throughput.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from .common import REPO, BenchError, log

VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
MPIRUN = str(VENV_BIN / "mpirun") if (VENV_BIN / "mpirun").exists() else (shutil.which("mpirun") or "mpirun")
SEQUENTIAL = str(REPO / "base_log_analyser.py")
PARALLEL = str(REPO / "parallel_log_analyser.py")
DISTRIBUTED = str(REPO / "distributed_log_analyser.py")
ENTRY_POINT = ["-m", "utils.benchmark"]  # run with CHILD_FLAG (from REPO), it is one rank_child

CHILD_FLAG = "--rank-rss-child"
RSS_LINE = re.compile(r"^RSS rank=(\d+) kb=(\d+) user_s=([0-9.]+) sys_s=([0-9.]+) startup_cpu_s=([0-9.]+)\s*$", re.MULTILINE)
DIST_FLAGS = ["--no-progress", "--quiet", "--json"]

KERNEL_CHUNK = 4 << 20  # bytes per count_lines call, as the reader does
RETRIES = 1  # a command that exits non-zero is run once more before the benchmark fails
RETRY_WAIT_S = 30
RUN_TIMEOUT = 3600  # seconds; one command taking longer is hung


# --------------------------------------------------------------------- child mode
def rank_child(argv) -> NoReturn:
    """One MPI rank of the distributed analyser, reporting its own peak RSS and CPU time."""
    import resource

    from mpi4py import MPI  # MPI starts here, as it would inside main

    from loganalyser.programs.cli import leave, run
    from loganalyser.programs.distributed import PROG, finalize_mpi, main

    ready = resource.getrusage(resource.RUSAGE_SELF)  # start-up done: imports and MPI_Init
    code = run(PROG, main, list(argv))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"RSS rank={MPI.COMM_WORLD.Get_rank()} kb={usage.ru_maxrss} "
          f"user_s={usage.ru_utime:.6f} sys_s={usage.ru_stime:.6f} "
          f"startup_cpu_s={ready.ru_utime + ready.ru_stime:.6f}", file=sys.stderr, flush=True)
    finalize_mpi(code)  # ends as distributed_log_analyser.py does: never a hang after a peer died
    leave(code)


# ------------------------------------------------------------------------ running
def command_env(**extra) -> dict:
    """The environment of a timed command: ours, Open MPI allowed as root, no debug tracebacks."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("LOGANALYSER_DEBUG", None)
    env.update(extra)
    return env


def show_cmd(cmd) -> str:
    """The command as a shell line, paths inside the repository made relative."""
    words = [os.path.relpath(w, REPO) if os.path.isabs(w) and w.startswith(str(REPO)) else w for w in cmd]
    if len(words) > 16:
        words = words[:14] + [f"... ({len(words) - 14} more)"]
    return shlex.join(words)


def run_once(cmd, env=None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall-clock and CPU seconds of one whole command; a non-zero exit is a BenchError.

    The CPU time (user + sys) covers the command and every process it waited
    for (mpirun waits for its ranks): unlike wall time, a busy machine barely moves it.
    """
    cpu_before = _children_cpu()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, env=env or command_env(), cwd=REPO,
                              stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{show_cmd(cmd)} ran over {RUN_TIMEOUT} s") from None
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise BenchError(f"{show_cmd(cmd)} exited {proc.returncode}: " + " | ".join(tail))
    return seconds, cpu, proc


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mpi(np: int, *cmd) -> list[str]:
    """`cmd` under mpirun with `np` ranks."""
    return [MPIRUN, "-np", str(np), *cmd]


class Bench:
    """Runs commands, keeps every timing, and checks every analyser's counts."""

    def __init__(self, repeat: int, scratch: Path):
        self.repeat = repeat
        self.scratch = scratch  # checkpoint folders of the distributed runs go here
        self.runs: dict[str, dict] = {}
        self.checked = 0
        self.failures: list[str] = []
        self.crashes: list[str] = []  # failed attempts that a retry then passed
        self.dist_options = distributed_options()

    def series(self, label: str, cmd, expected: dict | None = None, env=None, parse=None, before=None) -> None:
        """Declares a timed command; `expected` makes its --json output a checked result."""
        self.runs[label] = {"cmd": show_cmd(cmd), "runs_s": [], "_cmd": list(cmd), "_env": env,
                            "_expected": expected, "_parse": parse, "_before": before}

    def distributed(self, label: str, np: int, folder: str, expected, *, child=False, checkpoints=True) -> None:
        """A distributed run as a first run of its job: its own checkpoint folder, emptied before each run.

        With `checkpoints=False` it runs with --no-checkpoint (the cost of checkpointing, by difference).
        `child` runs the ranks under utils/benchmark.py's --rank-rss-child mode (peak RSS and CPU per rank).
        """
        program = [*ENTRY_POINT, CHILD_FLAG] if child else [DISTRIBUTED]
        extra, before = [], None
        if "--checkpoint-dir" in self.dist_options:
            if checkpoints:
                ckpt = self.scratch / "checkpoints" / label.replace("/", "_")
                extra = ["--checkpoint-dir", str(ckpt)]
                before = functools.partial(shutil.rmtree, ckpt, ignore_errors=True)  # nothing to resume
            else:
                extra = ["--no-checkpoint"]
        elif not checkpoints:
            return  # this version of the analyser writes no checkpoints
        self.series(label, mpi(np, PYTHON, *program, folder, *DIST_FLAGS, *extra), expected=expected,
                    parse=parse_rank_usage if child else None, before=before)

    def run_round_robin(self, labels) -> None:
        """Runs each series `repeat` times, interleaved, so slow spells hit all alike."""
        for i in range(self.repeat):
            for label in labels:
                self.run_one(label, i)

    def run_one(self, label: str, i: int = 0, of: int | None = None):
        """Runs one declared command once (a crash is retried) and records its timing and output."""
        entry = self.runs[label]
        for attempt in range(RETRIES + 1):
            if entry["_before"] is not None:
                entry["_before"]()
            try:
                load = os.getloadavg()[0]
                seconds, cpu, proc = run_once(entry["_cmd"], entry["_env"])
                break
            except BenchError as exc:
                if attempt == RETRIES:
                    raise
                # A crash, not a wrong count (that is never retried): on a shared
                # machine a file being edited can break one run. Say so, wait, retry.
                self.crashes.append(f"{label}: {exc}")
                log(f"{label} FAILED, retrying in {RETRY_WAIT_S} s: {exc}")
                time.sleep(RETRY_WAIT_S)
        entry["runs_s"].append(round(seconds, 4))
        entry.setdefault("cpu_s", []).append(round(cpu, 4))
        entry.setdefault("load_1min", []).append(round(load, 2))
        out = proc.stdout.decode(errors="replace")
        note = ""
        if entry["_expected"] is not None:
            doc = self.check(label, out, entry["_expected"])
            if doc is not None and "elapsed_s" in doc:
                entry.setdefault("internal_elapsed_s", []).append(doc["elapsed_s"])
                note = f" (internal {doc['elapsed_s']:.2f} s)"
                for key in ("bytes_per_rank", "tasks", "workers", "reassigned_tasks", "failed_workers",
                            "checkpoints_saved", "resumed_from"):
                    if key in doc:
                        entry[key] = doc[key]
        if entry["_parse"] is not None:
            entry["_parse"](entry, out, proc.stderr.decode(errors="replace"))
        log(f"{label} run {i + 1}/{of or self.repeat}: {seconds:.3f} s{note}")
        return proc

    def check(self, label: str, stdout: str, expected: dict):
        """The --json document on `stdout`, its counts checked; None if there is none."""
        self.checked += 1
        try:
            doc = json.loads(stdout)
        except ValueError:
            self.fail(label, f"no JSON document on stdout: {stdout[:200]!r}")
            return None
        problems = count_differences(doc, expected)
        if problems:
            self.fail(label, "; ".join(problems))
        return doc

    def fail(self, label: str, why: str) -> None:
        """Records a wrong count and says so loudly on stderr."""
        self.failures.append(f"{label}: {why}")
        print(f"\n{'!' * 72}\n!!! COUNT CHECK FAILED: {label}\n!!! {why}\n{'!' * 72}\n", file=sys.stderr, flush=True)

    def median(self, label: str, key: str = "runs_s") -> float | None:
        """The median of one recorded series (wall seconds by default), None if it never ran."""
        runs = self.runs.get(label, {}).get(key)
        return statistics.median(runs) if runs else None

    def public_runs(self) -> dict:
        """Every series as it goes into stage1.json: private fields dropped, medians added."""
        out = {}
        for label, entry in self.runs.items():
            clean = {k: v for k, v in entry.items() if not k.startswith("_")}
            if clean["runs_s"]:
                clean["median_s"] = round(statistics.median(clean["runs_s"]), 4)
                clean["median_cpu_s"] = round(statistics.median(clean["cpu_s"]), 4)
            if clean.get("internal_elapsed_s"):
                clean["median_internal_s"] = round(statistics.median(clean["internal_elapsed_s"]), 4)
            out[label] = clean
        return out


def distributed_options() -> set[str]:
    """The options distributed_log_analyser.py --help lists (checkpoint options came later)."""
    try:
        proc = subprocess.run([PYTHON, DISTRIBUTED, "--help"], capture_output=True, text=True, timeout=120,
                              env=command_env(), cwd=REPO)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"distributed_log_analyser.py --help: {exc}") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise BenchError(f"distributed_log_analyser.py --help exited {proc.returncode}: {tail}")
    return set(re.findall(r"--[a-z][a-z-]*", proc.stdout))


def count_differences(doc: dict, expected: dict) -> list[str]:
    """How an analyser's document differs from the generator's exact totals."""
    problems = []
    want = {k: v for k, v in expected["counts"].items() if v}
    got = {k: v for k, v in doc.get("counts", {}).items() if v}
    if got != want:
        problems.append(f"counts {got} != expected {want}")
    for key in ("lines", "malformed", "blank", "files", "bytes"):
        if doc.get(key) != expected[key]:
            problems.append(f"{key} {doc.get(key)} != expected {expected[key]}")
    return problems


def parse_rank_usage(entry: dict, stdout: str, stderr: str) -> None:
    """Collects the `RSS rank=...` lines of a child-mode run: one per rank, or a BenchError."""
    ranks = {}
    for m in RSS_LINE.finditer(stderr):
        ranks[int(m.group(1))] = {"max_rss_kb": int(m.group(2)), "user_s": float(m.group(3)),
                                  "sys_s": float(m.group(4)), "startup_cpu_s": float(m.group(5))}
    np = int(entry["_cmd"][entry["_cmd"].index("-np") + 1])
    if sorted(ranks) != list(range(np)):
        raise BenchError(f"{entry['cmd']}: usage lines from ranks {sorted(ranks)}, want 0..{np - 1}")
    entry.setdefault("ranks", []).append({str(r): ranks[r] for r in sorted(ranks)})


# ------------------------------------------------------------------------- kernel
def kernel_pass(paths) -> dict:
    """count_lines over `paths` read in 4 MiB chunks cut after the last newline."""
    from loganalyser.counting.kernel import count_lines
    from loganalyser.counting.result import PartialResult

    total = PartialResult()
    kernel_s = 0.0
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            pending = b""
            while True:
                data = f.read(KERNEL_CHUNK)
                if not data:
                    break
                chunk = pending + data if pending else data
                cut = chunk.rfind(b"\n") + 1
                if cut:
                    t0 = time.perf_counter()
                    total.add(count_lines(memoryview(chunk)[:cut]))
                    kernel_s += time.perf_counter() - t0
                pending = chunk[cut:]
            if pending:
                t0 = time.perf_counter()
                total.add(count_lines(pending))
                kernel_s += time.perf_counter() - t0
        total.files += 1
    return {"wall_s": time.perf_counter() - start, "kernel_s": kernel_s, "result": total.to_dict()}

