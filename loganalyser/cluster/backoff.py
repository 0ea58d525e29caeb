"""Waiting without spinning: the sleep between empty polls of every loop."""

from __future__ import annotations

import time


class IdleBackoff:
    """Sleeps between empty polls: 50 us doubling up to 1 ms, so waiting costs no CPU."""

    def __init__(self, floor: float = 50e-6, ceiling: float = 1e-3):
        self.floor, self.ceiling = floor, ceiling
        self.delay = floor

    def reset(self) -> None:
        self.delay = self.floor

    def sleep(self) -> None:
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, self.ceiling)
