"""What the master tells watchers: events as they happen, and the live status document.

Every rank holds a JobWatch, but only the master of the moment speaks through
it: it turns the scheduler's actions into events (`--events`), keeps per-rank
figures, and publishes the status document (`--status`, `--dashboard`,
`--tui`) a few times a second from its loop. A new master takes over the same
event file, status file and dashboard address, so a failover shows in one
place. Nothing here sends a message or waits: it only reads the master's state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from loganalyser.monitor import events as ev
from loganalyser.monitor.board import StatusBoard
from loganalyser.monitor.dashboard import DashboardServer
from loganalyser.monitor.events import EventLog, now_iso
from loganalyser.monitor.page import static_page
from loganalyser.persistence.atomic import write_atomic

from .scheduler import AckResults, AssignTasks, InputFailed, WorkerBack, WorkerLost
from .stealing import TaskSplit

PUBLISH_EVERY = 0.25  # seconds between two status documents
HISTORY = 240  # points of the throughput chart kept


@dataclass
class _RankFigures:
    tasks_done: int = 0
    bytes_done: int = 0
    first_assign: float | None = None


@dataclass
class JobWatch:
    """The watchers' view of a job, fed by whichever rank is master."""

    rank: int
    size: int
    events_path: str | None = None
    board: StatusBoard | None = None
    views: list = field(default_factory=list)  # objects with show(doc, force=False): the terminal view
    serve: tuple[str, int] | None = None  # the dashboard's address, served while this rank is master
    final_page: str | None = None  # --dashboard-html: where the last status goes as a static page
    linger: float = 0.0  # seconds the dashboard stays up after the result, so open pages see the end
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # for the events' ISO times
    elections: int = 0  # terms started while this rank ran (the node keeps it up to date)
    checkpoint: str | None = None  # the checkpoint in force, as this master knows it
    _server: DashboardServer | None = None  # serving while this rank is master
    _ended: bool = False  # the result is out
    _log: EventLog | None = None  # opened when this rank first has something to say
    _figures: dict = field(default_factory=dict)  # worker rank -> _RankFigures
    _history: list = field(default_factory=list)  # [seconds since the first status, bytes done]
    _started: float | None = None  # clock time of the first status document
    _published: float = float("-inf")  # clock time of the last one
    _sizes: dict = field(default_factory=dict)  # task id -> bytes, for the figures of results

    @property
    def active(self) -> bool:
        return bool(self.events_path or self.board or self.views)

    # -- events -------------------------------------------------------------------------------

    def event(self, kind: str, epoch: int, **fields) -> None:
        if not self.events_path:
            return
        if self._log is None:
            self._log = EventLog(self.events_path, self.wall)
        self._log.emit(kind, rank=self.rank, epoch=epoch, **fields)

    def actions(self, actions, master) -> None:
        """The scheduler's actions the master carried out, as events and per-rank figures."""
        if not self.active:
            return
        now = self.clock()
        for action in actions:
            if isinstance(action, AssignTasks):
                figures = self._figures.setdefault(action.worker, _RankFigures())
                figures.first_assign = figures.first_assign if figures.first_assign is not None else now
                for task, again in zip(action.tasks, action.reassigned):
                    self._sizes[task.task_id] = task.size
                    self.event(ev.ASSIGN, master.epoch, worker=action.worker, task=task.task_id, bytes=task.size,
                               reassigned=bool(again))
            elif isinstance(action, AckResults):
                figures = self._figures.setdefault(action.worker, _RankFigures())
                for task_id in action.task_ids:
                    figures.tasks_done += 1
                    figures.bytes_done += self._sizes.get(task_id, 0)
                    self.event(ev.RESULT, master.epoch, worker=action.worker, task=task_id)
            elif isinstance(action, WorkerLost):
                self.event(ev.FAILURE, master.epoch, worker=action.worker, how=action.reason)
                for task in action.requeued:
                    self.event(ev.REQUEUE, master.epoch, worker=action.worker, task=task.task_id)
            elif isinstance(action, WorkerBack):
                self.event("worker_back", master.epoch, worker=action.worker)
            elif isinstance(action, InputFailed):
                self.event(ev.STOP, master.epoch, reason="input error", error=action.error)
            elif isinstance(action, TaskSplit):
                for part in (action.kept, action.given):
                    if part is not None:
                        self._sizes[part.task_id] = part.size
                self.event(ev.SPLIT, master.epoch, worker=action.worker, task=action.task_id,
                           kept=action.kept.task_id if action.kept is not None else None, given=action.given.task_id,
                           kept_bytes=action.kept.size if action.kept is not None else 0, given_bytes=action.given.size)

    def became_master(self, master) -> None:
        """A term begins: the first one is the job's start, a later one an election's result."""
        if master.epoch == 1:
            self.event(ev.JOB_START, 1, ranks=self.size, tasks=len(master.scheduler.tasks),
                       bytes=master.scheduler.total_bytes, resumed_tasks=len(master.state))
        else:
            self.event(ev.ELECTION_RESULT, master.epoch, master=master.rank, elections=self.elections,
                       results_in_hand=len(master.state))
        if self.serve is not None and self._server is None and self.board is not None:
            self._server = DashboardServer(self.board, *self.serve)
            self._server.start()  # binds as soon as the address is free (an old master may still hold it)
        self.publish(master, done=False, force=True)

    def handed_over(self, master, to: int, epoch: int, results: int) -> None:
        """This master steps down for a newer term: the new one serves the dashboard."""
        self.event("handover", master.epoch, to=to, new_epoch=epoch, results=results)
        self.stop_serving()

    def stop_serving(self) -> None:
        """Stops the dashboard; after the job's end, only once it has lingered."""
        if self._server is not None and self._ended and self.linger > 0:
            time.sleep(self.linger)  # the job is over: open pages fetch the final document meanwhile
        if self._server is not None:
            self._server.stop()
            self._server = None

    def checkpoint_saved(self, epoch: int, folder: str, files: int) -> None:
        self.checkpoint = folder
        self.event(ev.CHECKPOINT, epoch, folder=folder, files=files)

    def job_ended(self, master) -> None:
        """The result is out: the last status (done) and the last events."""
        self.event(ev.STOP, master.epoch, exit_code=master.exit_code)
        self.event(ev.RELEASE, master.epoch)
        self.publish(master, done=True, force=True)
        if self.final_page and self.board is not None:
            write_atomic(self.final_page, static_page(self.board.document()).encode())
        self._ended = True
        self.close()

    # -- status -------------------------------------------------------------------------------

    def publish(self, master, done: bool = False, force: bool = False) -> None:
        """The status document of `master`'s view, at most every PUBLISH_EVERY seconds (or now, if `done`)."""
        if not (self.board or self.views):
            return
        now = self.clock()
        if not force and now - self._published < PUBLISH_EVERY:
            return
        self._published = now
        doc = self.document(master, done, now)
        if self.board is not None:
            self.board.publish(doc, force=force)
        for view in self.views:
            view.show(doc, force=force)

    def document(self, master, done: bool, now: float) -> dict:
        sched = master.scheduler
        if self._started is None:
            self._started = now
        elapsed = max(now - self._started, 1e-9)
        self._history.append([round(elapsed, 2), sched.done_bytes])
        if len(self._history) > HISTORY:
            self._history = self._history[::2]
        rate = _rate(self._history)
        total = master.state.total()
        backups = set(master.backup_ranks())
        ranks = [{"rank": master.rank, "role": "master", "state": "master", "tasks_done": 0, "bytes_done": 0}]
        for w in sorted(sched.held):
            figures = self._figures.get(w, _RankFigures())
            held = sched.held.get(w, [])
            state = "failed" if w in sched.dead else ("counting" if held else "idle")
            busy_for = now - figures.first_assign if figures.first_assign is not None else None
            ranks.append({"rank": w, "role": "backup" if w in backups else "worker", "state": state,
                          "task": sched.tasks[held[0]].describe() if held else None,
                          "tasks_held": len(held), "tasks_done": figures.tasks_done, "bytes_done": figures.bytes_done,
                          "rate_mb_s": round(figures.bytes_done / busy_for / 1e6, 2) if busy_for else None,
                          "last_heard_s": round(now - sched.last_heard.get(w, now), 2)})
        remaining = sched.total_bytes - sched.done_bytes
        return {
            "epoch": master.epoch, "master_rank": master.rank, "done": done, "updated": now_iso(self.wall),
            "ranks": sorted(ranks, key=lambda r: r["rank"]),
            "counts": dict(sorted(total.counts.items())), "lines": total.lines, "bytes_done": sched.done_bytes,
            "bytes_total": sched.total_bytes, "rate_mb_s": round(rate / 1e6, 2),
            "eta_s": round(remaining / rate, 1) if rate > 0 and remaining > 0 else (0.0 if not remaining else None),
            "queue": {"tasks_pending": len(sched.pending), "bytes_pending": sum(sched.tasks[t].size for t in sched.pending),
                      "in_flight": sum(len(h) for h in sched.held.values()),
                      "tasks_done": len(sched.tasks) - len(sched.remaining), "tasks_total": len(sched.tasks)},
            "failed": list(sched.failed_workers), "requeued": sched.reassigned, "elections": self.elections,
            "checkpoint": self.checkpoint, "history": self._history,
        }

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def _rate(history: list) -> float:
    """Bytes per second over the last few seconds of the history."""
    if len(history) < 2:
        return 0.0
    t1, b1 = history[-1]
    for t0, b0 in reversed(history[:-1]):
        if t1 - t0 >= 3.0:
            break
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
