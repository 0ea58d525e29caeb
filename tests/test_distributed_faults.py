"""The distributed analyser under a real mpirun, hurt on purpose: counts must stay exact.

Workers are killed, stopped and resumed with real signals sent to the pid of
their MPI rank (found by a /proc scan), or fail through the built-in
`--inject`. `--task-delay` and a small `--chunk-size` stretch a job over a few
seconds so a fault lands mid-run; the tests wait for observable conditions
(the master's "Assigning" lines, a rank's pid, a failure message) with
deadlines, never for fixed sleeps. Every job has a hard timeout and no process
may outlive a test.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from utils.jobcontrol import Jobs, rank_pid, signal_pid, wait_for

from .helpers import assert_exact, program_cmd, program_env
from .test_distributed import PROG, generate_logs, merged

JOB_TIMEOUT = 60  # seconds: a hard limit for any job here (they take 2-10 s)
START_TIMEOUT = 20  # for the job to get going (MPI start-up on a loaded machine)
EXIT_GRACE = 15  # seconds a job may take to exit once it wrote its result
CHUNK = "64K"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, exact totals): 60 small files and one 3 MB file, about 50 tasks at 64K chunks."""
    root = tmp_path_factory.mktemp("fault_corpus")
    small = generate_logs.generate(root, files=60, lines=200, seed=21, prefix="node", noise=0.1, malformed=0.05,
                                   blank=0.05, crlf=True)
    big = generate_logs.generate(root, files=1, seed=22, prefix="big", total_bytes=3_000_000, noise=0.1,
                                 malformed=0.05, blank=0.05, no_final_newline=True)
    return root, merged(small, big)


class Run:
    """One background job of the analyser, its output file and the marker of its processes."""

    def __init__(self, jobs: Jobs, tmp_path: Path, folder, *args, np: int):
        self.output = tmp_path / "result.json"
        self.marker = str(self.output)
        cmd = program_cmd(PROG, folder, *args, "--output", self.output, "--no-progress", np=np)
        self.job = jobs.start(cmd, marker=self.marker, env=program_env(), cwd=tmp_path)

    def assigned(self) -> int:
        """How many tasks the master has handed out (first assignments and reassignments)."""
        return self.job.count("[Master] Assigning") + self.job.count("[Master] Reassigning")

    def pid_of(self, rank: int) -> int:
        """The pid of `rank` (waiting for it to exist)."""
        return wait_for(lambda: rank_pid(rank, self.marker), START_TIMEOUT, f"rank {rank}'s process")

    def wait_assigned(self, n: int, timeout: float = START_TIMEOUT) -> None:
        """Waits until the master has handed out `n` tasks; fails if the job ended first."""
        wait_for(lambda: self.assigned() >= n or not self.job.running(), timeout, f"{n} assignments")
        assert self.job.running(), f"the job ended before {n} assignments:\n{self.job.stdout[-2000:]}"

    def finish(self, timeout: float = JOB_TIMEOUT) -> dict:
        """Waits for a successful end and returns the JSON document.

        A job that wrote its result but does not exit within EXIT_GRACE s fails at once, naming the ranks
        still alive (seen: survivors stuck in MPI_Finalize after a rank was killed).
        """
        try:
            wait_for(lambda: not self.job.running() or self.output.exists(), timeout, "the job's result")
        except AssertionError as exc:
            self.job.kill()
            raise AssertionError(f"{exc} (killed)\nstdout tail:\n{self.job.stdout[-1500:]}") from None
        try:
            wait_for(lambda: not self.job.running(), EXIT_GRACE, "the job to exit after writing its result")
        except AssertionError:
            alive = sorted(r for r in range(16) if rank_pid(r, self.marker))
            self.job.kill()
            raise AssertionError(f"the job wrote its result but had not exited {EXIT_GRACE} s later (killed); "
                                 f"ranks still alive: {alive}\nstdout tail:\n{self.job.stdout[-1500:]}") from None
        code = self.job.wait(timeout)
        assert code == 0, f"exit {code}\nstdout tail:\n{self.job.stdout[-3000:]}\nstderr:\n{self.job.stderr[-3000:]}"
        return json.loads(self.output.read_text())


def lost_lines(run: Run, worker: int) -> list[str]:
    return [line for line in run.job.stdout.splitlines() if line.startswith(f"[Master] Worker {worker} ")
            and ("process died" in line or "timeout detected" in line)]


def test_sigkill_of_one_worker_mid_run(corpus, jobs, tmp_path):
    folder, expected = corpus
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--task-delay", "0.1", np=3)
    victim = run.pid_of(1)
    run.wait_assigned(10)
    assert signal_pid(victim, signal.SIGKILL)
    killed_at = run.assigned()
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == [1]
    story = "\n".join(line for line in run.job.stdout.splitlines() if "Processing" not in line)
    assert doc["reassigned_tasks"] >= 1, story  # it held tasks when it died
    assert doc["tasks"] > killed_at + 10, "the kill did not land mid-run"
    assert lost_lines(run, 1), story


