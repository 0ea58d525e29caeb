"""Shipping: a worker that cannot see a task's file counts bytes the master sends it.

Ranks on other hosts may not share the master's filesystem. Before it counts
a step of a task (worker.py), a worker checks that each file is visible here:
it exists, with the size and modification time the scan recorded. The
device and inode are not compared: they number a mount and a file on one host
only (the same NFS export has another device number on each client), and a
copy that kept its times (`rsync -a`) is the same content. A file that is not
visible, or every file with `--ship always`, is fetched from the master; with
`--ship never` it is an input error naming the file and the host.

The shipped unit is exactly what the reader (counting/reader.py) would read
of the file: for a byte range [offset, offset + length), the byte before
`offset` (it says whether the first line began earlier) up to the first
newline at or after the range's last byte (the end of the last line it
owns), or the end of the file; for a small file read whole, its first
`length` bytes; for a compressed file, all of it (compressed: counting stays
with the workers, and the bytes on the wire are the fewest). The worker keeps
them in a spool (in memory up to SPOOL_IN_MEMORY, then a temporary file on its own
disk) and counts them through the same reader,
with `ShippedFiles` in place of the local files, so the counts are those of a
local read, line for line.

The worker pulls: it asks for a chunk of at most CHUNK_BYTES at a time, with
at most WINDOW requests outstanding, so a shipment is flow-controlled by the
receiver and the master holds at most WINDOW chunks per worker in its send
buffers. The master answers a request with one positioned read, at most
SERVE_PER_TURN bytes of them per turn of its loop (so a turn stays short
however many workers ask), and keeps nothing of a shipment: a worker that
dies in the middle of one leaves nothing behind (its task is requeued as
usual; what was still queued for it is answered into the void), and a worker
whose master changed asks the new one for what is missing.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from loganalyser.console import shown
from loganalyser.counting.reader import LOCAL_FILES, SMALL_FILE
from loganalyser.errors import InputError
from loganalyser.work.tasks import Piece

from .seams import SendTo

MODES = ("auto", "always", "never")
CHUNK_BYTES = 4 << 20  # the most the master reads and sends for one request
TAIL_BYTES = 4 << 10  # asked for past a range's end with its last bytes (where its last line ends, mostly)
WINDOW = 2  # requests a worker has outstanding: one in flight while the other is read
SERVE_PER_TURN = 2 * CHUNK_BYTES  # the most the master reads for workers per turn of its loop
SPOOL_IN_MEMORY = 2 * CHUNK_BYTES  # a fetch larger than this (a compressed file, a long line) goes to a temporary file


class ShipTag(IntEnum):
    """The shipping protocol's tags (the job protocol's and the election's are other values)."""

    SHIP_REQUEST = 50
    SHIP_CHUNK = 51


@dataclass(frozen=True)
class ShipRequest:
    """Worker -> master: bytes [position, position + length) of `path`."""

    TAG = ShipTag.SHIP_REQUEST
    epoch: int
    ticket: int  # the worker's number for this request, echoed in the answer
    path: str
    position: int
    length: int


@dataclass(frozen=True)
class ShipChunk:
    """Master -> worker: the bytes asked for (fewer at the end of the file), or why not."""

    TAG = ShipTag.SHIP_CHUNK
    epoch: int
    ticket: int  # the request's
    path: str
    position: int
    data: bytes
    size: int | None  # the file's size at the master when read
    mtime: float | None  # and its modification time (the year of year-less timestamps)
    error: str | None = None  # the master cannot read the file: the job cannot be exact


SHIP_MESSAGES = (ShipRequest, ShipChunk)


def read_chunk(request: ShipRequest, epoch: int, host: str) -> ShipChunk:
    """The master's answer: one positioned read of at most CHUNK_BYTES."""
    try:
        fd = os.open(request.path, os.O_RDONLY)
        try:
            data = os.pread(fd, min(request.length, CHUNK_BYTES), request.position)
            st = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        error = f"cannot read {request.path} on host {host} (to ship it): {exc.strerror or exc}"
        return ShipChunk(epoch, request.ticket, request.path, request.position, b"", None, None, error)
    return ShipChunk(epoch, request.ticket, request.path, request.position, data, st.st_size, st.st_mtime)


def invisible_because(piece: Piece) -> str | None:
    """Why this host cannot count `piece` from its own file (None: it can)."""
    try:
        st = os.stat(piece.path)
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else "cannot be read"
    _device, _inode, size, mtime_ns = piece.identity.split(":")
    if st.st_size != int(size) or st.st_mtime_ns != int(mtime_ns):
        return "another file: its size or modification time differs from the scan's"
    if not os.access(piece.path, os.R_OK):
        return "permission denied"
    return None


