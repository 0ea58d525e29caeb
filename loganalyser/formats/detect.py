"""Which format a file is in, decided once from its first lines.

Every spec counts the head of the file (its first HEAD_LINES lines, at most
HEAD_BYTES); a spec's score is the share of lines it parses among those that
are neither blank nor its continuation lines. The highest score wins, ties go
to the more specific spec (higher `priority`), then to the name. A file no
spec fits (best score under MIN_SCORE) is counted with DEFAULT_FORMAT, and the
caller warns. The decision is a pure function of the head, made by the master
(or the one process) and carried by the task.
"""

from __future__ import annotations

from . import BLANK, CONTINUATION, DEFAULT_FORMAT, FormatSet

_NOT_RECORDS = (None, BLANK, CONTINUATION)

HEAD_BYTES = 64 << 10
HEAD_LINES = 200
MIN_SCORE = 0.2  # a format must parse at least this share of the head's record lines


def head_lines(data: bytes) -> bytes:
    """The first HEAD_LINES whole lines of `data` (a final partial line is kept
    only when `data` is shorter than HEAD_BYTES, i.e. it is the file's end)."""
    end = 0
    for _ in range(HEAD_LINES):
        nl = data.find(b"\n", end)
        if nl < 0:
            return data if len(data) < HEAD_BYTES else data[:end]
        end = nl + 1
    return data[:end]


def detect(head: bytes, formats: FormatSet) -> tuple[str, bool]:
    """(format name, fits) for a file whose first bytes are `head`."""
    sample = head_lines(head)
    best, best_key = DEFAULT_FORMAT, None
    for name in _candidates(sample, formats):
        part = formats.dialect(name).count(sample)
        candidates = part.lines - part.blank - part.continuation
        parsed = candidates - part.malformed
        if parsed <= 0:
            continue
        score = parsed / candidates
        key = (score, formats.specs[name].priority)
        if best_key is None or key > best_key:
            best, best_key = name, key
    if best_key is None or best_key[0] < MIN_SCORE:
        return DEFAULT_FORMAT, best_key is None and _nothing_to_fit(sample)
    return best, True


PROBE_LINES = 5


def _candidates(sample: bytes, formats: FormatSet) -> list[str]:
    """The formats that parse one of the first PROBE_LINES record-like lines (all
    formats if none does): scoring every spec on every head would cost
    milliseconds a file, too much for a folder of 20,000 small files."""
    probes = [line for line in sample.split(b"\n", 64)[:64] if line.strip() and not line[:1].isspace()][:PROBE_LINES]
    found = [name for name in formats.names if _parses_any(formats.dialect(name), probes)]
    return found or formats.names


def _parses_any(dialect, lines) -> bool:
    return any(dialect.classify(line) not in _NOT_RECORDS for line in lines)


def _nothing_to_fit(sample: bytes) -> bool:
    """An empty (or all-blank) head fits any format: no warning for it."""
    return not sample.strip()
