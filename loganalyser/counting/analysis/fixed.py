"""The seed format's usual records, from the kernel's own reading of the lines.

A line of the seed format is a record when its regex,
`\\[(?P<timestamp>[^\\]\\n]*)\\] \\[(?P<level>[A-Za-z]{1,16})\\]`, matches at its
start; the kernel (counting/kernel.py) applies that rule with numpy and hands
out each line's start and end, its first "]" and its level's key. Most records
have a fixed shape: `[dddd-dd-ddTdd:dd:dd.ddd] [` then 1 to 8 letters and
`]`. For those the regex's groups are plain: the timestamp is those 23
characters, the level the letters, and the message what follows the level's
"]" to the end of the content (the line less one final CR). So numpy reads
them from one fixed-width row per record, with no Python per line:

* the time: LinePass reads `yyyy-MM-ddTHH:mm` alike for every record of that
  minute (a run of equal bytes, parsed once), then the seconds (60 reads as
  59, 61 and more as no time) and milliseconds, which numpy adds;
* the template: a record's key is its row from the first "]" to the end of
  the content, with each digit 2-9 written as 1 when the masks treat the
  digits 1-9 alike (templates.Masker.keys). The key decides the level and the
  message, so the template, and --grep when it too is blind to 1-9. Keys are
  told apart by a hash whose every bucket is checked to hold one key only
  (else numpy sorts them), and each distinct key is masked once.

Every other line that starts with "[" (it may still be a record: a longer
level, an odd timestamp, a line too long for a row, the kernel's last lines)
is returned, for the regex to read as before.
"""

from __future__ import annotations

import re

import numpy as np

SEED_REGEX = r"\[(?P<timestamp>[^\]\n]*)\] \[(?P<level>[A-Za-z]{1,16})\]"
SEED_LAYOUT = "yyyy-MM-ddTHH:mm:ss[.SSS]"
KEY_AT = 24  # a row's first "]" (after "[" and the 23 characters of the timestamp)
ROW = KEY_AT + 64  # bytes of a record read: longer contents are left to the regex
_MINUTE = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")  # a row's bytes 1-16
# Bytes 16-23 of a row ("m:ss.SSS") as a little-endian word: the fixed ones and the digits' high nibbles,
# then where each of the seconds' and milliseconds' digits is.
_SECOND_MASK = np.uint64(0xF0F0F0FFF0F0FF00)
_SECOND_SHAPE = np.uint64(0x3030302E30303A00)
_LOW_NIBBLES = np.uint64(0x0F0F0F000F0F0000)
_PLUS_SIX = np.uint64(0x0606060006060000)
_CARRIES = np.uint64(0x1010100010100000)
_HASH = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                  0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9],
                 dtype=np.uint64)  # odd multipliers, one per word of a key
