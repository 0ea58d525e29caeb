"""Line statistics of a buffer of whole log lines: the analyser's kernel.

The format is the seed's `[TIMESTAMP] [LEVEL] message`. The rule for one line
(without its "\\n") is `classify_line`, and it is the definition everything else
must agree with:

* blank: the line is empty or a lone "\\r";
* counted under LEVEL as written: the line starts with "[", the first "]" is
  followed by " [", and the text from there to the next "]" is 1 to 16 ASCII
  letters. A level word inside the message never counts: only this field does
  (formats/engine.py folds the spellings onto canonical levels);
* continuation (a line of a record after its first, e.g. a stack trace): no
  level, and it starts with a space or tab, `at `, `Caused by:` or `... N more`
  (CONTINUATION_RULE, shared by every format);
* malformed: every other line.

`count_lines` applies the rule to a whole buffer with numpy and no per-line
Python: one pass finds every newline and every "]", and the level field of
each line is read as one little-endian 64-bit word at a computed offset. Lines
the vectorised path cannot settle cheaply (levels of 9 to 16 letters, a level
at the very end of the buffer) take `classify_line`; there are few of them.
"""

from __future__ import annotations

import re

import numpy as np

from loganalyser.counting.result import PartialResult

MAX_LEVEL_LEN = 16
BLANK = "\0blank"  # classify_line's answer for a blank line
CONTINUATION = "\0continuation"  # ... for a continuation line
CONTINUATION_RULE = r"[ \t]|at |Caused by:|\.\.\. \d+ more"  # matched at a line's start
_CONTINUED = re.compile(CONTINUATION_RULE.encode())

_NL, _CR, _SPACE, _OPEN, _CLOSE = 10, 13, 32, 91, 93
_TAB, _LOWER_A, _UPPER_C, _DOT = 9, 97, 67, 46  # first bytes of continuation lines
_WORD = 8  # bytes of level the vectorised path reads at once
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(_WORD)] + [(1 << 64) - 1], dtype=np.uint64)
# A level of k < 8 letters keeps k in its top byte, which the mask cleared; an
# 8-letter level's top byte is a letter (>= 65), so no two levels share a key.
_LENGTH_TAGS = np.array([k << 56 for k in range(_WORD)] + [0], dtype=np.uint64)


def classify_line(line: bytes) -> str | None:
    """The level of one line, BLANK for a blank line, None if malformed."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line == b"" or line == b"\r":
        return BLANK
    level = _level_field(line)
    if level is not None:
        return level
    return CONTINUATION if _CONTINUED.match(line) else None


def _level_field(line: bytes) -> str | None:
    if not line.startswith(b"["):
        return None
    close = line.find(b"]")
    if close < 0 or line[close + 1 : close + 3] != b" [":
        return None
    end = line.find(b"]", close + 3)
    if end < 0:
        return None
    level = line[close + 3 : end]
    if 1 <= len(level) <= MAX_LEVEL_LEN and level.isalpha():  # bytes.isalpha is ASCII-only
        return level.decode("ascii")
    return None


def count_lines_reference(data: bytes) -> PartialResult:
    """The per-line definition applied line by line (slow; tests and odd lines)."""
    result = PartialResult(bytes=len(data))
    if not data:
        return result
    lines = bytes(data).split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # a final "\n" ends the last line; it does not start one
    for line in lines:
        tally(result, classify_line(line))
    return result


def tally(result: PartialResult, level: str | None) -> None:
    """Adds one line of the given class (a classify answer: a level, BLANK, CONTINUATION or None)."""
    result.lines += 1
    if level is None:
        result.malformed += 1
    elif level == BLANK:
        result.blank += 1
    elif level == CONTINUATION:
        result.continuation += 1
    else:
        result.counts[level] = result.counts.get(level, 0) + 1


def count_lines(data, keep: dict | None = None, levels: bool = True) -> PartialResult:
    """Line statistics of `data` (bytes-like, whole lines; the last may lack "\\n").

    `keep`, when given, receives what the vectorised pass read of each line
    (see _count_body), for the statistics to reuse (analysis/fixed.py). With
    `levels` False the levels of 1 to 8 bytes before the last _TAIL bytes are
    left to the caller, who reads those lines anyway: they count as malformed
    and keep's "keys" is None; the caller adds back those whose level is letters."""
    v = np.frombuffer(data, dtype=np.uint8)
    n = v.size
    if n < _TAIL:
        return count_lines_reference(v.tobytes())
    marks = v == _NL
    marks |= v == _CLOSE
    pos = np.flatnonzero(marks)  # every "\n" and every "]", in order
    newline_idx = np.flatnonzero(v[pos] == _NL)  # which of them are newlines
    newline_at = pos[newline_idx]
    # Lines ending _TAIL bytes or more before the end are read vectorised with
    # no bounds checks (a read runs at most 11 bytes past a line's "]"); the
    # rest, and the last newline's line when no mark follows it, are the tail.
    k = int(np.searchsorted(newline_at, n - _TAIL))
    if k and newline_idx[k - 1] + 1 >= pos.size:
        k -= 1
    tail_start = int(newline_at[k - 1]) + 1 if k else 0
    result = count_lines_reference(v[tail_start:].tobytes())
    result.bytes = n
    if k:
        _count_body(result, v, pos, newline_idx[:k], newline_at[:k], keep, levels)
        if keep is not None:
            keep.update(v=v, tail_start=tail_start)
    return result


