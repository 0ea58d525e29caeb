"""Stop the distributed job any way it can stop, start it again: the counts are exact.

Real `mpirun -np 3` jobs on generated logs whose exact counts the generator
knows (utils/generate_logs.py is the oracle), with `--task-delay` so a job
lasts a few seconds and checkpoints appear while it runs. Jobs are stopped by
real signals sent by pid: SIGINT/SIGTERM to the master (a resumable stop, exit
code 4) or SIGKILL to every process of the job at chosen moments. Every wait
polls a condition with a deadline; every job runs in its own session, under
its test's checkpoint folder (the marker used to find and clean its
processes), and nothing outlives its test.

The last tests kill a checkpoint write itself, in-process and in a subprocess,
and check that what loads afterwards is exactly a checkpoint that was written.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from loganalyser.counting.formats import FormatSet
from loganalyser.counting.reader import analyse_pieces
from loganalyser.persistence import store as checkpoint_module
from loganalyser.persistence.store import STORE, CheckpointStore, encode, stored_name
from loganalyser.programs.jobsetup import planned_tasks
from loganalyser.work.inputs import find_log_files
from loganalyser.work.scanning import fingerprint_of
from loganalyser.work.subranges import bounds_of, root_of, sub_task
from utils import generate_logs
from utils.jobcontrol import Jobs, assert_no_processes, rank_pid, signal_pid, wait_for

from .helpers import PYTHON, REPO, RESULT_FIELDS, assert_exact, program_cmd, program_env

NP = 3  # a master and two workers (oversubscribed on 2 cores)
TASK_DELAY = 0.2  # seconds per task: a run lasts a few seconds, with checkpoints along the way
QUICK_DELAY = 0.05  # for runs nobody interrupts
RUN_TIMEOUT = 60  # seconds for one mpirun, from start to exit
WAIT = 40  # seconds to wait for a state of a running job (checkpoints, the master's pid)
TEST_TIMEOUT = 170  # hard limit for one test, whatever it waits on
PROGRAM = "distributed_log_analyser.py"


# --- hard timeout and process hygiene ----------------------------------------


@pytest.fixture(autouse=True)
def hard_timeout():
    """Fails a test (with a traceback where it hung) that runs past TEST_TIMEOUT."""
    def expire(_signum, _frame):
        raise TimeoutError(f"test ran past its hard limit of {TEST_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- the corpus and its oracle -----------------------------------------------


class Corpus:
    """Log files in `folder` and the generator's exact totals for each of them."""

    def __init__(self, folder: Path, oracle: dict[str, dict]):
        self.folder = folder
        self.oracle = oracle  # file name -> the generator's totals for that file

    def copy(self, dest: Path) -> "Corpus":
        shutil.copytree(self.folder, dest)
        return Corpus(dest, dict(self.oracle))

    def expected(self) -> dict:
        return add_totals(self.oracle.values())


def generate_one(folder: Path, name: str, lines: int, seed: int, **traps) -> dict:
    """Writes folder/name with the generator and returns its exact totals."""
    staging = folder / f".gen-{name}"
    totals = generate_logs.generate(str(staging), files=1, lines=lines, seed=seed, prefix="x", **traps)
    os.replace(staging / "x1.log", folder / name)
    staging.rmdir()
    return totals


def add_totals(parts) -> dict:
    out = {"counts": {}, "lines": 0, "malformed": 0, "blank": 0, "bytes": 0, "files": 0}
    for part in parts:
        for level, n in part["counts"].items():
            out["counts"][level] = out["counts"].get(level, 0) + n
        for key in RESULT_FIELDS:
            out[key] += part[key]
    return out


def small_traps(k: int) -> dict:
    traps = {}
    if k % 3 == 0:
        traps.update(noise=0.1, malformed=0.05)
    if k % 4 == 0:
        traps.update(blank=0.03, crlf=True)
    if k % 5 == 0:
        traps.update(no_final_newline=True)
    return traps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    """20 small logs (some with noise, malformed and blank lines, CRLF, no final newline) and one of ~23 chunks."""
    folder = tmp_path_factory.mktemp("resume-corpus") / "logs"
    folder.mkdir()
    oracle = {}
    for k in range(1, 21):
        oracle[f"node{k:02d}.log"] = generate_one(folder, f"node{k:02d}.log", 300 + (k * 137) % 900, 1000 + k, **small_traps(k))
    oracle["huge.log"] = generate_one(folder, "huge.log", 100_000, 7, noise=0.02, malformed=0.01)
    assert oracle["huge.log"]["bytes"] > 20 * (256 << 10)
    (folder / "notes.txt").write_bytes(b"[t] [INFO] not a log: never counted\n")
    return Corpus(folder, oracle)


