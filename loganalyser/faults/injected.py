"""Built-in fault injection for tests and demos (`--inject`).

`kill:RANK@FRACTION` SIGKILLs the rank once the job is that far (0..1 of its
bytes done), `exit:RANK@FRACTION` calls sys.exit(1) there (the seed's Test 2),
`hang:RANK@FRACTION:SECONDS` stops answering for that long, then carries
on, and `slow:RANK@FRACTION:FACTOR` makes the rank count FACTOR times slower
from then on (after each counting step it sleeps FACTOR-1 times the step's
time: a heterogeneous cluster on one machine). A rank learns the job's
progress from the master's messages.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from dataclasses import dataclass

from loganalyser.errors import UsageError

_SPEC = re.compile(r"^(kill|exit|hang|slow):(\d+)@([0-9.]+)(?::([0-9.]+))?$")
_TAKES_NUMBER = {"hang": "SECONDS", "slow": "FACTOR"}


@dataclass(frozen=True)
class Fault:
    kind: str  # "kill", "exit", "hang" or "slow"
    rank: int
    at: float  # fraction of the job done when it fires
    seconds: float = 0.0  # how long a hang lasts; for slow, the factor


def parse_fault(text: str) -> Fault:
    """Parses one --inject value; a malformed one is a usage error."""
    match = _SPEC.match(text.strip())
    if not match:
        raise UsageError(f"bad --inject {text!r}: expected kill:RANK@FRACTION, exit:RANK@FRACTION, "
                         f"hang:RANK@FRACTION:SECONDS or slow:RANK@FRACTION:FACTOR")
    kind, rank, at, seconds = match.groups()
    if (kind in _TAKES_NUMBER) != (seconds is not None):
        raise UsageError(f"bad --inject {text!r}: only hang takes :SECONDS and slow :FACTOR, and they need it")
    try:
        fault = Fault(kind, int(rank), float(at), float(seconds or 0))
    except ValueError:
        raise UsageError(f"bad --inject {text!r}: not a number") from None
    if not 0 <= fault.at <= 1:
        raise UsageError(f"bad --inject {text!r}: FRACTION must be between 0 and 1")
    if fault.kind == "slow" and fault.seconds < 1:
        raise UsageError(f"bad --inject {text!r}: FACTOR must be at least 1")
    return fault


class FaultInjector:
    """Fires this rank's faults when the job's progress reaches them."""

    def __init__(self, faults, rank: int, say=print):
        self.pending = sorted((f for f in faults if f.rank == rank), key=lambda f: f.at)
        self.rank = rank
        self.say = say
        self.slowdown = 1.0  # a slow fault fired: counting takes this many times as long

    def drag(self, seconds: float) -> None:
        """A counting step took `seconds`: a slowed rank makes it take `slowdown` times as long."""
        if self.slowdown > 1:
            time.sleep((self.slowdown - 1) * seconds)

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
        elif fault.kind == "slow":
            self.slowdown = fault.seconds
        else:
            time.sleep(fault.seconds)