def shipped_span(piece: Piece) -> tuple[int, int, bool]:
    """What a worker needs of `piece`'s file: (first byte, bytes known to be needed,
    whether the last line's end must be found past them). See the module's docstring."""
    if piece.compressed:
        return 0, piece.length, True  # to the end of the file, however long it is now
    if piece.whole and piece.offset == 0 and piece.length <= SMALL_FILE:
        return 0, piece.length, False  # read whole: exactly its first `length` bytes
    low = max(0, piece.offset - 1)
    if piece.length == 0:
        return low, 0, False  # owns no line: the reader reads nothing it needs
    return low, piece.offset + piece.length - low, True


class _Fetch:
    """One piece's bytes on their way: requested in order, written to a spool file."""

    def __init__(self, piece: Piece):
        self.piece = piece
        self.low, needed, self.open_ended = shipped_span(piece)
        self.needed = max(1, needed)  # at least one answer: it brings the file's size and time too
        self.spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # a step's bytes in memory; more on disk
        self.received = 0  # bytes from `low` on, in order
        self.requested = 0  # bytes from `low` on asked for
        self.pending: dict[int, tuple[int, int]] = {}  # ticket -> (position, length) of requests not answered yet
        self.size: int | None = None  # the file's size at the master
        self.mtime: float | None = None  # and its modification time
        self.complete = False
        self.error: str | None = None

    def next_request(self, ticket: int) -> tuple[int, int] | None:
        """(position, length) of the next request, numbered `ticket`, or None if nothing more can be asked yet."""
        if self.complete or self.error is not None:
            return None
        if self.requested < self.needed:
            margin = TAIL_BYTES if self.open_ended else 0
            length = min(CHUNK_BYTES, self.needed + margin - self.requested)
        elif self.open_ended and not self.pending:  # the last line goes on: ask for more, growing
            length = min(CHUNK_BYTES, max(TAIL_BYTES, self.requested - self.needed))
        else:
            return None
        position = self.low + self.requested
        self.requested += length
        self.pending[ticket] = (position, length)
        return position, length

    def take(self, chunk: ShipChunk) -> int:
        """Stores an answer; returns the bytes it brought (0 for a stale or duplicate one)."""
        position, length = self.pending.pop(chunk.ticket, (None, 0))
        if position != chunk.position or chunk.position < self.low + self.received:
            return 0
        if chunk.position > self.low + self.received:  # cannot happen in order; ask again rather than hang
            self.restart()
            return 0
        if chunk.error is not None:
            self.error = chunk.error
            return 0
        self.spool.seek(self.received)
        self.spool.write(chunk.data)
        self.received += len(chunk.data)
        self.size, self.mtime = chunk.size, chunk.mtime
        if len(chunk.data) < length:  # the end of the file at the master
            self.complete = True
            self.pending.clear()
        elif self.received >= self.needed:
            self.complete = not self.open_ended or self._last_line_ended(chunk)
        return len(chunk.data)

    def _last_line_ended(self, chunk: ShipChunk) -> bool:
        """A newline at or after the range's last byte (offset + length - 1) was received."""
        last = self.piece.offset + self.piece.length - 1
        if self.piece.compressed:
            return False  # only the end of the file ends a compressed file
        return chunk.data.find(b"\n", max(0, last - chunk.position)) >= 0

    def restart(self) -> None:
        """A new master (or term): ask again for everything not received."""
        self.pending.clear()
        self.requested = self.received

    def close(self) -> None:
        """Given up or counted: answers still on their way are dropped (take finds no ticket)."""
        self.pending.clear()
        self.spool.close()


class ShippedFiles:
    """The reader's `files` for a step: shipped bytes for the fetched paths, this host's files for the rest."""

    def __init__(self, fetches: dict[str, _Fetch]):
        self.fetches = fetches

    def open(self, path: str):
        fetch = self.fetches.get(path)
        if fetch is None:
            return LOCAL_FILES.open(path)
        fetch.spool.flush()
        return _Window(fetch.spool, fetch.low, fetch.low + fetch.received)

    def size(self, path: str) -> int | None:
        fetch = self.fetches.get(path)
        return LOCAL_FILES.size(path) if fetch is None else fetch.size

    def mtime(self, path: str) -> float | None:
        fetch = self.fetches.get(path)
        return None if fetch is None else fetch.mtime


