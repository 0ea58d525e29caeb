"""Runs the distributed analyser under mpirun and restarts it on the hosts still alive.

    python -m utils.supervise --hostfile FILE [--restarts N] -- -np 6 python distributed_log_analyser.py DIR ...

ARGS (after `--`) are what follows `mpirun`: `-np`, its other options, the
program and the program's options. The supervisor adds the hostfile and the
fault-tolerance options, and `--output` (in its state folder) unless ARGS
name one. Some faults end a whole `mpirun` (a host lost with its daemon, a
network cut after which Open MPI aborts), and `mpirun`'s exit status does not
say so (it was 0 after a lost daemon). So the supervisor decides from the
job's own evidence:

- a fresh result document (`--output`) means the job is done; an `mpirun`
  still running `--hang-grace` seconds after it is ended;
- no result: the hosts are probed through Open MPI's launch agent
  (`PRTE_MCA_plm_ssh_agent`, else ssh); the job is started again on the
  hosts that answer (a new hostfile, `-np` cut to their slots), up to
  `--restarts` times, and resumes by itself from the newest committed
  checkpoint (with `{host}` in `--checkpoint-dir`, copies live on other hosts);
- no result, every host answering and the job's own exit code (usage,
  input, interrupted, too few ranks): the job ended itself; not restarted.

stdout carries exactly one result: each attempt's stdout goes to a file in
the state folder, and the one that produced the result is copied to stdout
at the end (with `--json`, the result document itself). Exit status 0 with a
result; otherwise the job's own code, or 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

POLL = 0.05  # seconds between looks at the job
HANG_GRACE = 10.0  # seconds mpirun may outlive the result (ranks give up MPI_Finalize after 3 s)
PROBE_TIMEOUT = 5.0  # seconds a host has to answer the probe
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL when ending mpirun
FT_OPTIONS = ("--with-ft", "ulfm")
JOB_ENDED_ITSELF = (2, 3, 4, 5)  # the program's usage, input, interrupted, too-few-ranks codes (errors.ExitCode)


class SuperviseError(Exception):
    """Bad arguments or an unreadable hostfile: one line, exit 2."""


# --- the decision: pure, evidence in, one step out ------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What the supervisor knows of the current attempt."""

    running: bool  # mpirun has not exited
    result_at: float | None  # when a fresh result document was first seen (clock of `decide`)
    exit_code: int | None  # mpirun's, once it exited
    reachable: tuple[str, ...] | None  # hosts that answered the probe; None: not probed yet
    hosts: tuple[str, ...]  # the hosts of this attempt
    restarts_left: int
    stopping: bool = False  # the supervisor was told to stop (SIGINT, SIGTERM)


@dataclass(frozen=True)
class Wait:
    pass


@dataclass(frozen=True)
class Finished:
    pass


@dataclass(frozen=True)
class EndHung:
    """The result is out but mpirun does not exit: end it."""


@dataclass(frozen=True)
class Probe:
    """The job died without a result: which hosts answer?"""


@dataclass(frozen=True)
class Restart:
    hosts: tuple[str, ...]  # where the next attempt runs
    why: str


@dataclass(frozen=True)
class GiveUp:
    exit_code: int
    why: str


def decide(e: Evidence, now: float, hang_grace: float = HANG_GRACE):
    """The supervisor's next step, from the job's evidence (never from mpirun's exit status alone)."""
    if e.result_at is not None:
        if not e.running:
            return Finished()
        return EndHung() if now - e.result_at >= hang_grace else Wait()
    if e.running:
        return Wait()
    code = e.exit_code if e.exit_code else 1
    if e.stopping:
        return GiveUp(code, "stopped by a signal")
    if e.reachable is None:
        return Probe()
    lost = [h for h in e.hosts if h not in e.reachable]
    if not lost and e.exit_code in JOB_ENDED_ITSELF:
        return GiveUp(e.exit_code, f"the job ended itself (exit {e.exit_code}) with every host reachable")
    why = f"host(s) {', '.join(lost)} unreachable" if lost else f"mpirun ended (exit {e.exit_code}) without a result"
    if e.restarts_left <= 0:
        return GiveUp(code, f"{why}; no restart left")
    if not e.reachable:
        return GiveUp(code, f"{why}; no host left")
    return Restart(tuple(h for h in e.hosts if h in e.reachable), why)