# --- running the program ------------------------------------------------------


def analyser_cmd(inputs, ck, *extra, delay: float = TASK_DELAY) -> list[str]:
    return program_cmd(PROGRAM, inputs, "--checkpoint-dir", ck, "--checkpoint-every", 2, "--checkpoint-interval", 0.25,
                       "--chunk-size", "256K", "--task-delay", delay, "--json", "--no-progress", *extra, np=NP)


def start(jobs: Jobs, tmp_path: Path, inputs, *extra, delay: float = TASK_DELAY):
    ck = tmp_path / "ck"
    return jobs.start(analyser_cmd(inputs, ck, *extra, delay=delay), str(ck), env=program_env(), cwd=tmp_path)


def finish(job, marker: str) -> dict:
    """Waits for a run that must succeed; returns its JSON document."""
    code = job.wait(RUN_TIMEOUT)
    assert code == 0, f"exit {code}; stderr:\n{job.stderr[-3000:]}"
    assert "Traceback" not in job.stderr
    assert_no_processes(marker)
    return json.loads(job.stdout)


def run_to_end(jobs: Jobs, tmp_path: Path, inputs, *extra, delay: float = QUICK_DELAY):
    job = start(jobs, tmp_path, inputs, *extra, delay=delay)
    return finish(job, str(tmp_path / "ck")), job


def newest(ck: Path) -> int:
    """The newest checkpoint's sequence number (numbers only grow: it counts the checkpoints written)."""
    try:
        return max((int(n) for n in os.listdir(ck) if n.isdigit()), default=0)
    except FileNotFoundError:
        return 0


def wait_checkpoints(job, ck: Path, at_least: int) -> None:
    """Waits until checkpoint number `at_least` exists; fails if the job ends first."""
    wait_for(lambda: newest(ck) >= at_least or not job.running(), WAIT, f"checkpoint {at_least} in {ck}")
    assert job.running() and newest(ck) >= at_least, (
        f"the job ended (exit {job.popen.poll()}) before checkpoint {at_least}; stderr:\n{job.stderr[-2000:]}")


def kill_job(job, marker: str) -> None:
    """SIGKILL to mpirun's process group and to every rank (each has a group of its own)."""
    job.kill()
    assert job.popen.poll() is not None
    assert_no_processes(marker)


class Collect:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)


def assert_checkpoint_is_true(ck: Path, inputs: str, cwd: Path):
    """The checkpoint that would be resumed from loads without warnings and holds true results only.

    Every task result in it equals a fresh count of that task's pieces, and its
    totals are the sum of its task results: a killed job never leaves a
    checkpoint with wrong content behind.
    """
    warnings = Collect()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        got = CheckpointStore(str(ck), warn=warnings).load_latest(fingerprint_of([inputs]))
        files = find_log_files([inputs])
        assert got is not None and warnings.lines == [], warnings.lines
        _, planned = planned_tasks(files, FormatSet.standard(), "auto", got.doc["plan"])  # as the job planned
        tasks = {t.task_id: t for t in planned}
        total = {"counts": {}, "lines": 0, "malformed": 0, "blank": 0, "bytes": 0, "files": 0}
        for task_id, saved in got.doc["tasks"].items():
            assert root_of(task_id) in tasks, f"unknown task {task_id} in {got.folder}"
            part = bounds_of(task_id)  # a part of a split task, or all of it
            task = sub_task(tasks[root_of(task_id)], *part) if part else tasks[task_id]
            assert analyse_pieces(task.pieces).to_dict() == saved, task_id
            total = add_totals([total, saved])
        if got.doc.get("consistency", "eventual") == "eventual":  # (strong: only fully counted files' results)
            assert {k: v for k, v in got.doc["counts"].items() if v} == {k: v for k, v in total["counts"].items() if v}
            for key in RESULT_FIELDS:
                assert got.doc[key] == total[key], key
    finally:
        os.chdir(here)
    return got


