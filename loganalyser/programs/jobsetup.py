"""From the user's arguments to a job every rank can run: plan, resume state, checkpointer.

Rank 0 builds the `JobPlan` (files, tasks, task sizes, input fingerprint) and
broadcasts it, so any rank that later becomes master holds the same plan and
names the same work the same way.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from loganalyser.console import shown, warn
from loganalyser.counting.formats import FormatSet
from loganalyser.counting.reader import SMALL_FILE
from loganalyser.errors import AnalyserError, ExitCode
from loganalyser.persistence.policy import Checkpointer, CheckpointOptions, FileTracker, restore
from loganalyser.persistence.store import Checkpoint, CheckpointStore
from loganalyser.work.jobstate import JobState
from loganalyser.work.scanning import assign_formats, job_fingerprint
from loganalyser.work.tasks import BATCH_BYTES, BATCH_FILES, plan_tasks, task_sizes

from .options import JobOptions


@dataclass(frozen=True)
class JobPlan:
    """What every rank knows about the job."""

    files: tuple  # LogFile, sorted by path
    tasks: tuple  # Task, largest first
    sizes: dict  # chunk_bytes, batch_bytes, batch_files: same sizes, same task ids
    fingerprint: str  # the input set (paths, glob, recursive) and how it is counted
    run_id: str  # this launch of the job: epochs are compared within one run only
    formats: FormatSet  # the formats the files' pieces name, as rank 0 loaded them
    base_sequence: int = 0  # the highest checkpoint sequence found on any host: new ones are numbered above it

    @property
    def total_bytes(self) -> int:
        return sum(t.size for t in self.tasks)


@dataclass(frozen=True)
class FoundCheckpoints:
    """What the ranks found in their hosts' checkpoint folders ({host} in --checkpoint-dir)."""

    newest_committed: Checkpoint | None  # of this job's input set, read by the rank that holds it
    highest: int  # the highest sequence in any folder
    problem: str | None = None  # a folder that cannot be used, on which host


def plan_job(options: JobOptions, files, formats: FormatSet, workers: int, say, found: FoundCheckpoints | None = None):
    """The plan, plus what a checkpoint of the same input already holds (in this rank's folder,
    or with `found` the newest committed one on any host)."""
    fingerprint = job_fingerprint(options.inputs, formats)
    ckpt = options.checkpoints
    check_checkpoint_dir(ckpt)
    if found is not None and found.problem:
        raise AnalyserError(found.problem, ExitCode.INPUT)
    checkpoint = None
    if ckpt.enabled and ckpt.resume and found is not None:
        checkpoint = found.newest_committed
    elif ckpt.enabled and ckpt.resume:
        store = open_store(ckpt)
        if store.sequences():
            say("Loading checkpoint from previous run...")
        checkpoint = store.load_latest(fingerprint)
        if checkpoint is not None and checkpoint.doc.get("complete"):
            say(f"The last run of this job completed ({checkpoint.folder}); starting afresh")
            checkpoint = None
    if checkpoint is not None:
        sizes = checkpoint.doc["plan"]
    else:
        chunk, batch = task_sizes(files, max(1, workers), options.chunk_size, BATCH_BYTES)
        sizes = {"chunk_bytes": chunk, "batch_bytes": batch, "batch_files": BATCH_FILES}
    files, tasks = planned_tasks(files, formats, options.inputs.format, sizes, warn)
    plan = JobPlan(tuple(files), tuple(tasks), sizes, fingerprint, uuid.uuid4().hex[:12], formats,
                   found.highest if found is not None else 0)
    state, extra = JobState(), {}
    if checkpoint is not None:
        restored = restore(checkpoint, plan.files, plan.tasks)
        state = restored.state
        say(f"Resuming from checkpoint: {restored.files} files already processed")
        for path in restored.changed:
            warn(f"{shown(path)} changed since the checkpoint: counted again")
        for path in restored.removed:
            warn(f"{shown(path)} is in the checkpoint but gone now: not counted")
        extra = {"resumed_from": checkpoint.folder, "restored_files": restored.files, "restored_tasks": len(state)}
    remaining = len(files) - extra.get("restored_files", 0)
    say(f"Found {len(files)} log file(s) to analyse ({remaining} remaining, {len(plan.tasks)} task(s))")
    return plan, state, extra


def planned_tasks(files, formats: FormatSet, choice: str, sizes: dict, warn=None):
    """The files with their formats, and the tasks, of a job of these sizes: the same
    files and sizes always give the same tasks and ids. Files read whole in a batch
    keep AUTO: the rank that reads them detects them (scanning.assign_formats)."""
    files = assign_formats(files, formats, choice, warn, read_later=min(sizes["chunk_bytes"], SMALL_FILE))
    return files, plan_tasks(files, **sizes)


class JobCheckpoints:
    """The checkpoints of one planned job, as a new master needs them (cluster.master.Checkpoints)."""

    def __init__(self, options: CheckpointOptions, plan: JobPlan, floor=lambda: 0):
        self.options = options
        self.plan = plan
        self.floor = floor  # floor() -> the sequence new checkpoints are numbered above

    def latest_state(self) -> JobState:
        """Results of the plan's tasks in the newest valid checkpoint (a new master's fallback)."""
        if not self.options.enabled:
            return JobState()
        checkpoint = open_store(self.options).load_latest(self.plan.fingerprint)
        if checkpoint is None:
            return JobState()
        return restore(checkpoint, self.plan.files, self.plan.tasks).state

    def checkpointer(self, state: JobState) -> Checkpointer | None:
        """The master's checkpoint writer, or None with --no-checkpoint."""
        if not self.options.enabled:
            return None
        plan = self.plan
        meta = {"fingerprint": plan.fingerprint, "plan": plan.sizes, "run_id": plan.run_id}
        tracker = FileTracker(plan.files, plan.tasks, done=[task_id for task_id, _ in state.items()])
        store = open_store(self.options)
        store.floor = self.floor()
        return Checkpointer(store, self.options.policy, tracker, meta, time.monotonic())


def check_checkpoint_dir(options: CheckpointOptions) -> None:
    """A checkpoint folder that cannot be used is an input error before any work."""
    if not options.enabled:
        return
    path = options.folder
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise AnalyserError(f"cannot use checkpoint folder {path}: {exc.strerror or exc}", ExitCode.INPUT) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise AnalyserError(f"cannot write to checkpoint folder {path}", ExitCode.INPUT)


def open_store(options: CheckpointOptions) -> CheckpointStore:
    """The checkpoint store the options name (the job and a follow job open it the same way)."""
    return CheckpointStore(options.folder, options.keep, options.file_mode, warn=warn)
