"""The statistics of some lines, and how two of them add up.

A `PartialResult` is what the kernel returns for a buffer, a task returns for
its byte range, and the job reports in the end: totals are always the sum of
partial results, never counted a second way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .analysis.stats import LineStats


@dataclass
class PartialResult:
    """Line statistics of one piece of input; `+` merges two pieces."""

    counts: dict[str, int] = field(default_factory=dict)  # level -> lines
    lines: int = 0  # every line, blank and malformed included
    malformed: int = 0  # non-blank lines that neither parse nor continue a record
    blank: int = 0  # empty lines (a lone "\r" counts as empty)
    bytes: int = 0  # bytes of input covered (of compressed files: decompressed bytes)
    files: int = 0  # whole files covered (a chunk of a file counts 0)
    continuation: int = 0  # lines of a record after its first (stack traces and the like)
    formats: dict[str, int] = field(default_factory=dict)  # format name -> whole files read in it
    stats: LineStats | None = None  # time range, timeline, templates, groups (only when the job asks)

    @property
    def records(self) -> int:
        """Log entries: every line that is neither blank nor a continuation."""
        return self.lines - self.blank - self.continuation

    def add(self, other: "PartialResult") -> "PartialResult":
        """Adds `other` into this result in place and returns self."""
        for level, n in other.counts.items():
            self.counts[level] = self.counts.get(level, 0) + n
        self.lines += other.lines
        self.malformed += other.malformed
        self.blank += other.blank
        self.bytes += other.bytes
        self.files += other.files
        self.continuation += other.continuation
        for name, n in other.formats.items():
            self.formats[name] = self.formats.get(name, 0) + n
        if other.stats is not None:
            self.stats = (self.stats or LineStats()).add(other.stats)
        return self

    def __add__(self, other: "PartialResult") -> "PartialResult":
        return PartialResult().add(self).add(other)

    @classmethod
    def total(cls, parts) -> "PartialResult":
        """The sum of an iterable of results."""
        out = cls()
        for part in parts:
            out.add(part)
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dict; levels sorted so output is stable."""
        doc = {
            "counts": dict(sorted(self.counts.items())),
            "lines": self.lines,
            "records": self.records,
            "continuation": self.continuation,
            "malformed": self.malformed,
            "blank": self.blank,
            "bytes": self.bytes,
            "files": self.files,
            "formats": dict(sorted(self.formats.items())),
        }
        if self.stats is not None:
            doc["stats"] = self.stats.to_dict()
        return doc

    @classmethod
    def from_dict(cls, data: dict) -> "PartialResult":
        """Inverse of `to_dict` (used by messages and checkpoints)."""
        return cls(
            counts={str(k): int(v) for k, v in data.get("counts", {}).items()},
            lines=int(data.get("lines", 0)),
            malformed=int(data.get("malformed", 0)),
            blank=int(data.get("blank", 0)),
            bytes=int(data.get("bytes", 0)),
            files=int(data.get("files", 0)),
            continuation=int(data.get("continuation", 0)),
            formats={str(k): int(v) for k, v in data.get("formats", {}).items()},
            stats=LineStats.from_dict(data["stats"]) if data.get("stats") is not None else None,
        )
