"""Checkpoints replicated across hosts, in-process (no MPI).

The pure parts: quorum sizes, which ranks hold copies, when a checkpoint is
committed, which checkpoint a resume takes. Then the master's and the
replica's sides wired through a fake network: the bytes arrive whole, a
damaged copy is refused, a commit is recorded on every holder, a dead replica
is replaced by the next rank in line, and pruning never removes the
committed checkpoint.
"""

from __future__ import annotations

import json
import os

import pytest

from loganalyser.cluster.protocol import ReplicaCommit, ReplicaWrite, ReplicaWriteAck
from loganalyser.cluster.replication import ReplicaKeeper, ReplicationPlan
from loganalyser.persistence.replicas import (
    CommitTracker,
    Copy,
    FolderScan,
    ReplicaError,
    choose_replicas,
    folder_for,
    newest_committed,
    quorum_size,
    replicated,
    scan_folder,
    write_commit,
    write_replica,
)
from loganalyser.persistence.store import CheckpointStore, read_commit

from .test_checkpoint_store import FP, make_doc, save

HOSTS = ["a", "a", "b", "b", "c", "c"]  # rank -> host: 3 hosts of 2 ranks


def test_host_field_makes_one_folder_per_host():
    assert replicated("/local/{host}/ckpt") and not replicated("checkpoints")
    assert folder_for("/local/{host}/ckpt", "n2") == "/local/n2/ckpt"


@pytest.mark.parametrize("copies, requested, quorum", [(1, None, 1), (2, None, 2), (3, None, 2), (4, None, 3),
                                                       (3, 1, 1), (3, 3, 3)])
def test_quorum_is_a_majority_of_the_copies_unless_asked(copies, requested, quorum):
    assert quorum_size(copies, requested) == quorum


def test_replicas_are_on_other_hosts_one_per_host_lowest_rank_first():
    live = range(1, 6)
    assert choose_replicas(HOSTS, 0, live, 1) == [2]
    assert choose_replicas(HOSTS, 0, live, 2) == [2, 4]
    assert choose_replicas(HOSTS, 0, live, 5) == [2, 4]  # rank 1 shares the master's disk: no copy
    assert choose_replicas(HOSTS, 0, [1, 3, 4, 5], 1) == [3]  # rank 2 dead: the next rank in line
    assert choose_replicas(HOSTS, 3, [0, 1, 2, 4], 2) == [0, 4]
    assert choose_replicas(["a", "a"], 0, [1], 1) == []  # one host: the master's copy is all there is


def test_a_checkpoint_commits_once_a_quorum_of_hosts_holds_it():
    tracker = CommitTracker(2, HOSTS, own=0)
    assert tracker.written(1, "x") is None
    assert tracker.acked(1, 1, "x") is None  # rank 1 is on the master's host: no second copy
    assert tracker.acked(4, 1, "y") is None  # another document than the one written
    assert tracker.acked(2, 1, "x") == (1, "x")
    assert tracker.acked(4, 1, "x") is None  # committed once
    assert tracker.acked(2, 9, "z") is None  # never written by this master


def test_an_older_checkpoint_never_commits_after_a_newer_one():
    tracker = CommitTracker(2, HOSTS, own=0)
    tracker.written(1, "x")
    tracker.written(2, "y")
    assert tracker.acked(2, 2, "y") == (2, "y")
    assert tracker.acked(4, 1, "x") is None
    assert tracker.committed == (2, "y")


def test_a_quorum_of_one_commits_on_writing():
    assert CommitTracker(1, ["a"], own=0).written(5, "d") == (5, "d")


def copy(holder, sequence, digest="d", fingerprint=FP, accepted=0):
    return Copy(holder, sequence, f"{digest}{sequence}", fingerprint, accepted)


def test_a_resume_takes_the_newest_committed_copy():
    scans = [FolderScan((copy(2, 3), copy(2, 4), copy(2, 5)), ((4, "d4"),), 5),  # 5 not committed
             FolderScan((copy(4, 3), copy(4, 5, digest="e")), (), 5)]
    assert newest_committed(scans, FP, quorum=2).sequence == 4  # by the commit record
    assert newest_committed(scans, "other", quorum=2) is None
    held_twice = [FolderScan((copy(2, 6),), (), 6), FolderScan((copy(4, 6),), (), 6)]
    assert newest_committed(scans + held_twice, FP, quorum=2).sequence == 6  # held by a quorum, record lost
    assert newest_committed(scans + held_twice, FP, quorum=3).sequence == 4
    assert newest_committed([FolderScan((copy(0, 7),), (), 7)], FP, quorum=2) is None  # one copy, no record


def test_a_copy_whose_record_names_another_document_is_not_committed():
    scans = [FolderScan((copy(2, 4, digest="new"),), ((4, "old4"),), 4)]
    assert newest_committed(scans, FP, quorum=2) is None


# --- files -------------------------------------------------------------------------------


def written(tmp_path, name="master", i=3):
    """A checkpoint saved by a master's store: (store, sequence, document bytes, job bytes)."""
    store = CheckpointStore(str(tmp_path / name))
    folder = save(store, make_doc(i))
    document = open(os.path.join(folder, "checkpoint.json"), "rb").read()
    job_name = json.loads(document)["job_file"]
    return store, int(os.path.basename(folder)), document, open(os.path.join(store.root, job_name), "rb").read()


