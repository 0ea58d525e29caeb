#!/usr/bin/env python3
"""Benchmark of the three analysers (`make bench`): one run, every figure measured.

    python utils/benchmark.py                 # 500MB corpus, 20,000 small files, one 2GB file
    python utils/benchmark.py --quick         # smoke run: 40MB, 2,000 small files, no 2GB file
    python utils/benchmark.py --size 1GB --repeat 5 --data /scratch --out reports/

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
  (loganalyser.kernel.count_lines over 4 MiB chunks); every analyser run
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
inside this script: `mpirun -np N python utils/benchmark.py --rank-rss-child
ARGS` runs `loganalyser.distributed.main(ARGS)` and, at exit, prints
`RSS rank=R kb=K user_s=U sys_s=S startup_cpu_s=C` on stderr (getrusage of the
rank itself; C is its CPU time once Python, numpy and MPI had started).

Outputs in --out: stage1.json (raw timings, derived figures, machine),
report_stage1.txt, report_stage2_performance.txt and speedup.png. Exit code 0,
or 1 if any run failed or printed wrong counts (the reports are still written,
marked FAILED).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO, REPO / "utils"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
MPIRUN = str(VENV_BIN / "mpirun") if (VENV_BIN / "mpirun").exists() else (shutil.which("mpirun") or "mpirun")
SEQUENTIAL = str(REPO / "base_log_analyser.py")
PARALLEL = str(REPO / "parallel_log_analyser.py")
DISTRIBUTED = str(REPO / "distributed_log_analyser.py")
SELF = str(Path(__file__).resolve())
SAMPLE_LOGS = REPO / "sample_logs"

CHILD_FLAG = "--rank-rss-child"
RSS_LINE = re.compile(r"^RSS rank=(\d+) kb=(\d+) user_s=([0-9.]+) sys_s=([0-9.]+) startup_cpu_s=([0-9.]+)\s*$", re.M)
DIST_FLAGS = ["--no-progress", "--quiet", "--json"]

PARALLEL_NP = (1, 2, 3, 4)
DISTRIBUTED_NP = (2, 3, 4)
A_SHARES = (40, 15, 12, 10, 8, 6, 5, 4)  # percent of corpus A per file: one much larger
TRAPS = {"noise": 0.05, "malformed": 0.01, "blank": 0.01}  # level words in messages, bad and empty lines
SMALL_FILE_LINES = 100
SEED = 2026
KERNEL_CHUNK = 4 << 20  # bytes per count_lines call, as the reader does
PYLOOP_FULL_LIMIT = 256 * 10**6  # above this corpus size the per-line loop runs on a 1/10 slice
PYLOOP_SLICE = 10
RETRIES = 1  # a command that exits non-zero is run once more before the benchmark fails
RETRY_WAIT_S = 30
RUN_TIMEOUT = 3600  # seconds; one command taking longer is hung
MB = 1e6

EMPTY_JOB = "import numpy, loganalyser.reader"  # what every analyser imports before it counts
AWK_PROGRAM = "{c[$2]++} END{for (k in c) print k, c[k]}"
# The per-line baseline: what one would write without the kernel.
PYLOOP_SCRIPT = r"""
import json, re, sys
level = re.compile(rb"\[[^\]\n]*\] \[([A-Za-z]{1,16})\]")
counts, lines, unmatched, size = {}, 0, 0, 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        for line in f:
            lines += 1
            size += len(line)
            m = level.match(line)
            if m:
                name = m.group(1).upper().decode()
                counts[name] = counts.get(name, 0) + 1
            else:
                unmatched += 1
print(json.dumps({"counts": counts, "lines": lines, "unmatched": unmatched, "bytes": size}))
"""


class BenchError(Exception):
    """A command failed or the benchmark cannot go on."""


def log(text: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- child mode
def rank_child(argv) -> int:
    """One MPI rank of the distributed analyser, reporting its own peak RSS and CPU time."""
    import resource

    from mpi4py import MPI  # MPI starts here, as it would inside main

    from loganalyser.cli import run
    from loganalyser.distributed import PROG, main

    ready = resource.getrusage(resource.RUSAGE_SELF)  # start-up done: imports and MPI_Init
    code = run(PROG, main, list(argv))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"RSS rank={MPI.COMM_WORLD.Get_rank()} kb={usage.ru_maxrss} "
          f"user_s={usage.ru_utime:.6f} sys_s={usage.ru_stime:.6f} "
          f"startup_cpu_s={ready.ru_utime + ready.ru_stime:.6f}", file=sys.stderr, flush=True)
    return code


# ------------------------------------------------------------------------ corpora
def generator_digest() -> str:
    """Changes when the generator does, so a stale corpus is not reused."""
    return hashlib.sha256((REPO / "utils" / "generate_logs.py").read_bytes()).hexdigest()[:16]


def add_totals(total: dict | None, part: dict) -> dict:
    if total is None:
        return json.loads(json.dumps(part))
    for level, n in part["counts"].items():
        total["counts"][level] = total["counts"].get(level, 0) + n
    for key in ("lines", "malformed", "blank", "files", "bytes"):
        total[key] += part[key]
    return total


def prepare_corpus(folder: Path, params: dict, build) -> dict:
    """The corpus in `folder`: reused if its expected.json records `params`, else built.

    `build(folder)` writes the files and returns the exact expected totals.
    Returns {"path", "expected", "files": {name: bytes}, "reused", "generate_s"}.
    """
    meta_path = folder / "expected.json"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params and all(
                (folder / name).is_file() and (folder / name).stat().st_size == size
                for name, size in meta["files"].items()):
            log(f"reusing corpus {folder} ({meta['expected']['bytes'] / MB:.1f} MB)")
            return {"path": str(folder), "expected": meta["expected"], "files": meta["files"],
                    "reused": True, "generate_s": meta.get("generate_s")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log(f"generating corpus {folder} ...")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    expected = build(folder)
    seconds = time.perf_counter() - start
    files = {p.name: p.stat().st_size for p in sorted(folder.glob("*.log"))}
    if sum(files.values()) != expected["bytes"] or len(files) != expected["files"]:
        raise BenchError(f"corpus {folder}: files on disk do not match the generator's totals")
    meta = {"params": params, "expected": expected, "files": files, "generate_s": round(seconds, 3)}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")  # last: a half-built corpus is never reused
    log(f"generated {folder}: {len(files)} files, {expected['bytes'] / MB:.1f} MB in {seconds:.1f} s")
    return {"path": str(folder), "expected": expected, "files": files, "reused": False,
            "generate_s": round(seconds, 3)}


def build_corpus_a(total_bytes: int):
    """8 files of different sizes (A_SHARES percent each), traps included."""
    from generate_logs import generate

    def build(folder: Path) -> dict:
        staging = folder / ".staging"
        total = None
        for k, share in enumerate(A_SHARES, start=1):
            part = generate(str(staging), 1, seed=SEED + k, total_bytes=str(max(1, total_bytes * share // 100)), **TRAPS)
            os.replace(staging / "node1.log", folder / f"node{k}.log")
            total = add_totals(total, part)
        staging.rmdir()
        return total

    return build


def build_corpus_b(files: int):
    from generate_logs import generate

    return lambda folder: generate(str(folder), files, SMALL_FILE_LINES, seed=SEED + 100, **TRAPS)


def build_corpus_c(total_bytes: int):
    from generate_logs import generate

    return lambda folder: generate(str(folder), 1, seed=SEED + 200, total_bytes=str(total_bytes), **TRAPS)


def log_files(corpus: dict) -> list[str]:
    return [str(Path(corpus["path"]) / name) for name in sorted(corpus["files"], key=_natural)]


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def warm_cache(paths) -> None:
    """Reads the files once, so every timed run starts from the same warm page cache."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass


def make_slice(corpus: dict, folder: Path, fraction: int) -> tuple[list[str], int]:
    """The first 1/fraction of each file of `corpus`, cut after a whole line, in `folder`."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out, total = [], 0
    for path in log_files(corpus):
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            data = f.read(max(1, size // fraction))
            data += f.readline()  # finish the line the cut fell in
        target = folder / Path(path).name
        target.write_bytes(data)
        out.append(str(target))
        total += len(data)
    return out, total


# ------------------------------------------------------------------------ running
def command_env(**extra) -> dict:
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
        `child` runs the ranks under this script's --rank-rss-child mode (peak RSS and CPU per rank).
        """
        program = [SELF, CHILD_FLAG] if child else [DISTRIBUTED]
        extra, before = [], None
        if "--checkpoint-dir" in self.dist_options:
            if checkpoints:
                ckpt = self.scratch / "checkpoints" / label.replace("/", "_")
                extra = ["--checkpoint-dir", str(ckpt)]
                before = lambda: shutil.rmtree(ckpt, ignore_errors=True)  # noqa: E731 - nothing to resume
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
        self.failures.append(f"{label}: {why}")
        print(f"\n{'!' * 72}\n!!! COUNT CHECK FAILED: {label}\n!!! {why}\n{'!' * 72}\n", file=sys.stderr, flush=True)

    def median(self, label: str, key: str = "runs_s") -> float | None:
        runs = self.runs.get(label, {}).get(key)
        return statistics.median(runs) if runs else None

    def public_runs(self) -> dict:
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
    from loganalyser.kernel import count_lines
    from loganalyser.result import PartialResult

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


