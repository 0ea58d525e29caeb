"""Checkpoints on disk: atomic, validated, cheap, newest valid one wins.

Layout under the checkpoint folder (default `checkpoints/`):

    000007/checkpoint.json   one folder per checkpoint, zero-padded sequence
    000007/files -> ../files the processed files (a link to the shared store)
    files/<key>-<name>       each processed file stored once, as a hard link
                             (a copy only where a link is impossible)
    jobs/<sha256>.json       the input files and their identities, written once
                             per job (content-addressed), named by each checkpoint

A checkpoint is written to a temporary folder, fsynced, and renamed into
place, so a kill at any instant leaves the previous checkpoint valid; a
checksum inside the document catches a torn or edited file. Writing one costs
the JSON of the results plus a link per *newly* processed file: nothing is
copied or rewritten because earlier checkpoints exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime

from loganalyser.errors import InputError

from .atomic import fsync_folder, write_atomic

SCHEMA = 2  # 2: results may carry analysis statistics ("stats")
READABLE_SCHEMAS = (1, SCHEMA)  # a schema 1 checkpoint is a schema 2 one without statistics
_SEQUENCE = re.compile(r"^\d{6,}$")
STORE = "files"  # the shared store's folder name
JOBS = "jobs"  # folder of the per-job input descriptions
TMP_PREFIX = ".tmp-"  # a checkpoint being written
GARBAGE_STEP = 256  # names looked at per step of garbage_steps
FILE_MODES = ("link", "copy", "none")
COMMIT_FILE = "committed.json"  # the newest checkpoint held by a quorum of hosts (persistence/replicas.py)


class StaleEpoch(Exception):
    """A newer master has written a checkpoint: this one must not write."""


class CheckpointWriteError(Exception):
    """A checkpoint could not be written (full disk, permissions); the previous ones stand."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back from disk."""

    sequence: int
    folder: str
    doc: dict


def _canonical(doc: dict) -> bytes:
    return json.dumps({k: v for k, v in doc.items() if k != "checksum"}, indent=1, sort_keys=True).encode()


def job_file_name(body: bytes) -> str:
    """Where a job file's bytes live in a store: named by their hash, so written once and checkable."""
    return f"{JOBS}/{hashlib.sha256(body).hexdigest()}.json"


