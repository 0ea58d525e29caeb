"""`--follow` on the distributed analyser, with real processes: a writer appends while the job follows.

The writer (tests/test_follow.py's WRITER) appends lines at a known rate to
three files, plants level words in messages, splits some lines across two
writes, and rotates (rename and create; copytruncate). Its own tally is the
oracle. The job is watched through its --status file (the live totals of
whichever rank is master); ranks are found by a /proc scan and signalled for
real. Every wait polls a condition against a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loganalyser.cluster.follow_duty import FollowSettings, FollowStart, first_pass, format_of, range_id, restore_tracker
from loganalyser.counting.formats import FormatSet
from loganalyser.errors import InputError
from loganalyser.counting.result import PartialResult
from loganalyser.work.inputs import find_log_files
from loganalyser.work.jobstate import JobState
from utils.jobcontrol import Jobs, rank_pid, wait_for

from .helpers import program_cmd, program_env
from .test_follow import WRITER, add

PROG = "distributed_log_analyser.py"
START_TIMEOUT = 60  # MPI start-up and the first pass on a loaded machine
COUNT_TIMEOUT = 60  # for the job to count what the writer wrote
TAKEOVER_TIMEOUT = 30
JOB_TIMEOUT = 90  # after the stop signal
FIRST_LINE = "[2026-01-01T00:00:00] [INFO] before the start\n"


@pytest.fixture
def jobs():
    jobs = Jobs()
    yield jobs
    jobs.cleanup()


@pytest.fixture
def folder(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(FIRST_LINE)
    return logs


class FollowJob:
    """A background `mpirun -np N distributed_log_analyser.py DIR --follow`; its output path marks its ranks."""

    def __init__(self, jobs: Jobs, tmp_path: Path, folder: Path, np: int, name: str = "follow"):
        self.output = tmp_path / f"{name}-result.json"
        self.status = tmp_path / f"{name}-status.json"
        self.marker = str(self.output)
        cmd = program_cmd(PROG, folder, "--follow", "--partial-after", "0.5", "--format", "seed",
                          "--checkpoint-dir", tmp_path / "checkpoints", "--checkpoint-interval", "1",
                          "--worker-timeout", "5", "--status", self.status, "--no-progress", "--output", self.output,
                          np=np)
        self.job = jobs.start(cmd, marker=self.marker, env=program_env(), cwd=tmp_path)

    def lines(self) -> int:
        try:
            return json.loads(self.status.read_text())["lines"]
        except (OSError, ValueError, KeyError):
            return -1

    def wait_lines(self, n: int, timeout: float = COUNT_TIMEOUT) -> None:
        try:
            wait_for(lambda: self.lines() == n or not self.job.running(), timeout, f"{n} lines counted")
        except AssertionError as exc:
            raise AssertionError(f"{exc} (at {self.lines()})\n{self.story()}") from None
        assert self.job.running(), f"the job ended early:\n{self.story()}"

    def story(self) -> str:
        """The job's output without the per-task chatter (for failure messages)."""
        out = "\n".join(line for line in self.job.stdout.splitlines() if "Processing" not in line and "ssigning" not in line)
        return f"{out[-3000:]}\n{self.job.stderr[-2000:]}"

    def pid_of(self, rank: int) -> int:
        return wait_for(lambda: rank_pid(rank, self.marker), START_TIMEOUT, f"rank {rank}'s process")

    def stop(self, rank: int = 0, sig: int = signal.SIGINT) -> dict:
        """Signals the master's rank; the job must end by itself with exit 0 and its final totals."""
        os.kill(self.pid_of(rank), sig)
        code = self.job.wait(JOB_TIMEOUT)
        assert code == 0, f"exit {code}\n{self.job.stdout[-3000:]}\n{self.job.stderr[-3000:]}"
        assert "Traceback" not in self.job.stderr
        assert self.job.stdout.count("ANALYSIS RESULTS") == 1
        return json.loads(self.output.read_text())


def start_writer(folder: Path, n: int, phase: str = "plain", rate: float = 1000.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), phase, str(rate), str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def written(writer: subprocess.Popen) -> dict:
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    return json.loads(out)


def assert_exact(doc: dict, counts: dict, lines: int) -> None:
    assert doc["lines"] == lines and doc["malformed"] == 0, (doc["lines"], lines)
    assert doc["counts"] == counts  # planted level words never counted, split lines counted once


def test_following_a_writer_through_split_writes_and_rotations_is_exact(jobs, tmp_path, folder):
    run = FollowJob(jobs, tmp_path, folder, np=3)
    run.wait_lines(1, START_TIMEOUT)
    tally = written(start_writer(folder, 3000, phase="rotate"))
    run.wait_lines(3001)
    doc = run.stop()
    assert_exact(doc, add(tally["counts"], {"INFO": 1}), 3001)


