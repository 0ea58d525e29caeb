"""`--follow`: counting growing files exactly once across partial writes, rotation and restarts.

The stream tracker is tested on its own (observations in, ranges out). The
program is tested with real processes: a writer appends lines to several
files (planted level words, lines split across two writes, a rotation of
each kind) while the analyser follows; the writer's own tally is the oracle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loganalyser.work.streams import HEAD, Observation, StreamTracker, rotated_name
from utils.jobcontrol import wait_for

from .helpers import PYTHON, REPO, program_env

A, B, C = (1, 10), (1, 11), (1, 12)  # identities


def obs(path, identity, size):
    return Observation(path, identity[0], identity[1], size)


def ranges(pending):
    return [(p.path, p.start, p.end, p.whole_tail) for p in pending]


def test_growth_and_a_partial_last_line():
    t = StreamTracker(partial_after=2.0)
    assert ranges(t.observe([obs("a.log", A, 100)], now=0.0)) == [("a.log", 0, 100, False)]
    t.commit(A, 80)  # the caller counted the whole lines: the last 20 bytes have no newline yet
    assert ranges(t.observe([obs("a.log", A, 100)], now=1.0)) == [("a.log", 80, 100, False)]
    assert ranges(t.observe([obs("a.log", A, 100)], now=2.5)) == [("a.log", 80, 100, True)]  # quiet: count it
    t.commit(A, 100)
    assert t.observe([obs("a.log", A, 100)], now=3.0) == []
    assert ranges(t.observe([obs("a.log", A, 150)], now=3.1)) == [("a.log", 100, 150, False)]


def test_rename_and_create_follow_the_old_stream_to_its_end():
    t = StreamTracker()
    t.observe([obs("a.log", A, 100)], now=0.0)
    t.commit(A, 60)
    pending = t.observe([obs("a.log.1", A, 120), obs("a.log", B, 30)], now=1.0)
    assert sorted(ranges(pending)) == [("a.log", 0, 30, False), ("a.log.1", 60, 120, False)]
    assert "a.log was renamed to a.log.1" in t.drain_events()


def test_copytruncate_counts_the_copy_from_where_the_original_was():
    heads = {"a.log": b"x" * HEAD, "a.log.1": b"x" * HEAD}
    t = StreamTracker()
    t.observe([obs("a.log", A, 100)], now=0.0, head_of=heads.get)
    t.commit(A, 90)
    pending = t.observe([obs("a.log", A, 5), obs("a.log.1", B, 120)], now=1.0, head_of=heads.get)
    assert sorted(ranges(pending)) == [("a.log", 0, 5, False), ("a.log.1", 90, 120, False)]


def test_a_copy_seen_before_the_truncation_is_still_recognised():
    heads = {"a.log": b"y" * HEAD, "a.log.1": b"y" * HEAD}
    t = StreamTracker()
    t.observe([obs("a.log", A, 100)], now=0.0, head_of=heads.get)
    t.commit(A, 100)
    assert t.observe([obs("a.log", A, 100), obs("a.log.1", B, 100)], now=1.0, head_of=heads.get) == []
    pending = t.observe([obs("a.log", A, 10), obs("a.log.1", B, 100)], now=2.0, head_of=heads.get)
    assert ranges(pending) == [("a.log", 0, 10, False)]  # the copy holds nothing new


def test_a_truncation_without_a_copy_starts_again_and_a_stranger_copy_is_never_counted():
    heads = {"a.log": b"a" * HEAD, "a.log.1": b"b" * HEAD}  # not a copy of a.log
    t = StreamTracker()
    t.observe([obs("a.log", A, 100)], now=0.0, head_of=heads.get)
    t.commit(A, 100)
    assert ranges(t.observe([obs("a.log", A, 10), obs("a.log.1", B, 300)], 1.0, heads.get)) == [("a.log", 0, 10, False)]


def test_rotated_names_are_counted_at_start_but_never_start_a_stream_later():
    t = StreamTracker()
    assert len(t.observe([obs("a.log", A, 10), obs("a.log.1", B, 10)], now=0.0)) == 2
    assert t.observe([obs("a.log", A, 10), obs("a.log.1", B, 10), obs("a.log.2.gz", C, 10)], now=1.0) == [
        p for p in t.observe([obs("a.log", A, 10), obs("a.log.1", B, 10)], now=1.0)]
    assert rotated_name("x.log.2.gz") and rotated_name("x.log-20260101") and not rotated_name("x.log")


def test_a_deleted_file_is_dropped_and_the_state_survives_a_restart():
    t = StreamTracker()
    t.observe([obs("a.log", A, 100), obs("b.log", B, 50)], now=0.0)
    t.commit(A, 100)
    t.commit(B, 50)
    t.observe([obs("a.log", A, 100)], now=1.0)
    assert B not in t.streams and "b.log is gone" in t.drain_events()
    again = StreamTracker.from_dict(json.loads(json.dumps(t.to_dict())), partial_after=2.0)
    # rotated while the job was down: the old stream is followed under its new name, the new file from 0
    pending = again.observe([obs("a.log.1", A, 130), obs("a.log", C, 20)], now=5.0)
    assert sorted(ranges(pending)) == [("a.log", 0, 20, False), ("a.log.1", 100, 130, False)]


def test_an_inode_reused_by_a_new_file_is_a_new_stream():
    heads = {"b.log": b"old line" * 8}
    t = StreamTracker()
    t.observe([obs("b.log", B, 170)], now=0.0, head_of=heads.get)
    t.commit(B, 170)
    heads = {"c.log": b"new line" * 8}  # b.log deleted, c.log created on the same inode, and longer
    assert ranges(t.observe([obs("c.log", B, 231)], now=1.0, head_of=heads.get)) == [("c.log", 0, 231, False)]


# --- real processes ---------------------------------------------------------------------------

WRITER = textwrap.dedent(r'''
    import json, os, shutil, sys, time
    folder, phase, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    levels = ["INFO", "WARN", "ERROR", "DEBUG"]
    counts = {}
    handles = {}

    def handle(name):
        if name not in handles:
            handles[name] = open(os.path.join(folder, name), "ab", buffering=0)
        return handles[name]

    def write(name, i, split):
        level = levels[i % 4]
        line = f"[2026-01-01T00:00:{i % 60:02d}] [{level}] request {i} saw [ERROR] and WARN in its message\n".encode()
        if split:  # a line in two writes, the second after a pause
            handle(name).write(line[:17])
            time.sleep(0.03)
            handle(name).write(line[17:])
        else:
            handle(name).write(line)
        counts[level] = counts.get(level, 0) + 1

    def rotate(kind, name):
        path = os.path.join(folder, name)
        if kind == "rename":
            handles.pop(name).close()
            os.rename(path, path + ".1")
        elif kind == "copytruncate":
            shutil.copyfile(path, path + ".1")
            os.truncate(path, 0)

    start = time.monotonic()
    names = ["a.log", "b.log", "c.log"]
    n = int(sys.argv[4])
    for i in range(n):
        write(names[i % 3], i, split=i % 50 == 7)
        if phase == "rotate" and i == n // 3:
            rotate("rename", "a.log")
        if phase == "rotate" and i == n // 2:
            rotate("copytruncate", "b.log")
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(json.dumps({"counts": counts, "lines": n}))
''')


def run_writer(folder: Path, n: int, phase: str = "plain", rate: float = 1000.0) -> dict:
    proc = subprocess.run([sys.executable, "-c", WRITER, str(folder), phase, str(rate), str(n)],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout)


def start_follower(folder: Path, state: Path, *extra):
    cmd = [PYTHON, str(REPO / "base_log_analyser.py"), str(folder), "--follow", "--json", "--state", str(state),
           "--partial-after", "0.5", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=program_env(), cwd=REPO)


def state_lines(state: Path) -> int:
    try:
        return json.loads(state.read_text())["totals"]["lines"]
    except (OSError, ValueError, KeyError):
        return -1


def stop(follower) -> dict:
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def add(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


@pytest.fixture
def folder(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("[2026-01-01T00:00:00] [INFO] before the start\n")
    return logs


def test_following_a_writer_through_partial_writes_and_rotations_is_exact(folder, tmp_path):
    state = tmp_path / "state.json"
    follower = start_follower(folder, state)
    try:
        wait_for(lambda: state_lines(state) == 1, 30, "the first pass")
        written = run_writer(folder, 3000, phase="rotate")
        total = written["lines"] + 1
        wait_for(lambda: state_lines(state) == total or follower.poll() is not None, 30, f"{total} lines counted")
        doc = stop(follower)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert doc["lines"] == total and doc["malformed"] == 0
    assert doc["counts"] == add(written["counts"], {"INFO": 1})  # planted level words never counted
    assert doc["follow"]["done"] is True


def test_a_restart_goes_on_from_the_state_and_counts_what_was_written_meanwhile(folder, tmp_path):
    state = tmp_path / "state.json"
    first = start_follower(folder, state)
    try:
        part1 = run_writer(folder, 600)
        wait_for(lambda: state_lines(state) == 601 or first.poll() is not None, 30, "part 1 counted")
        stop(first)
    finally:
        if first.poll() is None:
            first.kill()
    os.rename(folder / "a.log", folder / "a.log.1")  # rotated while nobody follows
    part2 = run_writer(folder, 900, rate=5000)
    second = start_follower(folder, state)
    try:
        wait_for(lambda: state_lines(state) == 1501 or second.poll() is not None, 30, "part 2 counted")
        doc = stop(second)
    finally:
        if second.poll() is None:
            second.kill()
    assert doc["follow"]["resumed"] is True
    assert doc["lines"] == 1501 and doc["counts"] == add(add(part1["counts"], part2["counts"]), {"INFO": 1})


def test_follow_for_stops_by_itself_and_follow_options_need_follow(folder, tmp_path):
    proc = subprocess.run([PYTHON, str(REPO / "base_log_analyser.py"), str(folder), "--follow", "--follow-for", "0.5",
                           "--json"], capture_output=True, text=True, env=program_env(), timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["lines"] == 1
    proc = subprocess.run([PYTHON, str(REPO / "base_log_analyser.py"), str(folder), "--state", str(tmp_path / "s")],
                          capture_output=True, text=True, env=program_env(), timeout=60)
    assert proc.returncode == 2 and "--follow" in proc.stderr and "Traceback" not in proc.stderr


def test_a_deleted_file_keeps_its_counted_lines_and_a_new_one_is_followed(folder, tmp_path):
    state = tmp_path / "state.json"
    follower = start_follower(folder, state)
    try:
        wait_for(lambda: state_lines(state) == 1, 30, "the first pass")
        (folder / "b.log").write_text("[2026-01-01T00:00:01] [ERROR] one\n" * 5)
        wait_for(lambda: state_lines(state) == 6 or follower.poll() is not None, 30, "b.log counted")
        os.unlink(folder / "b.log")
        (folder / "c.log").write_text("[2026-01-01T00:00:02] [WARN] two\n" * 7)
        wait_for(lambda: state_lines(state) == 13 or follower.poll() is not None, 30, "c.log counted")
        doc = stop(follower)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert doc["counts"] == {"INFO": 1, "ERROR": 5, "WARN": 7} and doc["follow"]["streams"] == 2


def test_compressed_files_are_counted_once_at_start_and_never_later(folder, tmp_path):
    import gzip
    with gzip.open(folder / "old.log.2.gz", "wt") as f:
        f.write("[2026-01-01T00:00:00] [ERROR] archived\n" * 3)
    state = tmp_path / "state.json"
    cmd_extra = ("--format", "seed")
    follower = start_follower(folder, state, *cmd_extra)
    try:
        wait_for(lambda: state_lines(state) == 4 or follower.poll() is not None, 30, "the first pass")
        with gzip.open(folder / "a.log.1.gz", "wt") as f:  # a compressed rotation: lines already counted
            f.write("[2026-01-01T00:00:00] [INFO] before the start\n")
        with open(folder / "a.log", "a") as f:
            f.write("[2026-01-01T00:00:05] [WARN] after\n")
        wait_for(lambda: state_lines(state) == 5 or follower.poll() is not None, 30, "the new line")
        doc = stop(follower)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert doc["counts"] == {"INFO": 1, "ERROR": 3, "WARN": 1}


def test_a_file_gone_between_the_scan_and_the_read_is_not_an_error(folder, tmp_path, monkeypatch):
    """Rotation with deletion races the follower: a read of a vanished file waits for the next scan."""
    from types import SimpleNamespace

    from loganalyser.counting.formats import FormatSet
    from loganalyser.programs import follow as follow_module
    from loganalyser.work.scanning import InputOptions

    args = SimpleNamespace(paths=[str(folder)], glob=None, recursive=False, format="seed", partial_after=0.5,
                           follow_for=None, state=None, quiet=True, json=True, output=None, csv=None, html=None)
    follower = follow_module.Follower(args, InputOptions((str(folder),), format="seed"), FormatSet.standard())
    real = follow_module.analyse_appended
    calls = []

    def vanishing(path, *rest):
        calls.append(path)
        if len(calls) == 1:
            os.unlink(path)  # deleted after the scan saw it
        return real(path, *rest)

    monkeypatch.setattr(follow_module, "analyse_appended", vanishing)
    assert follower._round(True) is False  # nothing counted, no error
    (folder / "b.log").write_text("[2026-01-01T00:00:01] [ERROR] later\n")
    assert follower._round(False) is True and follower.totals.counts == {"ERROR": 1}