def write_document(folder: str, data: bytes) -> None:
    """Writes a checkpoint's document into its (temporary) folder, flushed to disk."""
    with open(os.path.join(folder, "checkpoint.json"), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def checksum(doc: dict) -> str:
    """SHA-256 of the document without its checksum field, canonically encoded."""
    return hashlib.sha256(_canonical(doc)).hexdigest()


def encode(doc: dict) -> bytes:
    """The document as written: canonical JSON with its checksum as the last field (one serialisation)."""
    body = _canonical(doc)
    digest = hashlib.sha256(body).hexdigest()
    return body[: body.rindex(b"}")].rstrip() + f',\n "checksum": "{digest}"\n}}\n'.encode()


def stored_name(path: str, identity: str) -> str:
    """A collision-free, traversal-free name in the store for one input file.

    The key hashes the path and the file's identity (device, inode, size,
    mtime), so two files of the same name never share a stored name.
    """
    key = hashlib.blake2b(f"{path}\0{identity}".encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    base = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(path))[:80] or "file"
    return f"{key}-{base}"


class CheckpointStore:
    """Reads and writes the checkpoints under `root`."""

    def __init__(self, root: str, keep: int = 3, file_mode: str = "link", warn=None):
        self.root = root
        self.keep = keep
        self.file_mode = file_mode
        self.warn = warn or (lambda text: None)
        self._stored: set[str] = set()  # names known to be in the store
        self._last_written: int | None = None
        self._reported: set[int] = set()  # bad checkpoints already warned about
        self.floor = 0  # new checkpoints are numbered above this (the highest sequence seen on any host)

    # ------------------------------------------------------------------ reading
    def sequences(self) -> list[int]:
        """Sequence numbers of the checkpoint folders, oldest first."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputError(f"cannot read checkpoint folder {self.root}: {exc.strerror or exc}") from None
        return sorted(int(n) for n in names if _SEQUENCE.match(n))

    def load_latest(self, fingerprint: str) -> Checkpoint | None:
        """The newest valid checkpoint of this input set; corrupt ones are skipped with a warning."""
        for sequence in reversed(self.sequences()):
            checkpoint = self._read(sequence)
            if checkpoint is None:
                continue
            if checkpoint.doc.get("fingerprint") != fingerprint:
                self.warn(f"checkpoint {checkpoint.folder} is of another input set; not used")
                return None
            return checkpoint
        return None

    def valid_checkpoints(self):
        """The valid checkpoints in the folder, newest first (corrupt ones skipped with a warning)."""
        for sequence in reversed(self.sequences()):
            checkpoint = self._read(sequence)
            if checkpoint is not None:
                yield checkpoint

    def _read(self, sequence: int) -> Checkpoint | None:
        folder = os.path.join(self.root, f"{sequence:06d}")
        path = os.path.join(folder, "checkpoint.json")
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
            problem = _problem(doc) or self._attach_job(doc)
        except (OSError, ValueError) as exc:
            problem = str(getattr(exc, "strerror", None) or exc)
        if problem:
            if sequence not in self._reported:
                self._reported.add(sequence)
                self.warn(f"skipping checkpoint {folder}: {problem}; trying an older one")
            return None
        return Checkpoint(sequence, folder, doc)

    def _attach_job(self, doc: dict) -> str | None:
        """Reads the job file the checkpoint names into doc["identities"]; a problem, or None."""
        name = doc.get("job_file", "")
        if not re.fullmatch(rf"{JOBS}/[0-9a-f]{{64}}\.json", name):
            return "no valid job_file"
        with open(os.path.join(self.root, name), "rb") as f:
            body = f.read()
        if job_file_name(body) != name:
            return f"{name} does not match its hash"
        doc["identities"] = json.loads(body)["identities"]
        return None

    # ------------------------------------------------------------------ writing
    def save(self, doc: dict, processed, identities: dict[str, str]) -> str:
        """Writes `doc` as the next checkpoint with the `processed` LogFiles; returns its folder.

        On any I/O error the half-written checkpoint is removed and
        CheckpointWriteError raised: the previous checkpoints stay as they were.
        """
        self._check_epoch(doc["epoch"], doc.get("run_id"))
        tmp = None
        try:
            sequence = max(max(self.sequences(), default=0), self.floor) + 1
            os.makedirs(self.root, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{sequence:06d}-", dir=self.root)
            return self._write(dict(doc, job_file=self._job_file(identities)), processed, sequence, tmp)
        except OSError as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointWriteError(f"checkpoint not written in {self.root}: {exc.strerror or exc}") from None

    def _job_file(self, identities: dict[str, str]) -> str:
        """Writes the job's input description once (content-addressed); returns its name."""
        return self.put_job_file(json.dumps({"identities": identities}, sort_keys=True).encode())

    def put_job_file(self, body: bytes) -> str:
        """Stores a job file's bytes under their content-addressed name, once; returns the name."""
        name = job_file_name(body)
        if name not in self._stored:
            path = os.path.join(self.root, name)
            if not os.path.exists(path):
                os.makedirs(os.path.join(self.root, JOBS), exist_ok=True)
                write_atomic(path, body)
            self._stored.add(name)
        return name

    def _write(self, doc: dict, processed, sequence: int, tmp: str) -> str:
        doc = dict(doc, sequence=sequence, timestamp=datetime.now().isoformat(timespec="seconds"))
        if self.file_mode != "none":
            self._store(processed)
        final = os.path.join(self.root, f"{sequence:06d}")
        write_document(tmp, encode(doc))
        if self.file_mode != "none":
            os.symlink(os.path.join("..", STORE), os.path.join(tmp, STORE))
        fsync_folder(tmp)
        os.rename(tmp, final)
        fsync_folder(self.root)
        self._last_written = sequence
        self.prune()
        return final

    def _check_epoch(self, epoch: int, run_id) -> None:
        """Refuses to write under a newer master of the same run (epochs restart with each launch)."""
        newest = max(self.sequences(), default=None)
        if newest is None or newest == self._last_written:
            return  # nobody else wrote since our last checkpoint
        checkpoint = self._read(newest)
        if checkpoint is not None and checkpoint.doc.get("run_id") == run_id and checkpoint.doc.get("epoch", 0) > epoch:
            raise StaleEpoch(f"checkpoint {checkpoint.folder} has epoch {checkpoint.doc['epoch']} > {epoch}")

    def store_files(self, processed) -> bool:
        """Puts processed files into the store ahead of a checkpoint (spreads the work over the run).

        False on an I/O error, which the next save() meets again and reports.
        """
        if self.file_mode == "none":
            return True
        try:
            self._store(processed)
        except OSError:
            return False
        return True

    def _store(self, processed) -> None:
        """Links each processed file into the store, once per job."""
        store = os.path.join(self.root, STORE)
        os.makedirs(store, exist_ok=True)
        for log_file in processed:
            name = stored_name(log_file.path, log_file.identity)
            if name not in self._stored:
                _link_or_copy(log_file.path, os.path.join(store, name), self.file_mode)
                self._stored.add(name)

    def prune(self) -> None:
        """Keeps the newest `keep` checkpoints and the committed one; clears leftovers of killed writes."""
        committed = read_commit(self.root)
        for sequence in self.sequences()[: -self.keep]:
            if committed is not None and sequence == committed[0]:
                continue
            shutil.rmtree(os.path.join(self.root, f"{sequence:06d}"), ignore_errors=True)
        for name in os.listdir(self.root):
            if name.startswith(TMP_PREFIX):  # left by a writer killed mid-write (ours is renamed by now)
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def garbage_steps(self):
        """Removes stored files no kept checkpoint refers to (changed or removed inputs, leftovers),
        a step per iteration: a generator its caller advances once per turn of its loop, so a
        store of thousands of files never keeps the master from its messages for long.

        Cheap when there is nothing to collect: one listing of the store.
        """
        store = os.path.join(self.root, STORE)
        if not os.path.isdir(store) or len(os.listdir(store)) <= len([n for n in self._stored if "/" not in n]):
            return
        wanted, jobs = set(), set()
        for sequence in self.sequences():
            yield
            checkpoint = self._read(sequence)
            if checkpoint is None:
                return  # cannot tell what it needs: keep everything
            identities = checkpoint.doc["identities"]
            wanted.update(stored_name(p, identities[p]) for p in checkpoint.doc["processed_files"] if p in identities)
            jobs.add(os.path.basename(checkpoint.doc["job_file"]))
        for folder, keep in ((store, wanted), (os.path.join(self.root, JOBS), jobs)):
            names = os.listdir(folder) if os.path.isdir(folder) else ()
            for count, name in enumerate(names, 1):
                if name not in keep:
                    os.unlink(os.path.join(folder, name))
                    self._stored.discard(name)
                if count % GARBAGE_STEP == 0:
                    yield


def read_commit(root: str) -> tuple[int, str] | None:
    """A folder's commit record: (sequence, checksum) of its newest committed checkpoint, or None."""
    try:
        with open(os.path.join(root, COMMIT_FILE), "rb") as f:
            doc = json.loads(f.read())
        return int(doc["sequence"]), str(doc["checksum"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _link_or_copy(source: str, target: str, mode: str) -> None:
    if mode == "link":
        try:
            os.link(source, target)  # atomic: the name appears whole or not at all
            return
        except FileExistsError:
            return  # stored by an earlier run of the same job
        except OSError:  # another file system, or links not allowed: copy
            pass
    if not os.path.exists(target):
        tmp = target + ".tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


_REQUIRED = ("schema", "fingerprint", "epoch", "tasks", "counts", "processed_files", "pending_files", "job_file", "checksum")


def _problem(doc) -> str | None:
    """Why a loaded document cannot be trusted, or None."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    missing = [key for key in _REQUIRED if key not in doc]
    if missing:
        return f"missing {', '.join(missing)}"
    if doc["schema"] not in READABLE_SCHEMAS:
        return f"schema {doc['schema']} (this program reads {', '.join(map(str, READABLE_SCHEMAS))})"
    if doc["checksum"] != checksum(doc):
        return "checksum mismatch (torn or edited)"
    if not isinstance(doc["tasks"], dict):
        return "tasks is not an object"
    return None