def test_a_worker_killed_while_following_loses_and_doubles_nothing(jobs, tmp_path, folder):
    run = FollowJob(jobs, tmp_path, folder, np=4)
    run.wait_lines(1, START_TIMEOUT)
    writer = start_writer(folder, 3000)
    wait_for(lambda: run.lines() > 600, COUNT_TIMEOUT, "the job to count while the writer writes")
    os.kill(run.pid_of(2), signal.SIGKILL)
    tally = written(writer)
    run.wait_lines(3001)
    doc = run.stop()
    assert_exact(doc, add(tally["counts"], {"INFO": 1}), 3001)
    assert 2 in doc["failed_workers"]


def test_the_master_killed_while_following_is_replaced_and_counts_stay_exact(jobs, tmp_path, folder):
    run = FollowJob(jobs, tmp_path, folder, np=4)
    run.wait_lines(1, START_TIMEOUT)
    writer = start_writer(folder, 3000, phase="rotate")
    wait_for(lambda: run.lines() > 600, COUNT_TIMEOUT, "the job to count while the writer writes")
    os.kill(run.pid_of(0), signal.SIGKILL)
    wait_for(lambda: "[Rank 1] Became master" in run.job.stdout or not run.job.running(), TAKEOVER_TIMEOUT,
             "rank 1 to take over")
    tally = written(writer)
    run.wait_lines(3001)
    doc = run.stop(rank=1, sig=signal.SIGTERM)  # SIGINT is for rank 0 (and mpirun's terminal) only
    assert_exact(doc, add(tally["counts"], {"INFO": 1}), 3001)
    assert doc["master_rank"] == 1


def test_sigterm_at_every_rank_as_mpirun_forwards_it_ends_the_job_with_exact_totals(jobs, tmp_path, folder):
    run = FollowJob(jobs, tmp_path, folder, np=3)
    run.wait_lines(1, START_TIMEOUT)
    tally = written(start_writer(folder, 600, phase="rotate"))
    run.wait_lines(601)
    pids = [run.pid_of(rank) for rank in range(3)]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)  # the workers pass it on to the master and leave
    code = run.job.wait(JOB_TIMEOUT)
    assert code == 0, run.story()
    assert_exact(json.loads(run.output.read_text()), add(tally["counts"], {"INFO": 1}), 601)


def test_a_restart_goes_on_from_the_checkpoint_and_counts_what_was_written_meanwhile(jobs, tmp_path, folder):
    first = FollowJob(jobs, tmp_path, folder, np=3, name="first")
    first.wait_lines(1, START_TIMEOUT)
    part1 = written(start_writer(folder, 600))
    first.wait_lines(601)
    first.stop()
    os.rename(folder / "a.log", folder / "a.log.1")  # rotated while the job was down
    part2 = written(start_writer(folder, 900, rate=5000))
    second = FollowJob(jobs, tmp_path, folder, np=3, name="second")
    second.wait_lines(1501, START_TIMEOUT)
    doc = second.stop()
    assert "Resuming the follow job" in second.job.stdout
    assert_exact(doc, add(add(part1["counts"], part2["counts"]), {"INFO": 1}), 1501)


def test_a_job_sigkilled_mid_stream_restarts_from_its_checkpoint_exactly(jobs, tmp_path, folder):
    first = FollowJob(jobs, tmp_path, folder, np=3, name="killed")
    first.wait_lines(1, START_TIMEOUT)
    writer = start_writer(folder, 3000, phase="rotate")
    checkpoints = tmp_path / "checkpoints"
    wait_for(lambda: first.lines() > 900 and any(checkpoints.glob("0*/checkpoint.json")), COUNT_TIMEOUT,
             "a checkpoint while the writer writes")
    first.job.kill()  # every rank and mpirun at once: no last checkpoint
    tally = written(writer)
    second = FollowJob(jobs, tmp_path, folder, np=3, name="restarted")
    second.wait_lines(3001, START_TIMEOUT)
    doc = second.stop()
    assert "Resuming the follow job" in second.job.stdout
    assert_exact(doc, add(tally["counts"], {"INFO": 1}), 3001)


