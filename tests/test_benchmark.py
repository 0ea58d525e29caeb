"""Smoke test of utils/benchmark.py (`make bench`): a tiny run writes every output.

No timing is asserted: the machine may be busy. What must hold is that the run
succeeds, writes the four outputs, and that every analyser run printed the
generator's exact counts.
"""

from __future__ import annotations

import json
import subprocess

from tests.helpers import PYTHON, REPO, program_env

KEYS = {"schema", "date", "duration_s", "machine", "options", "corpora", "counts_check", "kernel",
        "stage1", "stage2", "runs"}


def test_quick_benchmark_writes_reports_with_exact_counts(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    proc = subprocess.run(
        [PYTHON, "-m", "utils.benchmark", "--quick", "--repeat", "1", "--size", "8MB",
         "--small-files", "200", "--data", str(data), "--out", str(out)],
        capture_output=True, text=True, env=program_env(), cwd=REPO, timeout=600)  # a hang guard only
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("stage1.json", "report_stage1.txt", "report_stage2_performance.txt", "speedup.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "speedup.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    doc = json.loads((out / "stage1.json").read_text())
    assert KEYS <= doc.keys()
    check = doc["counts_check"]
    assert check["passed"] is True and check["failures"] == []
    assert check["runs_checked"] >= 12  # sequential, 4 parallel, 3 distributed, kernel, B, CPU share, sample_logs

    m = doc["machine"]
    for key in ("cpu_count", "platform", "python", "numpy", "mpi4py", "open_mpi"):
        assert m[key], key
    assert doc["corpora"]["A"]["expected"]["files"] == 8
    assert doc["corpora"]["B"]["expected"]["files"] == 200
    assert "C" not in doc["corpora"] and doc["stage2"]["C"] is None  # --quick skips the big file

    s1, s2 = doc["stage1"], doc["stage2"]
    assert set(s1["parallel"]) == {"1", "2", "3", "4"} and set(s1["distributed"]) == {"2", "3", "4"}
    for row in [*s1["parallel"].values(), *s1["distributed"].values()]:
        assert row["time_s"] > 0 and row["speedup"] > 0 and row["efficiency"] > 0
    for key in ("kernel", "awk", "grep_c_info", "python_loop"):
        assert s1["throughput_mb_per_s"][key] > 0, key
    assert s1["ratios"]["kernel_over_awk"] > 0
    assert s2["A_np3_over_sequential"] > 0 and s2["B"]["distributed_np3_s"] > 0
    share = s2["master_cpu_share"]
    assert set(share["cpu_s_per_rank"]) == {"0", "1", "2"} and share["share"] > 0
    assert s2["sample_logs"]["time_s"] > 0

    text = (out / "report_stage1.txt").read_text()
    assert "PASSED" in text and "speedup" in text and "2. Work distribution strategy" in text
    assert "Master CPU share" in (out / "report_stage2_performance.txt").read_text()


def run_tool(module: str, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m utils.MODULE ARGS` from the repository; asserts it succeeded."""
    proc = subprocess.run([PYTHON, "-m", f"utils.{module}", *map(str, args)], capture_output=True, text=True,
                          env=program_env(), cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_reuses_a_generated_corpus(tmp_path, monkeypatch):
    """A second prepare with the same parameters reads expected.json instead of regenerating."""
    from utils.bench.corpora import build_corpus_b, prepare_corpus

    params = {"kind": "B", "files": 3}
    first = prepare_corpus(tmp_path / "B", params, build_corpus_b(3))
    second = prepare_corpus(tmp_path / "B", params, build_corpus_b(3))
    assert not first["reused"] and second["reused"]
    assert second["expected"] == first["expected"] and first["expected"]["files"] == 3
    third = prepare_corpus(tmp_path / "B", {**params, "files": 4}, build_corpus_b(4))
    assert not third["reused"] and third["expected"]["files"] == 4


def test_format_benchmark_checks_counts_and_writes_its_report(tmp_path):
    """utils/format_bench.py on tiny files: the generator's counts are checked for every format timed."""
    run_tool("format_bench", "--size", "300KB", "--repeat", "1", "--data", tmp_path / "data", "--out", tmp_path / "out",
             "--only", "seed", "hdfs", "jsonl")
    doc = json.loads((tmp_path / "out" / "formats_bench.json").read_text())
    assert [row["format"] for row in doc["rows"]] == ["seed", "hdfs", "jsonl", "user_regex", "user_fields"]
    assert all(row["ours_s"] > 0 for row in doc["rows"])
    assert "ratio" in (tmp_path / "out" / "formats_bench.txt").read_text()


def test_analysis_bench_times_every_statistic_on_a_checked_corpus(tmp_path):
    """utils/analysis_bench.py on a tiny corpus: every case runs, its lines (and timeline) checked."""
    run_tool("analysis_bench", "--size", "2MB", "--repeat", "1", "--data", tmp_path / "data", "--out", tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "analysis_bench.json").read_text())
    assert [r["case"] for r in doc["rows"]][0] == "plain" and len(doc["rows"]) == 7
    assert all(r["seconds"] > 0 for r in doc["rows"])


def test_follow_bench_measures_latency_and_idle_cpu(tmp_path):
    run_tool("follow_bench", "--seconds", "1", "--rate", "200", "--idle", "1", "--out", tmp_path)
    doc = json.loads((tmp_path / "follow_bench.json").read_text())
    assert doc["latency"]["lines"] == 200 and doc["latency"]["median_s"] >= 0 and doc["idle"]["cpu_s"] >= 0


def test_watch_bench_compares_plain_and_watched_runs(tmp_path):
    run_tool("watch_bench", "--size", "3MB", "--repeat", "1", "--data", tmp_path / "data", "--out", tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "watch_bench.json").read_text())
    assert len(doc["plain_s"]) == len(doc["watched_s"]) == 1


def test_make_report_runs_the_stage2_scenarios_and_writes_the_report(tmp_path):
    run_tool("stage2_report", "--out", tmp_path, timeout=900)  # exit 0: every scenario exact
    text = (tmp_path / "report_stage2.txt").read_text()
    for heading in ("Fault detection mechanism", "Recovery strategy", "Checkpointing design", "Consistency model",
                    "Test results", "Design decisions", "Limitations"):
        assert heading in text
    for name in ("normal", "worker_crash", "interrupt_resume", "master_crash"):
        assert (tmp_path / f"timeline_{name}.png").read_bytes()[:4] == b"\x89PNG"
    figs = json.loads((tmp_path / "report_stage2.json").read_text())
    assert figs["worker_crash"]["failed_workers"] == [2] and figs["master_crash"]["epoch"] > 1
    assert figs["interrupt_resume"]["exits"] == [4, 0] and figs["interrupt_resume"]["restored_tasks"] > 0


def test_phase_bench_splits_one_run_into_phases_that_add_up(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    proc = subprocess.run([PYTHON, "-m", "utils.phase_bench", "--size", "4MB", "--runs", "1", "--data", str(data),
                           "--out", str(out)], capture_output=True, text=True, env=program_env(), cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # it checks the run's counts against the generator's
    doc = json.loads((out / "phases.json").read_text())
    run = doc["each_run"][0]
    # The phases tile the run from mpirun's start to its exit; the process start has 10 ms resolution.
    assert abs(sum(run["phases"].values()) - run["wall"]) < 1e-6
    assert all(seconds > -0.02 for seconds in run["phases"].values()), run["phases"]
    assert run["phases"]["counting"] >= 0 and run["duties"]["checkpoints"] > 0  # the master wrote its checkpoints
    assert (out / "phases.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "counting" in (out / "phases.txt").read_text()
