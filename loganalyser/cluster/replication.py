"""Checkpoints replicated to other hosts: the master's side and the replica's side.

Only with `--checkpoint-dir` naming `{host}` (persistence/replicas.py says why).
The master, after writing a checkpoint in its folder, sends its bytes to its
replicas: ranks on other hosts, one per host (choose_replicas). Each stores it
in its own folder and acknowledges; once a quorum of hosts holds it the
master records the commit and tells the replicas to record it too. A replica
that dies is replaced by the next rank in line, which gets the newest
checkpoint at once. Nothing here waits: acknowledgements arrive as messages
between the master's other work, and the job never stops for a commit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from loganalyser.console import warn
from loganalyser.persistence.replicas import CommitTracker, ReplicaError, choose_replicas, write_commit, write_replica
from loganalyser.persistence.store import CheckpointStore

from .protocol import ReplicaCommit, ReplicaWrite, ReplicaWriteAck
from .seams import Say, SendTo


@dataclass(frozen=True)
class ReplicationPlan:
    """How this job replicates checkpoints (the same on every rank)."""

    hosts: tuple[str, ...]  # each rank's host name (the start-up allgather)
    count: int  # replicas wanted besides the master's own copy (--backups)
    quorum: int  # hosts that must hold a checkpoint for it to be committed (--replicas)

    def duty(self, rank: int, store: CheckpointStore, send: SendTo, say: Say) -> "CheckpointReplication":
        return CheckpointReplication(rank, self, store, send, say)


class CheckpointReplication:
    """The master's side: sends each checkpoint to the replicas, counts their acks, records commits."""

    def __init__(self, rank: int, plan: ReplicationPlan, store: CheckpointStore, send: SendTo, say: Say):
        self.rank = rank
        self.plan = plan
        self.store = store  # the master's own checkpoint store
        self.send = send
        self.say = say
        self.tracker = CommitTracker(plan.quorum, list(plan.hosts), rank)
        self.replicas: list[int] = []  # the ranks that receive checkpoints now
        self.latest: ReplicaWrite | None = None  # the newest checkpoint written, for a replica that joins late
        self.tasks: dict[int, int] = {}  # sequence -> task results it holds (for the log line)

    def written(self, folder: str, tasks: int, epoch: int, live) -> None:
        """The master wrote the checkpoint in `folder`: commit it if a quorum of one suffices, and send it out."""
        sequence = int(os.path.basename(folder))
        with open(os.path.join(folder, "checkpoint.json"), "rb") as f:
            document = f.read()
        digest = document[document.rindex(b'"checksum"'):].split(b'"')[3].decode()
        name = document[document.index(b'"job_file"'):].split(b'"')[3].decode()
        with open(os.path.join(self.store.root, name), "rb") as f:
            job = f.read()
        self.tasks = {sequence: tasks}
        self.latest = ReplicaWrite(epoch, sequence, document, job)
        self.replicas = choose_replicas(list(self.plan.hosts), self.rank, live, self.plan.count)
        for replica in self.replicas:
            self.send(replica, self.latest)
        self._commit_if(self.tracker.written(sequence, digest), epoch)

    def on_ack(self, source: int, message: ReplicaWriteAck) -> None:
        if message.stored:
            self._commit_if(self.tracker.acked(source, message.sequence, message.checksum), message.epoch)

    def peer_failed(self, rank: int, live) -> None:
        """A replica died: the next rank in line takes its place and gets the newest checkpoint."""
        if rank not in self.replicas or self.latest is None:
            return
        chosen = choose_replicas(list(self.plan.hosts), self.rank, live, self.plan.count)
        for fresh in (r for r in chosen if r not in self.replicas):
            self.say(f"[Master] Replica rank {rank} lost: checkpoints go to rank {fresh} instead")
            self.send(fresh, self.latest)
        self.replicas = chosen

    def _commit_if(self, committed, epoch: int) -> None:
        if committed is None:
            return
        sequence, digest = committed
        try:
            write_commit(self.store.root, sequence, digest)
        except OSError as exc:
            warn(f"could not record the commit of checkpoint {sequence}: {exc.strerror or exc}")
        self.say(f"[Master] Checkpoint {sequence:06d} committed ({self.tasks.get(sequence, 0)} task result(s), "
                 f"quorum {self.plan.quorum})")
        for replica in self.replicas:
            self.send(replica, ReplicaCommit(epoch, sequence, digest))


class ReplicaKeeper:
    """A replica's side: stores the checkpoints a master sends, in this host's folder."""

    def __init__(self, store: CheckpointStore, send: SendTo, say: Say):
        self.store = store
        self.send = send
        self.say = say
        self.highest = 0  # the highest sequence stored here: a master on this rank numbers above it

    def on_write(self, source: int, message: ReplicaWrite) -> None:
        try:
            digest = write_replica(self.store, message.sequence, message.document, message.job)
        except ReplicaError as exc:
            warn(str(exc))
            self.send(source, ReplicaWriteAck(message.epoch, message.sequence, "", stored=False))
            return
        self.highest = max(self.highest, message.sequence)
        self.send(source, ReplicaWriteAck(message.epoch, message.sequence, digest))

    def on_commit(self, source: int, message: ReplicaCommit) -> None:
        try:
            write_commit(self.store.root, message.sequence, message.checksum)
        except OSError as exc:
            warn(f"could not record the commit of checkpoint {message.sequence}: {exc.strerror or exc}")
