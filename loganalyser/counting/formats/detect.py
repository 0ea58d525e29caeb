"""Which format a file is in, decided once from its first lines.

The decision is a pure function of the file's head (its first HEAD_LINES
lines, at most HEAD_BYTES), made by the planner and carried by the task:

1. The *probe*: the first PROBE_LINES record-like lines (neither blank nor
   starting with a space or tab). The most specific format (highest
   `priority`, then name) that parses one of the first two probe lines and at
   least three quarters of them all is the candidate.
2. The candidate wins if its regex also matches at least HOLD_SCORE of the
   head's record-like lines.
3. Otherwise (odd first lines, a mixed head), every format is scored on the
   whole head: the share of the record-like lines its regex matches, its own
   continuation lines left out. The highest score wins, ties go to the higher
   priority. Under MIN_SCORE, no format fits: the file is counted with
   DEFAULT_FORMAT, and the caller warns.

Steps 1-2 cost a few dozen regex matches per file, which matters for a folder
of 20,000 small files; step 3 is the careful path for the rest. Scores count
regex matches after each newline of the head: for a regex that could reach
across a line end that is an estimate, which detection can afford (it only
has to be a pure function of the head; the counting rule stays exact).
"""

from __future__ import annotations

import re

from . import DEFAULT_FORMAT, FormatSet

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark opening a file is no part of its first line (nor its head)
HEAD_BYTES = 64 << 10
HEAD_LINES = 200
PROBE_LINES = 8
HOLD_SCORE = 0.5  # a candidate must parse at least this share of the head's record-like lines
MIN_SCORE = 0.2  # under this, no format fits
_RECORD_LIKE = re.compile(rb"\n(?![ \t]|\r?\n|\r?\Z)")  # lines neither blank nor indented


def file_head(first_bytes: bytes) -> bytes:
    """What detection reads of a file, from its first bytes: at most HEAD_BYTES, without a
    byte-order mark. The planner and a reader of small files both take it from here, so
    they decide on the same bytes."""
    return first_bytes[:HEAD_BYTES].removeprefix(BOM)


def head_lines(data: bytes) -> bytes:
    """The first HEAD_LINES whole lines of `data` (a final partial line is kept
    only when `data` is shorter than HEAD_BYTES, i.e. it is the file's end)."""
    if len(data) < HEAD_BYTES and data.count(b"\n") <= HEAD_LINES:
        return data  # a small file: all of it
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
    lines = sample.split(b"\n", 3 * PROBE_LINES)[: 3 * PROBE_LINES]
    probe = [line.removesuffix(b"\r") for line in lines if line.strip() and line[:1] not in b" \t"][:PROBE_LINES]
    if not probe:
        return DEFAULT_FORMAT, True  # empty, blank or all continuation: nothing to decide
    text = b"\n" + sample
    record_like = len(_RECORD_LIKE.findall(text))
    candidate = _candidate(probe, formats)
    if candidate is not None and _matches(candidate, text, formats) >= HOLD_SCORE * record_like:
        return candidate, True
    return _scored(text, record_like, formats)


def _candidate(probe: list[bytes], formats: FormatSet) -> str | None:
    needed = -(-3 * len(probe) // 4)
    for name in formats.by_priority():
        parses = formats.dialect(name).parses
        if not any(parses(line) for line in probe[:2]):
            continue
        if sum(parses(line) for line in probe) >= needed:
            return name
    return None


def _matches(name: str, text: bytes, formats: FormatSet) -> int:
    """Lines of `text` ("\\n" + head) that the format's regex matches at their start."""
    dialect = formats.dialect(name)
    if dialect.after_newline is not None:
        return len(dialect.after_newline.findall(text))
    return sum(dialect.parses(line.removesuffix(b"\r")) for line in text.split(b"\n")[1:])


def _scored(text: bytes, record_like: int, formats: FormatSet) -> tuple[str, bool]:
    best, best_score = DEFAULT_FORMAT, 0.0
    for name in formats.by_priority():
        parsed = _matches(name, text, formats)
        if parsed == 0:
            continue
        own = formats.dialect(name).own_continuation
        candidates = record_like - (len(own.findall(text)) if own is not None else 0)
        score = parsed / max(1, candidates)
        if score > best_score:  # by_priority order: ties keep the more specific
            best, best_score = name, score
    if best_score < MIN_SCORE:
        return DEFAULT_FORMAT, False
    return best, True
