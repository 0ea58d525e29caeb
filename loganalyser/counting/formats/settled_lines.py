"""Counting a buffer from what bitmaps settle about each of its lines (json_bits.py, logfmt_bits.py).

A format's reader says, per line, whether it is blank, a record with a level,
a record without one (NONE), or surely no record; `SettledLines.count` adds
those up, asks the shared continuation rule about the lines that are no
records, and hands every other line, gathered into one buffer, to the
format's sure pattern (sure_lines.py), which leaves to the per-line rule
what it cannot vouch for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loganalyser.counting.kernel import tally
from loganalyser.counting.result import PartialResult

from .bitmaps import bit_at, joined, pack, positions, prefix_xor
from .levels import NO_LEVEL
from .swar import word_view
from .vectorised import FieldProgram


@dataclass
class Settled:
    """What a reader settles about each line of a buffer that ends with a newline."""

    starts: np.ndarray  # each line's first byte
    ends: np.ndarray  # its newline
    head: np.ndarray  # its first byte (the newline for an empty line)
    blank: np.ndarray  # empty, or a lone CR
    leveled: np.ndarray  # a record whose level the reader's own fields give
    plain: np.ndarray  # a record without a level (NONE)
    no_record: np.ndarray  # surely no record: a continuation or malformed, by the shared rule


def line_bounds(v: np.ndarray, newline: np.ndarray):
    """(starts, ends, head, blank) of the lines of `v` (its last byte a newline; `newline` its
    bitmap): each line's first byte and newline, its first byte's value, and whether it is
    empty or a lone CR."""
    ends = positions(newline)
    starts = line_starts(ends)
    head = v[starts]
    blank = (ends == starts) | ((ends == starts + 1) & (head == 13))
    return starts, ends, head, blank


def line_starts(ends: np.ndarray) -> np.ndarray:
    """Each line's first byte, from the newlines that end the lines of a buffer."""
    starts = np.empty_like(ends)
    starts[0] = 0
    np.add(ends[:-1], 1, out=starts[1:])
    return starts


def quote_state(v: np.ndarray, size: int, ends: np.ndarray):
    """(quote, inside, odd): the bitmap of the quotes, which bytes are inside quotes, and the
    lines with an odd number of quotes. Such a line gets one more quote at its newline in
    both bitmaps, so that no quote state leaks into the next line."""
    quote = pack(v == 34, size)
    inside = prefix_xor(quote)
    parity = bit_at(inside, ends)  # of the quotes up to each line's end
    odd = parity.copy()
    odd[1:] ^= parity[:-1]
    if odd.any():
        at = ends[odd]
        np.bitwise_or.at(quote, at >> 6, np.uint64(1) << (at & 63).astype(np.uint64))
        inside = prefix_xor(quote)
    return quote, inside, odd


class SettledLines:
    """Counts buffers by a reader (`read`, `add_levels`); `sure` (sure_lines.SureLines) counts the rest."""

    reads_cr = True  # whether `read` wants to know if the buffer holds a CR (a scan of it)

    def __init__(self, sure):
        self._sure = sure
        self._no_records = FieldProgram([])  # the shared continuation rule of lines that are no records

    def read(self, v: np.ndarray, has_cr: bool | None) -> Settled:
        """What the bitmaps settle of the lines of `v` (its last byte a newline); `has_cr`: whether
        `v` holds a CR (None when `reads_cr` is false)."""
        raise NotImplementedError

    def add_levels(self, result: PartialResult, v: np.ndarray, lines: Settled, dialect) -> None:
        """Adds the leveled lines to `result`."""
        raise NotImplementedError

    def count(self, data, start: int, end: int, dialect) -> PartialResult:
        v = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        result = PartialResult(bytes=v.size)
        found = data.rfind(b"\n", start, end)
        last = found - start if found >= 0 else -1  # the last newline, in v
        if last + 1 < v.size:  # a last line without its newline
            tally(result, dialect.classify(bytes(v[last + 1 :])))
        if last < 0:
            return result
        v = v[: last + 1]
        lines = self.read(v, data.find(b"\r", start, end) >= 0 if self.reads_cr else None)
        result.lines += lines.ends.size
        result.blank += int(np.count_nonzero(lines.blank))
        if lines.leveled.any():
            self.add_levels(result, v, lines, dialect)
        add_count(result, NO_LEVEL, int(np.count_nonzero(lines.plain)))
        settled = lines.blank | lines.leveled | lines.plain
        no_record = np.flatnonzero(lines.no_record)
        if no_record.size:
            words = word_view(v)
            counted = self._no_records.count_no_records(result, no_record, lines.head, v, words, lines.starts,
                                                        lines.ends, None)
            settled[no_record[counted]] = True
        left_over = np.flatnonzero(~settled)
        if left_over.size:
            rest = joined(v, lines.starts[left_over], lines.ends[left_over])
            part = self._sure.count(rest, 0, len(rest), dialect.classify)
            for name, n_level in part.counts.items():
                add_count(result, name, n_level)
            result.continuation += part.continuation
        result.malformed = result.lines - result.blank - result.continuation - sum(result.counts.values())
        return result


def add_count(result: PartialResult, name: str, n: int) -> None:
    if n:
        result.counts[name] = result.counts.get(name, 0) + n
