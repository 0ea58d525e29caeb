"""Following growing files like `tail -F`: which bytes of which stream to count next.

A stream is one file's content over its life, known by its identity (device,
inode), not its name. Rotation, as logrotate does it:

- rename and create: `app.log` becomes `app.log.1` (the same identity: the
  same stream, finished from its committed offset) and a new `app.log` starts
  a new stream at 0;
- copytruncate: `app.log` is copied to `app.log.1` (a new identity holding
  the old content) and truncated in place. The truncated stream starts again
  at 0, and the copy, recognised by its first bytes, is followed from the old
  stream's offset: the lines written between the last count and the copy are
  counted from it, once, and nothing before them is counted twice;
- delete: the stream is dropped. A file whose first bytes are no longer
  those the stream began with (its inode reused by a new file, or the file
  rewritten) is a new stream from 0.

After the first scan, a new file under a rotated name (`*.1`, `*.2.gz`, ...)
is never a new stream: it is a renamed stream (known identity) or a copy (see
above); anything else under such a name would be old lines counted again.

The committed offset is always at a line boundary: only whole lines are
counted, and a last line without its newline waits for it, or for
`partial_after` seconds of silence, after which it is counted as it stands.
Pure logic: observations (path, identity, size) and the time come in (with
a function that reads a file's first bytes, called only where they decide),
ranges to count go out; the caller reads them and commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEAD = 64  # first bytes that recognise a copy of a stream
ROTATED = re.compile(r"\.[0-9]+(\.(gz|bz2|xz|zst))?$|-[0-9]{8}(\.(gz|bz2|xz|zst))?$")  # app.log.1, app.log-20260101


def rotated_name(path: str) -> bool:
    return ROTATED.search(path) is not None


@dataclass(frozen=True)
class Observation:
    """One file as a scan saw it."""

    path: str
    device: int
    inode: int
    size: int

    @property
    def identity(self) -> tuple[int, int]:
        return (self.device, self.inode)


@dataclass
class Stream:
    path: str  # the name it was last seen under
    identity: tuple[int, int]
    offset: int = 0  # bytes counted: everything before is in the totals (a line boundary, or the end)
    size: int = 0  # size at the last observation
    head: bytes = b""  # its first bytes once it had HEAD of them (recognises a copy of it)
    grown_at: float = 0.0  # when the size last changed (silence at the end is measured from here)
    serial: int = 0  # this content's number (new at each new stream or restart at 0): names its ranges uniquely

    def to_dict(self) -> dict:
        return {"path": self.path, "device": self.identity[0], "inode": self.identity[1], "offset": self.offset,
                "size": self.size, "head": self.head.hex(), "serial": self.serial}

    @classmethod
    def from_dict(cls, data: dict) -> "Stream":
        return cls(data["path"], (int(data["device"]), int(data["inode"])), int(data["offset"]), int(data["size"]),
                   bytes.fromhex(data.get("head", "")), serial=int(data.get("serial", 0)))


@dataclass(frozen=True)
class Pending:
    """Bytes [start, end) of `path` to count; `whole_tail`: count a last line without its newline too."""

    path: str
    identity: tuple[int, int]
    start: int
    end: int
    whole_tail: bool


@dataclass
class StreamTracker:
    partial_after: float = 2.0  # seconds of silence after which a last line without newline is counted
    streams: dict[tuple[int, int], Stream] = field(default_factory=dict)  # identity -> stream
    started: bool = False  # the first scan is done: new files under rotated names are no longer new streams
    events: list[str] = field(default_factory=list)  # what happened, for the caller to report (and drain)
    next_serial: int = 1  # the serial the next new content gets
    copies: list[tuple] = field(default_factory=list)  # (original, copy) identities of copytruncates seen (drained by the caller)

    def observe(self, seen: list[Observation], now: float, head_of=lambda path: b"") -> list[Pending]:
        """Takes a scan of the watched files; returns what to count next."""
        present = {o.identity for o in seen}
        for identity in [i for i in self.streams if i not in present]:
            self.events.append(f"{self.streams[identity].path} is gone")
            del self.streams[identity]
        strangers = [o for o in seen if o.identity not in self.streams]
        for o in seen:
            stream = self.streams.get(o.identity)
            if stream is None:
                continue
            if stream.path != o.path:
                self.events.append(f"{stream.path} was renamed to {o.path}")
                stream.path = o.path
            changed = o.size != stream.size or o.size < stream.offset
            rewritten = changed and stream.head and head_of(o.path)[:len(stream.head)] != stream.head
            if o.size < stream.offset or rewritten:  # truncated, or the inode reused for another file
                copy = self._copy_of(stream, strangers, head_of)
                if copy is not None:
                    strangers.remove(copy)
                    self.streams[copy.identity] = Stream(copy.path, copy.identity, stream.offset, copy.size,
                                                         stream.head, now, self._serial())
                    self.copies.append((stream.identity, copy.identity))
                    self.events.append(f"{stream.path} was copied to {copy.path} and truncated: "
                                       f"the copy is counted from where the original was")
                else:
                    self.events.append(f"{o.path} was truncated: counting its new content from the start")
                stream.offset, stream.head, stream.serial = 0, b"", self._serial()
            if o.size != stream.size:
                stream.size, stream.grown_at = o.size, now
            if len(stream.head) < HEAD <= o.size:
                stream.head = head_of(o.path)[:HEAD]
        for o in strangers:
            if self.started and rotated_name(o.path):
                continue  # a copy not (yet) matched to a truncation, or an old rotation: not new lines
            head = head_of(o.path)[:HEAD] if o.size >= HEAD else b""
            self.streams[o.identity] = Stream(o.path, o.identity, 0, o.size, head, now, self._serial())
            if self.started:
                self.events.append(f"following {o.path}")
        self.started = True
        pending = []
        for stream in self.streams.values():
            if stream.size > stream.offset:
                quiet = now - stream.grown_at >= self.partial_after
                pending.append(Pending(stream.path, stream.identity, stream.offset, stream.size, quiet))
        return pending

    def _serial(self) -> int:
        self.next_serial += 1
        return self.next_serial - 1

    @staticmethod
    def _copy_of(stream: Stream, strangers: list[Observation], head_of) -> Observation | None:
        """A new file under a rotated name that starts as the stream did and holds at least what was counted."""
        if len(stream.head) < HEAD:
            return None
        for o in strangers:
            if rotated_name(o.path) and o.size >= stream.offset and head_of(o.path)[:HEAD] == stream.head:
                return o
        return None

    def commit(self, identity: tuple[int, int], offset: int) -> None:
        """Everything of stream `identity` before `offset` is now counted."""
        stream = self.streams.get(identity)
        if stream is not None and offset > stream.offset:
            stream.offset = offset

    def drain_events(self) -> list[str]:
        events, self.events = self.events, []
        return events

    def to_dict(self) -> dict:
        return {"streams": [s.to_dict() for s in self.streams.values()], "started": self.started,
                "next_serial": self.next_serial}

    @classmethod
    def from_dict(cls, data: dict, partial_after: float) -> "StreamTracker":
        streams = [Stream.from_dict(s) for s in data.get("streams", [])]
        serial = int(data.get("next_serial", 1 + max((s.serial for s in streams), default=0)))
        return cls(partial_after, {s.identity: s for s in streams}, bool(data.get("started", True)), next_serial=serial)