def test_follow_for_stops_by_itself_and_bad_follow_options_are_usage_errors(jobs, tmp_path, folder):
    run = jobs.start(program_cmd(PROG, folder, "--follow", "--follow-for", "1", "--no-checkpoint", "--json", np=2),
                     marker=str(folder), env=program_env(), cwd=tmp_path)
    assert run.wait(JOB_TIMEOUT) == 0, run.stderr
    assert json.loads(run.stdout)["counts"] == {"INFO": 1}
    for args in (["--follow-for", "1"], ["--follow", "--chaos", "1"], ["--follow", "--ship", "always"],
                 ["--follow", "--checkpoint-dir", str(tmp_path / "ckpt-{host}")]):
        proc = subprocess.run(program_cmd(PROG, folder, *args), capture_output=True, text=True, env=program_env(),
                              timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--follow" in proc.stderr


# --- the follow duty's pure parts --------------------------------------------------------------

def test_a_new_master_rebuilds_the_offsets_from_the_accepted_ids(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(FIRST_LINE * 10 + "[2026-01-01T00:00:01] [WARN] no newline yet")
    settings = FollowSettings((str(logs),), None, False, "seed", 2.0, None)
    files = find_log_files([str(logs)])
    tasks, start = first_pass(settings, files, FormatSet.standard(), chunk_bytes=100, now=0.0)
    whole = len(FIRST_LINE) * 10
    piece_ends = [t.pieces[0].offset + t.pieces[0].length for t in tasks]
    assert piece_ends[-1] == whole and len(tasks) == -(-whole // 100)  # whole lines only, in chunks
    identity = (files[0].device, files[0].inode)
    stream = start.snapshot["tracker"]["streams"][0]
    state = JobState({tasks[0].task_id: PartialResult(), tasks[2].task_id: PartialResult(),
                      range_id(identity, stream["serial"], 0, whole, whole + 50, "seed"): PartialResult()})
    tracker, formats, bases, gaps = restore_tracker(FollowStart(settings, start.snapshot), state)
    assert tracker.streams[identity].offset == whole + 50 and formats[identity] == "seed"
    assert [(a, b) for _, _, a, b in gaps] == [(100, 200), (300, whole)]  # what no accepted range covers


def test_a_restart_plans_what_no_checkpointed_range_covers_and_uncounted_compressed_files(tmp_path):
    import gzip

    from loganalyser.programs.follow_job import resumed_plan

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(FIRST_LINE * 10)
    with gzip.open(logs / "old.log.1.gz", "wt") as f:
        f.write(FIRST_LINE)
    settings = FollowSettings((str(logs),), None, False, "seed", 2.0, None)
    tasks, start = first_pass(settings, find_log_files([str(logs)]), FormatSet.standard(), chunk_bytes=200, now=0.0)
    ranges = [t for t in tasks if t.task_id.startswith("follow:")]
    compressed = [t for t in tasks if not t.task_id.startswith("follow:")]
    assert len(ranges) == 3 and len(compressed) == 1
    os.rename(logs / "old.log.1.gz", logs / "old.log.2.gz")  # rotated further while the job was down
    state = JobState({ranges[1].task_id: PartialResult()})
    again, _ = resumed_plan(FollowStart(settings, start.snapshot), state)
    spans = sorted((t.pieces[0].path.endswith(".gz"), t.pieces[0].offset, t.pieces[0].length) for t in again)
    assert spans == [(False, 0, 200), (False, 400, 60), (True, 0, compressed[0].pieces[0].length)]
    assert [t.task_id for t in again if t.pieces[0].path.endswith(".gz")] == [compressed[0].task_id]


def test_a_range_whose_file_was_truncated_while_it_was_counted_is_not_admitted(tmp_path):
    from loganalyser.cluster.follow_duty import FollowDuty

    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "a.log"
    log.write_text(FIRST_LINE * 4)
    settings = FollowSettings((str(logs),), None, False, "seed", 2.0, None)
    first, start = first_pass(settings, find_log_files([str(logs)]), FormatSet.standard(), chunk_bytes=1 << 20, now=0.0)
    duty = FollowDuty(start, FormatSet.standard(), JobState(), say=lambda text: None)
    with open(log, "a") as f:
        f.write(FIRST_LINE * 2)
    [grown] = duty.tick(now=10.0)
    assert duty.admit(first[0]) and duty.admit(grown)  # nothing changed under them
    os.truncate(log, 0)  # copytruncate while `grown` was being counted
    log.write_text(FIRST_LINE.replace("before", "after!") * 8)  # ... and the file grew past its end again
    assert not duty.admit(grown) and not duty.in_flight  # dropped: the next scan decides again
    assert not duty.admit(first[0])


def test_a_followed_file_gone_before_its_detection_gets_no_guessed_format(tmp_path):
    """Detection on no bytes would name a format that then sticks to the stream: the file is
    skipped until the next scan says where it went, by both followers (they share format_of)."""
    formats = FormatSet.standard()
    log = tmp_path / "app.log"
    log.write_bytes(b"2026-01-01 00:00:00,123 ERROR [main] app.Core - failed\n" * 20)
    assert format_of("auto", formats, str(log), log.stat().st_size) == "log4j"
    log.unlink()
    with pytest.raises(InputError):
        format_of("auto", formats, str(log), 1000)
    assert format_of("spark", formats, str(log), 1000) == "spark"  # a forced format reads nothing