# --- a resumable stop: SIGINT or SIGTERM to the master ------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_master_stops_resumably_and_rerun_is_exact(sig, corpus, tmp_path, jobs):
    ck, marker, inputs = tmp_path / "ck", str(tmp_path / "ck"), str(corpus.folder)
    job = start(jobs, tmp_path, inputs)
    wait_checkpoints(job, ck, 2)
    master = wait_for(lambda: rank_pid(0, marker), WAIT, "the master's pid (rank 0)")
    assert signal_pid(master, sig)

    code = job.wait(RUN_TIMEOUT)
    assert code == 4, f"exit {code}; stderr:\n{job.stderr}"
    assert_no_processes(marker)
    assert "Traceback" not in job.stderr and job.stdout == ""
    hints = [line for line in job.stderr.splitlines() if re.search(r"\bresume", line, re.I)]
    assert len(hints) == 1, job.stderr
    last = ck / f"{newest(ck):06d}"
    assert str(last) in hints[0], f"the hint should name the checkpoint to resume from ({last}): {hints[0]}"
    stopped = assert_checkpoint_is_true(ck, inputs, tmp_path)
    assert stopped.folder == str(last)

    doc, rerun = run_to_end(jobs, tmp_path, inputs)
    assert doc["resumed_from"] == str(last)
    assert doc["restored_files"] > 0 and doc["restored_tasks"] > 0
    assert doc["restored_tasks"] == len(stopped.doc["tasks"])
    assert doc["restored_files"] == len(stopped.doc["processed_files"])
    assert_exact(doc, corpus.expected())
    assert doc["lines"] == corpus.expected()["lines"]
    assert newest(ck) > stopped.sequence  # the rerun wrote its own checkpoints after the one it resumed from


def test_sigterm_to_a_worker_stops_the_job_resumably(corpus, tmp_path, jobs):
    """A rank that is not the master passes the signal on: the master checkpoints and stops
    the job (exit 4, no result), as if it had been signalled itself; a rerun is exact."""
    ck, marker, inputs = tmp_path / "ck", str(tmp_path / "ck"), str(corpus.folder)
    job = start(jobs, tmp_path, inputs)
    wait_checkpoints(job, ck, 1)
    worker = wait_for(lambda: rank_pid(1, marker), WAIT, "rank 1's pid")
    assert signal_pid(worker, signal.SIGTERM)
    code = job.wait(RUN_TIMEOUT)
    assert code == 4, f"exit {code}; stderr:\n{job.stderr}"
    assert job.stdout == "" and "Traceback" not in job.stderr
    assert_no_processes(marker)
    doc, _ = run_to_end(jobs, tmp_path, inputs)
    assert doc["restored_tasks"] > 0
    assert_exact(doc, corpus.expected())


def test_ctrl_c_on_mpirun_then_rerun_is_exact(corpus, tmp_path, jobs):
    """Ctrl+C reaches mpirun only (the ranks have process groups of their own); mpirun ends the ranks itself."""
    ck, marker, inputs = tmp_path / "ck", str(tmp_path / "ck"), str(corpus.folder)
    job = start(jobs, tmp_path, inputs)
    wait_checkpoints(job, ck, 2)
    assert signal_pid(job.pid, signal.SIGINT)
    code = job.wait(RUN_TIMEOUT)
    assert code != 0 and "Traceback" not in job.stderr, f"exit {code}; stderr:\n{job.stderr}"
    assert_no_processes(marker)
    stopped = assert_checkpoint_is_true(ck, inputs, tmp_path)

    doc, _ = run_to_end(jobs, tmp_path, inputs)
    assert doc["resumed_from"] == stopped.folder and doc["restored_tasks"] == len(stopped.doc["tasks"])
    assert_exact(doc, corpus.expected())


# --- SIGKILL of the whole job at different moments, reruns chained ----------

_rng = random.Random(20261121)
KILL_SCHEDULES = {
    # one entry per run that gets killed: ("checkpoints", k) = right after this run's k-th checkpoint appears,
    # ("delay", s) = s seconds after this run's first checkpoint appears
    "after-1": [("checkpoints", 1)],
    "after-2": [("checkpoints", 2)],
    "after-3": [("checkpoints", 3)],
    "after-1-then-after-2": [("checkpoints", 1), ("checkpoints", 2)],
    "seeded-random": [("delay", round(_rng.uniform(0.0, 0.6), 3)) for _ in range(3)],
}


