"""`--follow` for the distributed analyser: its options, its plan and its checkpoints.

A follow job's plan is its first observation (cluster/follow_duty.py): the
whole lines of every plain file as range tasks, every compressed file once, and
the tracker that goes on from there. Its checkpoints hold that first
observation and every accepted range id with its result; a restart rebuilds
the tracker from them and plans the ranges no checkpointed result covers, then
follows on (a rotation made while the job was down included).
"""

from __future__ import annotations

import time
import uuid

from loganalyser.cluster.follow_duty import (
    FollowDuty,
    FollowSettings,
    FollowStart,
    first_pass,
    range_task,
    restore_tracker,
    scan,
    snapshot,
    whole_task,
)
from loganalyser.console import warn
from loganalyser.counting.formats import FormatSet
from loganalyser.counting.result import PartialResult
from loganalyser.errors import UsageError
from loganalyser.persistence.policy import Checkpointer, FileTracker
from loganalyser.persistence.replicas import replicated
from loganalyser.work.jobstate import JobState
from loganalyser.work.scanning import job_fingerprint

from .jobsetup import JobCheckpoints, JobPlan, check_checkpoint_dir, open_store
from .options import JobOptions


def follow_settings(args, options: JobOptions) -> FollowSettings | None:
    """The follow settings, or None without --follow; impossible combinations are usage errors."""
    if not args.follow:
        if args.follow_for:
            raise UsageError("--follow-for goes with --follow")
        return None
    if options.chaos_seed is not None:
        raise UsageError("--chaos cannot be used with --follow (a feigning master would fork the followed offsets)")
    if options.ship == "always":
        raise UsageError("--ship always cannot be used with --follow: followed files are read where the workers see them")
    if replicated(options.checkpoints.folder):
        raise UsageError("--follow keeps its checkpoints in one shared folder: {host} in --checkpoint-dir is not supported with it")
    inputs = options.inputs
    stop_at = time.time() + args.follow_for if args.follow_for else None
    return FollowSettings(tuple(inputs.paths), inputs.glob, inputs.recursive, inputs.format, args.partial_after, stop_at)


def plan_follow_job(options: JobOptions, settings: FollowSettings, formats: FormatSet, say):
    """Rank 0's plan of a follow job: (plan, resumed state, extra, first observation)."""
    fingerprint = job_fingerprint(options.inputs, formats)
    ckpt = options.checkpoints
    check_checkpoint_dir(ckpt)
    checkpoint = None
    if ckpt.enabled and ckpt.resume:
        checkpoint = open_store(ckpt).load_latest(fingerprint)
        if checkpoint is not None and "follow" not in checkpoint.doc:
            checkpoint = None  # a checkpoint of the same inputs without --follow: not ours
    sizes = {"chunk_bytes": options.chunk_size}
    state, extra = JobState(), {}
    if checkpoint is None:
        tasks, start = first_pass(settings, scan(settings, warn) or [], formats, options.chunk_size, time.monotonic())
    else:
        state = JobState({t: PartialResult.from_dict(r) for t, r in checkpoint.doc["tasks"].items()})
        tasks, start = resumed_plan(FollowStart(settings, checkpoint.doc["follow"]), state)
        say(f"Resuming the follow job from checkpoint {checkpoint.folder}: {len(state)} range(s) counted")
        extra = {"resumed_from": checkpoint.folder, "restored_tasks": len(state)}
    plan = JobPlan((), tuple(tasks), sizes, fingerprint, uuid.uuid4().hex[:12], formats)
    say(f"Following {len(start.snapshot['tracker']['streams'])} stream(s) ({len(tasks)} task(s) to start with)")
    return plan, state, extra, start


def resumed_plan(start: FollowStart, state: JobState):
    """The tasks a restart begins with (what no checkpointed result covers) and its first observation."""
    files = scan(start.settings, warn) or ()
    tracker, stream_formats, bases, gaps = restore_tracker(start, state, files)
    tasks = [range_task(tracker.streams[identity], base, a, b, stream_formats[identity])
             for identity, base, a, b in gaps if tracker.streams[identity].path]
    whole = start.snapshot.get("whole", [])
    paths = {(f.device, f.inode): f.path for f in files}  # a compressed file may have been renamed since
    tasks += [t for t in (whole_task(paths[(w[1], w[2])], *w[1:]) for w in whole if (w[1], w[2]) in paths)
              if t.task_id not in state]
    return tasks, FollowStart(start.settings, snapshot(tracker, stream_formats, bases, whole))


class FollowCheckpoints(JobCheckpoints):
    """Checkpoints of a follow job: every accepted range, and the first observation to rebuild the tracker."""

    def __init__(self, options, plan: JobPlan, start: FollowStart):
        super().__init__(options, plan)
        self.start = start

    def latest_state(self) -> JobState:
        if not self.options.enabled:
            return JobState()
        checkpoint = open_store(self.options).load_latest(self.plan.fingerprint)
        if checkpoint is None or "follow" not in checkpoint.doc:
            return JobState()
        return JobState({t: PartialResult.from_dict(r) for t, r in checkpoint.doc["tasks"].items()})

    def checkpointer(self, state: JobState) -> Checkpointer | None:
        """A writer of the results alone: a followed file is never finished, so none is stored."""
        if not self.options.enabled:
            return None
        plan = self.plan
        meta = {"fingerprint": plan.fingerprint, "plan": plan.sizes, "run_id": plan.run_id, "follow": self.start.snapshot}
        return Checkpointer(open_store(self.options), self.options.policy, FileTracker((), ()), meta, time.monotonic())


def follow_duties(start: FollowStart, formats: FormatSet, say):
    """What MasterFactory calls to give a new master its FollowDuty."""
    return lambda state: FollowDuty(start, formats, state, say, warn)
