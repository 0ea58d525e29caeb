"""What the election state machine asks its shell to do: small frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Send:
    """Send `message` to rank `dest`."""

    dest: int
    message: object


@dataclass(frozen=True)
class BecomeLeader:
    """This rank now leads term `epoch` with a majority's lease: act as master (load or await the state)."""

    epoch: int


@dataclass(frozen=True)
class LostQuorum:
    """This rank led term `epoch` but its majority's lease ran out: stop acting as master at once
    (no result, no checkpoint); it claims a new term and waits for a majority again."""

    epoch: int


@dataclass(frozen=True)
class NewLeader:
    """Rank `leader` leads term `epoch`: talk to it from now on."""

    leader: int
    epoch: int


@dataclass(frozen=True)
class StepDown:
    """This rank led an older term; hand the job state over to `new_leader`."""

    new_leader: int
    epoch: int


Action = Send | BecomeLeader | LostQuorum | NewLeader | StepDown
