"""The master's task queue as a pure state machine (no MPI, no clock, no I/O).

The shell feeds it what happened (`step` for a message, `process_failed` for
a ULFM failure notice, `tick` as time passes, with `now` from its clock) and
carries out the actions it returns.

Invariants:
* a task is in exactly one place: pending, held by one live worker, or done;
* a result is accepted once per task id (JobState); a duplicate or late one is
  acknowledged and ignored;
* a worker holds at most its capacity (the task it runs plus its prefetch);
* a worker that dies or is silent longer than `worker_timeout` loses its
  tasks to the front of the queue; if it speaks again it may work again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from loganalyser.counting.result import PartialResult
from loganalyser.work.jobstate import JobState
from loganalyser.work.tasks import Task

from .protocol import Heartbeat, Result, WorkRequest


@dataclass(frozen=True)
class Timing:
    """How often workers speak and how long silence may last."""

    heartbeat_interval: float = 0.5  # a worker speaks at least this often
    worker_timeout: float = 10.0  # silence longer than this means failed

    def __post_init__(self):
        if not 0 < self.heartbeat_interval < self.worker_timeout:
            raise ValueError("need 0 < heartbeat interval < worker timeout")


# Actions the shell carries out.
@dataclass(frozen=True)
class AssignTasks:
    worker: int
    tasks: tuple[Task, ...]
    reassigned: tuple[bool, ...]  # per task: was it taken from a lost worker?
    seq: int = field(default=0, compare=False)  # numbers the assignments to this worker (its heartbeats say the last one read)


@dataclass(frozen=True)
class AckResults:
    worker: int
    task_ids: tuple[str, ...]


@dataclass(frozen=True)
class WorkerLost:
    worker: int
    reason: str  # "died" (ULFM) or "timeout"
    requeued: tuple[Task, ...]


@dataclass(frozen=True)
class WorkerBack:
    worker: int


@dataclass(frozen=True)
class InputFailed:
    worker: int
    task_id: str
    error: str  # the job cannot be exact: the shell stops it


class Scheduler:
    """Hands tasks to workers, largest first, and takes their results once."""

    def __init__(self, tasks: list[Task], workers, timing: Timing, now: float, state: JobState | None = None):
        self.timing = timing
        self.state = state if state is not None else JobState()
        self.tasks = {t.task_id: t for t in tasks}
        self.total_bytes = sum(t.size for t in tasks)
        self.remaining = {t.task_id for t in tasks if t.task_id not in self.state}
        self.pending = deque(t.task_id for t in tasks if t.task_id in self.remaining)
        self.holder: dict[str, int] = {}  # task id -> worker running or holding it
        self.held = {w: [] for w in workers}  # worker -> task ids, in order given
        self.capacity = {w: 0 for w in workers}  # 0 until the worker asks for work
        self.assign_seq = {w: 0 for w in workers}  # assignments sent to each worker since its WorkRequest
        self.last_heard = {w: now for w in workers}
        self.lost: dict[int, str] = {}  # worker -> why it is out of the pool now
        self.dead: set[int] = set()  # ULFM says gone for good
        self.failed_workers: list[int] = []  # every worker ever declared failed
        self.was_lost: set[str] = set()  # tasks taken back from a lost worker
        self.reassigned = 0  # assignments of such tasks
        self.done_bytes = sum(self.tasks[t].size for t in self.tasks if t not in self.remaining)
        self._accepted: list[str] = []  # accepted since the last drain_accepted()
        self.admit = None  # admit(task) -> False: a result whose input changed while it was counted is dropped

    # ------------------------------------------------------------------ queries
    @property
    def finished(self) -> bool:
        return not self.remaining

    @property
    def progress(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0

    def drain_accepted(self) -> list[str]:
        """Task ids accepted since the last call (for checkpoints and replication)."""
        accepted, self._accepted = self._accepted, []
        return accepted

    def live_workers(self) -> list[int]:
        return [w for w in self.held if w not in self.lost]

    # ------------------------------------------------------------------ events
    def step(self, source: int, message, now: float) -> list:
        """Feeds one message from `source`; returns actions."""
        if source not in self.held or source in self.dead:
            return []
        self.last_heard[source] = now
        if isinstance(message, WorkRequest):
            # A worker asks for work when it starts or follows a new master:
            # it holds nothing then, so what we think it holds goes back.
            actions = self._welcome_back(source, holding=())
            self._release(source)
            self.capacity[source] = max(1, message.capacity)
            self.assign_seq[source] = 0
            return actions + self._fill_all()
        if isinstance(message, Heartbeat):
            # A lost worker is taken back only with a heartbeat that says what
            # it holds, written after it read every assignment we sent (else
            # it holds more than it says): then it gets work up to its capacity.
            if message.assign_seq != self.assign_seq[source]:
                return []
            return self._welcome_back(source, holding=message.holding) + self._fill_all()
        if isinstance(message, Result):
            return self._on_result(source, message)  # counted once even from a lost worker
        raise TypeError(f"not a message for the scheduler: {type(message).__name__}")

    def process_failed(self, worker: int, now: float) -> list:
        """ULFM reports `worker` dead: its tasks go back at once."""
        if worker not in self.held or worker in self.dead:
            return []
        self.dead.add(worker)
        return self._lose(worker, "died")

    def forgive_silence(self, now: float) -> None:
        """The master itself was not running (paused): its workers' silence proves nothing."""
        for w in self.live_workers():
            self.last_heard[w] = now

    def tick(self, now: float) -> list:
        """Declares silent workers failed."""
        actions = []
        for w in self.live_workers():
            if now - self.last_heard[w] > self.timing.worker_timeout:
                actions += self._lose(w, "timeout")
        return actions

    def accept_local(self, task_id: str, result: PartialResult) -> None:
        """A result computed by the master itself (no live worker, or -np 1), or handed over."""
        self._record(task_id, result)

    def claim_local(self) -> Task | None:
        """The next pending task, for the master to run when no worker is left."""
        while self.pending:
            task_id = self.pending.popleft()
            if task_id in self.remaining and task_id not in self.holder:
                return self.tasks[task_id]
        return None

    def add_tasks(self, tasks: list[Task]) -> list:
        """More work for a job that grows (--follow): queued after what waits; returns assignments."""
        for task in tasks:
            if task.task_id in self.tasks:
                continue
            self.tasks[task.task_id] = task
            self.total_bytes += task.size
            if task.task_id in self.state:
                self.done_bytes += task.size
            else:
                self.remaining.add(task.task_id)
                self.pending.append(task.task_id)
        return self._fill_all()

    def drop(self, task_id: str) -> None:
        """A task whose input changed under it (--follow): never counted, not run again."""
        self.remaining.discard(task_id)

    # ----------------------------------------------------------------- helpers
    def _on_result(self, source: int, message: Result) -> list:
        if message.task_id in self.held[source]:
            self.held[source].remove(message.task_id)
        if self.holder.get(message.task_id) == source:
            del self.holder[message.task_id]
        actions = [AckResults(source, (message.task_id,))]
        if message.error is not None:
            return actions + [InputFailed(source, message.task_id, message.error)]
        if message.task_id in self.remaining:
            if self.admit is not None and not self.admit(self.tasks[message.task_id]):
                self.drop(message.task_id)
            else:
                self._record(message.task_id, message.result)
        return actions + self._fill_all()

    def _record(self, task_id: str, result: PartialResult) -> None:
        if self.state.accept(task_id, result):
            self._accepted.append(task_id)
            self.remaining.discard(task_id)
            self.done_bytes += self.tasks[task_id].size if task_id in self.tasks else 0

    def _welcome_back(self, worker: int, holding) -> list:
        if worker not in self.lost or worker in self.dead:
            return []
        del self.lost[worker]
        self.held[worker] = list(dict.fromkeys(holding))  # it runs these anyway, done or not: they fill its capacity
        for task_id in self.held[worker]:
            if task_id in self.remaining:
                self.holder.setdefault(task_id, worker)
        return [WorkerBack(worker)]

    def _lose(self, worker: int, reason: str) -> list:
        self.lost[worker] = reason
        if worker not in self.failed_workers:
            self.failed_workers.append(worker)
        taken = self._release(worker)
        self.was_lost.update(taken)
        return [WorkerLost(worker, reason, tuple(self.tasks[t] for t in taken))] + self._fill_all()

    def _release(self, worker: int) -> list[str]:
        """Puts the worker's unfinished tasks first in line; returns their ids."""
        taken = [t for t in dict.fromkeys(self.held[worker]) if t in self.remaining and self.holder.get(t) == worker]
        for task_id in taken:
            del self.holder[task_id]
        self.held[worker] = []
        self.pending.extendleft(reversed(taken))  # first in line, in their old order
        return taken

    def _fill_all(self) -> list:
        actions = []
        for w in self.live_workers():
            tasks = []
            while len(self.held[w]) < self.capacity[w] and self.pending:
                task_id = self.pending.popleft()
                if task_id not in self.remaining or task_id in self.holder:
                    continue
                if task_id in self.held[w]:  # it still runs it (it came back holding it): it is the holder
                    self.holder[task_id] = w
                    continue
                self.held[w].append(task_id)
                self.holder[task_id] = w
                tasks.append(task_id)
            if tasks:
                flags = tuple(t in self.was_lost for t in tasks)
                self.reassigned += sum(flags)
                self.assign_seq[w] += 1
                actions.append(AssignTasks(w, tuple(self.tasks[t] for t in tasks), flags, self.assign_seq[w]))
        return actions
