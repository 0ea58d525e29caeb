"""The work model: an input set becomes pieces and tasks. Pure, no I/O.

A `Piece` is a byte range of one file; it owns the lines that start inside it
(see reader.py), so pieces that tile a file count each line once. It names
the file's format, chosen once at planning, so whoever counts it counts it the
same way. A compressed file is always one whole piece (offsets into it mean
nothing). A `Task` is
the unit a worker runs: one piece of a large file, or a batch of whole small
files (100,000 tiny files must not cost 100,000 round trips). Task ids hash
the pieces and the files' identities, so a resumed or taken-over job names the
same work the same way, and a changed file gets new ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from loganalyser.console import shown
from loganalyser.counting.compressed import compression_of

from .inputs import LogFile

CHUNK_BYTES = 32 << 20  # a large file is cut into pieces of about this size
BATCH_BYTES = 8 << 20  # small files are grouped up to this many bytes ...
BATCH_FILES = 512  # ... or this many files, whichever comes first
TASKS_PER_WORKER = 4  # enough tasks to balance, few enough to keep round trips rare
MIN_TASK_BYTES = 256 << 10  # below this a task costs more in messages than in counting


@dataclass(frozen=True)
class Piece:
    """Lines of `path` starting in [offset, offset + length)."""

    path: str
    offset: int
    length: int
    identity: str  # LogFile.identity at planning time
    whole: bool = False  # covers the whole file (not a chunk of it): may be read in one go
    file_size: int | None = None  # the file's size at scan time (to notice a file that grew or shrank)
    format: str = "seed"  # the format its lines are counted in

    @property
    def compressed(self) -> bool:
        return compression_of(self.path) is not None

    def describe(self) -> str:
        name = shown(self.path)
        return name if self.whole else f"{name}[{self.offset}:{self.offset + self.length}]"


@dataclass(frozen=True)
class Task:
    """A unit of work: its id and the pieces it covers."""

    task_id: str
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        return sum(piece.length for piece in self.pieces)

    def describe(self) -> str:
        """How the console names the task: a file, a byte range, or a batch."""
        if len(self.pieces) == 1:
            return self.pieces[0].describe()
        return f"{len(self.pieces)} files ({shown(self.pieces[0].path)} ... {shown(self.pieces[-1].path)})"


def make_task(pieces) -> Task:
    """A task whose id is derived from its pieces alone."""
    pieces = tuple(pieces)
    digest = hashlib.blake2b(digest_size=8)
    for p in pieces:
        digest.update(f"{p.path}\0{p.offset}\0{p.length}\0{p.identity}\0{p.format}\n".encode("utf-8", "surrogateescape"))
    return Task(digest.hexdigest(), pieces)


def task_sizes(files: list[LogFile], workers: int, chunk_bytes: int = CHUNK_BYTES, batch_bytes: int = BATCH_BYTES) -> tuple[int, int]:
    """Chunk and batch sizes giving about TASKS_PER_WORKER tasks per worker.

    Never above the given sizes (memory, latency), never below MIN_TASK_BYTES
    (message overhead): a small input still spreads over every worker.
    """
    share = sum(f.size for f in files) // max(1, workers * TASKS_PER_WORKER)
    target = max(MIN_TASK_BYTES, share)
    return min(chunk_bytes, target), min(batch_bytes, target)


def plan_tasks(files: list[LogFile], chunk_bytes: int = CHUNK_BYTES, batch_bytes: int = BATCH_BYTES, batch_files: int = BATCH_FILES, workers: int | None = None) -> list[Task]:
    """Tasks covering `files`, largest first (so the last tasks are small).

    With `workers`, sizes shrink first (see task_sizes). The same files and
    sizes always give the same tasks and ids.
    """
    if workers is not None:
        chunk_bytes, batch_bytes = task_sizes(files, workers, chunk_bytes, batch_bytes)
    tasks = []
    batch: list[Piece] = []
    batch_size = 0
    for f in files:
        if f.compression:  # read whole, streamed: never cut, never batched
            tasks.append(make_task([whole_piece(f)]))
            continue
        if f.size > chunk_bytes:
            tasks.extend(make_task([piece]) for piece in split_file(f, chunk_bytes))
            continue
        if batch and (batch_size + f.size > batch_bytes or len(batch) >= batch_files):
            tasks.append(make_task(batch))
            batch, batch_size = [], 0
        batch.append(whole_piece(f))
        batch_size += f.size
    if batch:
        tasks.append(make_task(batch))
    tasks.sort(key=lambda t: (-t.size, t.task_id))
    return tasks


def whole_piece(f: LogFile) -> Piece:
    """The piece covering all of `f`."""
    return Piece(f.path, 0, f.size, f.identity, whole=True, file_size=f.size, format=f.format)


def split_file(f: LogFile, chunk_bytes: int) -> list[Piece]:
    """Equal byte ranges of at most `chunk_bytes` tiling the file (one piece if compressed)."""
    count = 1 if f.compression else max(1, -(-f.size // chunk_bytes))
    bounds = [f.size * i // count for i in range(count + 1)]
    return [Piece(f.path, a, b - a, f.identity, whole=count == 1, file_size=f.size, format=f.format)
            for a, b in zip(bounds, bounds[1:])]


def partition_by_bytes(files: list[LogFile], parts: int) -> list[list[Piece]]:
    """Static partition: share r gets bytes [r*T/parts, (r+1)*T/parts) of the concatenated files.

    A compressed file cannot be cut: it goes whole to the share its first byte falls in."""
    total = sum(f.size for f in files)
    bounds = [total * r // parts for r in range(parts + 1)]
    shares: list[list[Piece]] = [[] for _ in range(parts)]
    start = 0  # offset of the current file in the concatenation
    for f in files:
        end = start + f.size
        if f.compression:
            owner = next(r for r in range(parts) if bounds[r] <= start < bounds[r + 1] or r == parts - 1)
            shares[owner].append(whole_piece(f))
            start = end
            continue
        for r in range(parts):
            lo, hi = max(bounds[r], start), min(bounds[r + 1], end)
            empty_here = f.size == 0 and bounds[r] <= start < bounds[r + 1]
            empty_last = f.size == 0 and start == total and r == parts - 1
            if lo < hi or empty_here or empty_last:
                offset, length = (lo - start, hi - lo) if lo < hi else (0, 0)
                shares[r].append(Piece(f.path, offset, length, f.identity, whole=length == f.size, file_size=f.size, format=f.format))
        start = end
    return shares
