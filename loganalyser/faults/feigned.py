"""Feigned failures (seed 001), for `--chaos SEED`: a rank plays dead now and then.

At start and after each recovery a rank draws the time to its next failure
uniformly in 0-10 s and the failure's length uniformly in 1-4 s. While it
feigns, it ignores every message and sends none; then it recovers and starts
an election, as the bully algorithm says. Pure: the caller passes `now`.
"""

from __future__ import annotations

from random import Random

NEXT_FAILURE = (0.0, 10.0)  # seconds from start or recovery to the next failure
FAILURE_LENGTH = (1.0, 4.0)  # seconds a failure lasts


class FeignedFailures:
    """When this rank should play dead next, and for how long."""

    def __init__(self, seed: int, rank: int, now: float):
        self.rng = Random(f"{seed}:{rank}")  # each rank its own stream, the same on every run
        self.fail_at = now + self.rng.uniform(*NEXT_FAILURE)

    def due(self, now: float) -> float | None:
        """The length of a failure to start now, or None."""
        if now < self.fail_at:
            return None
        length = self.rng.uniform(*FAILURE_LENGTH)
        self.fail_at = now + length + self.rng.uniform(*NEXT_FAILURE)
        return length
