"""`--follow` in the distributed job: the master turns appended bytes into tasks.

The master owns the StreamTracker (work/streams.py), fed by a scan of the
inputs whenever its Watcher says a folder changed (polled without waiting, so
the master's turn never blocks). Each stream's new whole lines become one task
at a time, a byte range whose id names the stream's identity, the content's
serial, where the stream began (its base) and the range:
`follow:DEV:INO:SERIAL:BASE:START:END:HEAD:FORMAT`, HEAD being a hash of the
stream's first bytes (what recognises a copy of it after a copytruncate). Ranges
own the lines that start in them (reader.py), so any cut is exact.

Invariant: the committed offsets are a function of the accepted task ids. A
stream's offset moves only when a result is accepted (`accepted`), and a
stream has at most one range in flight after the first pass, so its accepted
ranges form a chain. A new master (failover) or a restarted job (checkpoint)
rebuilds the tracker from the plan's first observation (`FollowStart`) and the
ids in the job state it holds (`restore_tracker`): the replicated JobState and
the checkpoint already carry everything, and a range is never planned twice
under two names by one lineage of masters.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from dataclasses import dataclass, replace

from loganalyser.counting.formats import AUTO, FormatSet
from loganalyser.counting.formats.detect import detect
from loganalyser.counting.reader import analyse_pieces, last_line_end
from loganalyser.counting.result import PartialResult
from loganalyser.errors import InputError
from loganalyser.work.inputs import find_log_files
from loganalyser.work.jobstate import JobState
from loganalyser.work.scanning import GrowingFile, read_head, stream_head
from loganalyser.work.streams import HEAD, Observation, Stream, StreamTracker
from loganalyser.work.tasks import Piece, Task
from loganalyser.work.watcher import Watcher, watched_folders

PREFIX = "follow:"  # ids of ranges of followed streams
WHOLE = "follow-whole:"  # ids of compressed files, counted once at start
RESCAN_S = 1.0  # a scan at least this often, even if the watcher said nothing
POLL_S = 0.1  # ... and this often without inotify
PROGRESS_S = 5.0  # a progress line with the running totals at most this often
RATE_WINDOW_S = 60.0  # rates per level: lines per second over this window


@dataclass(frozen=True)
class FollowSettings:
    """What to follow and how (the user's options; the same on every rank)."""

    paths: tuple[str, ...]
    glob: str | None
    recursive: bool
    format: str  # the user's choice (AUTO: detected per stream, once)
    partial_after: float  # seconds of silence after which a last line without newline is counted
    stop_at: float | None  # wall-clock time (--follow-for) at which the job stops by itself


@dataclass(frozen=True)
class FollowStart:
    """The first observation, in the plan every rank holds: each stream's planned offset."""

    settings: FollowSettings
    snapshot: dict  # {"tracker": StreamTracker.to_dict(), "formats": [[identity, format], ...], "bases": [[identity, base], ...]}


def head_hash(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=8).hexdigest() if head else "-"


def range_id(identity, serial: int, base: int, start: int, end: int, fmt: str, head: bytes = b"") -> str:
    return f"{PREFIX}{identity[0]}:{identity[1]}:{serial}:{base}:{start}:{end}:{head_hash(head)}:{fmt}"


def parse_range_id(task_id: str):
    """(identity, serial, base, start, end, head hash, format) of a follow range id, else None."""
    if not task_id.startswith(PREFIX):
        return None
    dev, ino, serial, base, start, end, head, fmt = task_id[len(PREFIX):].split(":", 7)
    return (int(dev), int(ino)), int(serial), int(base), int(start), int(end), head, fmt


def range_task(stream: Stream, base: int, start: int, end: int, fmt: str) -> Task:
    task_id = range_id(stream.identity, stream.serial, base, start, end, fmt, stream.head)
    identity = f"{PREFIX}{stream.identity[0]}:{stream.identity[1]}"
    return Task(task_id, (Piece(stream.path, start, end - start, identity, whole=False, file_size=None, format=fmt),))


def analyse_followed(pieces, on_chunk=None, warn=None, formats: FormatSet | None = None) -> PartialResult:
    """analyse_pieces for followed files: a piece is read from the file that has its identity
    now (renamed by a rotation since it was planned: found beside its old name); a file
    that is gone holds nothing more to count."""
    found = []
    for piece in pieces:
        if piece.identity.startswith(PREFIX):
            dev, ino = (int(x) for x in piece.identity[len(PREFIX):].split(":"))
            path = _path_of(piece.path, (dev, ino))
            if path is None:
                continue
            piece = replace(piece, path=path)
        found.append(piece)
    return analyse_pieces(found, on_chunk=on_chunk, warn=warn, formats=formats)


def _path_of(path: str, identity) -> str | None:
    def same(p):
        try:
            st = os.stat(p)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == identity

    if same(path):
        return path
    folder = os.path.dirname(path) or "."
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    return next((os.path.join(folder, n) for n in names if same(os.path.join(folder, n))), None)


def format_of(chosen: str, formats: FormatSet, path: str, size: int) -> str:
    """A followed file's format: the user's choice, else detected on its first bytes (up to `size`).
    A file gone since the scan raises InputError: a format guessed on no bytes would stick to it."""
    if chosen != AUTO:
        return chosen
    return detect(read_head(GrowingFile(path, size)), formats)[0]


def scan(settings: FollowSettings, warn=None):
    """The inputs now, or None when no scan could be made (see scan_inputs)."""
    return scan_inputs(list(settings.paths), settings.glob, settings.recursive, warn)


def scan_inputs(paths, glob, recursive: bool, warn=None, attempts: int = 3):
    """The followed files now, or None: a file renamed or deleted between the folder's listing
    and its stat (a rotation) fails a scan, and so does an empty folder; such a scan is not
    "every file is gone" but no observation at all (tried again now, then at the next scan)."""
    for _ in range(attempts):
        try:
            return find_log_files(paths, glob, recursive, warn=warn)
        except InputError:
            if not all(os.path.isdir(p) for p in paths):
                raise
    return None


def first_pass(settings: FollowSettings, files, formats: FormatSet, chunk_bytes: int, now: float):
    """The plan of a new follow job: tasks for every whole line there now (large files in
    chunks), every compressed file once, and the tracker that starts after them."""
    tracker = StreamTracker(settings.partial_after)
    stream_formats, tasks, whole = {}, [], []
    plain = [f for f in files if not f.compression]
    for f in files:
        if f.compression:
            whole.append([f.path, f.device, f.inode, f.size, format_of(settings.format, formats, f.path, f.size)])
            tasks.append(whole_task(*whole[-1]))
    for pending in tracker.observe([Observation(f.path, f.device, f.inode, f.size) for f in plain], now, stream_head):
        stream = tracker.streams[pending.identity]
        end = last_line_end(pending.path, pending.start, pending.end)
        if end <= pending.start:
            continue
        fmt = stream_formats[stream.identity] = format_of(settings.format, formats, pending.path, end)
        cuts = list(range(0, end, chunk_bytes)) + [end]
        tasks += [range_task(stream, 0, a, b, fmt) for a, b in zip(cuts, cuts[1:])]
        tracker.commit(stream.identity, end)
    tracker.drain_events()
    return tasks, FollowStart(settings, snapshot(tracker, stream_formats, {}, whole))


def whole_task(path: str, device: int, inode: int, size: int, fmt: str) -> Task:
    """A compressed file of the first pass, counted once."""
    task_id = f"{WHOLE}{device}:{inode}"
    return Task(task_id, (Piece(path, 0, size, task_id, whole=True, file_size=None, format=fmt),))


def snapshot(tracker: StreamTracker, stream_formats: dict, bases: dict, whole=()) -> dict:
    """The tracker's state with each stream's format and base (where its counting began, when not 0),
    and the compressed files of the first pass ([path, device, inode, size, format])."""
    return {"tracker": tracker.to_dict(), "formats": [[list(i), f] for i, f in stream_formats.items()],
            "bases": [[list(i), b] for i, b in bases.items() if b], "whole": [list(w) for w in whole]}


def restore_tracker(start: FollowStart, state: JobState, files=()):
    """The tracker, the streams' formats and bases, and the gaps (ranges below a stream's
    offset that no accepted result covers), from the first observation and the accepted ids;
    `files` (a scan now) name the streams known only by identity and give their first bytes back."""
    tracker = StreamTracker.from_dict(start.snapshot["tracker"], start.settings.partial_after)
    stream_formats = {tuple(i): f for i, f in start.snapshot["formats"]}
    bases = {identity: 0 for identity in tracker.streams}
    bases.update({tuple(i): b for i, b in start.snapshot.get("bases", [])})
    ranges: dict[tuple, list] = {}
    heads: dict[tuple, str] = {}  # identity -> hash of its first bytes, from its ranges' ids
    for task_id, _ in state.items():
        parsed = parse_range_id(task_id)
        if parsed is None:
            continue
        identity, serial, base, begin, end, head, fmt = parsed
        tracker.next_serial = max(tracker.next_serial, serial + 1)
        stream = tracker.streams.get(identity)
        if stream is None or serial > stream.serial:
            stream = tracker.streams[identity] = Stream("", identity, end, end, b"", 0.0, serial)
            ranges[identity] = []
        elif serial < stream.serial:
            continue  # an earlier content of this file
        stream.offset = max(stream.offset, end)
        stream.size = max(stream.size, stream.offset)
        stream_formats[identity], bases[identity] = fmt, base
        if head != "-":
            heads[identity] = head
        ranges.setdefault(identity, []).append((begin, end))
    gaps = []
    for identity, stream in tracker.streams.items():
        at = bases.get(identity, 0)
        for begin, end in sorted(ranges.get(identity, [])) + [(stream.offset, stream.offset)]:
            if begin > at:
                gaps.append((identity, bases.get(identity, 0), at, begin))
            at = max(at, end)
    for f in files:
        stream = tracker.streams.get((f.device, f.inode))
        if stream is not None and not stream.path:
            stream.path = f.path
    recover_heads(tracker, heads, files)
    return tracker, stream_formats, bases, gaps


def recover_heads(tracker: StreamTracker, heads: dict, files) -> None:
    """Gives a stream known by its ids its first bytes back, from a file that still starts with them
    (itself, or its copy after a copytruncate made while no master watched)."""
    wanted = {h: i for i, h in heads.items() if not tracker.streams[i].head}
    for f in files:
        if not wanted:
            return
        first = stream_head(f.path) if not f.compression and f.size >= HEAD else b""
        identity = wanted.pop(head_hash(first), None) if len(first) == HEAD else None
        if identity is not None:
            tracker.streams[identity].head = first


class FollowDuty:
    """The master's part of following: scan when something changed, plan ranges, commit."""

    def __init__(self, start: FollowStart, formats: FormatSet, state: JobState, say, warn=None,
                 wall=time.time):
        self.settings = start.settings
        self.formats = formats
        self.say = say
        self.warn = warn
        self.wall = wall
        self.tracker, self.stream_formats, self.bases, _ = restore_tracker(start, state, scan(self.settings, warn) or ())
        self.in_flight: dict[tuple, str] = {}  # identity -> the id of its range being counted
        self.copy_first: dict[tuple, tuple] = {}  # truncated stream -> its copy, whose range must be accepted first
        self.watcher = Watcher(watched_folders(self.settings.paths, self.settings.recursive))
        self.next_scan = 0.0  # the monotonic time of the next scan, whatever the watcher says
        self.stopping = False  # asked to stop (signal, --follow-for): one last scan, then no more ranges
        self.last_scan_done = False
        self.next_show = 0.0
        self.samples: deque = deque()  # (time, counts) for the rates

    @property
    def done(self) -> bool:
        """Asked to stop, the last scan made, and every range it planned counted."""
        return self.stopping and self.last_scan_done and not self.in_flight

    def stop(self) -> None:
        self.stopping = True
        self.next_scan = 0.0

    def tick(self, now: float) -> list[Task]:
        """New ranges to count, if a scan is due (never blocks)."""
        if self.last_scan_done:
            return []
        if not self.stopping and self.settings.stop_at is not None and self.wall() >= self.settings.stop_at:
            self.say("[Master] --follow-for is over: counting what is there, then stopping")
            self.stop()
        changed = self.watcher.kind == "inotify" and self.watcher.wait(0.0)
        if not changed and now < self.next_scan:
            return []
        tasks = self._plan(now)
        self.last_scan_done = self.stopping
        waiting = any(s.size > s.offset for s in self.tracker.streams.values())
        every = RESCAN_S if self.watcher.kind == "inotify" else POLL_S
        self.next_scan = now + (min(every, self.settings.partial_after / 2) if waiting else every)
        return tasks

    def accepted(self, task_ids) -> None:
        """Results accepted (by us, or handed over): their streams' offsets move on."""
        for task_id in task_ids:
            parsed = parse_range_id(task_id)
            if parsed is None:
                continue
            identity, serial, _, _, end, _, _ = parsed
            if self.in_flight.get(identity) == task_id:
                del self.in_flight[identity]
                self.next_scan = 0.0  # more may have come meanwhile
            stream = self.tracker.streams.get(identity)
            if stream is not None and stream.serial == serial:
                self.tracker.commit(identity, end)

    def admit(self, task: Task) -> bool:
        """Whether a range's result may be counted: not if its file shrank below the range's end or
        no longer starts as it did (truncated or rewritten while the range was being counted: the
        worker may have read other lines than those planned). The range is dropped then, and the
        stream's offset stays; the next scan sees the truncation and counts its copy from there.
        Decided from the id and the file alone, so any master decides the same."""
        parsed = parse_range_id(task.task_id)
        if parsed is None:
            return True
        identity, _, _, _, end, head, _ = parsed
        path = _path_of(task.pieces[0].path, identity)
        if path is None:
            return True  # gone: the worker read what it could; the stream is dropped
        try:
            size = os.stat(path).st_size
        except OSError:
            return True
        if size >= end and (head == "-" or head_hash(stream_head(path)) == head):
            return True
        if self.in_flight.get(identity) == task.task_id:
            del self.in_flight[identity]
        self.next_scan = 0.0
        self.say(f"[Master] follow: {task.describe()} changed while it was counted: not counted from this range")
        return False

    def show(self, state: JobState, now: float) -> None:
        """The running totals and lines per second per level over the last minute, every PROGRESS_S."""
        if now < self.next_show:
            return
        self.next_show = now + PROGRESS_S
        total = state.total()
        self.samples.append((now, dict(total.counts)))
        while now - self.samples[0][0] > RATE_WINDOW_S:
            self.samples.popleft()
        then, old = self.samples[0]
        span = now - then
        rates = " ".join(f"{k} {(n - old.get(k, 0)) / span:.1f}/s" for k, n in sorted(total.counts.items())) if span else ""
        counts = "".join(f" {k}={n}" for k, n in sorted(total.counts.items()))
        self.say(f"[Master] following {len(self.tracker.streams)} stream(s): {total.lines} lines{counts}"
                 + (f"; rates: {rates}" if rates else ""))

    def snapshot(self) -> dict:
        return snapshot(self.tracker, self.stream_formats, self.bases)

    def close(self) -> None:
        self.watcher.close()

    def _plan(self, now: float) -> list[Task]:
        files = scan(self.settings, self.warn)
        if files is None:
            return []
        seen = [Observation(f.path, f.device, f.inode, f.size) for f in files if not f.compression]
        before = set(self.tracker.streams)
        pending = self.tracker.observe(seen, now, stream_head)
        for event in self.tracker.drain_events():
            self.say(f"[Master] follow: {event}")
        for identity in before - set(self.tracker.streams):
            self.in_flight.pop(identity, None)  # gone: its range, if any, counts what it can
        for original, copy in self.tracker.copies:
            self.copy_first[original] = copy
        self.tracker.copies.clear()
        tasks = []
        for p in sorted(pending, key=lambda p: p.identity in self.copy_first):  # copies first
            if p.identity in self.in_flight:
                continue
            copy = self.copy_first.get(p.identity)
            if copy is not None:
                if copy in self.in_flight:
                    continue  # see it counted first: a new master knows the copy only from its ranges
                del self.copy_first[p.identity]
            stream = self.tracker.streams[p.identity]
            try:
                end = p.end if p.whole_tail else last_line_end(p.path, p.start, p.end)
                if end > p.start and (p.identity not in self.stream_formats or p.start == 0):
                    self.stream_formats[p.identity] = format_of(self.settings.format, self.formats, p.path, end)
            except InputError:
                continue  # gone since the scan: the next scan says where
            if end <= p.start:
                continue
            if p.start == 0 or p.identity not in self.bases:
                self.bases[p.identity] = p.start
            task = range_task(stream, self.bases[p.identity], p.start, end, self.stream_formats[p.identity])
            self.in_flight[p.identity] = task.task_id
            tasks.append(task)
        return tasks
