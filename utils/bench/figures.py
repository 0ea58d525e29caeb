"""The Stage 1 and Stage 2 figures (medians, speedups, throughputs, shares) derived from the raw runs."""

from __future__ import annotations

import statistics

from .common import MB
from .corpora import SMALL_FILE_LINES
from .runners import Bench
from .stages import DISTRIBUTED_NP, PARALLEL_NP


def ratio(a, b, digits=3):
    """a / b rounded, or None when either is missing."""
    return round(a / b, digits) if a is not None and b else None


def rate(nbytes, seconds):
    """MB per second, or None without a time."""
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