@pytest.mark.parametrize("schedule", list(KILL_SCHEDULES.values()), ids=list(KILL_SCHEDULES))
def test_sigkill_at_any_moment_then_rerun_is_exact(schedule, corpus, tmp_path, jobs):
    ck, marker, inputs = tmp_path / "ck", str(tmp_path / "ck"), str(corpus.folder)
    killed, completed = [], False
    for what, amount in schedule:
        base = newest(ck)
        job = start(jobs, tmp_path, inputs)
        target = base + (amount if what == "checkpoints" else 1)
        wait_for(lambda: newest(ck) >= target or not job.running(), WAIT, f"checkpoint {target} in {ck}")
        if what == "delay":
            deadline = time.monotonic() + amount
            while job.running() and time.monotonic() < deadline:  # the chosen moment, not a hoped-for state
                time.sleep(0.005)
        if not job.running():  # a resumed run with little left may end before its moment: then it must be right
            assert killed, f"the first (fresh) run ended before its moment; stderr:\n{job.stderr[-2000:]}"
            assert_exact(finish(job, marker), corpus.expected())
            completed = True
            break
        kill_job(job, marker)
        killed.append(newest(ck))
        assert_checkpoint_is_true(ck, inputs, tmp_path)

    doc, _ = run_to_end(jobs, tmp_path, inputs)
    if not completed:  # (after a completed run a rerun starts afresh)
        assert doc["resumed_from"].startswith(str(ck)) and doc["restored_tasks"] > 0
    assert_exact(doc, corpus.expected())


# --- damaged checkpoints -------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garbage(path: Path) -> None:
    path.write_bytes(bytes((i * 131 + 7) % 256 for i in range(path.stat().st_size)))