_BINS = 16  # bits of a key's bucket
_TRUES = np.uint64(0x0101010101010101)
_KEPT = np.array([[(1 << 8 * min(max(n - 8 * j, 0), 8)) - 1 for j in range((ROW - KEY_AT) // 8)]
                  for n in range(ROW - KEY_AT + 1)], dtype=np.uint64)  # the words of n bytes: the bytes kept
_MINUTES: dict = {}  # (minute text, year) -> its time in ms, or None: a memo shared by files


def fits(spec) -> bool:
    """Whether `spec` is the seed format this module reads."""
    return spec.kind == "regex" and spec.regex == SEED_REGEX and spec.timestamp == SEED_LAYOUT


class Records:
    """The fixed-shape records of a chunk the kernel read (`kept`: count_lines' `keep`)."""

    def __init__(self, kept: dict, spelled, keys: bool):
        """`spelled(spelling)`: the level a spelling reports (None for None); `keys`: whether
        keys() will be asked for (records longer than a row are then left to the regex)."""
        v, start, newline = kept["v"], kept["line_start"], kept["newline_at"]
        fits_level = np.flatnonzero(kept["fits"])
        code, spellings = _factorized(kept["keys"])
        levels = [spelled(s) for s in spellings]  # None: no record (a level that is no word of letters)
        self.names = list(dict.fromkeys(level for level in levels if level is not None))
        of_code = np.array([-1 if s is None else self.names.index(s) for s in levels], dtype=np.int64)
        level = of_code[code]
        at, end = start[fits_level], newline[fits_level]
        end -= v[end - 1] == 13  # the content's end: less one final CR
        chosen = (level >= 0) & (kept["first_close"][fits_level] == at + KEY_AT)
        if keys:
            chosen &= (end - at <= ROW) & (at <= len(v) - ROW)
        line, level, end = fits_level[chosen], level[chosen], end[chosen]
        rows = _rows(v, KEY_AT)[start[line]]  # each record's "[" and timestamp
        words = rows.view("<u8")
        seconds = words[:, 2]
        good = (seconds & _SECOND_MASK) == _SECOND_SHAPE
        good &= ((seconds & _LOW_NIBBLES) + _PLUS_SIX) & _CARRIES == 0
        minute = np.ones(len(line), dtype=bool)  # where a run of records of one minute starts
        if len(line) > 1:
            np.not_equal(words[1:, 0], words[:-1, 0], out=minute[1:])
            minute[1:] |= words[1:, 1] != words[:-1, 1]
            minute[1:] |= (seconds[1:] & np.uint64(0xFF)) != (seconds[:-1] & np.uint64(0xFF))
        firsts = np.flatnonzero(minute)
        texts = [rows[i, 1:17].tobytes() for i in firsts.tolist()]
        shaped = np.array([_MINUTE.fullmatch(t) is not None for t in texts], dtype=bool)
        run = np.cumsum(minute) - 1
        good &= shaped[run]
        if not good.all():
            line, level, end, seconds, run = (x[good] for x in (line, level, end, seconds, run))
        digit = (seconds >> np.uint64(16)) & np.uint64(0x0F0F0F000F0F)  # the 5 digits' low nibbles
        second = (digit & np.uint64(0x0F)) * np.uint64(10) + ((digit >> np.uint64(8)) & np.uint64(0x0F))
        self.ms_in_minute = (np.minimum(second, np.uint64(59)) * np.uint64(1000)
                             + ((digit >> np.uint64(24)) & np.uint64(0x0F)) * np.uint64(100)
                             + ((digit >> np.uint64(32)) & np.uint64(0x0F)) * np.uint64(10)
                             + (digit >> np.uint64(40))).astype(np.int64)
        self.second_ok = second <= np.uint64(60)
        self.minutes = texts  # a minute's text, by run
        self.run = run
        self.v, self.line, self.level = v, line, level
        self.start, self.end = start[line], end
        self.others = np.flatnonzero((v[start] == ord("[")) & ~_marked(len(start), line))
        self.tail_start = kept["tail_start"]

    def times(self, read, year) -> tuple[np.ndarray, np.ndarray]:
        """Each record's time in ms and whether it has one; read(text, year) is LinePass._time."""
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        base = []
        for text in self.minutes:
            known = (text, year)
            if known not in _MINUTES:
                _MINUTES[known] = read(text.decode("ascii") + ":00.000", year)
            base.append(_MINUTES[known])
        timed_minute = np.array([ms is not None for ms in base], dtype=bool)
        minute_ms = np.array([0 if ms is None else ms for ms in base], dtype=np.int64)
        return minute_ms[self.run] + self.ms_in_minute, timed_minute[self.run] & self.second_ok

    def keys(self, digit_blind: bool) -> tuple[np.ndarray, list[bytes]]:
        """Each record's key number, and the key (bytes) of each number."""
        size = self.end - self.start - KEY_AT
        block = _rows(self.v, ROW - KEY_AT)[self.start + KEY_AT]  # the keys' bytes, then whatever follows
        block.view("<u8")[:] &= np.take(_KEPT, size, axis=0)  # ... made 0 (take: quicker than [] here)
        if digit_blind:  # "2"-"9" -> "1"
            shifted = block - np.uint8(50)
            digit = shifted < np.uint8(8)
            shifted += np.uint8(1)
            shifted *= digit
            block -= shifted
        h = (block.view("<u8") @ _HASH) ^ (size.astype(np.uint64) * _HASH[1])
        h ^= h >> np.uint64(29)
        h *= _HASH[2]
        bucket = (h >> np.uint64(64 - _BINS)).astype(np.intp)
        held = np.empty(1 << _BINS, dtype=np.intp)
        held[bucket] = np.arange(len(bucket))  # some record of each bucket
        used = np.flatnonzero(np.bincount(bucket, minlength=1 << _BINS))
        number = np.empty(1 << _BINS, dtype=np.intp)
        number[used] = np.arange(len(used))
        key, sample = number[bucket], held[used]
        words = block.view("<u8")
        equal = (np.take(words[sample], key, axis=0) == words).view("<u8")[:, 0]  # 8 booleans: all true is _TRUES
        other = np.flatnonzero((equal != _TRUES) | (np.take(size[sample], key) != size))
        if len(other):  # records whose key is not that of their bucket's record: numbered apart
            _, first, again = np.unique(np.column_stack([words[other], size[other].astype(np.uint64)]),
                                        axis=0, return_index=True, return_inverse=True)
            key[other] = len(used) + again.reshape(-1)
            sample = np.concatenate([sample, other[first]])
        return key, [block[i, :size[i]].tobytes() for i in sample.tolist()]


def _rows(v: np.ndarray, width: int) -> np.ndarray:
    """Every `width` bytes of v that start at a byte of it, as rows (a view)."""
    return np.lib.stride_tricks.as_strided(v, shape=(max(len(v) - width + 1, 0), width), strides=(1, 1))


def _marked(n: int, at: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[at] = True
    return out


def _factorized(keys: np.ndarray) -> tuple[np.ndarray, list[bytes | None]]:
    """Each level key's distinct number, and the spelling of each number (None: no level).
    Keys are those of kernel._count_levels: a handful, so hashed to 256 bins first."""
    bins = ((keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(56)).astype(np.intp)
    first = np.zeros(256, dtype=np.uint64)
    first[bins] = keys
    if np.array_equal(first[bins], keys):
        used = np.flatnonzero(np.bincount(bins, minlength=256))
        number = np.zeros(256, dtype=np.intp)
        number[used] = np.arange(len(used))
        distinct, code = first[used], number[bins]
    else:
        distinct, code = np.unique(keys, return_inverse=True)
        code = code.reshape(-1)
    spellings = []
    for key in distinct.tolist():
        size = min(key >> 56, 8)
        text = key.to_bytes(8, "little")[:size]
        spellings.append(text if key and text.isalpha() else None)
    return code, spellings
