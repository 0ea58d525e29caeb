"""Work stealing: what the scheduler asks of a busy worker, and how both sides pick the cut. Pure.

When a worker is idle and nothing is left to hand out, the scheduler picks the
splittable task (one plain byte range) with the most bytes left and asks its
worker to keep only a share of what is left (`Split`). The worker stops at the
first step boundary at or after that point (it counts a task STEP_BYTES at a
time) and replies with the cut; the master then holds [start, cut) for it and
gives [cut, end) to the idle worker (subranges.py names both). The share
evens out the two workers' finishing times by their observed rates (`Rates`),
so a slow worker gives away most of its range to a fast one.
"""

from __future__ import annotations

from dataclasses import dataclass

from loganalyser.work.tasks import Task

STEP_BYTES = 4 << 20  # a worker counts this much input per step (per turn of its loop): the grid of cuts
SPLIT_MIN_STEPS = 2  # a task with no more than this many steps left is not worth a round trip
SLOW_SHARE = 0.5  # a worker below this share of the fastest rate gets the smallest tasks
STEP_SECONDS = 0.05  # a slow worker counts smaller steps, about this long ...
MIN_STEP_SHARE = 16  # ... but not below STEP_BYTES / this


# Actions the scheduler returns (the master carries them out).
@dataclass(frozen=True)
class AskSplit:
    worker: int
    task_id: str
    keep: float  # the share of what is left that the worker keeps


@dataclass(frozen=True)
class TaskSplit:
    worker: int  # it keeps `kept` (None: it gave the whole task up before starting it)
    task_id: str
    kept: Task | None
    given: Task  # what goes to an idle worker


def cut_point(position: int, end: int, keep: float, step: int) -> int | None:
    """Where a worker at `position` of a range ending at `end`, counting steps of `step`
    bytes from there, cuts to keep about `keep` of what is left: the first step boundary
    at or after that point; None if there is none before `end`."""
    cut = position + -(-int(keep * (end - position)) // step) * step
    return cut if cut < end else None


def step_for(rate: float | None, step_bytes: int) -> int:
    """A worker's step: `step_bytes`, or less for a slow worker (`rate` bytes/s), so that a
    step takes about STEP_SECONDS and it hears a split request soon enough."""
    if not rate:
        return step_bytes
    return max(step_bytes // MIN_STEP_SHARE, min(step_bytes, int(rate * STEP_SECONDS)))


def keep_share(left: int, backlog: int, rate: float, idle_rate: float) -> float:
    """The share of a task's `left` bytes its worker keeps so that it (with `backlog`
    bytes to count in all) and the idle worker finish about together."""
    give = backlog * idle_rate / (rate + idle_rate)
    return min(1.0, max(0.0, 1.0 - give / left))


class Rates:
    """Each worker's observed counting rate (bytes per second of holding work); before its
    first result, the rate its heartbeats report (a slow worker's first task is long)."""

    def __init__(self):
        self.reported: dict[int, float] = {}  # worker -> the rate its last heartbeat gave
        self.bytes: dict[int, int] = {}
        self.seconds: dict[int, float] = {}
        self.busy_since: dict[int, float] = {}  # worker -> when it last started holding work

    def started(self, worker: int, now: float) -> None:
        self.busy_since.setdefault(worker, now)

    def finished(self, worker: int, nbytes: int, now: float, still_busy: bool) -> None:
        """`worker` delivered a result of `nbytes`; it goes on with more if `still_busy`."""
        since = self.busy_since.pop(worker, None)
        if since is not None:
            self.bytes[worker] = self.bytes.get(worker, 0) + nbytes
            self.seconds[worker] = self.seconds.get(worker, 0.0) + (now - since)
        if still_busy:
            self.busy_since[worker] = now

    def idle(self, worker: int) -> None:
        """`worker` holds nothing any more (lost, or its work was taken back)."""
        self.busy_since.pop(worker, None)

    def rate(self, worker: int) -> float | None:
        """Bytes per second, or None with no evidence yet. Results that covered no bytes (ranges
        inside one huge line own no line) say nothing of a rate: never a rate of 0."""
        seconds = self.seconds.get(worker, 0.0)
        if seconds > 0 and self.bytes.get(worker, 0) > 0:
            return self.bytes[worker] / seconds
        return self.reported.get(worker)

    def rate_or_typical(self, worker: int) -> float:
        """Its rate, or before it has one the mean of those known (1 if none: all alike)."""
        rate = self.rate(worker)
        if rate is not None:
            return rate
        known = [r for r in map(self.rate, {**self.seconds, **self.reported}) if r is not None]
        return sum(known) / len(known) if known else 1.0

    def slow(self, worker: int, among) -> bool:
        """Much slower than the fastest of `among` (it should get small tasks)."""
        rate = self.rate(worker)
        rates = [r for r in map(self.rate, among) if r is not None]
        return rate is not None and rate < SLOW_SHARE * max(rates)
