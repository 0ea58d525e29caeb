"""The master's duties: the shell around the Scheduler, driven by the rank's loop.

The loop (node.py) hands it messages, failure notices and clock ticks; it
carries out the scheduler's actions: assignments, acknowledgements, log lines,
replication of accepted results to the backups (before the acknowledgement
goes out, so the next master already holds what a worker was told is safe),
and checkpoints when the policy says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Protocol

from loganalyser.console import warn
from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError, ExitCode, InputError
from loganalyser.faults.injected import FaultInjector
from loganalyser.persistence.policy import Checkpointer
from loganalyser.persistence.store import CheckpointWriteError, StaleEpoch
from loganalyser.work.jobstate import JobState
from loganalyser.work.tasks import Task

from .protocol import Ack, Assign, Release, Split, StateSync, Stop
from .replication import CheckpointReplication, ReplicationPlan
from .scheduler import AckResults, AssignTasks, InputFailed, Scheduler, Timing, WorkerBack, WorkerLost
from .seams import Clock, Say, SendTo, Transport
from .stealing import STEP_BYTES, AskSplit, TaskSplit
from .watch import JobWatch

TICK_EVERY = 0.05  # seconds between timeout checks


class Interrupted(AnalyserError):
    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class MasterSummary:
    """What the final master knows of the job, for its report."""

    total: PartialResult  # the sum of every accepted result
    task_ids: frozenset  # the tasks whose results it holds
    failed_workers: tuple[int, ...]  # every worker ever declared failed, in order
    reassigned: int  # assignments of tasks taken back from a lost worker
    epoch: int  # the final master's term
    checkpoints_saved: int  # by this master


class MasterDuty:
    """What the current master does; one per term (epoch) of mastership."""

    def __init__(self, rank: int, workers: Iterable[int], tasks: Iterable[Task], timing: Timing, epoch: int,
                 state: JobState, send: SendTo, say: Say, backups: int = 1, checkpointer: Checkpointer | None = None,
                 progress=None, injector: FaultInjector | None = None, clock: Clock = time.monotonic,
                 analyse: Callable[..., PartialResult] = analyse_pieces, watch: JobWatch | None = None,
                 step_bytes: int = STEP_BYTES, replication: CheckpointReplication | None = None, follow=None):
        self.rank = rank
        self.epoch = epoch
        self.timing = timing
        self.send = send  # send(dest, message)
        self.say = say
        self.checkpointer = checkpointer  # a Checkpointer, or None when checkpoints are off
        self.progress = progress  # a tqdm bar over bytes, or None
        self.injector = injector
        self.clock = clock
        self.analyse = analyse  # analyse(pieces, warn=...) -> PartialResult: counts a task here
        self.backups = backups  # how many ranks receive every accepted result
        self.watch = watch  # events and the live status for watchers, or None
        self.replication = replication  # copies of each checkpoint on other hosts, or None
        self.workers = list(workers)
        self.scheduler = Scheduler(list(tasks), self.workers, timing, clock(), state, step_bytes)
        self.follow = follow  # a FollowDuty (--follow: the job grows with its inputs), or None
        if follow is not None:
            self.scheduler.admit = follow.admit
            self.scheduler.steal = False  # a followed range's id names its bytes (follow_duty.py): never cut
        self.next_tick = 0.0
        self.leaving: set[int] = set()  # workers told to stop that have not said Bye
        self.released: list[int] = []  # the workers sent Release, once the result is out
        self.exit_code = 0  # what the Stop messages say
        self.failure: AnalyserError | None = None  # the input error that ends the job (the workers are told to stop)
        self._garbage = None  # the store's garbage collection, once the job's last checkpoint is written
        if progress is not None:  # a re-elected master starts from what is done, not on top of it
            progress.n = self.scheduler.done_bytes
            progress.refresh()

    @property
    def finished(self) -> bool:
        return self.scheduler.finished and (self.follow is None or self.follow.done)

    @property
    def state(self) -> JobState:
        """The accepted results (the grow-only map this master holds)."""
        return self.scheduler.state

    def tasks_held_by(self, worker: int) -> list[str]:
        """The ids of the tasks `worker` holds, as this master sees it."""
        return list(self.scheduler.held.get(worker, ()))

    def summary(self) -> MasterSummary:
        sched = self.scheduler
        return MasterSummary(sched.state.total(), frozenset(task_id for task_id, _ in sched.state.items()),
                             tuple(sched.failed_workers), sched.reassigned, self.epoch,
                             self.checkpointer.written if self.checkpointer is not None else 0)

    # ------------------------------------------------------------------ events
    def on_message(self, source: int, message, now: float) -> None:
        self._carry_out(self.scheduler.step(source, message, now))

    def on_failure(self, rank: int, now: float) -> None:
        self._carry_out(self.scheduler.process_failed(rank, now))
        if self.replication is not None:
            self.replication.peer_failed(rank, self.scheduler.live_workers())

    def tick(self, now: float) -> None:
        if self.follow is not None:
            tasks = self.follow.tick(now)
            known = [t.task_id for t in tasks if t.task_id in self.scheduler.state]  # e.g. handed over: done
            self._carry_out(self.scheduler.add_tasks(tasks))
            self.follow.accepted(known)
            self.follow.show(self.scheduler.state, now)
        if now >= self.next_tick:
            if now - self.next_tick > self.timing.worker_timeout / 2:
                self.scheduler.forgive_silence(now)  # we were paused, not them
            self.next_tick = now + TICK_EVERY
            self._carry_out(self.scheduler.tick(now))
        self._checkpoint_if_due(now)
        if self.watch is not None:
            self.watch.publish(self)

    def merge(self, results: Iterable[tuple[str, PartialResult]]) -> None:
        """Results handed over by an old master or resent by workers (union, once per id)."""
        before = self.scheduler.done_bytes
        for task_id, result in results:
            self.scheduler.accept_local(task_id, result)
        self._after_accept(before)

    def needs_local_work(self) -> bool:
        return not self.scheduler.finished and not self.scheduler.live_workers()

    def run_one_locally(self) -> bool:
        """With no live worker left the master counts the next task itself; False if
        every remaining task is held by a silent worker (its timeout will free it)."""
        task = self.scheduler.claim_local()
        if task is None:
            return False
        self.say(f"[Master] No live worker: processing {task.describe()} itself")
        before = self.scheduler.done_bytes
        try:
            result = self.analyse(task.pieces, warn=warn)
        except AnalyserError as exc:
            self._fail(exc)
            return True
        if self.scheduler.admit is not None and not self.scheduler.admit(task):
            self.scheduler.drop(task.task_id)
            return True
        self.scheduler.accept_local(task.task_id, result)
        self._after_accept(before)
        return True

    def stop_following(self) -> bool:
        """A follow job asked to stop (it has no natural end): it finishes what is there; False if not following."""
        if self.follow is None:
            return False
        self.follow.stop()
        self.checkpoint()  # at once: mpirun, forwarding a signal, kills the ranks a moment later
        return True

    def stop_workers(self, exit_code: int) -> None:
        """Tells every worker not known dead to stop; remembers who has not said Bye."""
        self.exit_code = exit_code
        self.leaving = {w for w in self.workers if w not in self.scheduler.dead}
        for w in self.leaving:
            self.send(w, Stop(self.epoch, exit_code))

    def resend_stop(self) -> None:
        for w in self.leaving:
            self.send(w, Stop(self.epoch, self.exit_code))

    def said_bye(self, worker: int) -> None:
        """`worker` answered Stop, or is dead: it is not waited for any more."""
        self.leaving.discard(worker)

    @property
    def all_said_bye(self) -> bool:
        return not self.leaving

    def release(self) -> None:
        """The result is out: every rank not known dead may exit (also one that never
        said Bye: it reads Stop, then this, whenever it runs again)."""
        self.released = [w for w in self.workers if w not in self.scheduler.dead]
        for w in self.released:
            self.send(w, Release(self.epoch, after_failure=bool(self.scheduler.failed_workers)))

    def checkpoint(self) -> None:
        """Writes a checkpoint now if anything changed since the last one."""
        if self.checkpointer is None:
            return
        self._replicate()
        if not self.checkpointer.dirty:
            return
        try:
            folder = self.checkpointer.save(self.scheduler.state, self.epoch, self.scheduler.failed_workers, self.clock())
        except StaleEpoch as exc:  # a newer master exists: the election will tell us; write nothing
            self.say(f"[Master] Not writing a checkpoint: {exc}")
            return
        except CheckpointWriteError as exc:  # e.g. a full disk: the job goes on, older checkpoints stand
            warn(str(exc))
            self.checkpointer.postpone(self.clock())
            return
        self.say(f"[Master] Checkpoint saved: {folder} ({self.checkpointer.processed_files} file(s) processed)")
        if self.replication is not None:
            self.replication.written(folder, len(self.scheduler.state), self.epoch, self.scheduler.live_workers())
        if self.watch is not None:
            self.watch.checkpoint_saved(self.epoch, folder, self.checkpointer.processed_files)

    def wind_down(self, collect: bool) -> bool:
        """The last work of a job that ends, a step per call (one call per turn of the loop,
        which hears its messages in between): store the processed files a batch at a time,
        write the last checkpoint, and with `collect` clean the store (old copies of changed
        files) a batch at a time. True once all is done: the workers may be stopped."""
        if self.checkpointer is None:
            return True
        if self._garbage is None:
            if not self.checkpointer.ready:  # each tick stores a batch of processed files
                return False
            self.checkpoint()
            self._garbage = self.checkpointer.garbage_steps() if collect else iter(())
        try:
            next(self._garbage)
        except StopIteration:
            return True
        except OSError as exc:
            warn(f"could not clean the checkpoint store: {exc.strerror or exc}")
            self._garbage = iter(())
            return True
        return False

    def interrupt(self, signum: int) -> Interrupted:
        """Saves a last checkpoint and stops the workers; returns what to tell the user."""
        self.checkpoint()
        self.stop_workers(int(ExitCode.INTERRUPTED))
        where = f"checkpoint saved in {self.checkpointer.last_folder}" if self.checkpointer else "checkpoints are off"
        return Interrupted(f"interrupted by signal {signum}; {where}; run the same command again to resume")

    # ----------------------------------------------------------------- helpers
    def _carry_out(self, actions) -> None:
        before = self.scheduler.done_bytes
        self._replicate()
        if self.watch is not None:
            self.watch.actions(actions, self)
        for action in actions:
            if isinstance(action, AssignTasks):
                for task, again in zip(action.tasks, action.reassigned):
                    self.say(f"[Master] {'Reassigning' if again else 'Assigning'} {task.describe()} to worker {action.worker}")
                self.send(action.worker, Assign(self.epoch, action.tasks, self.scheduler.progress, action.seq))
            elif isinstance(action, AckResults):
                self.send(action.worker, Ack(self.epoch, action.task_ids, self.scheduler.progress))
            elif isinstance(action, WorkerLost):
                what = "timeout detected" if action.reason == "timeout" else "process died"
                self.say(f"[Master] Worker {action.worker} {what} - marking as failed ({len(action.requeued)} task(s) back in the queue)")
            elif isinstance(action, WorkerBack):
                self.say(f"[Master] Worker {action.worker} is back")
            elif isinstance(action, InputFailed):
                self._fail(InputError(action.error))
                return  # the job is over: nothing else of this step is carried out
            elif isinstance(action, AskSplit):
                self.send(action.worker, Split(self.epoch, action.task_id, action.keep))
            elif isinstance(action, TaskSplit):
                kept = f"keeps {action.kept.describe()}, " if action.kept is not None else "gives it all up, "
                self.say(f"[Master] Splitting a task of worker {action.worker}: it {kept}{action.given.describe()} is handed out")
            else:
                raise TypeError(f"no handler for {type(action).__name__}")
        self._after_accept(before)

    def _fail(self, error: AnalyserError) -> None:
        """The job cannot be exact: the workers are told to stop, the node ends with `error`."""
        self.failure = error
        self.stop_workers(int(error.exit_code))

    def _replicate(self) -> None:
        """Sends newly accepted results to the backups, ahead of any acknowledgement."""
        fresh = self.scheduler.drain_accepted()
        if not fresh:
            return
        if self.follow is not None:
            self.follow.accepted(fresh)
        if self.checkpointer is not None:
            for task_id in fresh:
                self.checkpointer.task_done(task_id)
        results = self.scheduler.state.items_of(fresh)
        for backup in self.backup_ranks():
            self.send(backup, StateSync(self.epoch, tuple(results)))

    def backup_ranks(self) -> list[int]:
        """The live ranks next in line for mastership (lowest ranks first)."""
        return sorted(self.scheduler.live_workers())[: self.backups]

    def _checkpoint_if_due(self, now: float) -> None:
        """Stores a batch of processed files; writes a checkpoint if one is due and every file is stored."""
        if self.checkpointer is None:
            return
        self._replicate()
        self.checkpointer.store_some()
        if self.checkpointer.ready and self.checkpointer.due(now):
            self.checkpoint()

    def _after_accept(self, before: int) -> None:
        self._replicate()
        done = self.scheduler.done_bytes
        if self.progress is not None and done > before:
            self.progress.update(done - before)
        if self.injector is not None:
            self.injector.check(self.scheduler.progress)


class Checkpoints(Protocol):
    """A job's checkpoints as a new master needs them (programs/jobsetup.JobCheckpoints)."""

    def latest_state(self) -> JobState:
        """The results the newest valid checkpoint holds of this job's tasks."""

    def checkpointer(self, state: JobState) -> Checkpointer | None:
        """A checkpoint writer for a master that starts from `state`, or None (checkpoints off)."""


