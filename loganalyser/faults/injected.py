"""Built-in fault injection for tests and demos (`--inject`).

`kill:RANK@FRACTION` SIGKILLs the rank once the job is that far (0..1 of its
bytes done), `exit:RANK@FRACTION` calls sys.exit(1) there (the seed's Test 2),
and `hang:RANK@FRACTION:SECONDS` stops answering for that long, then carries
on. A rank learns the job's progress from the master's messages.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from dataclasses import dataclass

from loganalyser.errors import UsageError

_SPEC = re.compile(r"^(kill|exit|hang):(\d+)@([0-9.]+)(?::([0-9.]+))?$")


@dataclass(frozen=True)
class Fault:
    kind: str  # "kill", "exit" or "hang"
    rank: int
    at: float  # fraction of the job done when it fires
    seconds: float = 0.0  # how long a hang lasts


def parse_fault(text: str) -> Fault:
    """Parses one --inject value; a malformed one is a usage error."""
    match = _SPEC.match(text.strip())
    if not match:
        raise UsageError(f"bad --inject {text!r}: expected kill:RANK@FRACTION, exit:RANK@FRACTION or hang:RANK@FRACTION:SECONDS")
    kind, rank, at, seconds = match.groups()
    if (kind == "hang") != (seconds is not None):
        raise UsageError(f"bad --inject {text!r}: only hang takes :SECONDS, and it needs it")
    try:
        fault = Fault(kind, int(rank), float(at), float(seconds or 0))
    except ValueError:
        raise UsageError(f"bad --inject {text!r}: not a number") from None
    if not 0 <= fault.at <= 1:
        raise UsageError(f"bad --inject {text!r}: FRACTION must be between 0 and 1")
    return fault


class FaultInjector:
    """Fires this rank's faults when the job's progress reaches them."""

    def __init__(self, faults, rank: int, say=print):
        self.pending = sorted((f for f in faults if f.rank == rank), key=lambda f: f.at)
        self.rank = rank
        self.say = say

    def check(self, progress: float) -> None:
        while self.pending and progress >= self.pending[0].at:
            self._fire(self.pending.pop(0))

    def _fire(self, fault: Fault) -> None:
        self.say(f"[Rank {self.rank}] Injected fault: {fault.kind} at {fault.at:.0%} of the job")
        sys.stdout.flush()
        if fault.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault.kind == "exit":
            sys.exit(1)
        else:
            time.sleep(fault.seconds)
