"""What goes into a checkpoint and when: the master's side of checkpoints.

`FileTracker` knows which input files are fully counted (every task touching
them accepted). `Checkpointer` decides when to write (every N files, every T
seconds, at the end, on a signal) and builds the document: the seed's fields
(timestamp, counts, processed_files, pending_files, failed_workers) plus what
exact resumption needs (schema, input fingerprint, task sizes, per-file
identity, per-task results, epoch). `restore` turns a loaded checkpoint back
into accepted results for the tasks of the current input.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from loganalyser.counting.result import PartialResult
from loganalyser.work.jobstate import JobState
from loganalyser.work.subranges import RangeIndex, root_of

from .store import SCHEMA, Checkpoint, CheckpointStore

CONSISTENCY = ("eventual", "strong")
# Checkpoints due by the policy are spaced so that writing them takes at most
# this share of the time (a checkpoint of 20,000 files costs more than one of
# 8); the final one and one on a signal are always written.
TIME_BUDGET = 0.03
STORE_STEP = 256  # processed files stored per turn of the master's loop


@dataclass(frozen=True)
class CheckpointPolicy:
    every_files: int = 5  # write after this many more files are fully counted
    interval_s: float = 30.0  # ... or after this many seconds with new results
    consistency: str = "eventual"  # what a checkpoint's counts include (see published_total)


@dataclass(frozen=True)
class CheckpointOptions:
    """Where checkpoints live and how they are kept (the programs build it from their arguments)."""

    folder: str = "checkpoints"  # the store's root
    enabled: bool = True  # False: write none and resume from none
    resume: bool = True  # False: ignore existing checkpoints and start afresh
    keep: int = 3  # the newest checkpoints kept
    file_mode: str = "link"  # processed files kept as hard links, copies, or not at all (store.FILE_MODES)
    policy: CheckpointPolicy = CheckpointPolicy()  # when to write, what the counts include


class FileTracker:
    """Which files are fully counted, from which tasks (or parts of split tasks) are accepted."""

    def __init__(self, files, tasks, done=()):
        self.files = {f.path: f for f in files}
        self.tasks = {task.task_id: task for task in tasks}
        self.parts = RangeIndex()  # the accepted parts of each task
        self.open_tasks = defaultdict(set)  # path -> ids of its tasks not yet accepted
        self.task_paths = {}  # task id -> paths it touches
        for task in tasks:
            paths = {piece.path for piece in task.pieces}
            self.task_paths[task.task_id] = paths
            for path in paths:
                self.open_tasks[path].add(task.task_id)
        self.processed: list[str] = []  # fully counted files, in order of completion
        for task_id in done:
            self.task_done(task_id)

    def task_done(self, task_id: str) -> int:
        """Marks a task (or a part of one) accepted; returns how many files that completed."""
        task = self.tasks.get(root_of(task_id))
        if task is None or not self.parts.claim(task_id) or not self.parts.covered(task):
            return 0
        task_id = task.task_id
        completed = 0
        for path in self.task_paths.get(task_id, ()):
            waiting = self.open_tasks[path]
            if task_id in waiting:
                waiting.discard(task_id)
                if not waiting:
                    self.processed.append(path)
                    completed += 1
        return completed

    def processed_set(self) -> set[str]:
        return set(self.processed)

    def pending(self) -> list[str]:
        return [p for p in self.files if self.open_tasks[p]]


class Checkpointer:
    """Writes checkpoints of the master's state when the policy says so."""

    def __init__(self, store: CheckpointStore, policy: CheckpointPolicy, tracker: FileTracker, meta: dict, now: float):
        self.store = store
        self.policy = policy
        self.tracker = tracker
        self.meta = meta  # fingerprint and task sizes: fixed for the job
        self.files_since = 0  # files completed since the last checkpoint
        self.results_since = 0  # results accepted since the last checkpoint
        self.last_time = now
        self.written = 0
        self.last_folder: str | None = None
        self.not_before = now  # the policy's writes wait until then (see TIME_BUDGET)
        self.stored_upto = 0  # processed files [0, stored_upto) are in the store
        self.store_failed = False  # the last store_some met an I/O error
        self.identities = {path: f.identity for path, f in tracker.files.items()}

    def task_done(self, task_id: str) -> None:
        self.files_since += self.tracker.task_done(task_id)
        self.results_since += 1

    @property
    def processed_files(self) -> int:
        """How many input files are fully counted."""
        return len(self.tracker.processed)

    def garbage_steps(self):
        """Removes what no checkpoint needs any more from the store (old copies of changed
        files), a batch per step of the generator (store.garbage_steps)."""
        return self.store.garbage_steps()

    @property
    def dirty(self) -> bool:
        """True if results arrived since the last checkpoint (or none was written)."""
        return self.results_since > 0 or self.written == 0

    def due(self, now: float) -> bool:
        if now < self.not_before:
            return False
        if self.files_since >= self.policy.every_files:
            return True
        return self.results_since > 0 and now - self.last_time >= self.policy.interval_s

    def store_some(self, limit: int = STORE_STEP) -> None:
        """Stores up to `limit` more processed files now, so a checkpoint never has
        thousands to link at once (the master must keep answering its probes)."""
        fresh = self.tracker.processed[self.stored_upto : self.stored_upto + limit]
        if not fresh:
            return
        self.store_failed = not self.store.store_files([self.tracker.files[p] for p in fresh])
        if not self.store_failed:
            self.stored_upto += len(fresh)

    @property
    def ready(self) -> bool:
        """A checkpoint may be written now: every processed file is stored (or storing
        failed, and save() meets the error again and reports it)."""
        return self.store_failed or self.stored_upto >= len(self.tracker.processed)

    def postpone(self, now: float) -> None:
        """After a failed write: try again when the policy next says so, not at once."""
        self.files_since = 0
        self.last_time = now

    def published_total(self, state: JobState) -> PartialResult:
        """The totals a checkpoint shows.

        eventual: every accepted result, as it arrived (fresh, but a file may be
        half counted); strong: only results of tasks whose files are all fully
        counted, so the counts are exactly those of processed_files.
        """
        if self.policy.consistency == "eventual":
            return state.total()
        done = self.tracker.processed_set()
        return PartialResult.total(result for task_id, result in state.items()
                                   if self.tracker.task_paths.get(root_of(task_id), set()) <= done)

    def save(self, state: JobState, epoch: int, failed_workers, now: float) -> str:
        pending = self.tracker.pending()
        doc = dict(self.meta)
        doc.update(self.published_total(state).to_dict())
        doc.update(
            consistency=self.policy.consistency,
            accepted_bytes=state.total().bytes,
            schema=SCHEMA,
            epoch=epoch,
            processed_files=list(self.tracker.processed),
            pending_files=pending,
            complete=not pending,
            failed_workers=sorted(failed_workers),
            tasks={task_id: result.to_dict() for task_id, result in state.items()},
        )
        # Only files completed since the last checkpoint need storing: the rest are there.
        fresh = [self.tracker.files[p] for p in self.tracker.processed[self.stored_upto :]]
        started = time.perf_counter()
        self.last_folder = self.store.save(doc, fresh, self.identities)
        self.stored_upto = len(self.tracker.processed)
        cost = time.perf_counter() - started
        self.files_since = self.results_since = 0
        self.last_time = now
        self.not_before = now + cost / TIME_BUDGET
        self.written += 1
        return self.last_folder


@dataclass(frozen=True)
class Restored:
    """What a resume takes from a checkpoint."""

    state: JobState  # accepted results of current tasks
    files: int  # current files fully counted already
    changed: list[str]  # files whose identity differs: counted again
    removed: list[str]  # files in the checkpoint, gone now


def restore(checkpoint: Checkpoint, files, tasks) -> Restored:
    """Accepted results of the current tasks (and of parts of them: split tasks) that the checkpoint holds."""
    planned = {task.task_id for task in tasks}
    state = JobState()
    for task_id, result in checkpoint.doc["tasks"].items():
        if root_of(task_id) in planned:
            state.accept(task_id, PartialResult.from_dict(result))
    identities = checkpoint.doc.get("identities", {})
    current = {f.path: f.identity for f in files}
    changed = sorted(p for p, ident in identities.items() if p in current and current[p] != ident)
    removed = sorted(p for p in identities if p not in current)
    tracker = FileTracker(files, tasks, done=[task_id for task_id, _ in state.items()])
    return Restored(state, len(tracker.processed), changed, removed)
