"""Watching a real job: the event log through a worker and a master kill, the status file read while
it is rewritten, the dashboard in a real browser across a failover, and the terminal view on a pty."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time

import pytest

from loganalyser.monitor.events import read_events
from utils import generate_logs, timeline
from utils.jobcontrol import Jobs, assert_no_processes, free_port, wait_for

from .browser import dump_dom, require_browser
from .helpers import assert_exact, program_cmd, program_env

RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("watch_corpus")
    return root, generate_logs.generate(root, files=12, lines=3000, seed=31, noise=0.1)


def job_cmd(folder, ck, *extra, np=4):
    return program_cmd("distributed_log_analyser.py", folder, "--checkpoint-dir", ck, "--chunk-size", "64K",
                       "--task-delay", "0.12", "--worker-timeout", "3", "--no-progress", *extra, np=np)


def test_the_event_log_shows_a_worker_kill_and_a_master_kill_in_order(corpus, tmp_path, jobs: Jobs):
    folder, expected = corpus
    events, ck = tmp_path / "events.jsonl", tmp_path / "ck"
    job = jobs.start(job_cmd(folder, ck, "--events", events, "--json", "--inject", "kill:2@0.25",
                             "--inject", "kill:0@0.55"), str(ck), env=program_env(), cwd=tmp_path)
    assert job.wait(RUN_TIMEOUT) == 0, job.stderr[-3000:]
    assert_exact(json.loads(job.stdout), expected)
    log = read_events(str(events))
    kinds = [e["event"] for e in log]
    assert kinds[0] == "job_start" and kinds[-2:] == ["stop", "release"]
    failures = [e for e in log if e["event"] == "failure"]
    assert [f["worker"] for f in failures][:1] == [2] and any(f["worker"] == 0 for f in failures)
    requeued = [e for e in log if e["event"] == "requeue"]
    assigned = {e["task"] for e in log if e["event"] == "assign"}
    assert requeued and all(e["task"] in assigned for e in requeued)  # task ids, as in the assignments
    elected = kinds.index("election_result")
    assert kinds.index("failure") < elected  # the worker's failure, seen by the first master, comes first
    assert log[elected]["epoch"] > 1 and log[elected]["rank"] == log[-1]["rank"] != 0
    assert all(a["time"] <= b["time"] for a, b in zip(log, log[1:]))  # one file, in order, across masters
    png = tmp_path / "timeline.png"
    assert timeline.main([str(events), "-o", str(png)]) == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_the_status_file_is_always_whole_json_while_the_job_runs(corpus, tmp_path, jobs: Jobs):
    folder, expected = corpus
    status, ck = tmp_path / "status.json", tmp_path / "ck"
    job = jobs.start(job_cmd(folder, ck, "--status", status, "--json", np=3), str(ck), env=program_env(),
                     cwd=tmp_path)
    reads, epochs = 0, set()
    while job.running():
        try:
            text = status.read_text()
        except FileNotFoundError:
            continue
        doc = json.loads(text)  # never torn: a failure here fails the test
        assert {"epoch", "master_rank", "ranks", "counts", "done"} <= set(doc)
        assert all({"rank", "role", "state"} <= set(r) for r in doc["ranks"])
        reads += 1
        epochs.add(doc["epoch"])
    assert job.wait(RUN_TIMEOUT) == 0, job.stderr[-3000:]
    final = json.loads(status.read_text())
    assert reads > 20 and final["done"] is True
    assert final["counts"] == {k: v for k, v in expected["counts"].items() if v} and final["lines"] == expected["lines"]


def test_the_dashboard_follows_a_failover_in_a_real_browser(corpus, tmp_path, jobs: Jobs):
    require_browser()
    folder, expected = corpus
    port, ck, page = free_port(), tmp_path / "ck", tmp_path / "final.html"
    status = tmp_path / "status.json"
    job = jobs.start(job_cmd(folder, ck, "--dashboard", port, "--dashboard-html", page, "--status", status,
                             "--json", "--inject", "kill:0@0.5"), str(ck), env=program_env(), cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    before = wait_for(lambda: 'data-epoch="1"' in (dom := _dom_or_empty(url)) and 'data-state="counting"' in dom
                      and dom, 60, "the first master's page with a worker counting")
    assert 'data-master="0"' in before
    after = wait_for(lambda: _newer_epoch(_dom_or_empty(url)) or not job.running() and None, 60,
                     "the page served by the next master")
    assert after is not None and 'data-master="0"' not in after
    counts = {k: v for k, v in expected["counts"].items() if v}
    shown = json.dumps(counts, separators=(",", ":")).replace('"', "&quot;")
    end = wait_for(lambda: (dom := _dom_or_empty(url)) and 'data-done="yes"' in dom and dom or not job.running() and None,
                   RUN_TIMEOUT, "the live page to show the finished job")
    assert end is not None and shown in end  # the exact final counts, live (the dashboard lingers after the result)
    assert job.wait(RUN_TIMEOUT) == 0, job.stderr[-3000:]
    assert_exact(json.loads(job.stdout), expected)
    final = dump_dom(page.as_uri())  # the static page written at the end, data inside, from file://
    assert 'data-done="yes"' in final and shown in final


def _dom_or_empty(url: str) -> str:
    try:
        return dump_dom(url, budget_ms=1500, timeout=30)
    except (AssertionError, subprocess.TimeoutExpired):
        return ""


def _newer_epoch(dom: str) -> str | None:
    import re
    m = re.search(r'data-epoch="(\d+)"', dom)
    return dom if m and int(m.group(1)) > 1 else None


def test_the_terminal_view_draws_ranks_and_totals_on_a_pty(corpus, tmp_path):
    folder, expected = corpus
    ck = tmp_path / "ck"
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(job_cmd(folder, ck, "--tui", np=3), stdin=subprocess.DEVNULL, stdout=terminal,
                            stderr=subprocess.PIPE, env=program_env(), cwd=tmp_path)
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the job ended and closed its side
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(controller)
    assert proc.wait(30) == 0, proc.stderr.read()[-3000:]
    text = screen.decode("utf-8", "replace")
    assert "\x1b[H" in text and "\x1b[2J" not in text  # redrawn in place, never blanked
    assert "master rank 0, epoch 1" in text and "counting" in text and "counts: " in text
    assert "ANALYSIS RESULTS" in text and f"Total lines: {expected['lines']}" in text
    assert "[Master] Assigning" not in text  # the view replaces the log lines
    assert_no_processes(str(ck))
