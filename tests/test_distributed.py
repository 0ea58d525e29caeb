"""The distributed analyser under a real mpirun, without faults: exact counts and its output modes.

The corpus (many small CRLF files, one ~4 MB file cut into more than 10
chunks, planted level words, malformed and blank lines, unterminated last
lines) comes from utils/generate_logs.py, whose returned totals are the oracle.
Every run happens in its own folder (checkpoints land there) and names a
per-test output file, so the /proc scan can tell its processes from others.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from utils.jobcontrol import Jobs

from .helpers import assert_exact, program_cmd, program_env

PROG = "distributed_log_analyser.py"
RUN_TIMEOUT = 90  # seconds: a healthy run here takes 2-4 s
CHUNK = 256 << 10

from utils import generate_logs
from utils.generate_logs import merge_totals as merged


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, exact totals): 40 small CRLF files, one ~4 MB file (> 10 chunks of 256K), 5 tiny odd files."""
    root = tmp_path_factory.mktemp("corpus")
    small = generate_logs.generate(root, files=40, lines=250, seed=11, prefix="node", noise=0.1, malformed=0.05,
                                   blank=0.05, crlf=True)
    big = generate_logs.generate(root, files=1, seed=12, prefix="big", total_bytes=4_200_000, noise=0.15,
                                 malformed=0.05, blank=0.03, no_final_newline=True)
    odd = generate_logs.generate(root, files=5, lines=30, seed=13, prefix="tail", noise=0.3, blank=0.3, crlf=True,
                                 no_final_newline=True)
    assert big["bytes"] > 10 * CHUNK
    return root, merged(small, big, odd)


def run(jobs: Jobs, tmp_path: Path, *args, np: int, timeout: float = RUN_TIMEOUT):
    """Runs the program under mpirun in `tmp_path` and returns (exit code, stdout, stderr, JSON doc or None).

    The JSON document is also written to `tmp_path`/result.json, whose path marks the job's processes.
    """
    output = tmp_path / "result.json"
    cmd = program_cmd(PROG, *args, "--output", output, "--no-progress", np=np)
    job = jobs.start(cmd, marker=str(output), env=program_env(), cwd=tmp_path)
    code = job.wait(timeout)
    doc = json.loads(output.read_text()) if code == 0 and output.exists() else None
    return code, job.stdout, job.stderr, doc


@pytest.mark.parametrize("np", [1, 2, 3, 4, 6])
def test_counts_equal_the_generators(corpus, jobs, tmp_path, np):
    folder, expected = corpus
    code, out, err, doc = run(jobs, tmp_path, folder, "--json", "--chunk-size", "256K", np=np)
    assert code == 0, err
    assert json.loads(out) == doc  # stdout holds the same document as --output
    assert_exact(doc, expected)
    assert doc["failed_workers"] == []
    assert doc["reassigned_tasks"] == 0
    assert doc["workers"] == np - 1 and doc["ranks"] == np
    assert doc["tasks"] > 10  # the big file alone is more than 10 chunks
    if np == 1:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("warning:") and "one rank" in lines[0], err
    else:
        assert err.strip() == "", err


def test_default_output_shows_the_work_and_the_table(corpus, jobs, tmp_path):
    folder, expected = corpus
    code, out, err, doc = run(jobs, tmp_path, folder, "--chunk-size", "256K", np=3)
    assert code == 0, err
    assert_exact(doc, expected)
    lines = out.splitlines()
    assert any(line.startswith("Found ") for line in lines)
    assigning = [line for line in lines if re.fullmatch(r"\[Master\] Assigning .+ to worker [12]", line)]
    splits = [line for line in lines if line.startswith("[Master] Splitting a task of worker")]
    assert len(assigning) == doc["tasks"] + len(splits)  # every task assigned once, none reassigned; a split's part once
    assert any(re.fullmatch(r"\[Worker [12]\] Processing .+", line) for line in lines)
    assert "ANALYSIS RESULTS" in out and f"Total lines: {expected['lines']} " in out


def test_quiet_prints_only_the_result_table(corpus, jobs, tmp_path):
    folder, expected = corpus
    code, out, err, doc = run(jobs, tmp_path, folder, "--quiet", "--chunk-size", "256K", np=3)
    assert code == 0, err
    assert err == ""
    assert_exact(doc, expected)
    lines = out.splitlines()
    rule = "=" * 49
    assert lines[:4] == ["", rule, "ANALYSIS RESULTS", rule] and lines[-1] == rule, out
    end_of_levels = lines.index(rule, 4)
    assert lines[4:end_of_levels] == [f"{level}: {n}" for level, n in sorted(expected["counts"].items())]
    for line in lines[end_of_levels + 1:-1]:  # the totals block: "Name: value" lines only
        assert re.fullmatch(r"[A-Z][A-Za-z ]+: \S.*", line), f"not a result line: {line!r}"
    assert f"Total lines: {expected['lines']} (malformed: {expected['malformed']}, blank: {expected['blank']})" in lines
    assert "Failed workers: 0" in lines
    assert not any(line.startswith("[") for line in lines)  # no [Master] / [Worker] chatter


TRACE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) \[rank (\d+)\] (send|recv) ([A-Z_]+) (to|from) (\d+)( .*)?")


def test_trace_prints_time_stamped_sends_and_receives(corpus, jobs, tmp_path):
    folder, expected = corpus
    code, out, err, doc = run(jobs, tmp_path, folder, "--trace", "--json", "--chunk-size", "256K", np=3)
    assert code == 0, err
    assert_exact(doc, expected)
    seen = set()
    last = {}
    for line in err.splitlines():
        match = TRACE.fullmatch(line)
        assert match, f"not a trace line: {line!r}"
        stamp, rank, verb, tag, direction, peer, _ = match.groups()
        assert (verb == "send") == (direction == "to")
        when = datetime.fromisoformat(stamp)
        assert when >= last.get(rank, when), f"rank {rank}'s clock went back: {line}"
        last[rank] = when
        seen.add((int(rank), verb, tag, int(peer)))
    for worker in (1, 2):
        assert {(worker, "send", "WORK_REQUEST", 0), (0, "recv", "WORK_REQUEST", worker),
                (0, "send", "ASSIGN", worker), (worker, "recv", "ASSIGN", 0),
                (worker, "send", "RESULT", 0), (0, "recv", "RESULT", worker),
                (0, "send", "ACK", worker), (worker, "recv", "ACK", 0),
                (0, "send", "STOP", worker), (worker, "recv", "STOP", 0)} <= seen, sorted(seen)
    results = sum(1 for line in err.splitlines() if "[rank 0] recv RESULT" in line)
    assert results == doc["tasks"]  # one result per task, no duplicates


def test_missing_path_exits_3_with_one_line(jobs, tmp_path):
    missing = tmp_path / "no-such-folder"
    code, out, err, doc = run(jobs, tmp_path, missing, np=3, timeout=30)
    assert "Traceback" not in out + err
    assert code == 3, f"exit {code}; stderr:\n{err}"
    lines = err.splitlines()
    assert len(lines) == 1 and "error" in lines[0] and str(missing) in lines[0], err
    assert out == ""
