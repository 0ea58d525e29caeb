"""The declared seams between a rank's loop and what it drives.

`Transport` is what the loop needs of a network: MPI (transport.py) and the
whole-job simulation's in-memory network (simulation/network.py) both
implement it, so the loop above them cannot tell which one it runs on. The
callables a duty is wired with have names too, so a constructor says what it
takes.
"""

from __future__ import annotations

from typing import Callable, Protocol

Clock = Callable[[], float]  # monotonic seconds: time.monotonic, or a simulation's fake clock
Say = Callable[[str], None]  # one log line for the user (or the simulation's transcript)
SendTo = Callable[[int, object], None]  # send(dest, message): Transport.send


class Transport(Protocol):
    """One rank's end of the network: non-blocking sends, polling receives, failure notices."""

    rank: int  # this rank
    size: int  # ranks in the job

    def send(self, dest: int, message) -> None:
        """Queues `message` to `dest`; never waits, and a dead `dest` is not an error."""

    def poll(self) -> tuple[int, object] | None:
        """One waiting message as (source, message), or None at once."""

    def take_failures(self) -> list[int]:
        """Ranks found dead since the last call (each reported once)."""

    def known_failed(self) -> set[int]:
        """Every rank found dead so far."""

    def flush(self, timeout: float) -> None:
        """Tries to complete outstanding sends for up to `timeout` seconds."""
