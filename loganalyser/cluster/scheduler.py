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
  tasks to the front of the queue; if it speaks again it may work again;
* the remaining tasks and the accepted ids tile every planned task: when a
  task is split (stealing.py) or a result arrives for a sub-range that is not
  one of ours (a resumed or taken-over job, a late reply), the tasks it
  overlaps give way to what is left of them (subranges.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from loganalyser.counting.result import PartialResult
from loganalyser.work.jobstate import JobState
from loganalyser.work.subranges import bounds_of, minus, overlap, root_of, span, splittable, sub_task
from loganalyser.work.tasks import Task

from .protocol import Heartbeat, Result, SplitReply, WorkRequest
from .stealing import SPLIT_MIN_STEPS, STEP_BYTES, AskSplit, Rates, TaskSplit, keep_share, step_for


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

    def __init__(self, tasks: list[Task], workers, timing: Timing, now: float, state: JobState | None = None,
                 step_bytes: int = STEP_BYTES):
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
        self.step_bytes = step_bytes  # the workers' counting step: cuts fall on its grid
        self.planned = dict(self.tasks)  # the plan's own tasks (roots of every sub-range)
        self.parts = {t: {t} for t in self.remaining}  # root -> its remaining (sub-)task ids
        self.rates = Rates()
        self.position: dict[str, int] = {}  # task id -> where its worker's counting stood (heartbeats)
        self.splitting: dict[str, int] = {}  # task id -> the worker asked to split it (no reply yet)
        self.unsplit: set[str] = set()  # tasks a worker would not cut (too little left)
        self.now = now
        for task_id, _ in list(self.state.items()):  # parts of planned tasks done before a split's restart
            if task_id not in self.planned:
                self._count_done(task_id)
        self.admit = None  # admit(task) -> False: a result whose input changed while it was counted is dropped
        self.steal = True  # idle workers may take part of a busy worker's range (False: --follow)

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
        self.now = now
        if isinstance(message, WorkRequest):
            # A worker asks for work when it starts or follows a new master:
            # it holds nothing then, so what we think it holds goes back.
            actions = self._welcome_back(source, holding=())
            self._release(source)
            self.capacity[source] = max(1, message.capacity)
            self.assign_seq[source] = 0
            return actions + self._fill_all()
        if isinstance(message, Heartbeat):
            if message.position is not None and message.holding:
                self.position[message.holding[0]] = message.position
            if message.rate:
                self.rates.reported[source] = message.rate
            # A lost worker is taken back only with a heartbeat that says what
            # it holds, written after it read every assignment we sent (else
            # it holds more than it says): then it gets work up to its capacity.
            if message.assign_seq != self.assign_seq[source]:
                return []
            return self._welcome_back(source, holding=message.holding) + self._fill_all()
        if isinstance(message, Result):
            return self._on_result(source, message)  # counted once even from a lost worker
        if isinstance(message, SplitReply):
            return self._on_split_reply(source, message)
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
        self.now = now
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
            if message.result is not None:
                self.rates.finished(source, message.result.bytes, self.now, bool(self.held[source]))
        if self.holder.get(message.task_id) == source:
            del self.holder[message.task_id]
        self.splitting.pop(message.task_id, None)
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
        if not self.state.accept(task_id, result):
            return
        self._accepted.append(task_id)
        self._count_done(task_id)

    def _count_done(self, task_id: str) -> None:
        """A newly accepted id: one of our remaining tasks, or a part of a planned task that
        other (sub-)tasks of ours overlap."""
        if task_id in self.remaining:
            self._drop(task_id)
            self.done_bytes += self.tasks[task_id].size
        else:
            self._absorb(task_id)

    def _absorb(self, task_id: str) -> None:
        """An accepted result for a part of a planned task that is not one of our remaining
        tasks: the remaining tasks it overlaps give way to what is left of them."""
        root = self.planned.get(root_of(task_id))
        if root is None or root.task_id not in self.parts:
            return  # not of this plan, or of a task already done
        done = bounds_of(task_id) or span(root)
        self.done_bytes += done[1] - done[0]
        for part in sorted(self.parts[root.task_id]):
            task = self.tasks[part]
            if overlap(span(task), done):
                self._drop(part)
                for start, end in minus(span(task), done):
                    self._add(sub_task(root, start, end))

    def _add(self, task: Task) -> None:
        """A new remaining (sub-)task, first in line."""
        self.tasks[task.task_id] = task
        self.remaining.add(task.task_id)
        self.parts.setdefault(root_of(task.task_id), set()).add(task.task_id)
        self.pending.appendleft(task.task_id)

    def _drop(self, task_id: str) -> None:
        """`task_id` is no longer to be done (counted, or replaced by its parts)."""
        self.remaining.discard(task_id)
        root = root_of(task_id)
        parts = self.parts.get(root)
        if parts is not None:
            parts.discard(task_id)
            if not parts:
                del self.parts[root]
        self.splitting.pop(task_id, None)  # a worker still running it runs it anyway: its result is ignored

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
            self.splitting.pop(task_id, None)
        self.held[worker] = []
        self.rates.idle(worker)
        self.pending.extendleft(reversed(taken))  # first in line, in their old order
        return taken

    def _fill_all(self) -> list:
        actions = []
        live = self.live_workers()
        for w in live:
            tasks = []
            slow = self.rates.slow(w, live)  # the smallest tasks go to a slow worker, the largest to the others
            while len(self.held[w]) + len(tasks) < self.capacity[w] and self.pending:
                task_id = self.pending.pop() if slow else self.pending.popleft()
                if task_id not in self.remaining or task_id in self.holder:
                    continue
                if task_id in self.held[w]:  # it still runs it (it came back holding it): it is the holder
                    self.holder[task_id] = w
                    continue
                tasks.append(task_id)
            actions += self._assign(w, tasks)
        return actions + self._steal()

    def _assign(self, worker: int, tasks: list[str]) -> list:
        if not tasks:
            return []
        if not self.held[worker]:
            self.rates.started(worker, self.now)
        for task_id in tasks:
            self.held[worker].append(task_id)
            self.holder[task_id] = worker
        flags = tuple(t in self.was_lost for t in tasks)
        self.reassigned += sum(flags)
        self.assign_seq[worker] += 1
        return [AssignTasks(worker, tuple(self.tasks[t] for t in tasks), flags, self.assign_seq[worker])]

    # ------------------------------------------------------------ work stealing
    def _idle_workers(self) -> list[int]:
        return [w for w in self.live_workers() if self.capacity[w] and not self.held[w]]

    def _steal(self) -> list:
        """Idle workers and nothing to hand out: ask busy workers to give up part of their
        largest ranges (one request per idle worker at a time)."""
        idle = self._idle_workers()
        if not self.steal or len(idle) <= len(self.splitting):
            return []
        left: dict[str, int] = {}  # candidate task -> bytes left
        worthwhile: set[str] = set()  # candidates worth a request: a queued task, or one with steps to spare
        backlog: dict[int, int] = {}  # busy worker -> bytes it has left in all
        for w in self.live_workers():
            for i, task_id in enumerate(self.held[w]):
                if task_id not in self.remaining or self.holder.get(task_id) != w:
                    continue
                task = self.tasks[task_id]
                if not splittable(task):
                    backlog[w] = backlog.get(w, 0) + task.size
                    continue
                start, end = span(task)
                bytes_left = end - (self.position.get(task_id, start) if i == 0 else start)
                backlog[w] = backlog.get(w, 0) + bytes_left
                if task_id not in self.splitting and task_id not in self.unsplit:
                    left[task_id] = bytes_left
                    if i > 0 or bytes_left > SPLIT_MIN_STEPS * step_for(self.rates.rate(w), self.step_bytes):
                        worthwhile.add(task_id)
        actions = []
        for w in idle[len(self.splitting):]:
            if not worthwhile:
                break
            task_id = max(worthwhile, key=lambda t: (left[t], t))
            worthwhile.discard(task_id)
            victim = self.holder[task_id]
            keep = keep_share(left[task_id], backlog[victim], self.rates.rate_or_typical(victim),
                              self.rates.rate_or_typical(w))
            self.splitting[task_id] = victim
            actions.append(AskSplit(victim, task_id, keep))
        return actions

    def _on_split_reply(self, source: int, message: SplitReply) -> list:
        task_id = message.task_id
        self.splitting.pop(task_id, None)
        task = self.tasks.get(task_id)
        cut = message.cut
        if task is None or cut is None or not splittable(task) or not span(task)[0] <= cut < span(task)[1]:
            self.unsplit.add(task_id)
            return self._fill_all()
        start, end = span(task)
        kept = sub_task(task, start, cut) if cut > start else None
        given = sub_task(task, cut, end)
        if task_id in self.held[source]:  # it runs the part it kept instead (or, cut at the start, nothing)
            place = self.held[source].index(task_id)
            self.held[source][place:place + 1] = [kept.task_id] if kept is not None else []
        if task_id not in self.remaining or self.holder.get(task_id) != source:
            return self._fill_all()  # stale: the result of the part it kept is absorbed when it comes
        # (Asked by us or not, e.g. before we took the task back and gave it to it again: it did cut.)
        del self.holder[task_id]
        self._drop(task_id)
        if kept is not None:
            self._add(kept)
            self.pending.popleft()  # it stays with its worker
            self.holder[kept.task_id] = source
            if task_id in self.position:
                self.position[kept.task_id] = self.position.pop(task_id)
        self._add(given)
        actions: list = [TaskSplit(source, task_id, kept, given)]
        idle = self._idle_workers()
        if idle:  # to the fastest idle worker, not back to the one that gave it up
            taker = max(idle, key=lambda w: (self.rates.rate_or_typical(w), -w))
            self.pending.popleft()
            actions += self._assign(taker, [given.task_id])
        return actions + self._fill_all()