@pytest.mark.parametrize("damage", [_truncate, _garbage], ids=["truncated", "garbage"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(damage, corpus, tmp_path, jobs):
    ck, marker, inputs = tmp_path / "ck", str(tmp_path / "ck"), str(corpus.folder)
    job = start(jobs, tmp_path, inputs)
    wait_checkpoints(job, ck, 3)
    kill_job(job, marker)
    bad = newest(ck)
    previous = CheckpointStore(str(ck))._read(bad - 1)
    assert previous is not None
    damage(ck / f"{bad:06d}" / "checkpoint.json")

    doc, rerun = run_to_end(jobs, tmp_path, inputs)
    warnings = [line for line in rerun.stderr.splitlines() if f"{bad:06d}" in line]
    # (printed twice today: see test_checkpoint_store.py::test_a_corrupt_checkpoint_is_reported_once_per_run)
    assert len(set(warnings)) == 1 and "warning" in warnings[0].lower(), rerun.stderr
    assert doc["resumed_from"] == previous.folder
    assert doc["restored_tasks"] == len(previous.doc["tasks"])
    assert_exact(doc, corpus.expected())


# --- inputs that change between runs ------------------------------------------


def _processed_small_file(ck: Path, inputs: Path) -> str:
    """A small file the checkpoint a rerun would resume from holds as fully counted."""
    got = CheckpointStore(str(ck)).load_latest(fingerprint_of([os.path.realpath(inputs)]))
    assert got is not None, f"no checkpoint of {inputs} in {ck}"
    small = [p for p in got.doc["processed_files"] if os.path.basename(p).startswith("node")]
    assert small, f"no small file processed yet in {got.doc['processed_files']}"
    return os.path.basename(small[0])


def test_changed_files_are_counted_with_their_new_content(corpus, tmp_path, jobs):
    mine = corpus.copy(tmp_path / "logs")
    ck, marker = tmp_path / "ck", str(tmp_path / "ck")
    job = start(jobs, tmp_path, "logs")
    wait_checkpoints(job, ck, 2)
    kill_job(job, marker)

    # A small file the checkpoint counted already is rewritten in place: new content, new size, same inode.
    name = _processed_small_file(ck, mine.folder)
    path = mine.folder / name
    old_size, inode = path.stat().st_size, path.stat().st_ino
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    mine.oracle[name] = generate_one(fresh, name, 1777, 4242, malformed=0.1, blank=0.05)
    path.write_bytes((fresh / name).read_bytes())
    assert path.stat().st_size != old_size and path.stat().st_ino == inode
    # The large, chunked file (some chunks counted already) is replaced by a smaller one.
    mine.oracle["huge.log"] = generate_one(fresh, "huge.log", 61_000, 99, noise=0.05)
    os.replace(fresh / "huge.log", mine.folder / "huge.log")

    doc, rerun = run_to_end(jobs, tmp_path, "logs")
    assert "resumed_from" in doc
    for changed in (name, "huge.log"):
        lines = [line for line in rerun.stderr.splitlines() if changed in line]
        assert len(lines) == 1 and "changed" in lines[0], rerun.stderr
    assert_exact(doc, mine.expected())


def test_added_file_is_counted_and_removed_file_is_reported(corpus, tmp_path, jobs):
    mine = corpus.copy(tmp_path / "logs")
    ck, marker = tmp_path / "ck", str(tmp_path / "ck")
    job = start(jobs, tmp_path, "logs")
    wait_checkpoints(job, ck, 2)
    kill_job(job, marker)

    gone = _processed_small_file(ck, mine.folder)
    (mine.folder / gone).unlink()
    del mine.oracle[gone]
    mine.oracle["node21.log"] = generate_one(mine.folder, "node21.log", 999, 2121, noise=0.2)
    mine.oracle["zz-late.log"] = generate_one(mine.folder, "zz-late.log", 50, 77, blank=0.5)

    doc, rerun = run_to_end(jobs, tmp_path, "logs")
    assert "resumed_from" in doc
    reported = [line for line in rerun.stderr.splitlines() if gone in line]
    assert len(reported) == 1 and "warning" in reported[0].lower(), rerun.stderr
    assert not [line for line in rerun.stderr.splitlines() if "node21.log" in line or "zz-late.log" in line]
    assert doc["files"] == 22
    assert_exact(doc, mine.expected())


# --- switches ----------------------------------------------------------------------


def test_no_resume_starts_afresh_and_no_checkpoint_leaves_checkpoints_alone(corpus, tmp_path, jobs):
    ck, marker, inputs = tmp_path / "ck", str(tmp_path / "ck"), str(corpus.folder)
    job = start(jobs, tmp_path, inputs)
    wait_checkpoints(job, ck, 2)
    kill_job(job, marker)  # an unfinished job: a plain rerun would resume it
    stopped = newest(ck)

    def snapshot():
        return sorted((p, p.stat().st_mtime_ns) for p in ck.rglob("*") if not p.is_symlink())

    before = snapshot()
    untouched, _ = run_to_end(jobs, tmp_path, inputs, "--no-checkpoint")
    assert "resumed_from" not in untouched and untouched["checkpoints_saved"] == 0
    assert snapshot() == before
    assert_exact(untouched, corpus.expected())

    fresh, _ = run_to_end(jobs, tmp_path, inputs, "--no-resume")
    assert "resumed_from" not in fresh and "restored_files" not in fresh
    assert fresh["checkpoints_saved"] >= 1 and newest(ck) == stopped + fresh["checkpoints_saved"]
    assert_exact(fresh, corpus.expected())
    # Each input is in the store once, as a hard link, however many runs stored it.
    inputs_by_inode = {p.stat().st_ino for p in corpus.folder.glob("*.log")}
    assert sorted(p.stat().st_ino for p in (ck / STORE).iterdir()) == sorted(inputs_by_inode)

    again, _ = run_to_end(jobs, tmp_path, inputs)  # the last run completed: a rerun starts afresh
    assert "resumed_from" not in again
    assert_exact(again, corpus.expected())


def test_no_checkpoint_writes_nothing(corpus, tmp_path, jobs):
    doc, _ = run_to_end(jobs, tmp_path, str(corpus.folder), "--no-checkpoint")
    assert doc["checkpoints_saved"] == 0 and "resumed_from" not in doc
    assert_exact(doc, corpus.expected())
    assert sorted(os.listdir(tmp_path)) == []  # not even the checkpoint folder


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_unusable_checkpoint_folder_is_an_input_error(where, corpus, tmp_path, jobs):
    blocker = tmp_path / "ck"
    blocker.write_bytes(b"a regular file\n")
    target = blocker if where == "a-file" else blocker / "sub"
    cmd = program_cmd(PROGRAM, corpus.folder, "--checkpoint-dir", target, "--json", "--no-progress", np=NP)
    job = jobs.start(cmd, str(blocker), env=program_env(), cwd=tmp_path)
    code = job.wait(RUN_TIMEOUT)
    assert code == 3, f"exit {code}; stderr:\n{job.stderr}"
    lines = job.stderr.splitlines()
    assert len(lines) == 1 and str(target) in lines[0], job.stderr
    assert "Traceback" not in job.stderr and job.stdout == ""
    assert blocker.read_bytes() == b"a regular file\n"
    assert_no_processes(str(blocker))


# --- a kill during a checkpoint write -----------------------------------------

DOC_SOURCE = '''
def make_doc(i, fingerprint="feedfacefeedface", tasks=1500):
    """Checkpoint document number i: with many tasks, large enough that writing it takes a while."""
    return {
        "schema": 1, "fingerprint": fingerprint, "epoch": 1, "i": i,
        "plan": {"chunk_bytes": 262144, "batch_bytes": 262144, "batch_files": 512},
        "counts": {"INFO": 1000 * i + 1, "ERROR": 7 * i},
        "lines": 1007 * i + 1, "malformed": i % 5, "blank": i % 3, "bytes": 99 * i, "files": i,
        "processed_files": ["logs/f%d.log" % k for k in range(i % 20)],
        "pending_files": ["logs/f%d.log" % k for k in range(i % 20, 20)],
        "failed_workers": [],
        "tasks": {"%016x" % (i * 100003 + k): {"counts": {"INFO": k + i}, "lines": k + i, "malformed": 0,
                  "blank": 0, "bytes": k, "files": 1} for k in range(tasks + i % 7)},
    }
'''
_namespace: dict = {}
exec(DOC_SOURCE, _namespace)  # the same documents in the writer subprocess and here
make_doc = _namespace["make_doc"]
FP = "feedfacefeedface"


class Died(BaseException):
    """The simulated death of the writing process (nothing in the program catches it)."""


class Killer:
    """Counts the file-system steps of a save and dies at step `at` (a write dies half-way through)."""

    FUNCTIONS = [(os, "makedirs"), (os, "open"), (os, "fsync"), (os, "symlink"), (os, "rename"), (os, "replace"),
                 (os, "link"), (os, "unlink"), (shutil, "copyfile"), (shutil, "rmtree")]

    def __init__(self, monkeypatch):
        self.at = None
        self.steps = 0
        for module, name in self.FUNCTIONS:
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))
        real_open = open

        def dying_open(path, mode="r", *args, **kwargs):
            f = real_open(path, mode, *args, **kwargs)
            return _DyingFile(f, self) if "w" in mode else f

        monkeypatch.setattr(checkpoint_module, "open", dying_open, raising=False)

    def arm(self, at: int) -> None:
        self.at, self.steps = at, 0

    def disarm(self) -> None:
        self.at = None

    def step(self) -> bool:
        if self.at is None:
            return False
        self.steps += 1
        return self.steps == self.at

    def _wrap(self, function):
        def wrapper(*args, **kwargs):
            if self.step():
                raise Died(function.__name__)
            return function(*args, **kwargs)
        return wrapper


