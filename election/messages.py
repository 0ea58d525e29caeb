"""The bully protocol's messages (seeds 000 and 001): one frozen dataclass each.

Every message carries the sender's `epoch`: the term of the leader it follows
or leads. A receiver learns from it the newest term it has heard of, so a rank
that declares itself can pick an epoch above every term in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ElectionTag(IntEnum):
    """The election's MPI tags. The job protocol (loganalyser/cluster/protocol.py) owns
    the other tags and must not reuse 20-25."""

    ELECTION = 20
    OK = 21
    COORDINATOR = 22
    PROBE = 23
    PROBE_OK = 24
    ACCEPT = 25


@dataclass(frozen=True)
class Election:
    """A lower-priority rank runs for leader: answer Ok if you are alive."""

    TAG = ElectionTag.ELECTION
    epoch: int


@dataclass(frozen=True)
class Ok:
    """I am alive and outrank you: leave the election to me."""

    TAG = ElectionTag.OK
    epoch: int


@dataclass(frozen=True)
class Coordinator:
    """`leader` leads term `epoch` (a victory, or a reminder of the present term).

    Sent by the leader itself, it carries `stamp` (the leader's clock when sent) and asks its
    followers to Accept; `confirmed` says that the leader holds a majority's lease."""

    TAG = ElectionTag.COORDINATOR
    epoch: int
    leader: int
    stamp: float | None = None  # None: a reminder by another rank, nothing to accept
    confirmed: bool = False


@dataclass(frozen=True)
class Probe:
    """Are you still the leader?"""

    TAG = ElectionTag.PROBE
    epoch: int


@dataclass(frozen=True)
class ProbeOk:
    """The answer to a Probe: `leader` leads term `epoch`, as far as I know."""

    TAG = ElectionTag.PROBE_OK
    epoch: int
    leader: int


@dataclass(frozen=True)
class Accept:
    """The answer to a leader's stamped Coordinator: I back you, and no other leader, for
    `ElectionTiming.lease` seconds from when your Coordinator of `stamp` reached me."""

    TAG = ElectionTag.ACCEPT
    epoch: int
    stamp: float


ELECTION_MESSAGES = {cls.TAG: cls for cls in (Election, Ok, Coordinator, Probe, ProbeOk, Accept)}
