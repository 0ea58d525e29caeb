"""The master role: the shell around the Scheduler.

One loop: take failure notices from the transport, take at most one message,
tick the clock, carry out the scheduler's actions. When nothing arrives it
sleeps with a short backoff (so it leaves the cores to the workers); when no
worker is left alive it runs the next task itself, so the job always ends.
"""

from __future__ import annotations

import time

from .errors import AnalyserError, ExitCode, InputError
from .jobstate import JobState
from .protocol import Ack, Assign, Stop
from .reader import analyse_pieces
from .scheduler import AckResults, AssignTasks, InputFailed, Scheduler, Timing, WorkerBack, WorkerLost
from .worker import IdleBackoff

TICK_EVERY = 0.05  # seconds between timeout checks


class Interrupted(AnalyserError):
    exit_code = ExitCode.INTERRUPTED


class Master:
    """Runs the job to the end and returns the JobState."""

    def __init__(self, transport, tasks, timing: Timing, say, injector, progress=None, epoch: int = 1,
                 state: JobState | None = None, checkpointer=None):
        self.transport = transport
        self.epoch = epoch
        self.say = say
        self.injector = injector
        self.progress = progress  # a tqdm bar over bytes, or None
        self.checkpointer = checkpointer  # a Checkpointer, or None when checkpoints are off
        self.interrupted: int | None = None  # the signal that asked us to stop, set by a handler
        self.workers = [r for r in range(transport.size) if r != transport.rank]
        self.scheduler = Scheduler(tasks, self.workers, timing, time.monotonic(), state or JobState())
        if progress is not None:
            progress.update(self.scheduler.done_bytes)

    def run(self) -> JobState:
        sched = self.scheduler
        idle = IdleBackoff()
        next_tick = 0.0
        while not sched.finished:
            if self.interrupted is not None:
                self._stop_interrupted()
            now = time.monotonic()
            actions = []
            for rank in self.transport.take_failures():
                actions += sched.process_failed(rank, now)
            got = self.transport.poll()
            if got is not None:
                actions += sched.step(got[0], got[1], now)
            if now >= next_tick:
                actions += sched.tick(now)
                next_tick = now + TICK_EVERY
            self._carry_out(actions)
            self._checkpoint_if_due(now)
            if got is not None or actions:
                idle.reset()
            elif not sched.live_workers():
                self._run_one_locally()
            else:
                idle.sleep()
        self._checkpoint()
        self._stop_workers(0)
        return sched.state

    def _checkpoint_if_due(self, now: float) -> None:
        if self.checkpointer is None:
            return
        for task_id in self.scheduler.drain_accepted():
            self.checkpointer.task_done(task_id)
        if self.checkpointer.due(now):
            self._checkpoint()

    def _checkpoint(self) -> None:
        if self.checkpointer is None:
            return
        for task_id in self.scheduler.drain_accepted():
            self.checkpointer.task_done(task_id)
        if not self.checkpointer.dirty:
            return
        folder = self.checkpointer.save(self.scheduler.state, self.epoch, self.scheduler.failed_workers, time.monotonic())
        self.say(f"[Master] Checkpoint saved: {folder} ({len(self.checkpointer.tracker.processed)} file(s) processed)")

    def _stop_interrupted(self) -> None:
        """Saves a last checkpoint, stops the workers, and ends the job resumably."""
        self._checkpoint()
        self._stop_workers(int(ExitCode.INTERRUPTED))
        where = f"checkpoint saved in {self.checkpointer.last_folder}" if self.checkpointer else "checkpoints are off"
        raise Interrupted(f"interrupted by signal {self.interrupted}; {where}; run the same command again to resume")

    def _carry_out(self, actions) -> None:
        before = self.scheduler.done_bytes
        for action in actions:
            if isinstance(action, AssignTasks):
                for task, again in zip(action.tasks, action.reassigned):
                    self.say(f"[Master] {'Reassigning' if again else 'Assigning'} {task.describe()} to worker {action.worker}")
                self.transport.send(action.worker, Assign(self.epoch, action.tasks, self.scheduler.progress))
            elif isinstance(action, AckResults):
                self.transport.send(action.worker, Ack(self.epoch, action.task_ids, self.scheduler.progress))
            elif isinstance(action, WorkerLost):
                what = "timeout detected" if action.reason == "timeout" else "process died"
                self.say(f"[Master] Worker {action.worker} {what} - marking as failed ({len(action.requeued)} task(s) back in the queue)")
            elif isinstance(action, WorkerBack):
                self.say(f"[Master] Worker {action.worker} is back")
            elif isinstance(action, InputFailed):
                self._stop_workers(int(InputError.exit_code))
                raise InputError(action.error)
        self._advance(before)

    def _run_one_locally(self) -> None:
        task = self.scheduler.claim_local()
        if task is None:
            time.sleep(0.01)  # tasks are held by silent workers: wait for their timeout
            return
        self.say(f"[Master] No live worker: processing {task.describe()} itself")
        before = self.scheduler.done_bytes
        self.scheduler.accept_local(task.task_id, analyse_pieces(task.pieces))
        self._advance(before)
        self._checkpoint_if_due(time.monotonic())

    def _advance(self, before: int) -> None:
        if self.progress is not None and self.scheduler.done_bytes > before:
            self.progress.update(self.scheduler.done_bytes - before)
        self.injector.check(self.scheduler.progress)

    def _stop_workers(self, exit_code: int) -> None:
        for w in self.workers:
            if w not in self.scheduler.dead:
                self.transport.send(w, Stop(self.epoch, exit_code))
        self.transport.flush(timeout=1.0)