def test_a_replica_is_the_masters_checkpoint_byte_for_byte_and_loads(tmp_path):
    _, sequence, document, job = written(tmp_path)
    replica = CheckpointStore(str(tmp_path / "replica"))
    os.makedirs(replica.root)
    digest = write_replica(replica, sequence, document, job)
    assert open(os.path.join(replica.root, f"{sequence:06d}", "checkpoint.json"), "rb").read() == document
    assert replica.load_latest(FP).doc["checksum"] == digest == json.loads(document)["checksum"]


def test_a_damaged_replica_is_refused_and_nothing_is_stored(tmp_path):
    _, sequence, document, job = written(tmp_path)
    replica = CheckpointStore(str(tmp_path / "replica"))
    os.makedirs(replica.root)
    with pytest.raises(ReplicaError, match="checksum"):
        write_replica(replica, sequence, document.replace(b'"ERROR": 1003', b'"ERROR": 1004'), job)
    with pytest.raises(ReplicaError, match="checksum"):
        write_replica(replica, sequence, document, job + b" ")
    with pytest.raises(ReplicaError, match="unreadable"):
        write_replica(replica, sequence, document[:-20], job)
    assert replica.sequences() == []


def test_a_replica_replaces_an_uncommitted_copy_of_the_same_sequence(tmp_path):
    _, sequence, document, job = written(tmp_path, "m1", i=3)
    _, _, other, other_job = written(tmp_path, "m2", i=4)
    replica = CheckpointStore(str(tmp_path / "replica"))
    os.makedirs(replica.root)
    write_replica(replica, sequence, other, other_job)
    write_replica(replica, sequence, document, job)
    assert replica.load_latest(FP).doc["checksum"] == json.loads(document)["checksum"]


def test_pruning_keeps_the_committed_checkpoint(tmp_path):
    store = CheckpointStore(str(tmp_path / "ck"), keep=2)
    save(store, make_doc(1))
    write_commit(store.root, 1, json.load(open(os.path.join(store.root, "000001", "checkpoint.json")))["checksum"])
    for i in range(2, 6):
        save(store, make_doc(i))
    assert store.sequences() == [1, 4, 5]
    write_commit(store.root, 5, "x")
    write_commit(store.root, 4, "y")  # a commit record never moves backwards
    assert read_commit(store.root) == (5, "x")


def test_new_checkpoints_are_numbered_above_the_floor(tmp_path):
    store = CheckpointStore(str(tmp_path / "ck"))
    store.floor = 41
    assert save(store, make_doc(1)).endswith("000042")


def test_a_scan_reports_copies_the_record_and_an_unusable_folder(tmp_path):
    store, sequence, document, _ = written(tmp_path)
    write_commit(store.root, sequence, json.loads(document)["checksum"])
    scan = scan_folder(store, rank=3)
    assert [(c.holder, c.sequence, c.fingerprint) for c in scan.copies] == [(3, sequence, FP)]
    assert scan.commits == ((sequence, json.loads(document)["checksum"]),) and scan.highest == sequence
    (tmp_path / "file").write_text("")
    assert "cannot use checkpoint folder" in scan_folder(CheckpointStore(str(tmp_path / "file" / "x")), 0).error


# --- the master's and the replica's sides over a fake network ---------------------------------


class Net:
    """Collects sends as (source, dest, message); `deliver` hands them to the handlers."""

    def __init__(self):
        self.queue = []

    def sender(self, source):
        return lambda dest, message: self.queue.append((source, dest, message))

    def deliver(self, handlers):
        while self.queue:
            source, dest, message = self.queue.pop(0)
            handlers[dest](source, message)


def test_a_checkpoint_goes_to_a_replica_on_another_host_and_commits_everywhere(tmp_path):
    net = Net()
    master_store, sequence, document, _ = written(tmp_path)
    plan = ReplicationPlan(tuple(HOSTS), count=2, quorum=2)
    said = []
    duty = plan.duty(0, master_store, net.sender(0), said.append)
    keepers = {}
    for rank in (2, 4):
        store = CheckpointStore(str(tmp_path / f"host{rank}"))
        os.makedirs(store.root)
        keepers[rank] = ReplicaKeeper(store, net.sender(rank), said.append)

    def handler(rank):
        def handle(source, message):
            if isinstance(message, ReplicaWrite):
                keepers[rank].on_write(source, message)
            elif isinstance(message, ReplicaCommit):
                keepers[rank].on_commit(source, message)
            else:
                assert isinstance(message, ReplicaWriteAck) and rank == 0
                duty.on_ack(source, message)
        return handle

    duty.written(os.path.join(master_store.root, f"{sequence:06d}"), tasks=3, epoch=1, live=range(1, 6))
    assert [(d, type(m).__name__) for _, d, m in net.queue] == [(2, "ReplicaWrite"), (4, "ReplicaWrite")]
    net.deliver({r: handler(r) for r in (0, 2, 4)})
    digest = json.loads(document)["checksum"]
    for root in (master_store.root, keepers[2].store.root, keepers[4].store.root):
        assert read_commit(root) == (sequence, digest)
    assert keepers[2].highest == sequence
    assert any("committed (3 task result(s), quorum 2)" in line for line in said)

    duty.peer_failed(2, [1, 3, 4, 5])  # the next rank on host b takes rank 2's place and gets the checkpoint
    assert [(d, type(m).__name__) for _, d, m in net.queue] == [(3, "ReplicaWrite")]
    assert duty.replicas == [3, 4]