# --- arguments, hostfiles and mpirun's command line -------------------------------------------


@dataclass(frozen=True)
class HostLine:
    host: str
    slots: int
    line: str  # as written, for the attempt's hostfile


def read_hostfile(path: str) -> list[HostLine]:
    """The hosts of an Open MPI hostfile (`host [slots=N] ...`, # comments)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SuperviseError(f"cannot read hostfile {path}: {exc.strerror or exc}") from None
    hosts = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        slots = next((w.split("=", 1)[1] for w in words[1:] if w.startswith("slots=")), "1")
        if not slots.isdigit() or int(slots) < 1:
            raise SuperviseError(f"hostfile {path}: bad slots in {raw.strip()!r}")
        hosts.append(HostLine(words[0], int(slots), line))
    if not hosts:
        raise SuperviseError(f"hostfile {path} names no host")
    return hosts


def option_value(args: list[str], names: tuple[str, ...]) -> tuple[int, str] | None:
    """(index of the value, value) of the first of `names` in args (`--x V` or `--x=V`), or None."""
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return i + 1, args[i + 1]
        for name in names:
            if arg.startswith(name + "="):
                return i, arg.split("=", 1)[1]
    return None


NP_NAMES = ("-np", "-n", "--np", "-c")


def attempt_args(args: list[str], slots: int) -> list[str]:
    """ARGS with -np cut to the slots of the attempt's hosts (a lost host's ranks have nowhere to go)."""
    found = option_value(args, NP_NAMES)
    if found is None:
        return list(args)
    index, value = found
    if not value.isdigit() or int(value) <= slots:
        return list(args)
    out = list(args)
    out[index] = str(slots) if args[index] == value else f"{args[index].split('=', 1)[0]}={slots}"
    return out


# --- the shell ---------------------------------------------------------------------------------


def probe(hosts, agent: list[str], timeout: float) -> tuple[str, ...]:
    """The hosts that run `true` through the launch agent within `timeout` seconds (probed at once)."""
    procs = {h: subprocess.Popen([*agent, h, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True) for h in hosts}
    deadline = time.monotonic() + timeout
    answered = []
    for host, proc in procs.items():
        try:
            if proc.wait(max(0.0, deadline - time.monotonic())) == 0:
                answered.append(host)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            proc.wait()
    return tuple(answered)


def launch_agent() -> list[str]:
    """Open MPI's launch agent as it will be used (the test cluster's script, or ssh)."""
    agent = os.environ.get("PRTE_MCA_plm_ssh_agent") or os.environ.get("OMPI_MCA_plm_rsh_agent") or "ssh"
    return shlex.split(agent)


class Supervisor:
    """Runs attempts until one yields a result or the decision says to give up."""

    def __init__(self, hosts: list[HostLine], args: list[str], state: Path, mpirun: str, restarts: int,
                 hang_grace: float, probe_timeout: float, say=None):
        self.hosts = {h.host: h for h in hosts}
        self.order = [h.host for h in hosts]
        self.state = state
        self.mpirun = mpirun
        self.restarts = restarts
        self.hang_grace = hang_grace
        self.probe_timeout = probe_timeout
        started = time.monotonic()
        self.say = say or (lambda text: print(f"supervise: [{time.monotonic() - started:.2f} s] {text}",
                                              file=sys.stderr, flush=True))
        found = option_value(args, ("--output",))
        self.result = Path(found[1]) if found else state / "result.json"
        self.args = list(args) if found else [*args, "--output", str(self.result)]
        self.as_json = "--json" in args
        self.stopping = False
        self.proc: subprocess.Popen | None = None

    def run(self) -> int:
        live, attempt = tuple(self.order), 0
        while True:  # each attempt has one restart less left: the last one ends in Finished or GiveUp
            attempt += 1
            outcome = self._attempt(attempt, live)
            if isinstance(outcome, Finished):
                self._print_result(attempt)
                return 0
            if isinstance(outcome, GiveUp):
                self.say(f"attempt {attempt}: {outcome.why}; giving up")
                return outcome.exit_code
            self.say(f"attempt {attempt}: {outcome.why}; restarting on {', '.join(outcome.hosts)}")
            live = outcome.hosts

    def _attempt(self, attempt: int, hosts: tuple[str, ...]):
        hostfile = self.state / f"hostfile-{attempt}"
        hostfile.write_text("".join(self.hosts[h].line + "\n" for h in hosts))
        args = attempt_args(self.args, sum(self.hosts[h].slots for h in hosts))
        cmd = [self.mpirun, "--hostfile", str(hostfile), *FT_OPTIONS, *args]
        before = _identity(self.result)
        self.say(f"attempt {attempt} on {', '.join(hosts)}: {shlex.join(cmd)}")
        with open(self.state / f"attempt-{attempt}.out", "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stdin=subprocess.DEVNULL, start_new_session=True)
        result_at = reachable = None
        restarts_left = self.restarts - (attempt - 1)
        while True:
            now = time.monotonic()
            code = self.proc.poll()
            if result_at is None and _fresh_result(self.result, before):
                result_at = now
            evidence = Evidence(code is None, result_at, code, reachable, hosts, restarts_left, self.stopping)
            step = decide(evidence, now, self.hang_grace)
            if isinstance(step, Wait):
                time.sleep(POLL)
            elif isinstance(step, EndHung):
                self.say(f"attempt {attempt}: the result is out but mpirun has not exited "
                         f"{self.hang_grace:g} s later; ending it")
                self._end_mpirun()
            elif isinstance(step, Probe):
                reachable = probe(hosts, launch_agent(), self.probe_timeout)
            else:
                return step

    def _end_mpirun(self) -> None:
        _kill_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(TERM_GRACE)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait()

    def stop(self, signum: int, _frame=None) -> None:
        """SIGINT/SIGTERM: passed on to mpirun (the job checkpoints and stops); no restart after."""
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def _print_result(self, attempt: int) -> None:
        source = self.result if self.as_json else self.state / f"attempt-{attempt}.out"
        sys.stdout.buffer.write(source.read_bytes())
        sys.stdout.flush()


def _identity(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _fresh_result(path: Path, before) -> bool:
    """A result document written by this attempt (a new file: the program writes it atomically)."""
    now = _identity(path)
    return now is not None and now != before


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m utils.supervise",
                                     description="Run the distributed analyser under mpirun; restart it on the "
                                                 "hosts still reachable when a host is lost.")
    parser.add_argument("--hostfile", required=True, help="Open MPI hostfile of the job's hosts")
    parser.add_argument("--restarts", type=int, default=2, metavar="N", help="restart at most N times (default 2)")
    parser.add_argument("--state-dir", metavar="DIR", help="attempts' hostfiles and outputs (default: a new temp folder)")
    parser.add_argument("--mpirun", default=str(Path(sys.executable).parent / "mpirun"), help="default: beside python")
    parser.add_argument("--hang-grace", type=float, default=HANG_GRACE, metavar="S",
                        help=f"end mpirun S seconds after the result if it has not exited (default {HANG_GRACE:g})")
    parser.add_argument("--probe-timeout", type=float, default=PROBE_TIMEOUT, metavar="S",
                        help=f"a host that does not answer within S seconds is lost (default {PROBE_TIMEOUT:g})")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then mpirun's arguments: -np N, the program, ...")
    return parser


def main(argv=None) -> int:
    opts = _parser().parse_args(argv)
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    try:
        if not args:
            raise SuperviseError("nothing to run: give mpirun's arguments after --")
        if opts.restarts < 0:
            raise SuperviseError("--restarts must be 0 or more")
        hosts = read_hostfile(opts.hostfile)
        state = Path(opts.state_dir or tempfile.mkdtemp(prefix="supervise-"))
        state.mkdir(parents=True, exist_ok=True)
    except (SuperviseError, OSError) as exc:
        print(f"supervise: {exc}", file=sys.stderr)
        return 2
    supervisor = Supervisor(hosts, args, state, opts.mpirun, opts.restarts, opts.hang_grace, opts.probe_timeout)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
