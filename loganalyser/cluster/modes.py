"""The vocabulary of a rank's mode machine (cluster/node.py): its modes, how its part ends,
the state a mode keeps, and the timing its turns obey."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Callable, Protocol

from loganalyser.errors import AnalyserError, ExitCode

if TYPE_CHECKING:
    from .master import MasterDuty, MasterSummary

STOP_GRACE = 6.0  # seconds the final master waits for every worker's Bye
# Feigned failures drop messages (a real pause only delays them), and a rank may
# feign again right after it recovers: with --chaos the master waits longer.
CHAOS_STOP_GRACE = 20.0
STOP_RESEND = 0.5  # seconds between Stop messages to workers that have not answered
FOLLOW_IDLE_CEILING = 0.02  # seconds: the longest sleep between idle turns of a follow job
# A rank that knows of no leader backed by a majority for this long is cut off in a minority
# (or the job lost its majority): it leaves without a result, and the majority's side goes on.
MINORITY_WAIT = 30.0
# Seconds an interrupted worker waits for a master to pass the signal to (an election's length
# and more); with none by then it ends anyway, as a rank cut off from every other could not stop.
INTERRUPT_WAIT = 5.0
PAUSE_GAP = 1.0  # seconds between two turns that only a stopped (SIGSTOP) or starved process takes


class Mode(Enum):
    WORKING = "working"  # a worker (or a candidate): counts what the master assigns
    MASTER = "master"  # runs the job
    STOPPING = "stopping"  # a master that sent Stop, waiting for its workers' Bye
    AWAITING_RELEASE = "awaiting release"  # said Bye to a finished job: waits for Release, still in the election
    FEIGNING = "feigning"  # plays dead (--chaos): deaf and mute until it recovers
    ENDED = "ended"  # this rank's part is over; `ending` says how


@dataclass(frozen=True)
class Ending:
    """How this rank's part of the job ended."""

    exit_code: int
    error: AnalyserError | None = None  # the one line the program prints (input error, interrupt)
    vanish: bool = False  # end like a killed process (a worker that passed an interrupt on)

    def outcome(self) -> int:
        """The exit code, or the exception the program turns into its message and exit."""
        if self.vanish:
            raise SystemExit(self.exit_code)
        if self.error is not None:
            raise self.error
        return self.exit_code


class FailureSchedule(Protocol):
    """When this rank feigns a failure (--chaos), and for how long."""

    def due(self, now: float) -> float | None:
        """The length of a failure to feign now, or None."""


Report = Callable[["MasterSummary"], None]  # prints and writes the result, on the final master, before Release
FINISHED = Ending(int(ExitCode.OK))


@dataclass
class Stopping:
    """A master that sent Stop, waiting for its workers' Bye."""

    master: "MasterDuty"
    ending: Ending  # how the job ends once the workers are gone
    deadline: float
    next_resend: float


@dataclass
class Feigning:
    """A rank playing dead until `until` (--chaos)."""

    until: float
    deaths: list[int] = field(default_factory=list)  # failure notices kept for the recovery
    released: bool = False  # the job ended meanwhile: a Release is not ignored
