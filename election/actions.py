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
    """This rank now leads term `epoch`: act as master (load or await the state)."""

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


Action = Send | BecomeLeader | NewLeader | StepDown
