"""Checkpoints held on several hosts: who holds copies, when one is committed, which one a resume takes.

With `--checkpoint-dir` naming `{host}` every host keeps its own folder (a
node-local disk). The master writes each checkpoint in its folder and sends
it to its replicas, ranks on other hosts that store it in theirs (the same
sequence number, the same bytes: the checksum names the document). A
checkpoint is *committed* once `quorum` distinct hosts hold it; the master
then records the commit (`committed.json`) in its folder and has the
replicas record it in theirs.

A resume looks at every folder it can reach and takes the newest committed
checkpoint of its input set: one a commit record names, or one held by
`quorum` folders (a commit whose record did not get out). Newer copies that
were never committed are passed over: a minority may have written them.

Pure logic (`quorum_size`, `choose_replicas`, `CommitTracker`,
`newest_committed`) plus the few file operations a replica needs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass

from .atomic import fsync_folder, write_atomic
from .store import COMMIT_FILE, TMP_PREFIX, CheckpointStore, checksum, job_file_name, read_commit, write_document

HOST_FIELD = "{host}"


def replicated(template: str) -> bool:
    """Checkpoints are replicated when each host has its own folder."""
    return HOST_FIELD in template


def folder_for(template: str, host: str) -> str:
    """The checkpoint folder of `host` (the template with `{host}` replaced)."""
    return template.replace(HOST_FIELD, host)


def quorum_size(copies: int, requested: int | None = None) -> int:
    """How many hosts must hold a checkpoint for it to count as committed: `requested`
    (--replicas), else a majority of the `copies` (the master's and its replicas')."""
    if requested is not None:
        return requested
    return copies // 2 + 1


def choose_replicas(hosts: list[str], master: int, live, count: int) -> list[int]:
    """Up to `count` live ranks to hold copies: one per host other than the master's,
    hosts taken in the order of their lowest rank, the lowest live rank of each.
    A rank on the master's host shares its disk, so it adds no copy."""
    chosen, seen = [], {hosts[master]}
    for rank in sorted(live):
        if len(chosen) >= count:
            break
        if rank != master and hosts[rank] not in seen:
            seen.add(hosts[rank])
            chosen.append(rank)
    return chosen


class CommitTracker:
    """Which written checkpoints are held by a quorum of hosts. Pure: acks in, commits out."""

    def __init__(self, quorum: int, hosts: list[str], own: int):
        self.quorum = quorum
        self.hosts = hosts  # host name per rank
        self.own = own  # the master's rank: it holds what it wrote
        self.holders: dict[tuple[int, str], set[str]] = {}  # (sequence, checksum) -> hosts holding it
        self.committed: tuple[int, str] | None = None  # the newest committed checkpoint

    def written(self, sequence: int, digest: str) -> tuple[int, str] | None:
        """The master wrote a checkpoint; returns it if that alone commits it (a quorum of one)."""
        self.holders[(sequence, digest)] = {self.hosts[self.own]}
        return self._check((sequence, digest))

    def acked(self, rank: int, sequence: int, digest: str) -> tuple[int, str] | None:
        """`rank` stored the checkpoint; returns it if it is newly committed."""
        key = (sequence, digest)
        if key not in self.holders:
            return None  # an ack of something this master never wrote (an older term's)
        self.holders[key].add(self.hosts[rank])
        return self._check(key)

    def _check(self, key: tuple[int, str]) -> tuple[int, str] | None:
        if len(self.holders[key]) < self.quorum or (self.committed is not None and self.committed[0] >= key[0]):
            return None
        self.committed = key
        for old in [k for k in self.holders if k[0] <= key[0]]:
            del self.holders[old]  # older ones no longer matter: a resume takes the newest
        return key


@dataclass(frozen=True)
class Copy:
    """A valid checkpoint found in one folder (what a rank tells the others at start-up)."""

    holder: int  # the rank that can read it
    sequence: int
    digest: str  # its checksum
    fingerprint: str  # its input set
    accepted_bytes: int


@dataclass(frozen=True)
class FolderScan:
    """What one rank found in its checkpoint folder."""

    copies: tuple[Copy, ...]
    commits: tuple[tuple[int, str], ...]  # what its commit record names (none, or one)
    highest: int  # the highest sequence number in the folder, valid or not
    error: str | None = None  # the folder cannot be used


def newest_committed(scans, fingerprint: str, quorum: int) -> Copy | None:
    """The newest committed copy of the input set `fingerprint` among the scans, or None."""
    copies = [c for scan in scans for c in scan.copies if c.fingerprint == fingerprint]
    recorded = {commit for scan in scans for commit in scan.commits}
    held: dict[tuple[int, str], int] = {}
    for c in copies:
        held[(c.sequence, c.digest)] = held.get((c.sequence, c.digest), 0) + 1
    committed = [c for c in copies if (c.sequence, c.digest) in recorded or held[(c.sequence, c.digest)] >= quorum]
    return max(committed, key=lambda c: (c.sequence, c.accepted_bytes, -c.holder), default=None)


def scan_folder(store: CheckpointStore, rank: int) -> FolderScan:
    """The valid checkpoints in `store`'s folder and its commit record (made if missing)."""
    try:
        os.makedirs(store.root, exist_ok=True)
        if not os.access(store.root, os.W_OK | os.X_OK):
            raise PermissionError("not writable")
        sequences = store.sequences()
    except Exception as exc:  # noqa: BLE001 - InputError or OSError: the folder is of no use
        return FolderScan((), (), 0, f"cannot use checkpoint folder {store.root}: {getattr(exc, 'strerror', None) or exc}")
    copies = []
    for checkpoint in store.valid_checkpoints():
        doc = checkpoint.doc
        copies.append(Copy(rank, checkpoint.sequence, doc["checksum"], doc["fingerprint"], doc.get("accepted_bytes", 0)))
    commit = read_commit(store.root)
    return FolderScan(tuple(copies), (commit,) if commit else (), max(sequences, default=0))


# ----------------------------------------------------------------- a replica's files
def write_commit(root: str, sequence: int, digest: str) -> None:
    """Records that checkpoint `sequence` (with this checksum) is committed; never moves backwards."""
    known = read_commit(root)
    if known is not None and known[0] >= sequence:
        return
    write_atomic(os.path.join(root, COMMIT_FILE), json.dumps({"sequence": sequence, "checksum": digest}).encode())


class ReplicaError(Exception):
    """A replicated checkpoint arrived damaged or could not be stored."""


def write_replica(store: CheckpointStore, sequence: int, document: bytes, job: bytes) -> str:
    """Stores a copy of the master's checkpoint `sequence` in `store`'s folder, byte for byte
    (a copy of the same sequence already there is replaced); returns its checksum.
    The processed files are not copied: a resume needs only the document and the job file."""
    try:
        doc = json.loads(document)
        digest = doc["checksum"]
        name = doc["job_file"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReplicaError(f"replica {sequence}: unreadable ({exc})") from None
    if digest != checksum(doc) or name != job_file_name(job):
        raise ReplicaError(f"replica {sequence}: checksum mismatch")
    try:
        store.put_job_file(job)
        tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{sequence:06d}-", dir=store.root)
        write_document(tmp, document)
        fsync_folder(tmp)
        final = os.path.join(store.root, f"{sequence:06d}")
        if os.path.exists(final):  # an uncommitted copy of an earlier run: this one supersedes it
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_folder(store.root)
        store.prune()
    except OSError as exc:
        raise ReplicaError(f"replica {sequence} not stored in {store.root}: {exc.strerror or exc}") from None
    return digest
