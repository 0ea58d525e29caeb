"""The worker's duties: pull tasks, count them, send results, stay audibly alive.

A worker asks for as many tasks as it can hold (the one it runs plus a
prefetched one, so it never waits on a round trip), sends each result as soon
as it is done, and keeps every result it computed until the job ends: a
completed send to a dead master proves nothing, and when a new master takes
over, the worker sends it everything again (the master counts each task id
once). While it counts, it sends a heartbeat between chunks, so a long task
never looks like a dead worker.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from loganalyser.console import warn
from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError
from loganalyser.faults.injected import FaultInjector
from loganalyser.work.tasks import Task

from .protocol import Ack, Assign, Heartbeat, Result, WorkRequest
from .scheduler import Timing
from .seams import Clock, Say, SendTo

PREFETCH = 1  # tasks held beyond the one running


class WorkerDuty:
    """What a rank does while another rank is master."""

    def __init__(self, rank: int, timing: Timing, send: SendTo, say: Say, injector: FaultInjector | None = None,
                 task_delay: float = 0.0, clock: Clock = time.monotonic,
                 analyse: Callable[..., PartialResult] = analyse_pieces):
        self.rank = rank
        self.timing = timing
        self.send_to = send  # send(dest, message)
        self.say = say
        self.injector = injector
        self.task_delay = task_delay  # extra seconds per task (demos, tests): a slow worker
        self.clock = clock
        self.analyse = analyse  # analyse(pieces, on_chunk=..., warn=...) -> PartialResult
        self.master: int | None = None  # the rank we work for
        self.epoch = 0  # its term
        self.queue: deque[Task] = deque()  # assigned, not started
        self.results: dict[str, PartialResult] = {}  # every result we computed (resent to a new master)
        self.unacked: set[str] = set()  # results the master has not confirmed
        self.last_spoke = 0.0  # monotonic time of our last message to the master
        self.running: str | None = None  # the task being counted
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
        return bool(self.queue)

    def run_next(self, service) -> tuple[str, PartialResult | None, str | None]:
        """Counts the next queued task; `service()` runs between chunks (heartbeats, messages)."""
        task = self.queue.popleft()
        self.running = task.task_id
        self.say(f"[Worker {self.rank}] Processing {task.describe()}")
        try:
            self._pause(self.task_delay, service)
            result = self.analyse(task.pieces, on_chunk=lambda: (self.heartbeat_if_due(), service()), warn=warn)
        except AnalyserError as exc:
            return task.task_id, None, str(exc)
        finally:
            self.running = None
        return task.task_id, result, None

    def deliver(self, task_id: str, result: PartialResult | None, error: str | None) -> None:
        """Sends a result to the master and keeps it until the job ends."""
        if result is not None:
            self.results[task_id] = result
            self.unacked.add(task_id)
        self._send(Result(self.epoch, task_id, self.results.get(task_id), error))

    def heartbeat_if_due(self) -> None:
        if self.master is not None and self.clock() - self.last_spoke >= self.timing.heartbeat_interval:
            holding = ((self.running,) if self.running else ()) + tuple(t.task_id for t in self.queue)
            self._send(Heartbeat(self.epoch, holding, self.assign_seq))

    def _pause(self, seconds: float, service) -> None:
        """Sleeps `seconds` while still sending heartbeats and serving messages."""
        end = self.clock() + seconds
        while (left := end - self.clock()) > 0:
            time.sleep(min(left, self.timing.heartbeat_interval / 4, 0.05))
            self.heartbeat_if_due()
            service()

    def _send(self, message) -> None:
        if self.master is None:
            return
        self.send_to(self.master, message)
        self.last_spoke = self.clock()
