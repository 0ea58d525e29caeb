"""The worker's duties: pull tasks, count them, send results, stay audibly alive.

A worker asks for as many tasks as it can hold (the one it runs plus a
prefetched one, so it never waits on a round trip), sends each result as soon
as it is done, and keeps every result it computed until the job ends: a
completed send to a dead master proves nothing, and when a new master takes
over, the worker sends it everything again (the master counts each task id
once). It counts a task a step at a time (`work`, one step per turn of the
rank's loop, about STEP_BYTES of input), so the loop hears its messages
between steps; it sends a heartbeat between chunks, so a long task never looks
like a dead worker, and the heartbeat says where its counting stands. Asked to
give up part of a task (work stealing, stealing.py), it cuts it at a step
boundary and counts only the part it kept, under that part's own id. A step over files this host cannot see
waits, turn after turn, for the bytes the master ships (shipping.py), then is
counted from them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

from loganalyser.console import warn
from loganalyser.counting.formats import AUTO
from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError
from loganalyser.faults.injected import FaultInjector
from loganalyser.work.subranges import span, splittable, sub_task
from loganalyser.work.tasks import Piece, Task

from .protocol import Ack, Assign, Heartbeat, Result, Split, SplitReply, WorkRequest
from .scheduler import Timing
from .seams import Clock, Say, SendTo
from .stealing import MIN_STEP_SHARE, STEP_BYTES, cut_point, step_for
from .shipping import Shipping

PREFETCH = 1  # tasks held beyond the one running


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
    its size). One step each: a compressed piece (it can only be read from its start),
    and a small file left to its reader to detect (AUTO: a range of it has no format).
    """
    steps: list[tuple[Piece, ...]] = []
    group: list[Piece] = []
    size = 0
    for piece in task.pieces:
        if piece.length <= step_bytes or piece.compressed or piece.format == AUTO:
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

    def __init__(self, task: Task, ready_at: float, step_bytes: int):
        self.task = task
        self.step = step_bytes  # the size of its steps
        self.steps = deque(count_steps(task, step_bytes))  # what is left to count
        self.result = PartialResult()  # what is counted so far
        self.ready_at = ready_at  # --task-delay: not finished before then

    @property
    def position(self) -> int:
        """Where counting stands: the start of the next step (of a one-piece task)."""
        return self.steps[0][0].offset if self.steps else span(self.task)[1]

    def cut(self, cut: int) -> None:
        """Counts only [start, cut) from now on (cut is a step boundary, at or after position)."""
        self.task = sub_task(self.task, span(self.task)[0], cut)
        self.steps = deque(step for step in self.steps if step[0].offset < cut)

    def regrid(self, step: int) -> None:
        """Counts what is left of a one-range task in steps of `step` bytes from where it stands."""
        if step != self.step and self.steps and splittable(self.task):
            self.step = step
            self.steps = deque(count_steps(sub_task(self.task, self.position, span(self.task)[1]), step))


class WorkerDuty:
    """What a rank does while another rank is master."""

    def __init__(self, rank: int, timing: Timing, send: SendTo, say: Say, injector: FaultInjector | None = None,
                 task_delay: float = 0.0, clock: Clock = time.monotonic,
                 analyse: Callable[..., PartialResult] = analyse_pieces, step_bytes: int = STEP_BYTES,
                 shipping: Shipping | None = None):
        self.rank = rank
        self.timing = timing
        self.send_to = send  # send(dest, message)
        self.say = say
        self.injector = injector
        self.task_delay = task_delay  # extra seconds per task (demos, tests): a slow worker
        self.clock = clock
        self.analyse = analyse  # analyse(pieces, on_chunk=..., warn=..., [files=...]) -> PartialResult
        self.step_bytes = step_bytes  # input counted per step (less if this rank is slow)
        self.rate: float | None = None  # bytes per second of our counting steps (a moving average)
        self.measured = False  # a step was counted: until then steps are small, to learn the rate soon
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

    def on_message(self, source: int, message: Assign | Ack | Split) -> None:
        """An Assign, Ack or Split from our master (older terms are ignored)."""
        if source != self.master or message.epoch < self.epoch:
            return
        if isinstance(message, Split):
            self._send(SplitReply(self.epoch, message.task_id, self._split(message.task_id, message.keep)))
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
            self.counting = _Counting(task, self.clock() + self.task_delay, self._step(task))
        counting = self.counting
        if self.clock() < counting.ready_at:  # a slow worker (--task-delay) waits first, then counts
            self.heartbeat_if_due()
            return False, None
        if counting.steps:
            pieces = counting.steps[0]
            started = self.clock()
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
            if self.injector is not None:
                self.injector.drag(self.clock() - started)  # --inject slow: a slower rank
            self._measure(sum(p.length for p in pieces), self.clock() - started)
            self.heartbeat_if_due()  # (a step may be shorter than the reader's chunk, which calls it)
            if counting.steps:
                return True, None
        self.counting = None
        return True, Counted(counting.task.task_id, counting.result)

    def _step(self, task: Task) -> int:
        """The step for `task`: small for the first range this worker counts (to learn its rate soon)."""
        if self.measured or not splittable(task):
            return step_for(self.rate, self.step_bytes)
        return max(1, self.step_bytes // MIN_STEP_SHARE)

    def _measure(self, nbytes: int, seconds: float) -> None:
        """Updates our rate; a slow rank counts the rest of its task in smaller steps."""
        self.measured = True
        if seconds > 0 and nbytes > 0:
            rate = nbytes / seconds
            self.rate = rate if self.rate is None else 0.7 * self.rate + 0.3 * rate
        if self.counting is not None and self.counting.steps:
            step = self._step(self.counting.task)
            if not 0.5 * self.counting.step <= step <= 2 * self.counting.step:  # only when it matters
                self.counting.regrid(step)

    def _reading(self, pieces: tuple[Piece, ...], counting: _Counting) -> dict | None:
        """The reader's keyword arguments for a step: where its bytes come from (None: on their way).
        The step after it is named too, so that its shipped bytes travel while this one is counted."""
        if self.shipping is None:
            return {}
        if len(counting.steps) > 1:
            after = counting.steps[1]
        else:
            after = next(iter(count_steps(self.queue[0], self._step(self.queue[0]))), None) if self.queue else None
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
            position = self.counting.position if self.counting is not None and splittable(self.counting.task) else None
            self._send(Heartbeat(self.epoch, holding, self.assign_seq, position, self.rate))

    def _split(self, task_id: str, keep: float) -> int | None:
        """Gives up what follows about `keep` of what is left of a task it runs or holds;
        returns the cut (None: too little left, or the task is not here any more)."""
        counting = self.counting
        running = counting is not None and counting.task.task_id == task_id
        index = next((i for i, t in enumerate(self.queue) if t.task_id == task_id), None)
        task = counting.task if running else self.queue[index] if index is not None else None
        if task is None or not splittable(task):
            return None
        start, end = span(task)
        step = counting.step if running else self._step(task)
        cut = cut_point(counting.position if running else start, end, keep, step)
        if cut is None:
            return None
        if not running:
            del self.queue[index]
            if cut > start:
                self.queue.insert(index, sub_task(task, start, cut))
        elif cut > start:
            counting.cut(cut)
        else:  # nothing counted yet (a --task-delay wait): it gives all of it up
            self.counting = None
        return cut

    def _send(self, message) -> None:
        if self.master is None:
            return
        self.send_to(self.master, message)
        self.last_spoke = self.clock()
