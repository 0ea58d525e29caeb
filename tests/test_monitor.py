"""The monitor layer on its own: event log, status board, dashboard server and page, terminal view,
and the timeline drawn from an event log. (The job's own use of them is tested with real runs.)"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from loganalyser.errors import UsageError
from loganalyser.monitor.board import StatusBoard
from loganalyser.monitor.dashboard import DashboardServer, parse_address
from loganalyser.monitor.events import EventLog, read_events
from loganalyser.monitor.page import static_page
from loganalyser.monitor.terminal import HOME, TerminalView, frame
from utils import timeline
from utils.jobcontrol import free_port, wait_for

from .browser import dump_dom, require_browser


def status(epoch=1, master=0, done=False, counts=None):
    return {"epoch": epoch, "master_rank": master, "done": done, "counts": counts or {"INFO": 3, "ERROR": 1},
            "lines": 4, "bytes_done": 100, "bytes_total": 200, "rate_mb_s": 1.5, "eta_s": 2.0,
            "ranks": [{"rank": 0, "role": "master", "state": "master"},
                      {"rank": 1, "role": "worker", "state": "counting", "task": "t1", "tasks_done": 2,
                       "bytes_done": 100, "rate_mb_s": 1.5, "last_heard_s": 0.1},
                      {"rank": 2, "role": "worker", "state": "failed"}],
            "queue": {"tasks_pending": 1, "in_flight": 1, "tasks_done": 2, "tasks_total": 4, "bytes_pending": 50},
            "failed": [2], "requeued": 1, "elections": 0, "checkpoint": None, "history": [[0, 0], [1, 50], [2, 100]]}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


# --- event log --------------------------------------------------------------------------


def test_two_masters_append_whole_events_in_order(tmp_path):
    path = str(tmp_path / "events.jsonl")
    first, second = EventLog(path), EventLog(path)  # the master, then the one after a failover
    for i in range(200):
        (first if i < 100 else second).emit("assign", rank=0 if i < 100 else 1, epoch=1 if i < 100 else 2,
                                           worker=2, task=f"t{i}")
    first.close()
    second.close()
    with open(path, "a") as f:
        f.write('{"time": "2026-')  # a writer killed mid-line
    events = read_events(path)
    assert [e["task"] for e in events] == [f"t{i}" for i in range(200)]
    assert all(e["time"].endswith("Z") and len(e["time"]) == 24 for e in events)  # ISO with milliseconds
    assert [e["epoch"] for e in events[99:101]] == [1, 2]


def test_no_path_writes_nothing(tmp_path):
    log = EventLog(None)
    log.emit("stop", rank=0, epoch=1)
    assert log.written == 0


# --- status board -----------------------------------------------------------------------


def test_a_status_file_is_always_whole_json_while_it_is_rewritten(tmp_path):
    path = tmp_path / "status.json"
    board = StatusBoard(str(path), interval=0)
    board.publish(status(), force=True)
    bad, reads = [], [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                json.loads(path.read_text())
                reads[0] += 1
            except ValueError as exc:
                bad.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    i, deadline = 0, time.monotonic() + 30
    while (reads[0] < 200 or i < 2000) and time.monotonic() < deadline:  # rewrite it while it is read, many times
        i += 1
        board.publish(status(epoch=i, counts={"INFO": i, "PAD": "x" * (i % 300)}))
    stop.set()
    thread.join()
    assert not bad and reads[0] >= 200
    assert json.loads(path.read_text())["epoch"] == i


# --- dashboard server and page ----------------------------------------------------------


@pytest.fixture
def served():
    """A board served on a free local port: (board, base URL)."""
    board = StatusBoard()
    server = DashboardServer(board, "127.0.0.1", free_port())
    server.start()
    try:
        wait_for(lambda: server.serving, 10, "the dashboard to bind")
        yield board, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_the_server_serves_the_latest_status_and_the_page(served):
    board, base = served
    board.publish(status(epoch=3))
    code, body = get(base + "/status.json")
    assert code == 200 and json.loads(body)["epoch"] == 3
    code, body = get(base + "/")
    assert code == 200 and b"status.json" in body and b"http" not in body.replace(b"http://www.w3.org", b"")
    assert get(base + "/secret")[0] == 404


def test_a_new_server_takes_the_address_once_it_is_free():
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()  # the old master, still holding the address
    server = DashboardServer(StatusBoard(), "127.0.0.1", port)
    server.start()
    try:
        assert not server.serving and server.error is None
        holder.close()  # the old master is gone
        wait_for(lambda: server.serving, 10, "the new server to bind the freed address")
        assert get(f"http://127.0.0.1:{port}/status.json")[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize("text,address", [("8080", ("127.0.0.1", 8080)), ("0.0.0.0:81", ("0.0.0.0", 81)),
                                          ("[::1]:9000", ("::1", 9000))])
def test_addresses(text, address):
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "http", "70000", ":80", "host:"])
def test_bad_addresses_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_address(text)


def test_the_live_page_follows_the_status_in_a_real_browser(served):
    require_browser()
    board, base = served
    url = base + "/"
    board.publish(status(epoch=1, master=0))
    dom = dump_dom(url, budget_ms=3000)
    assert 'data-epoch="1"' in dom and 'data-master="0"' in dom and 'data-state="failed"' in dom
    board.publish(status(epoch=2, master=1, done=True, counts={"INFO": 30, "WARN": 2}))
    dom = dump_dom(url, budget_ms=3000)
    assert 'data-epoch="2"' in dom and 'data-master="1"' in dom and 'data-done="yes"' in dom
    assert "&quot;INFO&quot;:30" in dom or '"INFO":30' in dom


def test_the_static_page_opens_from_a_file(tmp_path):
    require_browser()
    page = tmp_path / "final.html"
    page.write_text(static_page(status(epoch=4, master=2, done=True, counts={"ERROR": 7})))
    dom = dump_dom(page.as_uri())
    assert 'data-epoch="4"' in dom and 'data-done="yes"' in dom and "(final)" in dom


# --- terminal view ------------------------------------------------------------------------


def test_the_terminal_view_redraws_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    view = TerminalView(out, clock=iter(range(0, 100, 1)).__next__)
    view.show(status())
    view.show(status(epoch=2))
    text = out.getvalue()
    assert text.count(HOME) == 2 and "\x1b[2J" not in text  # home and overwrite, never a blanked screen
    assert "epoch 2" in text and "counting" in text


def test_the_terminal_view_prints_plain_lines_elsewhere():
    out = io.StringIO()
    TerminalView(out, clock=lambda: 0.0).show(status(), force=True)
    assert "\x1b" not in out.getvalue() and out.getvalue().count("\n") == 1
    assert frame(status())[0].startswith("log analyser - running - master rank 0, epoch 1")


# --- timeline -----------------------------------------------------------------------------


def test_the_timeline_draws_tasks_failures_and_elections(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), clock=iter([100.0 + i * 0.1 for i in range(100)]).__next__)
    log.emit("job_start", rank=0, epoch=1)
    log.emit("assign", rank=0, epoch=1, worker=1, task="a")
    log.emit("assign", rank=0, epoch=1, worker=2, task="b")
    log.emit("result", rank=0, epoch=1, worker=1, task="a")
    log.emit("failure", rank=0, epoch=1, worker=2, how="ERR_PROC_FAILED")
    log.emit("requeue", rank=0, epoch=1, worker=2, task="b")
    log.emit("election_result", rank=1, epoch=2)
    log.emit("assign", rank=1, epoch=2, worker=1, task="b")
    log.emit("result", rank=1, epoch=2, worker=1, task="b")
    log.emit("checkpoint", rank=1, epoch=2, sequence=1)
    log.close()
    events = read_events(str(path))
    bars = timeline.task_bars(events, timeline.datetime.fromisoformat(events[0]["time"].replace("Z", "+00:00")))
    assert sorted((b[0], b[3]) for b in bars) == [(1, True), (1, True), (2, False)]
    out = tmp_path / "timeline.png"
    assert timeline.main([str(path), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
