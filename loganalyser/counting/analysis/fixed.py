"""The seed format's records whose timestamps have the full layout, read by numpy.

A line of the seed format is a record when its regex,
`\\[(?P<timestamp>[^\\]\\n]*)\\] \\[(?P<level>[A-Za-z]{1,16})\\]`, matches at its
start. Most lines have a fixed shape: `[dddd-dd-ddTdd:dd:dd.ddd] [` then 1 to 8
letters and `]`. For such a line the regex's match is plain: the timestamp
group is those 23 characters (they hold no `]`), the level those letters, and
the match ends after their `]`. Its timestamp is read by LinePass as
`yyyy-MM-ddTHH:mm:ss` (the same for every line of that second) plus
`.SSS` milliseconds. numpy finds these lines and their fields at once; every
other line that starts with `[` (it may still be a record) is left to the regex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loganalyser.counting.kernel import _LENGTH_TAGS, _MASKS

SEED_REGEX = r"\[(?P<timestamp>[^\]\n]*)\] \[(?P<level>[A-Za-z]{1,16})\]"
SEED_LAYOUT = "yyyy-MM-ddTHH:mm:ss[.SSS]"
_SHAPE = b"[0000-00-00T00:00:00.000] ["  # "0": a digit
BLANKED = b"[" + b"0" * 23 + b"] ["  # how blank_stamps leaves a record's start
_DIGITS = np.array([i for i, c in enumerate(_SHAPE) if c == ord("0")])
_FIXED = np.array([i for i, c in enumerate(_SHAPE) if c != ord("0")])
_FIXED_BYTES = np.frombuffer(_SHAPE, dtype=np.uint8)[_FIXED]
_SECOND_WEIGHTS = 10 ** np.arange(13, -1, -1, dtype=np.int64)  # the 14 digits of a second, as one number
LEVEL_AT = len(_SHAPE)
SECOND_CHARS = len("yyyy-MM-ddTHH:mm:ss")  # of a timestamp: they decide its second
_MAX_LEVEL = 8  # longer levels (up to 16 letters) are left to the regex
_SPAN = LEVEL_AT + _MAX_LEVEL + 1  # bytes of a line looked at


def fits(spec) -> bool:
    """Whether `spec` is the seed format this module reads."""
    return spec.kind == "regex" and spec.regex == SEED_REGEX and spec.timestamp == SEED_LAYOUT


@dataclass
class FixedRecords:
    """The fixed-shape records of a buffer, in order, and the lines left to the regex."""

    line: np.ndarray  # index of the record's line in the buffer
    start: np.ndarray  # buffer position of the line's first byte
    end: np.ndarray  # buffer position of the "\n" that ends it
    level: np.ndarray  # index into `spellings`
    spellings: list  # distinct level fields (bytes)
    second: np.ndarray  # index into `stamps`
    stamps: list  # a timestamp text (str) of each distinct second
    stamp_ms: np.ndarray  # the milliseconds of that text
    fraction: np.ndarray  # each record's milliseconds
    others: np.ndarray  # indices of the other lines that start with "["
    starts: np.ndarray  # buffer position of every line's first byte
    ends: np.ndarray  # ... and of the "\n" that ends it


def read(buf: bytes) -> FixedRecords:
    """The records of `buf` ("\\n" + lines, each ending with "\\n"; no CR before a "\\n")."""
    padded = np.frombuffer(buf + bytes(_SPAN), dtype=np.uint8)
    newlines = np.flatnonzero(padded[: len(buf)] == 10)
    starts, ends = newlines[:-1] + 1, newlines[1:]
    rows = np.lib.stride_tricks.as_strided(padded, shape=(len(buf), _SPAN), strides=(1, 1))[starts]
    shaped = (rows[:, _FIXED] == _FIXED_BYTES).all(axis=1) & ((rows[:, _DIGITS] - 48) < 10).all(axis=1)
    letters = ((rows[:, LEVEL_AT:] | 32) - 97) < 26
    length = np.argmin(letters, axis=1)  # the first byte that is no letter (0 if all are)
    closed = rows[np.arange(len(starts)), LEVEL_AT + length] == ord("]")
    fixed = shaped & closed & (length >= 1)
    line = np.flatnonzero(fixed)
    others = np.flatnonzero(~fixed & (rows[:, 0] == ord("[")))
    if len(line) < len(starts):
        rows, length = rows[line], length[line]
    words = np.ascontiguousarray(rows[:, LEVEL_AT:LEVEL_AT + 8]).view("<u8")[:, 0]
    first_of_level, level = _factorized((words & _MASKS[length]) | _LENGTH_TAGS[length], few=True)
    at = starts[line]
    spellings = [buf[a + LEVEL_AT: a + LEVEL_AT + n]
                 for a, n in zip(at[first_of_level].tolist(), length[first_of_level].tolist())]
    digits = rows[:, _DIGITS].astype(np.int64) - 48
    fraction = digits[:, 14:] @ np.array([100, 10, 1], dtype=np.int64)
    first_of_second, second = _factorized(digits[:, :14] @ _SECOND_WEIGHTS)
    stamps = [buf[a + 1: a + 24].decode("ascii") for a in at[first_of_second].tolist()]
    return FixedRecords(line=line, start=at, end=ends[line], level=level, spellings=spellings,
                        second=second, stamps=stamps, stamp_ms=fraction[first_of_second],
                        fraction=fraction, others=others, starts=starts, ends=ends)


def blank_stamps(line_bytes: np.ndarray, starts: np.ndarray) -> None:
    """Writes "0" over the timestamps of the fixed-shape records that start at `starts`."""
    stamps = np.lib.stride_tricks.as_strided(line_bytes, shape=(len(line_bytes) - 24, 23), strides=(1, 1),
                                             writeable=True)
    stamps[starts + 1] = ord("0")


def _factorized(values: np.ndarray, few: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Where each distinct value first occurs, and each value's distinct number:
    in linear time when the values are `few` (levels) or sorted (seconds, as
    logs mostly are), else by np.unique."""
    if few:
        seen, rest = [], values
        while len(rest) and len(seen) < 16:
            seen.append(rest[0])
            rest = rest[rest != rest[0]]
        if not len(rest):
            inverse, first = np.empty(len(values), dtype=np.int64), []
            for i, value in enumerate(seen):
                hit = values == value
                inverse[hit] = i
                first.append(int(np.argmax(hit)))
            return np.array(first, dtype=np.int64), inverse
    elif (values[1:] >= values[:-1]).all():
        new = np.ones(len(values), dtype=bool)
        np.not_equal(values[1:], values[:-1], out=new[1:])
        return np.flatnonzero(new), np.cumsum(new) - 1
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)
