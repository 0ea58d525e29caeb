"""The only module that talks MPI for messaging.

Sends are non-blocking (`isend`, completed later by `poll`); receiving is a
matched probe (`improbe`) that never waits. ULFM process-failure errors
(raised by any call once a peer is dead, when the job runs with fault
tolerance) are turned into failure notices: the dead ranks are acknowledged
(`Ack_failed`) and reported once each by `take_failures`.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime

from mpi4py import MPI

from .seams import Transport

_FAILURE_CLASSES = {
    getattr(MPI, name) for name in ("ERR_PROC_FAILED", "ERR_PROC_FAILED_PENDING", "ERR_REVOKED") if hasattr(MPI, name)
}


class Tracer:
    """Prints one time-stamped line per message (seed 000), to stderr."""

    def __init__(self, rank: int, enabled: bool):
        self.rank = rank
        self.enabled = enabled

    def __call__(self, verb: str, peer: int, message) -> None:
        if not self.enabled:
            return
        stamp = datetime.now().isoformat(timespec="milliseconds")
        print(f"{stamp} [rank {self.rank}] {verb} {message.TAG.name} {'to' if verb == 'send' else 'from'} {peer} "
              f"{describe(message)}", file=sys.stderr, flush=True)


def describe(message) -> str:
    """A short summary of a message's fields (tasks by count, not content)."""
    parts = []
    for name, value in vars(message).items():
        if name == "tasks":
            value = f"{len(value)} task(s)"
        elif name == "result" and value is not None:
            value = f"{value.lines} lines"
        elif isinstance(value, bytes):  # shipped file bytes
            value = f"{len(value)} bytes"
        parts.append(f"{name}={value}")
    return " ".join(parts)


class MpiTransport(Transport):
    """Non-blocking messages over `comm`, with process failures as notices."""

    def __init__(self, comm, trace: Tracer | None = None):
        self.comm = comm
        comm.Set_errhandler(MPI.ERRORS_RETURN)  # errors become exceptions, not aborts
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.trace = trace or Tracer(self.rank, False)
        self._sends = []  # outstanding isend requests
        self._failed: set[int] = set()  # every rank known dead
        self._new_failures: list[int] = []  # not yet taken by the caller
        self._status = MPI.Status()

    def send(self, dest: int, message) -> None:
        """Queues `message` to `dest`; a dead `dest` is noticed, never waited on."""
        if dest in self._failed:
            return
        self.trace("send", dest, message)
        try:
            self._sends.append(self.comm.isend(message, dest=dest, tag=int(message.TAG)))
        except MPI.Exception as exc:
            self._on_error(exc)

    def poll(self, source: int = MPI.ANY_SOURCE):
        """One waiting message as (source, message), or None at once."""
        self._complete_sends()
        try:
            matched = self.comm.improbe(source, MPI.ANY_TAG, self._status)
            if matched is None:
                return None
            sender = self._status.Get_source()
            message = matched.recv()
        except MPI.Exception as exc:
            self._on_error(exc)
            return None
        self.trace("recv", sender, message)
        return sender, message

    def known_failed(self) -> set[int]:
        """Every rank found dead so far."""
        return set(self._failed)

    def take_failures(self) -> list[int]:
        """Ranks found dead since the last call."""
        new, self._new_failures = self._new_failures, []
        return new

    def flush(self, timeout: float) -> None:
        """Tries to complete outstanding sends for up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._sends and time.monotonic() < deadline:
            self._complete_sends()
            time.sleep(0.001)

    def _complete_sends(self) -> None:
        still = []
        for request in self._sends:
            try:
                if not request.Test():
                    still.append(request)
            except MPI.Exception as exc:  # the peer died: the send is moot
                self._on_error(exc)
        self._sends = still

    def _on_error(self, exc) -> None:
        if exc.Get_error_class() not in _FAILURE_CLASSES:
            raise exc
        self.comm.Ack_failed()
        failed = self.comm.Get_failed()
        ranks = MPI.Group.Translate_ranks(failed, list(range(failed.Get_size())), self.comm.Get_group())
        failed.Free()
        for rank in ranks:
            if rank not in self._failed and rank != MPI.UNDEFINED:
                self._failed.add(rank)
                self._new_failures.append(rank)


def fault_tolerance_enabled() -> bool:
    """Best guess whether mpirun runs with ULFM (process failures survivable)."""
    value = os.environ.get("OMPI_MCA_mpi_ft_enable")
    if value is not None:
        return value.strip().lower() in ("1", "true", "yes", "on")
    for conf in (os.path.join(sys.prefix, "etc", "openmpi-mca-params.conf"),
                 os.path.expanduser("~/.openmpi/mca-params.conf")):
        try:
            with open(conf) as f:
                for line in f:
                    key, _, value = line.partition("=")
                    if key.strip() == "mpi_ft_enable":
                        return value.strip().lower() in ("1", "true", "yes", "on")
        except OSError:
            continue
    return False
