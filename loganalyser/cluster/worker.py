"""The worker's duties: pull tasks, count them, send results, stay audibly alive.

A worker asks for as many tasks as it can hold (the one it runs plus a
prefetched one, so it never waits on a round trip), sends each result as soon
as it is done, and keeps every result it computed until the job ends: a
completed send to a dead master proves nothing, and when a new master takes
over, the worker sends it everything again (the master counts each task id
once). It counts a task a step at a time (`work`, one step per turn of the
rank's loop, about STEP_BYTES of input), so the loop hears its messages
between steps; it sends a heartbeat between chunks, so a long task never looks
like a dead worker. A step over files this host cannot see waits, turn after
turn, for the bytes the master ships (shipping.py), then is counted from them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

from loganalyser.console import warn
from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError
from loganalyser.faults.injected import FaultInjector
from loganalyser.work.tasks import Piece, Task

from .protocol import Ack, Assign, Heartbeat, Result, WorkRequest
from .scheduler import Timing
from .seams import Clock, Say, SendTo
from .shipping import Shipping

PREFETCH = 1  # tasks held beyond the one running
STEP_BYTES = 4 << 20  # input counted per step (per turn of the loop)


@dataclass(frozen=True)
class Counted:
    """A task this worker finished counting: its result, or the input error that stopped it."""

    task_id: str
    result: PartialResult | None
    error: str | None = None


def count_steps(task: Task, step_bytes: int) -> list[tuple[Piece, ...]]:
    """The steps a task's counting takes, each about `step_bytes` of input.

    Pieces of at most `step_bytes` are grouped; a longer plain piece is cut into
    sub-ranges, which own the lines that start in them and so add up to the piece
    (the first one, at the file's offset 0, counts the file; the last one checks
    its size); a compressed piece is one step: it can only be read from its start.
    """
    steps: list[tuple[Piece, ...]] = []
    group: list[Piece] = []
    size = 0
    for piece in task.pieces:
        if piece.length <= step_bytes or piece.compressed:
            group.append(piece)
            size += piece.length
            if size >= step_bytes:
                steps.append(tuple(group))
                group, size = [], 0
            continue
        if group:
            steps.append(tuple(group))
            group, size = [], 0
        end = piece.offset + piece.length
        steps += [(replace(piece, offset=start, length=min(step_bytes, end - start), whole=False),)
                  for start in range(piece.offset, end, step_bytes)]
    if group:
        steps.append(tuple(group))
    return steps


class _Counting:
    """A task being counted, a step at a time."""

    def __init__(self, task: Task, ready_at: float):
        self.task = task
        self.steps = deque(count_steps(task, STEP_BYTES))  # what is left to count
        self.result = PartialResult()  # what is counted so far
        self.ready_at = ready_at  # --task-delay: not finished before then


class WorkerDuty:
    """What a rank does while another rank is master."""

    def __init__(self, rank: int, timing: Timing, send: SendTo, say: Say, injector: FaultInjector | None = None,
                 task_delay: float = 0.0, clock: Clock = time.monotonic,
                 analyse: Callable[..., PartialResult] = analyse_pieces, shipping: Shipping | None = None):
        self.rank = rank
        self.timing = timing
        self.send_to = send  # send(dest, message)
        self.say = say
        self.injector = injector
        self.task_delay = task_delay  # extra seconds per task (demos, tests): a slow worker
        self.clock = clock
        self.analyse = analyse  # analyse(pieces, on_chunk=..., warn=..., [files=...]) -> PartialResult
        self.shipping = shipping  # fetches from the master the files this host cannot see (None: reads them here)
        self.master: int | None = None  # the rank we work for
        self.epoch = 0  # its term
        self.queue: deque[Task] = deque()  # assigned, not started
        self.results: dict[str, PartialResult] = {}  # every result we computed (resent to a new master)
        self.unacked: set[str] = set()  # results the master has not confirmed
        self.last_spoke = 0.0  # monotonic time of our last message to the master
        self.counting: _Counting | None = None  # the task being counted
        self.assign_seq = 0  # the last assignment read from our master

    def follow(self, master: int, epoch: int) -> None:
        """Works for `master` from now on: drops old assignments, resends every result."""
        self.master, self.epoch = master, epoch
        self.queue.clear()  # the new master re-plans whatever is not done
        self.assign_seq = 0
        for task_id, result in self.results.items():
            self._send(Result(epoch, task_id, result))
        self.unacked = set(self.results)
        self._send(WorkRequest(epoch, 1 + PREFETCH))

    def on_message(self, source: int, message: Assign | Ack) -> None:
        """An Assign or Ack from our master (older terms are ignored)."""
        if source != self.master or message.epoch < self.epoch:
            return
        if isinstance(message, Assign):
            self.queue.extend(message.tasks)
            self.assign_seq = max(self.assign_seq, message.seq)
        elif isinstance(message, Ack):
            self.unacked.difference_update(message.task_ids)
        else:
            raise TypeError(f"not a message for a worker: {type(message).__name__}")
        if self.injector is not None:
            self.injector.check(message.progress)

    @property
    def has_work(self) -> bool:
        return self.counting is not None or bool(self.queue)

    def drop_assignments(self) -> None:
        """Forgets what the old master assigned (this rank became master: it re-plans them)."""
        self.queue.clear()
        self.counting = None

    def work(self) -> tuple[bool, Counted | None]:
        """One step of counting (starting the next queued task if none runs): whether it
        counted anything (False while a slow worker's --task-delay runs), and the task it
        finished, if it did."""
        if self.counting is None:
            task = self.queue.popleft()
            self.say(f"[Worker {self.rank}] Processing {task.describe()}")
            self.counting = _Counting(task, self.clock() + self.task_delay)
        counting = self.counting
        if self.clock() < counting.ready_at:  # a slow worker (--task-delay) waits first, then counts
            self.heartbeat_if_due()
            return False, None
        if counting.steps:
            pieces = counting.steps[0]
            try:
                reading = self._reading(pieces, counting)
                if reading is None:  # shipped bytes on their way
                    self.heartbeat_if_due()
                    return False, None
                counting.steps.popleft()
                counting.result.add(self.analyse(pieces, on_chunk=self.heartbeat_if_due, warn=warn, **reading))
                if reading:
                    self.shipping.counted(pieces)
            except AnalyserError as exc:
                self.counting = None
                return True, Counted(counting.task.task_id, None, str(exc))
            if counting.steps:
                return True, None
        self.counting = None
        return True, Counted(counting.task.task_id, counting.result)

    def _reading(self, pieces: tuple[Piece, ...], counting: _Counting) -> dict | None:
        """The reader's keyword arguments for a step: where its bytes come from (None: on their way).
        The step after it is named too, so that its shipped bytes travel while this one is counted."""
        if self.shipping is None:
            return {}
        if len(counting.steps) > 1:
            after = counting.steps[1]
        else:
            after = next(iter(count_steps(self.queue[0], STEP_BYTES)), None) if self.queue else None
        files = self.shipping.files_for(pieces, self.master, self.epoch, after)
        return None if files is None else {"files": files}

    def deliver(self, counted: Counted) -> None:
        """Sends a result to the master and keeps it until the job ends."""
        if counted.result is not None:
            self.results[counted.task_id] = counted.result
            self.unacked.add(counted.task_id)
        self._send(Result(self.epoch, counted.task_id, self.results.get(counted.task_id), counted.error))

    def heartbeat_if_due(self) -> None:
        if self.master is not None and self.clock() - self.last_spoke >= self.timing.heartbeat_interval:
            running = (self.counting.task.task_id,) if self.counting is not None else ()
            holding = running + tuple(t.task_id for t in self.queue)
            self._send(Heartbeat(self.epoch, holding, self.assign_seq))

    def _send(self, message) -> None:
        if self.master is None:
            return
        self.send_to(self.master, message)
        self.last_spoke = self.clock()
