"""Process control for runs of real jobs (tests and the chaos campaign) that hurt them on purpose.

    job = Job.start(program_cmd(...), env=program_env(), cwd=tmp_path)  # background, own session
    wait_for(lambda: job.count("Assigning") >= 3, 20, "3 assignments")   # poll with a deadline
    pid = wait_for(lambda: rank_pid(1, marker), 20, "rank 1")             # a rank's pid by /proc scan
    signal_pid(pid, signal.SIGKILL)                                       # a real signal, by pid
    job.wait(60)                                                          # exit code, or fail on time
    job.kill(); assert_no_processes(marker)                               # no orphan left behind

Nothing here sleeps for a fixed time hoping for a state: every wait polls a
condition and fails with a message naming what it waited for.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

POLL = 0.02  # seconds between two looks at a condition


def clear_stale_sessions(tmp: str | None = None) -> int:
    """Removes Open MPI session folders (/tmp/ompi.<pid>) of launchers that no longer run.

    A killed mpirun leaves its folder behind, and a later mpirun that happens to
    get the same pid then fails to start ("The PMIx server's listener thread
    failed to start"). Returns how many folders were removed.
    """
    tmp = tmp or tempfile.gettempdir()
    removed = 0
    for name in os.listdir(tmp):
        prefix, _, pid = name.partition(".")
        if prefix == "ompi" and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
            removed += 1
    return removed


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = POLL):
    """Polls `predicate()` until it returns a truthy value (returned) or fails after `timeout` s naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Job:
    """A command running in the background in its own session; stdout/stderr collected by reader threads."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = popen.pid
        self.started = time.monotonic()
        self.ended: float | None = None
        self._out: list[str] = []
        self._err: list[str] = []
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=self._read, args=(popen.stdout, self._out), daemon=True),
                         threading.Thread(target=self._read, args=(popen.stderr, self._err), daemon=True)]
        for reader in self._readers:
            reader.start()

    @classmethod
    def start(cls, cmd, env=None, cwd=None) -> "Job":
        """Starts `cmd` (a list) in a new session and process group, stdin closed, output piped to threads."""
        clear_stale_sessions()
        popen = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
        return cls(popen)

    def _read(self, stream, into: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            with self._lock:
                into.append(raw.decode("utf-8", "replace"))
        stream.close()

    @property
    def stdout(self) -> str:
        """Everything printed on stdout so far."""
        with self._lock:
            return "".join(self._out)

    @property
    def stderr(self) -> str:
        """Everything printed on stderr so far."""
        with self._lock:
            return "".join(self._err)

    def count(self, text: str) -> int:
        """How many stdout lines so far contain `text`."""
        with self._lock:
            return sum(text in line for line in self._out)

    def running(self) -> bool:
        """True while the command has not exited."""
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code; kills the whole job and fails (AssertionError) if it runs past `timeout` s."""
        try:
            code = self.popen.wait(timeout=max(0.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"job still running after {timeout:g} s (killed); stdout tail:\n"
                                 f"{self.stdout[-3000:]}\nstderr tail:\n{self.stderr[-3000:]}") from None
        self.ended = time.monotonic()
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    @property
    def elapsed(self) -> float:
        """Seconds from start to exit (or to now while running)."""
        return (self.ended or time.monotonic()) - self.started

    def kill(self) -> None:
        """SIGKILLs the process group and every process of the job's session (ranks get groups of their own)."""
        for pid in session_pids(self.pid):
            signal_pid(pid, signal.SIGCONT)  # a stopped rank must not linger in the kernel's queue
            signal_pid(pid, signal.SIGKILL)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _proc_read(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def all_pids() -> list[int]:
    """Every pid in /proc except our own."""
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]


def cmdline_has(pid: int, marker: str) -> bool:
    """True if the process's command line contains `marker` (zombies have none)."""
    return marker.encode() in _proc_read(pid, "cmdline")


def job_pids(marker: str) -> list[int]:
    """Live processes whose command line contains `marker` (mpirun, its daemons, the ranks)."""
    return [pid for pid in all_pids() if cmdline_has(pid, marker)]


def rank_pids(rank: int, marker: str) -> list[int]:
    """Pids with OMPI_COMM_WORLD_RANK=`rank` in their environment and `marker` in their command line."""
    needle = f"OMPI_COMM_WORLD_RANK={rank}".encode()
    return [pid for pid in job_pids(marker) if needle in _proc_read(pid, "environ").split(b"\0")]


def rank_pid(rank: int, marker: str) -> int | None:
    """The one pid of MPI rank `rank` of the job marked by `marker`, or None if it is not (or no longer) there."""
    pids = rank_pids(rank, marker)
    assert len(pids) <= 1, f"several processes claim rank {rank} of {marker}: {pids}"
    return pids[0] if pids else None


def session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (a Job's pid is its session id)."""
    found = []
    for pid in all_pids():
        stat = _proc_read(pid, "stat")
        fields = stat[stat.rfind(b")") + 2:].split() if stat else []
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            found.append(pid)
    return found


def signal_pid(pid: int, sig: int) -> bool:
    """Sends `sig` to `pid`; False if the process is gone already."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def assert_no_processes(marker: str, timeout: float = 10.0) -> None:
    """Waits up to `timeout` s for every process marked by `marker` to be gone; kills and fails otherwise."""
    try:
        wait_for(lambda: not job_pids(marker), timeout, f"the processes of {marker} to exit")
    except AssertionError:
        left = {pid: _proc_read(pid, "cmdline").replace(b"\0", b" ")[:200] for pid in job_pids(marker)}
        for pid in left:
            signal_pid(pid, signal.SIGCONT)
            signal_pid(pid, signal.SIGKILL)
        raise AssertionError(f"processes left behind (now killed): {left}") from None


class Jobs:
    """The jobs one test started; `cleanup()` kills them all and checks nothing marked is left (a fixture's teardown)."""

    def __init__(self):
        self.jobs: list[Job] = []
        self.markers: list[str] = []

    def start(self, cmd, marker: str, env=None, cwd=None) -> Job:
        """Starts a Job and remembers it and its marker for cleanup."""
        job = Job.start(cmd, env=env, cwd=cwd)
        self.jobs.append(job)
        self.markers.append(marker)
        return job

    def cleanup(self) -> None:
        """Kills jobs still running, then fails if a process of a finished job outlived it (killing it too)."""
        for job in self.jobs:
            if job.running():
                job.kill()  # the test failed before waiting for it: not a leak of the program
        errors = []
        for marker in dict.fromkeys(self.markers):
            try:
                assert_no_processes(marker)
            except AssertionError as exc:
                errors.append(str(exc))
        for job in self.jobs:
            if session_pids(job.pid):
                errors.append(f"processes of session {job.pid} left behind (now killed): {session_pids(job.pid)}")
                job.kill()
        assert not errors, "\n".join(errors)