class _Window:
    """Bytes [low, end) of a file, held in a spool file, read as if the whole file were there:
    the reader only reads what was shipped; past `end` is the end of the file."""

    def __init__(self, spool, low: int, end: int):
        self.spool, self.low, self.end = spool, low, end
        self.position = low

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.position = offset if whence == os.SEEK_SET else self.position + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        left = self._left()
        self.spool.seek(self.position - self.low)
        data = self.spool.read(left if size < 0 else min(size, left))
        self.position += len(data)
        return data

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        self.spool.seek(self.position - self.low)
        got = self.spool.readinto(view[: self._left()])
        self.position += got
        return got

    def _left(self) -> int:
        if self.position < self.low:
            raise OSError(f"read before the shipped bytes ({self.position} < {self.low})")
        return max(0, self.end - self.position)

    def close(self) -> None:
        pass  # the spool belongs to the fetch

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Shipping:
    """Both ends of shipping on one rank: the worker's fetches and the master's answers."""

    def __init__(self, mode: str, host: str, send: SendTo):
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.host = host  # this rank's host name, for error messages
        self.send = send  # send(dest, message)
        self.steps: dict[tuple[Piece, ...], dict[str, _Fetch]] = {}  # the step to count and the next: path -> fetch
        self.waiting: dict[int, _Fetch] = {}  # ticket -> the fetch that asked
        self.tickets = 0  # the last ticket given
        self.term: tuple[int, int] | None = None  # (master, epoch) the requests went to
        self.requests: deque[tuple[int, ShipRequest, int]] = deque()  # (worker, request, epoch) not answered yet
        self.shipped_bytes = 0  # sent by this rank as master
        self.received_bytes = 0  # received by this rank as worker

    # ---------------------------------------------------------------- worker
    def files_for(self, step: tuple[Piece, ...], master: int, epoch: int, next_step: tuple[Piece, ...] | None = None):
        """Where the reader gets `step`'s bytes: LOCAL_FILES when every file is visible here,
        ShippedFiles once the missing ones arrived, None while they are on their way (ask
        again next turn). An input error when a file may not or cannot be shipped. The
        files of `next_step` are fetched meanwhile, so they travel while `step` is counted."""
        wanted = (step,) if next_step is None or self.mode == "never" else (step, next_step)
        self._keep(wanted)
        fetches = self.steps[step]
        errors = [f.error for f in fetches.values() if f.error is not None]
        if errors:
            raise InputError(errors[0])
        if (master, epoch) != self.term:  # a new master, or a new term (a master back from a pause lost them)
            self.term = (master, epoch)
            self.waiting.clear()
            for fetch in self._all():
                fetch.restart()
        self._ask(wanted, epoch)
        if not fetches:
            return LOCAL_FILES
        if all(fetch.complete for fetch in fetches.values()):
            return ShippedFiles(fetches)
        return None

    def on_chunk(self, source: int, chunk: ShipChunk) -> None:
        """An answer from the master (an old master's, or one for a step given up, is dropped)."""
        if self.term is None or source != self.term[0]:
            return
        fetch = self.waiting.pop(chunk.ticket, None)
        if fetch is not None:
            self.received_bytes += fetch.take(chunk)

    def counted(self, step: tuple[Piece, ...]) -> None:
        """`step` was counted: its spool files go."""
        for fetch in self.steps.pop(step, {}).values():
            fetch.close()

    def _keep(self, wanted) -> None:
        """Fetches for the `wanted` steps; the fetches of any other step go."""
        for step in [s for s in self.steps if s not in wanted]:
            self.counted(step)  # its requests still out stay in `waiting`: the master answers them (dropped)
        for step in wanted:
            if step not in self.steps:
                self.steps[step] = self._fetches(step)

    def _fetches(self, step: tuple[Piece, ...]) -> dict[str, _Fetch]:
        fetches = {}
        for piece in step:
            why = "shipping is --ship always" if self.mode == "always" else invisible_because(piece)
            if why is None:
                continue
            if self.mode == "never":
                raise InputError(f"{shown(piece.path)} is not visible on host {self.host} ({why}) "
                                 "and --ship never forbids shipping it")
            fetches[piece.path] = _Fetch(piece)
        return fetches

    def _all(self):
        return [fetch for fetches in self.steps.values() for fetch in fetches.values()]

    def _ask(self, wanted, epoch: int) -> None:
        """Keeps up to WINDOW requests outstanding, the step to count first."""
        for step in wanted:
            for fetch in self.steps[step].values():
                while len(self.waiting) < WINDOW:
                    request = fetch.next_request(self.tickets + 1)
                    if request is None:
                        break
                    self.tickets += 1
                    self.waiting[self.tickets] = fetch
                    self.send(self.term[0], ShipRequest(epoch, self.tickets, fetch.piece.path, *request))

    # ---------------------------------------------------------------- master
    def take_request(self, source: int, request: ShipRequest, epoch: int) -> None:
        """A worker's request, answered by serve_some (the master's side)."""
        self.requests.append((source, request, epoch))

    def serve_some(self, budget: int = SERVE_PER_TURN) -> bool:
        """Answers waiting requests, reading at most about `budget` bytes, so that one turn
        of the master's loop is never long however many workers ask; True if it answered any."""
        served = 0
        while self.requests and served < budget:
            source, request, epoch = self.requests.popleft()
            self.serve(source, request, epoch)
            served += max(1, min(request.length, CHUNK_BYTES))
        return served > 0

    def serve(self, source: int, request: ShipRequest, epoch: int) -> None:
        """Answers a request now: one positioned read, no state kept."""
        chunk = read_chunk(request, epoch, self.host)
        self.shipped_bytes += len(chunk.data)
        self.send(source, chunk)