class _DyingFile:
    def __init__(self, f, killer: Killer):
        self.f, self.killer = f, killer

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        if self.killer.step():
            self.f.write(data[: len(data) // 2])  # torn: half of the document reached the file
            self.f.flush()
            raise Died("write")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


def _stored_files_are_right(root: str, got, files, mode: str) -> None:
    """The store holds every file the checkpoint counts as processed, with its content."""
    assert got.doc["identities"] == {f.path: f.identity for f in files}
    for f in files[: got.sequence]:
        stored = Path(root, STORE, stored_name(f.path, f.identity))
        if mode == "none":
            assert not stored.exists()
        else:
            assert stored.read_bytes() == Path(f.path).read_bytes()


@pytest.mark.parametrize("mode", ["link", "copy", "none"])
def test_killed_checkpoint_write_in_process_never_loads_wrong_content(mode, tmp_path, monkeypatch):
    """Dies at every step of a save in turn: what loads is the previous checkpoint or the new one, exactly."""
    logs = []
    for k in range(3):
        path = tmp_path / f"in{k}.log"
        path.write_bytes(b"[t] [INFO] line\n" * (k + 1))
        logs.append(path)
    files = find_log_files([str(p) for p in logs])
    killer = Killer(monkeypatch)
    at, outcomes = 0, []
    while True:
        at += 1
        root = str(tmp_path / f"ck-{at}")
        store = CheckpointStore(root, keep=2, file_mode=mode)
        identities = {f.path: f.identity for f in files}
        store.save(make_doc(1, tasks=40), files[:1], identities)
        store.save(make_doc(2, tasks=40), files[:2], identities)
        before = CheckpointStore(root).load_latest(FP)
        killer.arm(at)
        try:
            store.save(make_doc(3, tasks=40), files, identities)
            completed = True
        except Died as death:
            completed = False
            outcomes.append(str(death))
        finally:
            killer.disarm()
        warnings = Collect()
        got = CheckpointStore(root, warn=warnings).load_latest(FP)
        assert warnings.lines == [], (at, outcomes[-1:], warnings.lines)
        assert got is not None and got.sequence in (2, 3), (at, outcomes[-1:])
        if got.sequence == 2:
            assert got.doc == before.doc and got.folder == before.folder
        else:
            assert {k: got.doc[k] for k in make_doc(3, tasks=40)} == make_doc(3, tasks=40)
            written = {k: v for k, v in got.doc.items() if k != "identities"}  # (a load adds them from the job file)
            assert Path(got.folder, "checkpoint.json").read_bytes() == encode(written)
        _stored_files_are_right(root, got, files, mode)
        if completed:
            break
        assert at < 200
    assert "write" in outcomes and "rename" in outcomes and len(outcomes) >= 6, outcomes


WRITER = '''
import os, sys
sys.path.insert(0, sys.argv[4])
from loganalyser.persistence.store import CheckpointStore
from loganalyser.work.inputs import find_log_files
{doc_source}
root, first, logs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = find_log_files([logs])
identities = {{f.path: f.identity for f in files}}
store = CheckpointStore(root, keep=3, file_mode="copy")
print("ready", flush=True)
i = first
while True:
    store.save(make_doc(i), files[: i % len(files) + 1], identities)
    print(i, flush=True)
    i += 1
'''


def test_sigkill_during_checkpoint_writes_never_loads_wrong_content(tmp_path):
    """A writer process saving in a loop is SIGKILLed at seeded random moments, 20 times in a row."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(12):
        (logs / f"f{k:02d}.log").write_bytes(b"[t] [WARN] w\n" * (50 * k + 1))
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(doc_source=DOC_SOURCE))
    root = tmp_path / "ck"
    rng = random.Random(4711)
    last_i, saved_total = 0, 0
    for round_ in range(20):
        writer = subprocess.Popen([PYTHON, str(script), str(root), str(last_i + 1), str(logs), str(REPO)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
            time.sleep(rng.uniform(0.0, 0.12))  # the chosen moment of death
            os.killpg(writer.pid, signal.SIGKILL)
            writer.wait(timeout=20)
        finally:
            if writer.poll() is None:
                os.killpg(writer.pid, signal.SIGKILL)
                writer.wait(timeout=20)
        printed = [int(x) for x in writer.stdout.read().split() if x.isdigit()]
        assert writer.returncode == -signal.SIGKILL, writer.stderr.read()
        warnings = Collect()
        got = CheckpointStore(str(root), warn=warnings).load_latest(FP)
        assert warnings.lines == [], (round_, warnings.lines)
        if got is None:
            assert last_i == 0 and not printed
            continue
        i = got.doc["i"]
        assert {k: got.doc[k] for k in make_doc(i)} == make_doc(i), f"round {round_}: checkpoint {got.folder} is not document {i}"
        assert i >= max(printed, default=last_i) and i >= last_i  # nothing completed is lost, nothing goes back
        files = find_log_files([str(logs)])
        assert got.doc["identities"] == {f.path: f.identity for f in files}
        for f in files[: i % len(files) + 1]:
            assert Path(got.folder, STORE, stored_name(f.path, f.identity)).read_bytes() == Path(f.path).read_bytes()
        saved_total += i - last_i
        last_i = i
    assert saved_total >= 10, "the writer hardly ever completed a save: the kills tested little"
