"""What is measured, in which order: the runs on corpora A, B and C, the master's CPU share, sample_logs/.

On corpus A every command takes its turn in each round (the in-process kernel
pass included), so a slow spell of a shared machine hits them all alike.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .common import MB, REPO, log
from .corpora import log_files, make_slice, warm_cache
from .runners import (
    KERNEL_CHUNK,
    PARALLEL,
    PYTHON,
    SEQUENTIAL,
    Bench,
    command_env,
    count_differences,
    kernel_pass,
    mpi,
)

SAMPLE_LOGS = REPO / "sample_logs"
PARALLEL_NP = (1, 2, 3, 4)
DISTRIBUTED_NP = (2, 3, 4)
PYLOOP_FULL_LIMIT = 256 * 10**6  # above this corpus size the per-line loop runs on a 1/10 slice
PYLOOP_SLICE = 10

EMPTY_JOB = "import numpy, loganalyser.counting.reader"  # what every analyser imports before it counts
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


def run_stages(bench: Bench, corpora: dict, data_dir: Path) -> tuple[dict, dict]:
    """Every stage in turn; returns the kernel's figures and corpus A's baseline checks.

    Adds corpora["sample_logs"] when sample_logs/ was measured.
    """
    extra = bench_corpus_a(bench, corpora["A"], data_dir)
    kernel = extra.pop("kernel")
    bench_master_share(bench, corpora["A"])
    bench_corpus_b(bench, corpora["B"])
    if "C" in corpora:
        bench_corpus_c(bench, corpora["C"])
    sample = bench_sample_logs(bench)
    if sample is not None:
        corpora["sample_logs"] = sample
    return kernel, extra


def bench_corpus_a(bench: Bench, corpus: dict, data_dir: Path) -> dict:
    """The analysers at every -np, empty MPI jobs, awk, grep, the per-line loop and the kernel on corpus A."""
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
    """The kernel passes' times and median throughputs."""
    size = corpus["expected"]["bytes"]
    return {
        "chunk_bytes": KERNEL_CHUNK,
        "runs_s": [round(r["wall_s"], 4) for r in runs],
        "kernel_only_runs_s": [round(r["kernel_s"], 4) for r in runs],
        "mb_per_s": round(size / MB / statistics.median(r["wall_s"] for r in runs), 1),
        "kernel_only_mb_per_s": round(size / MB / statistics.median(r["kernel_s"] for r in runs), 1),
    }


def bench_corpus_b(bench: Bench, corpus: dict) -> None:
    """Many small files: distributed -np 3 (with and without checkpoints) against sequential."""
    warm_cache(log_files(corpus))
    folder = corpus["path"]
    bench.distributed("B/distributed/np3", 3, folder, corpus["expected"])
    bench.distributed("B/distributed/np3/no_checkpoint", 3, folder, corpus["expected"], checkpoints=False)
    bench.series("B/sequential", [PYTHON, SEQUENTIAL, folder, "--json"], expected=corpus["expected"])
    bench.run_round_robin([x for x in ("B/distributed/np3", "B/distributed/np3/no_checkpoint", "B/sequential")
                           if x in bench.runs])


def bench_corpus_c(bench: Bench, corpus: dict) -> None:
    """One big file: distributed -np 4 against sequential, then one run for each rank's peak RSS."""
    warm_cache(log_files(corpus))
    folder = corpus["path"]
    bench.distributed("C/distributed/np4", 4, folder, corpus["expected"])
    bench.series("C/sequential", [PYTHON, SEQUENTIAL, folder, "--json"], expected=corpus["expected"])
    bench.run_round_robin(["C/distributed/np4", "C/sequential"])
    bench.distributed("C/distributed/np4/rank_usage", 4, folder, corpus["expected"], child=True)
    bench.run_one("C/distributed/np4/rank_usage", of=1)


def bench_master_share(bench: Bench, corpus: dict) -> None:
    """Corpus A at -np 3 with every rank reporting its CPU time: what the master costs."""
    bench.distributed("A/distributed/np3/rank_usage", 3, corpus["path"], corpus["expected"], child=True)
    bench.run_round_robin(["A/distributed/np3/rank_usage"])


def bench_sample_logs(bench: Bench) -> dict | None:
    """sample_logs/ end to end at -np 4, and its ranks' memory as a baseline; None without sample_logs/."""
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