@dataclass(frozen=True)
class MasterFactory:
    """The one way a rank becomes master, in the program and the simulation alike."""

    rank: int  # the rank that would be master
    tasks: tuple[Task, ...]  # the job's plan
    timing: Timing
    transport: Transport
    say: Say
    backups: int = 1  # ranks that receive every accepted result
    resumed: JobState = field(default_factory=JobState)  # what the first term starts from (a resumed checkpoint)
    checkpoints: Checkpoints | None = None  # None: no checkpoints (the simulation, --no-checkpoint)
    progress: object = None  # a tqdm bar over bytes, or None
    injector: FaultInjector | None = None
    clock: Clock = time.monotonic
    analyse: Callable[..., PartialResult] = analyse_pieces
    watch: JobWatch | None = None  # what watchers see (events, status), or None
    step_bytes: int = STEP_BYTES  # the workers' counting step (work stealing cuts on its grid)
    replication: ReplicationPlan | None = None  # checkpoints copied to other hosts ({host} folders), or None
    follow: Callable | None = None  # follow(state) -> FollowDuty (--follow), or None

    def build(self, epoch: int, held: Iterable[JobState]) -> MasterDuty:
        """The master of term `epoch`. It starts from the union of what this rank holds
        (its own earlier term, its replica, its results as a worker) and of the checkpoint
        this run resumed (first term) or the newest checkpoint (a later term: every
        replica may be gone); the ranks already known dead are lost at once."""
        state = JobState()
        for results in held:
            state.merge(results)
        if epoch == 1:
            state.merge(self.resumed)
        elif self.checkpoints is not None:
            state.merge(self.checkpoints.latest_state())
        workers = [r for r in range(self.transport.size) if r != self.rank]
        checkpointer = self.checkpoints.checkpointer(state) if self.checkpoints is not None else None
        replication = None
        if self.replication is not None and checkpointer is not None:
            replication = self.replication.duty(self.rank, checkpointer.store, self.transport.send, self.say)
        master = MasterDuty(self.rank, workers, self.tasks, self.timing, epoch, state, self.transport.send, self.say,
                            backups=self.backups, checkpointer=checkpointer, progress=self.progress,
                            injector=self.injector, clock=self.clock, analyse=self.analyse, watch=self.watch,
                            step_bytes=self.step_bytes, replication=replication,
                            follow=self.follow(state) if self.follow is not None else None)
        now = self.clock()
        for dead in self.transport.known_failed():
            master.on_failure(dead, now)
        return master