def test_two_workers_killed_at_different_moments(corpus, jobs, tmp_path):
    folder, expected = corpus
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--task-delay", "0.2", np=5)
    first, second = run.pid_of(2), run.pid_of(4)
    run.wait_assigned(10)
    assert signal_pid(first, signal.SIGKILL)
    wait_for(lambda: lost_lines(run, 2) or not run.job.running(), START_TIMEOUT, "the master to notice worker 2")
    run.wait_assigned(run.assigned() + 8)  # some more work done by the other three
    assert signal_pid(second, signal.SIGKILL)
    killed_at = run.assigned()
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == [2, 4]
    assert doc["reassigned_tasks"] >= 2
    assert doc["tasks"] > killed_at, "the second kill did not land mid-run"


def test_inject_exit_in_a_worker(corpus, jobs, tmp_path):
    folder, expected = corpus
    delay, timeout = 0.1, 2.0
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--task-delay", delay, "--worker-timeout", timeout,
              "--inject", "exit:2@0.3", np=3)
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == [2]
    assert "[Rank 2] Injected fault: exit" in run.job.stdout
    # The survivor could do every task alone; the loss may cost at most the timeout on top.
    assert doc["elapsed_s"] < doc["tasks"] * delay + timeout + 5, doc["elapsed_s"]


def test_sigstop_beyond_the_timeout_then_sigcont(corpus, jobs, tmp_path):
    folder, expected = corpus
    timeout = 1.5
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--task-delay", "0.2", "--worker-timeout", timeout,
              np=3)
    victim = run.pid_of(1)
    run.wait_assigned(8)
    assert signal_pid(victim, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        wait_for(lambda: lost_lines(run, 1), 3 * timeout, "the master to time worker 1 out")
        assert "timeout detected" in lost_lines(run, 1)[0]
        wait_for(lambda: time.monotonic() - stopped_at >= 3 * timeout, 3 * timeout + 1, "3 x the timeout to pass")
        still_running = run.job.running()
    finally:
        signal_pid(victim, signal.SIGCONT)
    doc = run.finish()
    assert_exact(doc, expected)  # lines equal the expected total: the late results were not counted again
    assert doc["failed_workers"] == [1]
    assert doc["reassigned_tasks"] >= 1
    if still_running:
        assert "[Master] Worker 1 is back" in run.job.stdout, run.job.stdout[-2000:]


@pytest.mark.parametrize("fault", ["kill:1@0.5", "hang:1@0.2:3"])
def test_injected_kill_and_hang_with_short_timeout(corpus, jobs, tmp_path, fault):
    folder, expected = corpus
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--task-delay", "0.1", "--worker-timeout", "1",
              "--inject", fault, np=3)
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == [1]
    kind = fault.split(":")[0]
    assert f"[Rank 1] Injected fault: {kind}" in run.job.stdout
    reason = "process died" if kind == "kill" else "timeout detected"
    assert any(reason in line for line in lost_lines(run, 1)), run.job.stdout[-2000:]


# --- a big file -------------------------------------------------------------------

HUGE_LINES = 15_000_000


@pytest.fixture(scope="module")
def huge_corpus(tmp_path_factory):
    """(folder, exact totals): one 15-million-line file (~900 MB, generator's fast path) and 3 small files."""
    root = tmp_path_factory.mktemp("huge_corpus")
    started = time.monotonic()
    huge = generate_logs.generate(root, files=1, lines=HUGE_LINES, seed=31, prefix="huge", noise=0.02,
                                  malformed=0.01, blank=0.01)
    seconds = time.monotonic() - started
    assert seconds < 30, f"generating 15M lines took {seconds:.1f} s"
    small = generate_logs.generate(root, files=3, lines=500, seed=32, prefix="small", crlf=True, malformed=0.1)
    yield root, merged(huge, small)
    for path in root.glob("*.log"):  # pytest keeps old temporary folders: do not leave 900 MB in them
        path.unlink()


def test_15_million_lines_beside_small_files_slow(huge_corpus, jobs, tmp_path):
    """Slow (about 10 s with generation): deselect with -k 'not slow'."""
    folder, expected = huge_corpus
    run = Run(jobs, tmp_path, folder, "--worker-timeout", "2", np=3)
    try:
        doc = run.finish(timeout=120)
    finally:  # the checkpoint store keeps a hard link to the 900 MB file: pytest would keep it for days
        shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)
    assert_exact(doc, expected)
    assert doc["lines"] == HUGE_LINES + 1500
    assert doc["failed_workers"] == []
    assert doc["reassigned_tasks"] == 0