# ----------------------------------------------------------------------- machine
def tool_version(cmd) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=command_env())
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def machine_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    try:
        mpi4py_version = version("mpi4py")
    except PackageNotFoundError:
        mpi4py_version = "unknown"
    mpirun = tool_version([MPIRUN, "--version"])
    match = re.search(r"Open MPI\)?\s*([0-9][0-9.a-z]*)", mpirun)
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "mpi4py": mpi4py_version,
        "open_mpi": match.group(1) if match else mpirun,
        "awk": tool_version(["awk", "-W", "version"]) if "mawk" in os.path.realpath(shutil.which("awk") or "")
        else tool_version(["awk", "--version"]),
        "grep": tool_version(["grep", "--version"]),
        "memory_gb": _memory_gb(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        # When set, no .pyc is written: every process compiles the project's modules at start.
        "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }


def _memory_gb():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return None


# -------------------------------------------------------------------------- stages
def bench_corpus_a(bench: Bench, corpus: dict, data_dir: Path) -> dict:
    paths = log_files(corpus)
    folder = corpus["path"]
    expected = corpus["expected"]
    warm_cache(paths)
    labels = []

    def add(label, cmd, **kw):
        bench.series(label, cmd, **kw)
        labels.append(label)

    add("A/sequential", [PYTHON, SEQUENTIAL, folder, "--json"], expected=expected)
    for k in PARALLEL_NP:
        add(f"A/parallel/np{k}", mpi(k, PYTHON, PARALLEL, folder, "--json"), expected=expected)
    for k in DISTRIBUTED_NP:
        bench.distributed(f"A/distributed/np{k}", k, folder, expected)
        labels.append(f"A/distributed/np{k}")
    bench.distributed("A/distributed/np3/no_checkpoint", 3, folder, expected, checkpoints=False)
    labels += [x for x in ("A/distributed/np3/no_checkpoint",) if x in bench.runs]
    for k in PARALLEL_NP:
        add(f"mpi_empty/np{k}", mpi(k, PYTHON, "-c", EMPTY_JOB + "; from mpi4py import MPI"))
    add("python_startup", [PYTHON, "-c", EMPTY_JOB])
    c_locale = command_env(LC_ALL="C")
    add("A/awk", ["awk", AWK_PROGRAM, *paths], env=c_locale, parse=_keep_stdout)
    add("A/grep", ["grep", "-c", "INFO", *paths], env=c_locale)

    sliced = corpus["expected"]["bytes"] > PYLOOP_FULL_LIMIT
    if sliced:
        loop_paths, loop_bytes = make_slice(corpus, data_dir / "A_slice", PYLOOP_SLICE)
    else:
        loop_paths, loop_bytes = paths, corpus["expected"]["bytes"]
    add("A/python_loop", [PYTHON, "-c", PYLOOP_SCRIPT, *loop_paths], parse=_keep_stdout)
    bench.runs["A/python_loop"].update(sliced=sliced, slice_fraction=PYLOOP_SLICE if sliced else 1,
                                       bytes_processed=loop_bytes)
    log(f"corpus A: {len(labels)} commands x {bench.repeat} runs")
    kernel_runs = []
    for i in range(bench.repeat):  # the kernel passes take turns with awk & co, under the same load
        for label in labels:
            bench.run_one(label, i)
        kernel_round(bench, corpus, kernel_runs, i)

    info = {"kernel": kernel_summary(kernel_runs, corpus)}
    awk_out = bench.runs["A/awk"].pop("_stdout", "")
    awk_counts = {}
    for line in awk_out.splitlines():
        key, _, n = line.rpartition(" ")
        if key.startswith("[") and key.endswith("]") and n.isdigit():
            awk_counts[key[1:-1]] = int(n)
    want = {k: v for k, v in expected["counts"].items() if v}
    info["awk_level_counts_match"] = {k: awk_counts.get(k) for k in want} == want
    loop_doc = json.loads(bench.runs["A/python_loop"].pop("_stdout", "{}") or "{}")
    info["python_loop_counts_match"] = (not sliced) and loop_doc.get("counts") == want
    info["python_loop_lines"] = loop_doc.get("lines")
    return info


def _keep_stdout(entry, stdout, stderr) -> None:
    entry["_stdout"] = stdout


def kernel_round(bench: Bench, corpus: dict, runs: list, i: int) -> None:
    """One in-process kernel pass over corpus A, its counts checked like a program's."""
    run = kernel_pass(log_files(corpus))
    bench.checked += 1
    problems = count_differences(run["result"], corpus["expected"])
    if problems:
        bench.fail("kernel in-process", "; ".join(problems))
    runs.append(run)
    log(f"kernel run {i + 1}/{bench.repeat}: {run['wall_s']:.3f} s "
        f"({corpus['expected']['bytes'] / MB / run['wall_s']:.0f} MB/s, kernel only {run['kernel_s']:.3f} s)")


def kernel_summary(runs: list, corpus: dict) -> dict:
    size = corpus["expected"]["bytes"]
    return {
        "chunk_bytes": KERNEL_CHUNK,
        "runs_s": [round(r["wall_s"], 4) for r in runs],
        "kernel_only_runs_s": [round(r["kernel_s"], 4) for r in runs],
        "mb_per_s": round(size / MB / statistics.median(r["wall_s"] for r in runs), 1),
        "kernel_only_mb_per_s": round(size / MB / statistics.median(r["kernel_s"] for r in runs), 1),
    }


def bench_corpus_b(bench: Bench, corpus: dict) -> None:
    warm_cache(log_files(corpus))
    folder = corpus["path"]
    bench.distributed("B/distributed/np3", 3, folder, corpus["expected"])
    bench.distributed("B/distributed/np3/no_checkpoint", 3, folder, corpus["expected"], checkpoints=False)
    bench.series("B/sequential", [PYTHON, SEQUENTIAL, folder, "--json"], expected=corpus["expected"])
    bench.run_round_robin([x for x in ("B/distributed/np3", "B/distributed/np3/no_checkpoint", "B/sequential")
                           if x in bench.runs])


def bench_corpus_c(bench: Bench, corpus: dict) -> None:
    warm_cache(log_files(corpus))
    folder = corpus["path"]
    bench.distributed("C/distributed/np4", 4, folder, corpus["expected"])
    bench.series("C/sequential", [PYTHON, SEQUENTIAL, folder, "--json"], expected=corpus["expected"])
    bench.run_round_robin(["C/distributed/np4", "C/sequential"])
    bench.distributed("C/distributed/np4/rank_usage", 4, folder, corpus["expected"], child=True)
    bench.run_one("C/distributed/np4/rank_usage", of=1)


def bench_master_share(bench: Bench, corpus: dict) -> None:
    bench.distributed("A/distributed/np3/rank_usage", 3, corpus["path"], corpus["expected"], child=True)
    bench.run_round_robin(["A/distributed/np3/rank_usage"])


def bench_sample_logs(bench: Bench) -> dict | None:
    if not SAMPLE_LOGS.is_dir():
        log("no sample_logs/: skipped")
        return None
    expected = None
    try:
        expected = json.loads((SAMPLE_LOGS / "expected.json").read_text())
    except (OSError, ValueError):
        log("sample_logs/expected.json missing: sample_logs counts not checked")
    warm_cache(sorted(str(p) for p in SAMPLE_LOGS.glob("*.log")))
    bench.distributed("sample_logs/distributed/np4", 4, str(SAMPLE_LOGS), expected)
    bench.run_round_robin(["sample_logs/distributed/np4"])
    # A near-empty job: the per-rank memory every run pays before counting a byte.
    bench.distributed("sample_logs/distributed/np4/rank_usage", 4, str(SAMPLE_LOGS), expected, child=True)
    bench.run_one("sample_logs/distributed/np4/rank_usage", of=1)
    return {"path": str(SAMPLE_LOGS), "bytes": sum(p.stat().st_size for p in SAMPLE_LOGS.glob("*.log")),
            "files": len(list(SAMPLE_LOGS.glob("*.log"))), "expected_counts_checked": expected is not None}


# ------------------------------------------------------------------------- figures
def ratio(a, b, digits=3):
    return round(a / b, digits) if a is not None and b else None


def rate(nbytes, seconds):
    return round(nbytes / MB / seconds, 1) if seconds else None


def derive(bench: Bench, corpora: dict, kernel: dict, extra: dict, cores: int) -> tuple[dict, dict]:
    """Stage 1 and Stage 2 figures from the raw runs."""
    med = bench.median
    size_a = corpora["A"]["expected"]["bytes"]
    seq = med("A/sequential")
    stage1 = {"corpus_bytes": size_a, "sequential_s": seq, "sequential_mb_per_s": rate(size_a, seq),
              "sequential_cpu_s": med("A/sequential", "cpu_s"),
              "sequential_internal_s": _internal(bench, "A/sequential"), "cores": cores}
    for name, nps in (("parallel", PARALLEL_NP), ("distributed", DISTRIBUTED_NP)):
        rows = {}
        for k in nps:
            t = med(f"A/{name}/np{k}")
            speedup = ratio(seq, t)
            rows[str(k)] = {"time_s": t, "speedup": speedup, "efficiency": ratio(speedup, k),
                            "internal_s": _internal(bench, f"A/{name}/np{k}"),
                            "cpu_s": med(f"A/{name}/np{k}", "cpu_s"),
                            "mpi_empty_s": med(f"mpi_empty/np{k}")}
        stage1[name] = rows
    stage1["bytes_per_rank_np4"] = bench.runs["A/parallel/np4"].get("bytes_per_rank")
    stage1["mpi_empty_s"] = {str(k): med(f"mpi_empty/np{k}") for k in PARALLEL_NP}
    stage1["mpi_empty_cpu_s"] = {str(k): med(f"mpi_empty/np{k}", "cpu_s") for k in PARALLEL_NP}
    stage1["python_startup_s"] = med("python_startup")

    loop = bench.runs["A/python_loop"]
    loop_s = med("A/python_loop")
    loop_scaled = loop_s * size_a / loop["bytes_processed"] if loop_s else None
    loop["scaled_median_s"] = round(loop_scaled, 4) if loop_scaled else None
    awk_rate, grep_rate = rate(size_a, med("A/awk")), rate(size_a, med("A/grep"))
    loop_rate = rate(loop["bytes_processed"], loop_s)
    stage1["throughput_mb_per_s"] = {
        "kernel": kernel["mb_per_s"], "kernel_only": kernel["kernel_only_mb_per_s"], "awk": awk_rate,
        "grep_c_info": grep_rate, "python_loop": loop_rate, "sequential_end_to_end": rate(size_a, seq)}
    stage1["ratios"] = {"kernel_over_awk": ratio(kernel["mb_per_s"], awk_rate, 2),
                        "kernel_over_grep": ratio(kernel["mb_per_s"], grep_rate, 2),
                        "kernel_over_python_loop": ratio(kernel["mb_per_s"], loop_rate, 2)}
    stage1["python_loop"] = {"sliced": loop["sliced"], "slice_fraction": loop["slice_fraction"],
                             "bytes_processed": loop["bytes_processed"], "median_s": loop_s,
                             "scaled_to_corpus_s": loop["scaled_median_s"]}
    stage1["baseline_checks"] = {k: extra[k] for k in ("awk_level_counts_match", "python_loop_counts_match")}

    stage2 = {"A_np3_s": med("A/distributed/np3"), "A_sequential_s": seq,
              "A_np3_over_sequential": ratio(med("A/distributed/np3"), seq),
              "A_np3_tasks": bench.runs["A/distributed/np3"].get("tasks")}
    stage2["B"] = {"files": corpora["B"]["expected"]["files"], "lines_per_file": SMALL_FILE_LINES,
                   "bytes": corpora["B"]["expected"]["bytes"],
                   "distributed_np3_s": med("B/distributed/np3"), "sequential_s": med("B/sequential"),
                   "distributed_internal_s": _internal(bench, "B/distributed/np3"),
                   "sequential_internal_s": _internal(bench, "B/sequential"),
                   "np3_over_sequential": ratio(med("B/distributed/np3"), med("B/sequential")),
                   "tasks": bench.runs["B/distributed/np3"].get("tasks")}
    if "C" in corpora:
        size_c = corpora["C"]["expected"]["bytes"]
        usage = bench.runs["C/distributed/np4/rank_usage"]["ranks"][0]
        stage2["C"] = {"bytes": size_c, "distributed_np4_s": med("C/distributed/np4"),
                       "distributed_np4_mb_per_s": rate(size_c, med("C/distributed/np4")),
                       "sequential_s": med("C/sequential"),
                       "np4_over_sequential": ratio(med("C/distributed/np4"), med("C/sequential")),
                       "tasks": bench.runs["C/distributed/np4"].get("tasks"),
                       "peak_rss_kb_per_rank": {r: u["max_rss_kb"] for r, u in usage.items()},
                       "rank_usage_run_s": med("C/distributed/np4/rank_usage")}
    else:
        stage2["C"] = None
    per_run = bench.runs["A/distributed/np3/rank_usage"]["ranks"]
    shares = [cpu_share(ranks, after_startup=False) for ranks in per_run]
    work_shares = [cpu_share(ranks, after_startup=True) for ranks in per_run]
    share = statistics.median(shares)
    middle = per_run[min(range(len(shares)), key=lambda i: abs(shares[i] - share))]
    stage2["master_cpu_share"] = {
        "np": 3, "share": round(share, 4), "runs": [round(x, 4) for x in shares],
        "share_after_startup": round(statistics.median(work_shares), 4),
        "runs_after_startup": [round(x, 4) for x in work_shares],
        "cpu_s_per_rank": {r: round(u["user_s"] + u["sys_s"], 3) for r, u in middle.items()},
        "startup_cpu_s_per_rank": {r: round(u["startup_cpu_s"], 3) for r, u in middle.items()},
        "run_s": med("A/distributed/np3/rank_usage"),
        "peak_rss_kb_per_rank": {r: u["max_rss_kb"] for r, u in middle.items()}}
    if "sample_logs" in corpora:
        base = bench.runs.get("sample_logs/distributed/np4/rank_usage", {}).get("ranks", [{}])[0]
        stage2["sample_logs"] = {"np": 4, "time_s": med("sample_logs/distributed/np4"),
                                 "internal_s": _internal(bench, "sample_logs/distributed/np4"),
                                 "bytes": corpora["sample_logs"]["bytes"],
                                 "baseline_rss_kb_per_rank": {r: u["max_rss_kb"] for r, u in base.items()}}
    else:
        stage2["sample_logs"] = None
    stage2["mpi_empty_np4_s"] = med("mpi_empty/np4")
    if "A/distributed/np3/no_checkpoint" in bench.runs:
        stage2["checkpoint_cost"] = {
            "A_np3_s": med("A/distributed/np3"), "A_np3_no_checkpoint_s": med("A/distributed/np3/no_checkpoint"),
            "A_np3_internal_s": _internal(bench, "A/distributed/np3"),
            "A_np3_no_checkpoint_internal_s": _internal(bench, "A/distributed/np3/no_checkpoint"),
            "A_checkpoints_saved": bench.runs["A/distributed/np3"].get("checkpoints_saved"),
            "B_np3_s": med("B/distributed/np3"), "B_np3_no_checkpoint_s": med("B/distributed/np3/no_checkpoint"),
            "B_np3_internal_s": _internal(bench, "B/distributed/np3"),
            "B_np3_no_checkpoint_internal_s": _internal(bench, "B/distributed/np3/no_checkpoint"),
            "B_checkpoints_saved": bench.runs["B/distributed/np3"].get("checkpoints_saved")}
    else:
        stage2["checkpoint_cost"] = None
    return stage1, stage2


def cpu_share(ranks: dict, after_startup: bool) -> float:
    """Master (rank 0) CPU time over the sum of the workers' CPU times."""
    cpu = {int(r): u["user_s"] + u["sys_s"] - (u["startup_cpu_s"] if after_startup else 0.0)
           for r, u in ranks.items()}
    workers = sum(v for r, v in cpu.items() if r != 0)
    return cpu[0] / workers if workers > 0 else float("nan")


def _internal(bench: Bench, label: str):
    runs = bench.runs.get(label, {}).get("internal_elapsed_s")
    return round(statistics.median(runs), 4) if runs else None


# -------------------------------------------------------------------------- reports
def fmt(x, digits=2, unit=""):
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def mib(kb):
    return f"{kb / 1024:.0f} MiB"


def corpus_line(name: str, c: dict) -> str:
    e = c["expected"]
    return (f"Corpus {name}: {e['files']} file(s), {e['bytes'] / MB:.1f} MB, {e['lines']:,} lines "
            f"({e['malformed']:,} malformed, {e['blank']:,} blank){' [reused]' if c['reused'] else ''}")


def report_header(doc: dict, title: str) -> list[str]:
    m = doc["machine"]
    check = doc["counts_check"]
    return [
        title, "=" * len(title),
        f"Generated by utils/benchmark.py on {doc['date']} in {doc['duration_s']:.0f} s. Every figure below is",
        "measured by that run (raw data: stage1.json); none is typed by hand.",
        "",
        f"Machine: {m['cpu_count']} cores (os.cpu_count()), {m['memory_gb']} GB RAM, {m['platform']}",
        f"Software: Python {m['python']}, numpy {m['numpy']}, mpi4py {m['mpi4py']}, Open MPI {m['open_mpi']};"
        f" awk = {m['awk']}",
        f"Load average at start: {m['load_average_start']}, at end: {doc['load_average_end']}"
        " (the machine is shared: other work adds noise).",
        *(["PYTHONDONTWRITEBYTECODE is set: every process compiles the project's modules at start-up."]
          if m.get("python_dont_write_bytecode") else []),
        f"Method: wall-clock time of the whole command (Python and MPI start-up included), median of"
        f" {doc['options']['repeat']} run(s), commands interleaved, warm page cache.",
        f"Exact counts (every analyser run, --json, against the generator's totals): "
        f"{'PASSED' if check['passed'] else 'FAILED'} ({check['runs_checked']} checked runs).",
        *([f"Commands that crashed once and passed on a retry: {len(doc['retried_crashes'])} (see stage1.json)."]
          if doc["retried_crashes"] else []),
        "",
    ]


def stage1_text(doc: dict) -> str:
    s1 = doc["stage1"]
    seq = s1["sequential_s"]
    lines = report_header(doc, "STAGE 1 REPORT: sequential and static-parallel log analysis")
    lines += [corpus_line("A", doc["corpora"]["A"]),
              "  file sizes (MB): " + ", ".join(f"{b / MB:.1f}" for b in doc["corpora"]["A"]["file_bytes"]), ""]
    lines += ["1. Execution times (corpus A)", "",
              f"  {'program':<24}{'procs':>6}{'time s':>9}{'speedup':>9}{'effic.':>8}{'internal s':>12}{'CPU s':>8}"
              f"{'empty job s':>13}{'empty CPU s':>13}",
              f"  {'sequential':<24}{1:>6}{fmt(seq, 3):>9}{fmt(1.0):>9}{fmt(1.0):>8}{fmt(s1['sequential_internal_s'], 3):>12}"
              f"{fmt(s1['sequential_cpu_s'], 2):>8}{'-':>13}{'-':>13}"]
    for name, label in (("parallel", "parallel (static)"), ("distributed", "distributed (master)")):
        for k, row in s1[name].items():
            lines.append(f"  {label:<24}{k:>6}{fmt(row['time_s'], 3):>9}{fmt(row['speedup']):>9}"
                         f"{fmt(row['efficiency']):>8}{fmt(row['internal_s'], 3):>12}{fmt(row['cpu_s'], 2):>8}"
                         f"{fmt(row['mpi_empty_s'], 3):>13}{fmt(s1['mpi_empty_cpu_s'][k], 2):>13}")
    lines += ["",
              "  speedup = sequential time / parallel time; efficiency = speedup / processes.",
              "  'internal s' is the analyser's own elapsed_s (after start-up, up to the result); 'CPU s' is the",
              "  user + sys time of the whole command, all ranks (median), which a busy machine barely changes;",
              f"  'empty job' is mpirun -np N python -c '{EMPTY_JOB}; from mpi4py import MPI', the start-up floor;",
              f"  the same imports without MPI take {fmt(s1['python_startup_s'], 3)} s."]
    if doc["stage2"].get("checkpoint_cost") is not None:
        lines.append("  The distributed runs use default options (checkpoints on), each in an emptied checkpoint folder.")
    lines.append("")
    bpr = s1.get("bytes_per_rank_np4") or []
    lines += ["2. Work distribution strategy (parallel_log_analyser.py)", "",
              "  Static partition by bytes: rank 0 lists the files and broadcasts the list; rank r takes",
              "  bytes [r*T/N, (r+1)*T/N) of the files laid end to end (T = total bytes, N = ranks), so a",
              "  large file is shared by several ranks. A byte range owns exactly the lines that START",
              "  inside it: a rank whose range begins mid-line skips to the next line, and finishes the",
              "  last line it started past its range end, so every line is counted once however files",
              "  are cut. Each rank streams its ranges in 4 MiB chunks through the numpy kernel; rank 0",
              "  gathers and sums the partial results. No rank waits on another before the final gather."]
    if bpr:
        lines.append(f"  Bytes counted per rank at -np 4 (from the run): {', '.join(f'{b / MB:.1f} MB' for b in bpr)}"
                     f" (largest/smallest {max(bpr) / max(min(bpr), 1):.3f}).")
    lines.append("")
    tp, r = s1["throughput_mb_per_s"], s1["ratios"]
    loop = s1["python_loop"]
    lines += ["3. Kernel throughput (corpus A)", "",
              f"  kernel in-process (count_lines, 4 MiB chunks, read included): {fmt(tp['kernel'], 0)} MB/s"
              f" (kernel calls only: {fmt(tp['kernel_only'], 0)} MB/s)",
              f"  awk '{{c[$2]++}}' (LC_ALL=C, whole command):                   {fmt(tp['awk'], 0)} MB/s"
              f"  -> kernel/awk = {fmt(r['kernel_over_awk'])}",
              f"  grep -c INFO (LC_ALL=C, whole command):                       {fmt(tp['grep_c_info'], 0)} MB/s"
              f"  -> kernel/grep = {fmt(r['kernel_over_grep'])}",
              f"  per-line Python regex loop (whole command):                   {fmt(tp['python_loop'], 0)} MB/s"
              f"  -> kernel/loop = {fmt(r['kernel_over_python_loop'])}",
              f"  sequential analyser end to end:                               {fmt(tp['sequential_end_to_end'], 0)} MB/s"]
    if loop["sliced"]:
        lines.append(f"  The per-line loop is slow, so it ran on a 1/{loop['slice_fraction']} slice of every file"
                     f" ({loop['bytes_processed'] / MB:.1f} MB, {fmt(loop['median_s'])} s); scaled to the corpus:"
                     f" {fmt(loop['scaled_to_corpus_s'])} s.")
    chk = s1["baseline_checks"]
    lines.append(f"  awk's '[LEVEL]' counts equal the exact counts: {chk['awk_level_counts_match']}"
                 + ("" if loop["sliced"] else f"; the regex loop's counts: {chk['python_loop_counts_match']}") + ".")
    lines += ["", "4. Observations on scalability", ""]
    lines += [f"  - {text}" for text in stage1_observations(doc)]
    return "\n".join(lines) + "\n"


def trend(before: float, after: float, flat: float = 0.05) -> str:
    """'slower', 'faster' or 'about the same', from two times."""
    change = (after - before) / before
    return "about the same" if abs(change) <= flat else ("slower" if change > 0 else "faster")


def stage1_observations(doc: dict) -> list[str]:
    s1 = doc["stage1"]
    cores, seq = s1["cores"], s1["sequential_s"]
    par, dist, empty = s1["parallel"], s1["distributed"], s1["mpi_empty_s"]
    py = s1["python_startup_s"]
    out = [f"This machine has {cores} cores: at most {cores} ranks compute at once, so more than {cores}"
           f" ranks cannot speed anything up; extra ranks only time-share the same {cores} cores."]
    best_k, best = min(((k, row) for k, row in par.items() if row["time_s"]), key=lambda kv: kv[1]["time_s"])
    out.append(f"Sequential: {fmt(seq, 3)} s for {s1['corpus_bytes'] / MB:.0f} MB ({fmt(s1['sequential_mb_per_s'], 0)} MB/s"
               f" end to end, of which {fmt(s1['sequential_internal_s'], 3)} s is counting and about {fmt(py, 3)} s"
               f" is Python + numpy start-up). The fastest parallel run is -np {best_k}: {fmt(best['time_s'], 3)} s,"
               f" speedup {fmt(best['speedup'])}, efficiency {fmt(best['efficiency'])}.")
    p1 = par["1"]["time_s"]
    out.append(f"Launch cost: an empty MPI job (same imports, plus MPI) takes {fmt(empty['1'], 3)} s at -np 1 and"
               f" {fmt(empty[str(PARALLEL_NP[-1])], 3)} s at -np {PARALLEL_NP[-1]}, against {fmt(py, 3)} s for plain"
               f" Python; the parallel program at -np 1 takes {fmt(p1, 3)} s, {fmt(p1 - seq, 3)} s more than the"
               f" sequential one.")
    i1, i2 = s1["sequential_internal_s"], par.get("2", {}).get("internal_s")
    if i1 and i2:
        out.append(f"Counting alone (the programs' own elapsed time): sequential {fmt(i1, 3)} s, parallel -np 2"
                   f" {fmt(i2, 3)} s, a speedup of {fmt(i1 / i2)} on {cores} cores; on wall time the speedup at -np 2"
                   f" is {fmt(par['2']['speedup'])}, because the launch does not shrink with more ranks"
                   f" (empty MPI job at -np 2: {fmt(empty['2'], 3)} s, {fmt(100 * empty['2'] / par['2']['time_s'], 0)}%"
                   f" of the -np 2 wall time).")
    t2, t4 = par.get("2", {}).get("time_s"), par.get("4", {}).get("time_s")
    if t2 and t4:
        how = trend(t2, t4)
        why = {"slower": "the extra ranks cannot find a free core and each adds launch and import cost",
               "about the same": f"the {cores} cores were already busy at -np 2",
               "faster": f"which {cores} cores cannot explain by computing; it is within the noise of a shared"
                         f" machine (see the load average)"}[how]
        out.append(f"Beyond {cores} ranks: from -np 2 to -np 4 the parallel wall time goes from {fmt(t2, 3)} s to"
                   f" {fmt(t4, 3)} s ({100 * (t4 - t2) / t2:+.0f}%, {how}): {why}.")
    d = {k: row["time_s"] for k, row in dist.items() if row["time_s"]}
    if d:
        text = ("The distributed analyser (rank 0 is a master that does not count, so -np N has N-1 workers) takes "
                + ", ".join(f"{fmt(t, 3)} s at -np {k}" for k, t in d.items())
                + f"; its best speedup over sequential is {fmt(max(ratio(seq, t) for t in d.values()))}.")
        if "3" in d and t2:
            how = trend(t2, d["3"])
            why = {"slower": "the price of the master, its task messages and one more process start",
                   "about the same": "the master, its messages and one more process cost little here",
                   "faster": "the pulled tasks balance the work, while a static share waits for its slowest rank"}[how]
            text += (f" With 2 counting ranks each, distributed -np 3 takes {fmt(d['3'], 3)} s and parallel -np 2"
                     f" {fmt(t2, 3)} s ({fmt(d['3'] / t2)}x, {how}): {why}.")
        out.append(text)
    cpu = {k: row["cpu_s"] for k, row in par.items() if row["cpu_s"]}
    if len(cpu) >= 2 and s1["sequential_cpu_s"]:
        first, last = min(cpu, key=int), max(cpu, key=int)
        per_rank = (cpu[last] - cpu[first]) / (int(last) - int(first))
        empty_cpu = s1["mpi_empty_cpu_s"]
        empty_per_rank = (empty_cpu[last] - empty_cpu[first]) / (int(last) - int(first))
        out.append(f"CPU time (all ranks), which other load barely moves: sequential {fmt(s1['sequential_cpu_s'])} s,"
                   f" parallel " + ", ".join(f"{fmt(v)} s" for v in cpu.values())
                   + f" at -np {first}..{last}, distributed "
                   + ", ".join(f"{fmt(row['cpu_s'])} s" for row in dist.values())
                   + f" at -np {min(dist, key=int)}..{max(dist, key=int)}. Each extra parallel rank costs"
                   f" {fmt(per_rank)} s of CPU, against {fmt(empty_per_rank)} s per rank for an empty MPI job.")
    load = doc["machine"]["load_average_start"][0]
    if load > cores / 2:
        out.append(f"The load average was {load:.1f} at the start on {cores} cores: other jobs were using the cores,"
                   f" so ranks did not get whole cores and the wall-time speedups understate what an idle machine"
                   f" would show; the 'internal s' and 'CPU s' columns are the steadier guide.")
    r, tp = s1["ratios"], s1["throughput_mb_per_s"]
    out.append(f"Kernel: {fmt(tp['kernel'], 0)} MB/s in-process, {fmt(r['kernel_over_awk'])}x awk"
               f" ({'faster' if (r['kernel_over_awk'] or 0) > 1 else 'slower'}) and {fmt(r['kernel_over_python_loop'])}x"
               f" a per-line Python regex loop; grep -c, which only searches for a word, runs at"
               f" {fmt(tp['grep_c_info'], 0)} MB/s ({fmt(r['kernel_over_grep'])}x).")
    return out


def stage2_text(doc: dict) -> str:
    s2 = doc["stage2"]
    lines = report_header(doc, "STAGE 2 PERFORMANCE: the fault-tolerant distributed analyser")
    corp = doc["corpora"]
    lines += [corpus_line("A", corp["A"]), corpus_line("B", corp["B"])]
    if "C" in corp:
        lines.append(corpus_line("C", corp["C"]))
    lines += ["All distributed runs: distributed_log_analyser.py --no-progress --quiet --json; rank 0 is the master."]
    if doc["stage2"]["checkpoint_cost"] is not None:
        lines += ["Default options otherwise: checkpoints on, each run with its own emptied --checkpoint-dir in the",
                  "scratch folder, so every run is the first run of its job (nothing is resumed)."]
    lines.append("")
    lines += ["1. Corpus A at -np 3 against the sequential analyser", "",
              f"  distributed -np 3: {fmt(s2['A_np3_s'], 3)} s; sequential: {fmt(s2['A_sequential_s'], 3)} s;"
              f" ratio -np 3 / sequential = {fmt(s2['A_np3_over_sequential'])} ({s2['A_np3_tasks']} tasks).",
              f"  (an empty MPI job at -np 3 takes {fmt(doc['stage1']['mpi_empty_s']['3'], 3)} s)", ""]
    b = s2["B"]
    lines += [f"2. Many small files: {b['files']:,} files x {b['lines_per_file']} lines ({b['bytes'] / MB:.1f} MB)", "",
              f"  distributed -np 3: {fmt(b['distributed_np3_s'], 3)} s (internal {fmt(b['distributed_internal_s'], 3)} s,"
              f" {b['tasks']} tasks); sequential: {fmt(b['sequential_s'], 3)} s (internal {fmt(b['sequential_internal_s'], 3)} s);"
              f" ratio {fmt(b['np3_over_sequential'])}.", ""]
    c = s2["C"]
    lines.append("3. One large file, -np 4")
    lines.append("")
    if c is None:
        lines += ["  skipped (--quick or --big-single 0).", ""]
    else:
        rss = c["peak_rss_kb_per_rank"]
        lines += [f"  {c['bytes'] / MB:.0f} MB in one file: distributed -np 4: {fmt(c['distributed_np4_s'], 3)} s"
                  f" ({fmt(c['distributed_np4_mb_per_s'], 0)} MB/s, {c['tasks']} tasks); sequential: {fmt(c['sequential_s'], 3)} s;"
                  f" ratio {fmt(c['np4_over_sequential'])}.",
                  "  Peak RSS per rank (getrusage ru_maxrss, one run under --rank-rss-child): "
                  + ", ".join(f"rank {r}{' (master)' if r == '0' else ''} {mib(kb)}" for r, kb in rss.items()) + "."]
        base = (s2.get("sample_logs") or {}).get("baseline_rss_kb_per_rank") or {}
        if base:
            lines.append("  The same ranks on sample_logs/ (3 MB, the start-up baseline): "
                         + ", ".join(f"rank {r} {mib(kb)}" for r, kb in base.items()) + ".")
            growth = max(rss[r] - base.get(r, 0) for r in rss) if rss else 0
            lines.append(f"  Largest growth over the baseline: {mib(growth)} for a {c['bytes'] / MB:.0f} MB file:"
                         f" memory is bounded by the chunk size, not the file size.")
        lines.append("")
    m = s2["master_cpu_share"]
    lines += ["4. Master CPU share (corpus A, -np 3, getrusage user+sys of each rank at exit)", "",
              f"  master CPU / sum of workers' CPU = {100 * m['share']:.1f}%"
              f" (median of {len(m['runs'])} run(s): {', '.join(f'{100 * x:.1f}%' for x in m['runs'])}).",
              "  CPU seconds per rank in the median run: "
              + ", ".join(f"rank {r} {v:.3f} s" for r, v in m["cpu_s_per_rank"].items())
              + "; of which start-up (Python, numpy, MPI_Init): "
              + ", ".join(f"{v:.3f} s" for v in m["startup_cpu_s_per_rank"].values()) + ".",
              f"  Without start-up, the master's share is {100 * m['share_after_startup']:.1f}%"
              f" (runs: {', '.join(f'{100 * x:.1f}%' for x in m['runs_after_startup'])}).", ""]
    sl = s2["sample_logs"]
    lines += ["5. sample_logs/ end to end, -np 4", ""]
    if sl is None:
        lines += ["  skipped (no sample_logs/).", ""]
    else:
        lines += [f"  {sl['bytes'] / MB:.1f} MB: {fmt(sl['time_s'], 3)} s wall (internal {fmt(sl['internal_s'], 3)} s);"
                  f" an empty MPI job at -np 4 takes {fmt(s2['mpi_empty_np4_s'], 3)} s.", ""]
    ck = s2["checkpoint_cost"]
    if ck is not None:
        lines += ["6. Cost of checkpointing (-np 3, default checkpoints vs --no-checkpoint)", "",
                  f"  corpus A: {fmt(ck['A_np3_s'], 3)} s vs {fmt(ck['A_np3_no_checkpoint_s'], 3)} s"
                  f" (internal {fmt(ck['A_np3_internal_s'], 3)} s vs {fmt(ck['A_np3_no_checkpoint_internal_s'], 3)} s;"
                  f" {ck['A_checkpoints_saved']} checkpoint(s) written)",
                  f"  corpus B: {fmt(ck['B_np3_s'], 3)} s vs {fmt(ck['B_np3_no_checkpoint_s'], 3)} s"
                  f" (internal {fmt(ck['B_np3_internal_s'], 3)} s vs {fmt(ck['B_np3_no_checkpoint_internal_s'], 3)} s;"
                  f" {ck['B_checkpoints_saved']} checkpoint(s) written)", ""]
    lines += ["7. Observations", ""]
    lines += [f"  - {text}" for text in stage2_observations(doc)]
    return "\n".join(lines) + "\n"


def stage2_observations(doc: dict) -> list[str]:
    s1, s2 = doc["stage1"], doc["stage2"]
    cores = s1["cores"]
    out = []
    r = s2["A_np3_over_sequential"]
    empty3 = s1["mpi_empty_s"]["3"]
    if r is not None:
        verdict = "slower than" if r > 1.05 else ("as fast as" if r >= 0.95 else "faster than")
        out.append(f"On corpus A the distributed analyser at -np 3 is {verdict} the sequential one (ratio {fmt(r)}):"
                   f" {fmt(s2['A_np3_s'], 3)} s, of which {fmt(empty3, 3)} s is what an empty -np 3 MPI job costs;"
                   f" its own elapsed time is {fmt(s1['distributed']['3']['internal_s'], 3)} s against"
                   f" {fmt(s1['sequential_internal_s'], 3)} s for the sequential count.")
    b = s2["B"]
    if b["distributed_np3_s"] and b["sequential_s"]:
        out.append(f"{b['files']:,} small files: distributed -np 3 {fmt(b['distributed_np3_s'], 3)} s vs sequential"
                   f" {fmt(b['sequential_s'], 3)} s (ratio {fmt(b['np3_over_sequential'])}); {b['tasks']} batched tasks,"
                   f" so {b['files'] / max(b['tasks'] or 1, 1):.0f} files per message round trip. Per file, the"
                   f" sequential program needs {1e3 * b['sequential_internal_s'] / b['files']:.3f} ms of counting"
                   f" time, the distributed one {1e3 * b['distributed_internal_s'] / b['files']:.3f} ms.")
    c = s2["C"]
    if c:
        rss = c["peak_rss_kb_per_rank"]
        out.append(f"One {c['bytes'] / MB:.0f} MB file at -np 4 ({cores} cores, 3 workers): {fmt(c['distributed_np4_s'], 3)} s,"
                   f" {fmt(c['distributed_np4_mb_per_s'], 0)} MB/s, {fmt(c['np4_over_sequential'])}x the sequential time;"
                   f" the largest rank peaks at {mib(max(rss.values()))}.")
    ck = s2["checkpoint_cost"]
    if ck is not None and ck["B_np3_s"] and ck["B_np3_no_checkpoint_s"]:
        extra = ck["B_np3_s"] - ck["B_np3_no_checkpoint_s"]
        out.append(f"Checkpointing adds {fmt(extra, 3)} s ({fmt(ck['B_np3_s'] / ck['B_np3_no_checkpoint_s'])}x) on"
                   f" {b['files']:,} small files ({ck['B_checkpoints_saved']} checkpoint(s)) and"
                   f" {fmt(ck['A_np3_s'] - ck['A_np3_no_checkpoint_s'], 3)} s on corpus A"
                   f" ({ck['A_checkpoints_saved']} checkpoint(s)).")
    m = s2["master_cpu_share"]
    where = (f"with 3 ranks on {cores} cores, that CPU is taken from the workers while they count" if cores < 3
             else "the master has a core of its own, so this CPU is not taken from the workers")
    out.append(f"The master used {100 * m['share']:.1f}% of the workers' CPU time in all"
               f" ({100 * m['share_after_startup']:.1f}% once start-up is left out): {where}.")
    return out


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s1 = doc["stage1"]
    seq, cores = s1["sequential_s"], s1["cores"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    series = [("parallel (static)", s1["parallel"], "o-", "tab:blue"),
              ("distributed (master + N-1 workers)", s1["distributed"], "s-", "tab:orange")]
    all_np = sorted({int(k) for _, rows, _, _ in series for k in rows})
    for label, rows, style, color in series:
        ks = [int(k) for k, row in rows.items() if row["time_s"]]
        left.plot(ks, [rows[str(k)]["time_s"] for k in ks], style, color=color, label=label)
        right.plot(ks, [rows[str(k)]["speedup"] for k in ks], style, color=color, label=label)
    empty = s1["mpi_empty_s"]
    left.plot([int(k) for k in empty], list(empty.values()), "x:", color="gray", label="empty MPI job (start-up)")
    left.axhline(seq, color="black", linestyle="--", label=f"sequential ({seq:.2f} s)")
    top = max([seq] + [row["time_s"] or 0 for _, rows, _, _ in series for row in rows.values()])
    left.set(title=f"Wall time, corpus A ({s1['corpus_bytes'] / MB:.0f} MB)", xlabel="processes (mpirun -np)",
             ylabel="seconds (median)", xticks=all_np, ylim=(0, top * 1.45))
    left.legend(fontsize=8, loc="upper left", ncol=2)
    right.plot(all_np, all_np, "--", color="gray", label="ideal (speedup = processes)")
    right.plot(all_np, [min(k, cores) for k in all_np], ":", color="black", label=f"ideal on {cores} cores")
    right.axhline(1.0, color="black", linewidth=0.6)
    right.set(title="Speedup = sequential time / time", xlabel="processes (mpirun -np)", ylabel="speedup",
              xticks=all_np, ylim=(0, max(all_np) + 0.5))
    right.legend(fontsize=8, loc="upper left")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    load = doc["machine"]["load_average_start"][0]
    fig.suptitle(f"Log analysers on {cores} cores: median of {doc['options']['repeat']} run(s), start-up included"
                 f" (shared machine, load average {load:.1f} at start)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
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
    from generate_logs import parse_size

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
    common = {"generator": generator_digest(), "seed": SEED, "traps": TRAPS}
    try:
        bench = Bench(args.repeat, data_dir)
        corpora = {
            "A": prepare_corpus(data_dir / "A", {**common, "kind": "A", "bytes": args.size_bytes, "shares": list(A_SHARES)},
                                build_corpus_a(args.size_bytes)),
            "B": prepare_corpus(data_dir / "B", {**common, "kind": "B", "files": args.small_files,
                                                 "lines": SMALL_FILE_LINES}, build_corpus_b(args.small_files)),
        }
        if args.big_bytes:
            corpora["C"] = prepare_corpus(data_dir / "C", {**common, "kind": "C", "bytes": args.big_bytes},
                                          build_corpus_c(args.big_bytes))
        extra = bench_corpus_a(bench, corpora["A"], data_dir)
        kernel = extra.pop("kernel")
        bench_master_share(bench, corpora["A"])
        bench_corpus_b(bench, corpora["B"])
        if "C" in corpora:
            bench_corpus_c(bench, corpora["C"])
        sample = bench_sample_logs(bench)
        if sample is not None:
            corpora["sample_logs"] = sample
    except BenchError as exc:
        print(f"\nbenchmark.py: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:  # the runs' checkpoints hold hard links to the corpora: drop them
        shutil.rmtree(data_dir / "checkpoints", ignore_errors=True)
    for name in ("A", "B", "C"):
        if name in corpora:
            corpora[name]["file_bytes"] = [corpora[name]["files"][n] for n in sorted(corpora[name]["files"], key=_natural)]
            if len(corpora[name]["files"]) > 20:
                corpora[name]["files"] = len(corpora[name]["files"])  # keep the JSON small
                corpora[name]["file_bytes"] = None
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
    (out_dir / "stage1.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "report_stage1.txt").write_text(stage1_text(doc))
    (out_dir / "report_stage2_performance.txt").write_text(stage2_text(doc))
    plot(doc, out_dir / "speedup.png")
    log(f"wrote {out_dir}/stage1.json, report_stage1.txt, report_stage2_performance.txt, speedup.png"
        f" in {doc['duration_s']:.0f} s")
    if bench.failures:
        print(f"\n{'!' * 72}\nbenchmark.py: FAILED: {len(bench.failures)} run(s) printed wrong counts:\n"
              + "\n".join(f"  {f}" for f in bench.failures) + f"\n{'!' * 72}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
