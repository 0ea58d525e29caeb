"""The job's vocabulary: one tag per message kind, one dataclass each.

This is the task protocol and the replication of the job state. The bully
election owns its own tags and messages (election/messages.py, tags 20-25), so
the election stands alone; a message's `TAG` comes from either enum, and a tag
value means one message kind on the wire (tests/test_layers.py checks it).

Every message carries the sender's `epoch` (the coordinator term it believes
in), so a rank can ignore or redirect a message from an older term.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from loganalyser.counting.result import PartialResult
from loganalyser.work.tasks import Task

# A task's result travels as what it is everywhere in the job: a PartialResult,
# and many of them as (task id, PartialResult) pairs. Only the checkpoint and
# the report turn them into dicts (PartialResult.to_dict / from_dict).
TaskResults = tuple[tuple[str, PartialResult], ...]


class Tag(IntEnum):
    # Task protocol (master <-> workers).
    WORK_REQUEST = 1
    ASSIGN = 2
    RESULT = 3
    ACK = 4
    HEARTBEAT = 5
    STOP = 6
    BYE = 7
    RELEASE = 8
    INTERRUPT = 9
    # Work stealing (master <-> a busy worker).
    SPLIT = 10
    SPLIT_REPLY = 11
    LEFT = 12  # a released rank is leaving without MPI_Finalize (programs/leaving.py)
    # 20-25 belong to the bully election (election.messages.ElectionTag).
    # Replication of the job state.
    STATE_SYNC = 30
    STATE_HANDOVER = 31
    # Checkpoints replicated to other hosts (cluster/replication.py).
    REPLICA_WRITE = 40
    REPLICA_ACK = 41
    REPLICA_COMMIT = 42


@dataclass(frozen=True)
class WorkRequest:
    """A worker is ready and can hold `capacity` tasks at once."""

    TAG = Tag.WORK_REQUEST
    epoch: int
    capacity: int


@dataclass(frozen=True)
class Assign:
    """Tasks for the receiving worker; `progress` is the job's done fraction."""

    TAG = Tag.ASSIGN
    epoch: int
    tasks: tuple[Task, ...]
    progress: float
    seq: int = 0  # the n-th assignment to this worker since its WorkRequest


@dataclass(frozen=True)
class Result:
    """The statistics of one finished task, or (with `result` None) why it failed."""

    TAG = Tag.RESULT
    epoch: int
    task_id: str
    result: PartialResult | None
    error: str | None = None  # an input error (unreadable file): the job cannot be exact


@dataclass(frozen=True)
class Ack:
    """The master holds these results durably; the worker may forget them."""

    TAG = Tag.ACK
    epoch: int
    task_ids: tuple[str, ...]
    progress: float


@dataclass(frozen=True)
class Heartbeat:
    """I am alive; `holding` names the tasks I run or hold (so a master that gave up on me can take me back)."""

    TAG = Tag.HEARTBEAT
    epoch: int
    holding: tuple[str, ...] = ()
    assign_seq: int = 0  # the last assignment read: `holding` is complete up to it
    position: int | None = None  # where counting of holding[0] stands (file offset), if it is a byte range
    rate: float | None = None  # bytes per second of its counting, as it measures it


@dataclass(frozen=True)
class Split:
    """Master -> a busy worker: keep about `keep` (0..1) of what is left of `task_id`, give up the rest."""

    TAG = Tag.SPLIT
    epoch: int
    task_id: str
    keep: float


@dataclass(frozen=True)
class SplitReply:
    """The worker counts `task_id` only up to `cut` (as its sub-range [start, cut)); None: it did not cut."""

    TAG = Tag.SPLIT_REPLY
    epoch: int
    task_id: str
    cut: int | None


@dataclass(frozen=True)
class Stop:
    """The job is over: stop working, say Bye, and wait for Release (or, aborted with a
    non-zero `exit_code`, exit at once)."""

    TAG = Tag.STOP
    epoch: int
    exit_code: int


@dataclass(frozen=True)
class Bye:
    """A worker's answer to Stop: it has stopped working (so the master stops resending Stop)."""

    TAG = Tag.BYE
    epoch: int


@dataclass(frozen=True)
class Release:
    """The final master has reported the result: the job is over, every rank may exit."""

    TAG = Tag.RELEASE
    epoch: int
    after_failure: bool = False  # a rank died: say Left and exit without MPI_Finalize (programs/leaving.py)


@dataclass(frozen=True)
class Left:
    """A rank's answer to Release after a failure: it got the Release and exits now."""

    TAG = Tag.LEFT
    epoch: int


@dataclass(frozen=True)
class Interrupt:
    """A rank that is not the master was sent SIGINT or SIGTERM: the master stops the job resumably."""

    TAG = Tag.INTERRUPT
    epoch: int
    signum: int


@dataclass(frozen=True)
class StateSync:
    """Master -> backups: results just accepted."""

    TAG = Tag.STATE_SYNC
    epoch: int
    results: TaskResults


@dataclass(frozen=True)
class StateHandover:
    """An old master -> the new one: every result it holds."""

    TAG = Tag.STATE_HANDOVER
    epoch: int
    results: TaskResults


@dataclass(frozen=True)
class ReplicaWrite:
    """Master -> a replica on another host: store this checkpoint (its bytes) in your folder."""

    TAG = Tag.REPLICA_WRITE
    epoch: int
    sequence: int
    document: bytes  # checkpoint.json as the master wrote it
    job: bytes  # the job file it names


@dataclass(frozen=True)
class ReplicaWriteAck:
    """A replica -> the master: checkpoint `sequence` with this checksum is stored (or, `stored` False, not)."""

    TAG = Tag.REPLICA_ACK
    epoch: int
    sequence: int
    checksum: str
    stored: bool = True


@dataclass(frozen=True)
class ReplicaCommit:
    """Master -> replicas: checkpoint `sequence` is held by a quorum; record the commit."""

    TAG = Tag.REPLICA_COMMIT
    epoch: int
    sequence: int
    checksum: str


# Every message kind of the job's protocol (a routing table names each one).
JOB_MESSAGES = (WorkRequest, Assign, Result, Ack, Heartbeat, Stop, Bye, Release, Left, Interrupt, StateSync, StateHandover,
                Split, SplitReply, ReplicaWrite, ReplicaWriteAck, ReplicaCommit)
