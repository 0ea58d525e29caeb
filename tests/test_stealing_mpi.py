"""Work stealing under a real mpirun: a slow rank gives its ranges away, and the counts stay exact.

One rank counts many times slower (`--inject slow:2@0:FACTOR`: after each
4 MiB step it sleeps FACTOR-1 times the step's time), so the other worker goes
idle while the slow one still holds most of a 16 MB range: the master has it
split (the events log shows `split`), and the parts are counted once. The
share of bytes the slow rank counted comes from the final status document;
the bound is loose (it depends on timing), no time is asserted. A job stopped
by SIGINT after parts of split tasks were accepted resumes exactly.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from utils import generate_logs
from utils.jobcontrol import Jobs, assert_no_processes, rank_pid, signal_pid, wait_for

from .helpers import assert_exact, program_cmd, program_env
from .test_distributed import PROG, merged

RUN_TIMEOUT = 90  # seconds for one mpirun, from start to exit
WAIT = 60  # for a state of a running job
SLOW_RANK = 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, exact totals): one 48 MB file (three 16 MB tasks) and a few small files."""
    root = tmp_path_factory.mktemp("steal_corpus")
    big = generate_logs.generate(root, files=1, seed=41, prefix="big", total_bytes=48_000_000, noise=0.05,
                                 malformed=0.02, blank=0.02, no_final_newline=True)
    small = generate_logs.generate(root, files=4, lines=300, seed=42, prefix="node", crlf=True)
    return root, merged(big, small)


def start(jobs: Jobs, tmp_path: Path, folder, *extra):
    ck = tmp_path / "ck"
    cmd = program_cmd(PROG, folder, "--chunk-size", "16M", "--checkpoint-dir", ck, "--events", tmp_path / "events.jsonl",
                      "--status", tmp_path / "status.json", "--json", "--no-progress", *extra, np=3)
    return jobs.start(cmd, str(ck), env=program_env(), cwd=tmp_path)


def events(tmp_path: Path) -> list[dict]:
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def finish(job, tmp_path: Path) -> dict:
    code = job.wait(RUN_TIMEOUT)
    assert code == 0, f"exit {code}; stderr:\n{job.stderr[-3000:]}"
    assert_no_processes(str(tmp_path / "ck"))
    return json.loads(job.stdout)


def test_a_slow_rank_gives_its_ranges_away_and_the_counts_stay_exact(corpus, jobs, tmp_path):
    folder, expected = corpus
    job = start(jobs, tmp_path, folder, "--no-checkpoint", "--inject", f"slow:{SLOW_RANK}@0:8")
    doc = finish(job, tmp_path)
    assert_exact(doc, expected)
    splits = [e for e in events(tmp_path) if e["event"] == "split"]
    assert splits, "no range was split"
    status = json.loads((tmp_path / "status.json").read_text())
    done = {r["rank"]: r["bytes_done"] for r in status["ranks"]}
    assert sum(done.values()) == status["bytes_total"]
    assert done[SLOW_RANK] < 0.35 * status["bytes_total"], done  # an even share would be 0.5


def test_a_job_stopped_after_a_split_resumes_exactly(corpus, jobs, tmp_path):
    folder, expected = corpus
    marker = str(tmp_path / "ck")
    job = start(jobs, tmp_path, folder, "--checkpoint-every", 1, "--inject", f"slow:{SLOW_RANK}@0:60")
    wait_for(lambda: any(e["event"] == "result" and "@" in e["task"] for e in events(tmp_path)) or not job.running(),
             WAIT, "a result for a part of a split task")
    assert job.running(), f"the job ended before a part of a split task was counted:\n{job.stderr[-2000:]}"
    assert signal_pid(wait_for(lambda: rank_pid(0, marker), WAIT, "the master's pid"), signal.SIGINT)
    assert job.wait(RUN_TIMEOUT) == 4, job.stderr[-3000:]
    assert_no_processes(marker)

    doc = finish(start(jobs, tmp_path, folder), tmp_path)
    assert doc["resumed_from"] and doc["restored_tasks"] > 0
    assert_exact(doc, expected)
