"""The worker role: pull tasks, count them, send results, stay audibly alive.

A worker asks for as many tasks as it can hold (the one it runs plus a
prefetched one, so it never waits on a round trip), sends each result as soon
as it is done, and keeps every result until the master acknowledges it (a
completed send to a dead master proves nothing). While it counts, it sends a
heartbeat between chunks, so a long task never looks like a dead worker.
"""

from __future__ import annotations

import time
from collections import deque

from .errors import AnalyserError, ExitCode
from .protocol import Ack, Assign, Heartbeat, Result, Stop, WorkRequest
from .reader import analyse_pieces
from .scheduler import Timing
from .tasks import Task

PREFETCH = 1  # tasks held beyond the one running


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


class Worker:
    """One worker's loop; `run` returns when the master says stop."""

    def __init__(self, transport, master: int, timing: Timing, injector, say, epoch: int = 1, task_delay: float = 0.0):
        self.transport = transport
        self.master = master
        self.timing = timing
        self.injector = injector
        self.say = say
        self.epoch = epoch
        self.queue: deque[Task] = deque()  # assigned, not started
        self.unacked: dict[str, dict] = {}  # results the master has not confirmed
        self.last_spoke = 0.0  # monotonic time of our last message to the master
        self.task_delay = task_delay  # extra seconds per task (demos, tests): a slow worker

    def run(self) -> int:
        self._send(WorkRequest(self.epoch, 1 + PREFETCH))
        idle = IdleBackoff()
        while True:
            stop = self._drain()
            if stop is not None:
                return stop
            if self.master in self.transport.take_failures():
                self.say(f"[Worker {self.transport.rank}] Master {self.master} failed; stopping")
                return int(ExitCode.INTERNAL)
            if self.queue:
                self._run_task(self.queue.popleft())
                idle.reset()
            else:
                self._heartbeat_if_due(None)
                idle.sleep()

    def _drain(self):
        """Handles every waiting message; returns an exit code on Stop."""
        while (got := self.transport.poll(self.master)) is not None:
            _, message = got
            if isinstance(message, Assign):
                self.queue.extend(message.tasks)
                self.injector.check(message.progress)
            elif isinstance(message, Ack):
                for task_id in message.task_ids:
                    self.unacked.pop(task_id, None)
                self.injector.check(message.progress)
            elif isinstance(message, Stop):
                return 0
        return None

    def _run_task(self, task: Task) -> None:
        self.say(f"[Worker {self.transport.rank}] Processing {task.describe()}")
        self._pause(self.task_delay, task.task_id)
        try:
            result = analyse_pieces(task.pieces, on_chunk=lambda: self._heartbeat_if_due(task.task_id)).to_dict()
            error = None
        except AnalyserError as exc:
            result, error = {}, str(exc)
        self.unacked[task.task_id] = result
        self._send(Result(self.epoch, task.task_id, result, error))

    def _pause(self, seconds: float, busy_with) -> None:
        """Sleeps `seconds` while still sending heartbeats."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, self.timing.heartbeat_interval / 2))
            self._heartbeat_if_due(busy_with)

    def _heartbeat_if_due(self, busy_with) -> None:
        if time.monotonic() - self.last_spoke >= self.timing.heartbeat_interval:
            self._send(Heartbeat(self.epoch, busy_with))

    def _send(self, message) -> None:
        self.transport.send(self.master, message)
        self.last_spoke = time.monotonic()