_TAIL = 32


def _count_body(result: PartialResult, v: np.ndarray, pos: np.ndarray, newline_idx: np.ndarray, newline_at: np.ndarray,
                keep: dict | None = None, levels: bool = True) -> None:
    """Adds the statistics of the lines that end at `newline_at`; `keep` gets each
    line's start, end and first "]", which lines have a level of 1 to 8 bytes
    (`fits`) and the key of each such level (`keys`, 0 for no level)."""
    prev_idx = np.empty_like(newline_idx)  # the previous line's newline, in `pos`
    prev_idx[0] = -1
    prev_idx[1:] = newline_idx[:-1]
    line_start = np.empty_like(newline_at)
    line_start[0] = 0
    np.add(newline_at[:-1], 1, out=line_start[1:])
    length = newline_at - line_start
    head = v[line_start]
    result.lines += newline_at.size
    result.blank += int(np.count_nonzero(length == 0))
    result.blank += int(np.count_nonzero((length == 1) & (head == _CR)))

    words = np.ndarray(shape=(v.size - _WORD + 1,), dtype="<u8", buffer=v, strides=(1,))
    first_close = pos[prev_idx + 1]
    second_close = pos[prev_idx + 2]
    # "[" first, two "]" in the line, and " [" right after the first "]".
    shaped = (newline_idx - prev_idx) >= 3
    shaped &= head == _OPEN
    shaped &= (words[first_close + 1] & np.uint64(0xFFFF)) == np.uint64(0x5B20)
    level_at = first_close + 3
    level_len = second_close - level_at
    fits = shaped & (level_len >= 1) & (level_len <= _WORD)
    keys, bins = _count_levels(result, words, level_at[fits], level_len[fits]) if levels else (None, None)
    if keep is not None:
        keep.update(line_start=line_start, newline_at=newline_at, first_close=first_close, fits=fits, keys=keys,
                    level_bins=bins)
    longer = shaped & (level_len > _WORD) & (level_len <= MAX_LEVEL_LEN)
    for i in np.flatnonzero(longer):  # rare: levels of 9 to 16 bytes
        _add_level(result, classify_line(v[line_start[i] : newline_at[i]].tobytes()), 1)
    # Continuation lines never start with "[", so no level line is one of them.
    indented = (head == _SPACE) | (head == _TAB)
    result.continuation += int(np.count_nonzero(indented[length > 0]))
    for i in np.flatnonzero((head == _LOWER_A) | (head == _UPPER_C) | (head == _DOT)):  # rare: "at ", "Caused by:", "... N more"
        if length[i] and _CONTINUED.match(v[line_start[i] : newline_at[i]].tobytes()):
            result.continuation += 1
    result.malformed = result.lines - result.blank - result.continuation - sum(result.counts.values())


def _count_levels(result: PartialResult, words: np.ndarray, level_at: np.ndarray, level_len: np.ndarray):
    """Counts levels of at most 8 bytes, read as one 64-bit word per line; returns each line's key
    and, when no two distinct keys share a bin, (each key's bin, the key of each bin) (else None)."""
    if level_at.size == 0:
        return np.zeros(0, dtype=np.uint64), None
    keys = (words[level_at] & _MASKS[level_len]) | _LENGTH_TAGS[level_len]
    # An 8-byte level whose last byte is no letter is malformed; key 0 says so
    # (its top byte could otherwise pass for a length tag).
    keys[(level_len == _WORD) & ((keys >> np.uint64(56)) < np.uint64(65))] = 0
    distinct, counts, bins = _distinct_counts(keys)
    for key, count in zip(distinct.tolist(), counts.tolist()):
        tag = key >> 56
        size = tag if tag < _WORD else _WORD
        level = key.to_bytes(8, "little")[:size]
        _add_level(result, level.decode("ascii") if level.isalpha() else None, count)
    return keys, bins


def _distinct_counts(keys: np.ndarray):
    """Distinct keys and their counts, without sorting when they are few; and when
    so, (each key's bin, the key of each bin): the statistics reuse them."""
    # Hash each key to one of 256 bins; if no two distinct keys share a bin
    # (always so for a handful of levels), the bin counts are the answer.
    bins = ((keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(56)).astype(np.intp)
    first = np.zeros(256, dtype=np.uint64)
    first[bins] = keys
    if np.array_equal(first[bins], keys):
        counts = np.bincount(bins, minlength=256)
        used = np.flatnonzero(counts)
        return first[used], counts[used], (bins, first)
    return *np.unique(keys, return_counts=True), None


def _add_level(result: PartialResult, level: str | None, count: int) -> None:
    # Malformed lines are derived at the end (lines - blank - counted).
    if level:
        result.counts[level] = result.counts.get(level, 0) + count
