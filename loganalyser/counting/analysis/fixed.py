"""The seed format's usual records, from the kernel's own reading of the lines.

A line of the seed format is a record when its regex,
`\\[(?P<timestamp>[^\\]\\n]*)\\] \\[(?P<level>[A-Za-z]{1,16})\\]`, matches at its
start; the kernel (counting/kernel.py) applies that rule with numpy and hands
out each line's start and end, its first "]", and its level's key and that
key's bin (unless it leaves the levels to the keys, below). Most records have a fixed shape: `[dddd-dd-ddTdd:dd:dd.ddd] [` then 1 to
8 letters and `]`. For those the regex's groups are plain: the timestamp is
those 23 characters, the level the letters, and the message what follows the
level's "]" to the end of the content (the line less one final CR). So numpy
reads them from fixed-width rows, one gather each, with no Python per line:

* the time: a run of records of one minute (`yyyy-MM-ddTHH:mm` alike, told
  from the row's first 17 bytes) has that minute parsed once; a record's
  seconds and milliseconds are one 64-bit word (`m:ss.SSS`), checked for
  digits and for seconds 00-59 at once (60 reads as 59: those few records
  are read apart, 61 and more have no time). Within a minute the word read
  big-endian sorts as the time, so a chunk's first and last times come from
  each run's least and greatest word; the time of each record is only worked
  out when a filter or a bucket shorter than a minute needs it;
* the template: a record's key is its row from the first "]" to the end of
  the content (at most KEY_BYTES). The key decides the level and the
  message, so the template, and --grep. Keys that differ only in their
  digits share one (KeyGroups says exactly where: the masks and a --grep
  that name no digit cannot tell them apart but for "0x"), found by a hash
  blind to digits and checked byte by byte in one pass against its group's
  table; groups last across chunks and files, and each is masked once. With
  keys, the kernel leaves the levels to them (count_lines(levels=False)).

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
KEY_BYTES = 64  # bytes of a key read: longer contents are left to the regex
ROW = KEY_AT + KEY_BYTES
_MINUTE = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")  # a row's bytes 1-16
# Bytes 16-23 of a row ("m:ss.SSS") as a little-endian word: the fixed ones and the digits' high nibbles,
# then where each of the seconds' and milliseconds' digits is.
_SECOND_MASK = np.uint64(0xF0F0F0FFF0F0FF00)
_SECOND_SHAPE = np.uint64(0x3030302E30303A00)
_LOW_NIBBLES = np.uint64(0x0F0F0F000F0F0000)
_PLUS_SIX = np.uint64(0x0606060006060000)  # a low nibble carries into its byte's 0x10 from 10 on: no digit
_PLUS_SIX_TENS = np.uint64(0x06060600060A0000)  # ... and the seconds' tens from 6 on: seconds 00-59 only
_CARRIES = np.uint64(0x1010100010100000)
_HASH = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                  0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9],
                 dtype=np.uint64)  # odd multipliers, one per word of a key
_SIZE_MULTIPLIER, _MIXER = np.uint64(0x2545F4914F6CDD1D), np.uint64(0x9FB21C651E98DF25)
_BINS = 16  # bits of a key's bucket
_LEVELS = 3  # bucket tables a record tries (each takes the next _BINS bits of the hash)
_HASHED = 3  # words of a key hashed (with its length): the rest only tell keys of one bucket apart
MAX_GROUPS = 100_000  # key groups kept at most (about 13 MB); past that they start again
_HIGH_HALVES = np.uint64(0xF0F0F0F0F0F0F0F0)  # what a hash blind to digits sees of each byte
_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
_TRUES = np.uint64(0x0101010101010101)
_KEPT = np.array([[(1 << 8 * min(max(n - 8 * j, 0), 8)) - 1 for j in range(KEY_BYTES // 8)]
                  for n in range(KEY_BYTES + 1)], dtype=np.uint64).view(f"V{KEY_BYTES}").reshape(-1)
# ^ the words of a key of n bytes: the bytes kept, as one item per n (a gather copies whole items)
_NO_TIME = np.uint64(0xFFFFFFFFFFFFFFFF)  # greater than any record's seconds word read big-endian
_MINUTES: dict = {}  # (minute text, year) -> its time in ms, or None: a memo shared by files


def fits(spec) -> bool:
    """Whether `spec` is the seed format this module reads."""
    return spec.kind == "regex" and spec.regex == SEED_REGEX and spec.timestamp == SEED_LAYOUT


class Records:
    """The fixed-shape records of a chunk the kernel read (`kept`: count_lines' `keep`)."""

    def __init__(self, kept: dict, spelled, keys: bool, cr: bool = True):
        """`spelled(spelling)`: the level a spelling reports (None for None); `keys`: whether
        keys() will be asked for (records longer than a row are then left to the regex);
        `cr`: whether the chunk may hold a CR (without one, no line ends with one)."""
        v, start, newline, fit = kept["v"], kept["line_start"], kept["newline_at"], kept["fits"]
        # None: the kernel left the levels to us, and each record's key gives it (ChunkPass reads it there)
        level, self.names = _levels(kept, spelled) if kept["keys"] is not None else (None, None)
        every = bool(fit.all())  # the usual chunk: every line has a level field of 1 to 8 bytes
        if every:
            fitting, at, end, close = None, start, newline, kept["first_close"]
        else:
            fitting = np.flatnonzero(fit)
            at, end, close = start[fitting], newline[fitting], kept["first_close"][fitting]
        if cr:
            end = end - (v[end - 1] == 13)  # the content's end: less one final CR
        chosen = (close - at) == KEY_AT
        if level is not None:
            chosen &= level >= 0
        if keys:
            chosen &= (end - at) <= ROW
            chosen[np.searchsorted(at, len(v) - ROW, side="right"):] = False  # a row past the end (lines in order)
        if not chosen.all():
            picked = np.flatnonzero(chosen)
            at, end, level = at[picked], end[picked], level if level is None else level[picked]
            fitting = picked if fitting is None else fitting[picked]
        stamp = _items(v, KEY_AT)[at].view("<u8").reshape(-1, 3)  # each record's "[" and timestamp
        firsts, run, minutes, shaped = _runs(stamp)
        seconds = stamp[:, 2].copy()  # each record's "m:ss.SSS", a little-endian word
        usual = (seconds & _SECOND_MASK) == _SECOND_SHAPE
        usual &= ((seconds & _LOW_NIBBLES) + _PLUS_SIX_TENS) & _CARRIES == 0  # digits, and seconds 00-59
        if not shaped.all():
            usual &= shaped[run]
        if not usual.all():  # the others: seconds 60-99, or timestamps of another shape (for the regex)
            odd = np.flatnonzero(~usual)
            good = ((seconds[odd] & _SECOND_MASK) == _SECOND_SHAPE) & shaped[run[odd]]
            good &= ((seconds[odd] & _LOW_NIBBLES) + _PLUS_SIX) & _CARRIES == 0
            if not good.all():
                picked = np.flatnonzero(_marked(len(at), odd[~good]) == 0)
                at, end, stamp = at[picked], end[picked], stamp[picked]
                level = level if level is None else level[picked]
                fitting = picked if fitting is None else fitting[picked]
                firsts, run, minutes, _ = _runs(stamp)
                seconds, usual = seconds[picked], usual[picked]
        self.v, self.level, self.start, self.end, self.cr = v, level, at, end, cr
        self.others = (np.zeros(0, dtype=np.intp) if fitting is None and len(at) == len(start)
                       else np.flatnonzero((v[start] == ord("[")) & ~_marked(len(start), fitting)))
        self.tail_start = kept["tail_start"]
        self.firsts, self.run, self.minutes = firsts, run, minutes  # each run's first record, each record's run,
        # and each run's minute (a run: records of one minute in a row)
        self.seconds = seconds
        self.usual = usual  # a time read by the order of its seconds word (when its minute is a time)
        odd = np.flatnonzero(~usual)  # seconds 60 (read as 59) and 61-99 (no time)
        self.sixty = odd[(seconds[odd] >> np.uint64(16)) & np.uint64(0xFFFF) == np.uint64(0x3036)]

    def times(self, read, year) -> None:
        """Reads each run's minute; read(text, year) is LinePass._time."""
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        base = []
        for text in self.minutes:
            known = (text, year)
            if known not in _MINUTES:
                _MINUTES[known] = read(text.decode("ascii") + ":00.000", year)
            base.append(_MINUTES[known])
        self.minute_timed = np.array([ms is not None for ms in base], dtype=bool)  # by run
        self.minute_ms = np.array([0 if ms is None else ms for ms in base], dtype=np.int64)

    def timed(self) -> np.ndarray:
        """Whether each record has a time (after times(); read only)."""
        if not len(self.sixty) and self.minute_timed.all():
            return self.usual  # (not to be changed in place)
        timed = self.usual.copy()
        timed[self.sixty] = True
        if not self.minute_timed.all():
            timed &= self.minute_timed[self.run]
        return timed

    def ms(self) -> np.ndarray:
        """Each record's time in ms (meaningless where it has none; after times())."""
        return self.minute_ms[self.run] + _ms_in_minute(self.seconds)

    def extremes(self, keep: np.ndarray | None) -> tuple[int, int] | None:
        """The least and greatest time of the records `keep` says (None: all) that have one."""
        usual = self.usual if keep is None else self.usual & keep
        if not self.minute_timed.all():
            usual &= self.minute_timed[self.run]
        word = self.seconds.byteswap()  # within a minute, the order of the times
        everyone = bool(usual.all())
        least = np.minimum.reduceat(word if everyone else np.where(usual, word, _NO_TIME), self.firsts)
        most = np.maximum.reduceat(word if everyone else np.where(usual, word, 0), self.firsts)
        found = least != _NO_TIME
        times = [self.minute_ms[found] + _ms_in_minute(least[found].byteswap()),
                 self.minute_ms[found] + _ms_in_minute(most[found].byteswap())]
        sixty = self.sixty if keep is None else self.sixty[keep[self.sixty]]
        sixty = sixty[self.minute_timed[self.run[sixty]]]
        if len(sixty):
            times.append(self.minute_ms[self.run[sixty]] + _ms_in_minute(self.seconds[sixty]))
        times = np.concatenate(times)
        return (int(times.min()), int(times.max())) if len(times) else None

    def keys(self, groups: "KeyGroups") -> tuple[np.ndarray, list[bytes]]:
        """Each record's key number: below groups.count a lasting group's, else that of one of the
        returned keys (bytes) of this chunk only (in order, from groups.count on)."""
        if groups.count > MAX_GROUPS:
            groups.clear()
        size = self.end - self.start - KEY_AT
        items = _items(self.v[KEY_AT:], KEY_BYTES)[self.start]  # the keys' bytes, then whatever follows
        words = items.view("<u8").reshape(-1, KEY_BYTES // 8)
        key = np.empty(len(size), dtype=np.intp)
        left = None  # the records not placed yet (None: all)
        for level in range(_LEVELS):
            mine = (items, size) if left is None else (items[left], size[left])
            # the first words at level 0; the others see every word (keys alike in their first words differ later)
            h = _hash(words if left is None else words[left], _HASHED if left is None else KEY_BYTES // 8,
                      mine[1], groups.coarse)
            bucket = (h >> np.uint64(64 - groups.bins * (level + 1))) & np.uint64((1 << groups.bins) - 1)
            group = groups.placed(level, bucket.astype(np.intp), *mine)
            ok = groups.holds(group, *mine, self.cr)
            if left is None and ok.all():
                return group, []
            placed = np.flatnonzero(ok)
            key[placed if left is None else left[placed]] = group[placed]
            left = np.flatnonzero(~ok) if left is None else left[~ok]
            if not len(left):
                return key, []
        return key, groups.apart(key, left, items[left], size[left])


class KeyGroups:
    """The keys of records met so far (chunks.py keeps them by dialect and analysis: they last
    across chunks and files).

    A group stands for every key its table accepts: byte by byte `low` to
    `low + slack`, so a record is checked in one pass. Within a key's length
    a byte is itself (slack 0); a digit, where the masks and --grep treat the
    digits alike (`digit_blind`: they name none), is any digit, but right
    before an "x" or "X" (where "0x" begins a hex number) a 0 stays a 0 and
    1-9 are alike; the byte after the key (its line's end) is itself, so that
    only keys of that length pass (a chunk with a CR also compares lengths);
    the bytes after it are anything. A group is found by one of _LEVELS
    buckets of a hash of the key's first words made blind to digits (the high
    halves of its bytes) and its length; a record its group does not accept
    tries the next level, and those left after all levels are numbered apart
    (`apart`), for this chunk only."""

    def __init__(self, digit_blind: bool):
        self.digit_blind = digit_blind
        self.coarse = _HIGH_HALVES if digit_blind else _ALL_BITS  # what the hash sees of each byte
        self.meaning: list = []  # what the ChunkPass worked out of each group's key (it fills it)
        self.clear()

    def clear(self) -> None:
        """Forgets every group (their number is capped at about MAX_GROUPS)."""
        self.bins = _BINS  # bits of a bucket
        self.by_bucket = np.full((_LEVELS, 1 << self.bins), -1, dtype=np.intp)  # level, bucket -> group
        self.low = np.zeros((0, KEY_BYTES // 8), dtype="<u8")  # each group's bytes, as words a row
        self.slack = np.zeros((0, KEY_BYTES // 8), dtype="<u8")
        self.size = np.zeros(0, dtype=np.int64)
        self.keys: list[bytes] = []  # each group's key, as its first record has it
        self.meaning.clear()

    @property
    def count(self) -> int:
        return len(self.keys)

    def placed(self, level: int, bucket: np.ndarray, items: np.ndarray, size: np.ndarray) -> np.ndarray:
        """The group of each record's bucket at `level`, making groups for buckets that have none."""
        group = self.by_bucket[level][bucket]
        new = np.flatnonzero(group < 0)
        if len(new):
            held = np.empty(1 << self.bins, dtype=np.intp)
            held[bucket[new]] = new  # some record of each new bucket
            firsts = held[np.flatnonzero(np.bincount(bucket[new], minlength=1 << self.bins))]
            self.by_bucket[level][bucket[firsts]] = np.arange(self.count, self.count + len(firsts))
            self._add(items[firsts], size[firsts])
            group = self.by_bucket[level][bucket]
        return group

    def _add(self, items: np.ndarray, size: np.ndarray) -> None:
        """New groups, one for the key of each record given."""
        row = items.view(np.uint8).reshape(-1, KEY_BYTES)
        low, slack = row.copy(), np.zeros_like(row)
        if self.digit_blind:
            digit = (row - np.uint8(48)) < np.uint8(10)
            low[digit], slack[digit] = 48, 9
            before_x = np.zeros_like(digit)
            before_x[:, :-1] = digit[:, :-1] & ((row[:, 1:] | np.uint8(32)) == ord("x"))
            nonzero = before_x & (row != 48)
            low[before_x & ~nonzero], slack[before_x & ~nonzero] = 48, 0
            low[nonzero], slack[nonzero] = 49, 8
        after = np.arange(KEY_BYTES) > size[:, None]  # past the byte after the key
        low[after], slack[after] = 0, 255
        self.low = np.concatenate([self.low, low.view("<u8")])
        self.slack = np.concatenate([self.slack, slack.view("<u8")])
        self.size = np.concatenate([self.size, size])
        self.keys.extend(items.tobytes()[KEY_BYTES * i:KEY_BYTES * i + n] for i, n in enumerate(size.tolist()))

    def holds(self, group: np.ndarray, items: np.ndarray, size: np.ndarray, cr: bool) -> np.ndarray:
        """Whether each record's group accepts its key."""
        over = np.take(self.low, group, axis=0).view(np.uint8).reshape(-1)  # take: quicker than [] here
        np.subtract(items.view(np.uint8), over, out=over)
        within = np.less_equal(over, np.take(self.slack, group, axis=0).view(np.uint8).reshape(-1),
                               out=over.view(bool))
        ok = within.view("<u8").reshape(-1, KEY_BYTES // 8) == _TRUES
        ok = ok.view("<u8").reshape(-1) == _TRUES
        if cr:  # a CR inside a line could pass for the byte after a shorter key
            ok &= self.size[group] == size
        return ok

    def apart(self, key: np.ndarray, left: np.ndarray, items: np.ndarray, size: np.ndarray) -> list[bytes]:
        """Numbers the records `left` by their exact keys (numpy sorts them), from self.count on."""
        words = items.view("<u8").reshape(-1, KEY_BYTES // 8) & _KEPT[size].view("<u8").reshape(-1, KEY_BYTES // 8)
        _, first, again = np.unique(np.column_stack([words, size.astype(np.uint64)]), axis=0,
                                    return_index=True, return_inverse=True)
        key[left] = self.count + again.reshape(-1)
        return [items[i].tobytes()[:size[i]] for i in first.tolist()]


def _hash(words: np.ndarray, n: int, size: np.ndarray, seen: np.uint64) -> np.ndarray:
    """A hash of the first n words of each row, of which it sees the bits `seen`, and of its key's
    length, whose high bits are taken for buckets (a column at a time: quicker than a product)."""
    h = size.astype(np.uint64) * _SIZE_MULTIPLIER
    for j in range(n):
        word = words[:, j] & seen
        word *= _HASH[j]
        h += word
    h *= _MIXER  # the high bits from all bits
    return h


def _runs(stamp: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[bytes], np.ndarray]:
    """Runs of records of one minute in a row (stamp: each record's first 3 words): the first
    record of each run, each record's run, each run's minute text and whether it has the shape."""
    n = len(stamp)
    change = np.ones(n, dtype=bool)  # where a run starts
    if n > 1:
        first, middle, last = stamp[:, 0], stamp[:, 1], stamp.view(np.uint8)[:, 16]  # bytes 0-7, 8-15, 16
        np.not_equal(middle[1:], middle[:-1], out=change[1:])
        change[1:] |= last[1:] != last[:-1]
        if first.min() != first.max():  # (the year and month rarely change within a chunk)
            change[1:] |= first[1:] != first[:-1]
    firsts = np.flatnonzero(change)
    minutes = [stamp[i].tobytes()[1:17] for i in firsts.tolist()]
    shaped = np.array([_MINUTE.fullmatch(t) is not None for t in minutes], dtype=bool)
    return firsts, np.cumsum(change, dtype=np.intp) - 1, minutes, shaped


def _ms_in_minute(seconds: np.ndarray) -> np.ndarray:
    """The milliseconds into its minute of each seconds word (of the usual shape; 60 reads as 59)."""
    digit = (seconds >> np.uint64(16)) & np.uint64(0x0F0F0F000F0F)  # the 5 digits' low nibbles
    second = (digit & np.uint64(0x0F)) * np.uint64(10) + ((digit >> np.uint64(8)) & np.uint64(0x0F))
    return (np.minimum(second, np.uint64(59)) * np.uint64(1000)
            + ((digit >> np.uint64(24)) & np.uint64(0x0F)) * np.uint64(100)
            + ((digit >> np.uint64(32)) & np.uint64(0x0F)) * np.uint64(10)
            + (digit >> np.uint64(40))).astype(np.int64)


def _items(v: np.ndarray, width: int) -> np.ndarray:
    """Every `width` bytes of v that start at a byte of it, as one item each (a view): a
    gather of items copies each whole, much quicker than the rows of a 2-D view."""
    return np.ndarray(shape=(max(len(v) - width + 1, 0),), dtype=f"V{width}", buffer=v, strides=(1,))


def _marked(n: int, at: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[at] = True
    return out


def _levels(kept: dict, spelled) -> tuple[np.ndarray, list[str]]:
    """The level number of each line with a level field of 1 to 8 bytes (-1: no level), and the
    level of each number, from the kernel's bins of the level keys (or their distinct values)."""
    binned = kept.get("level_bins")
    if binned is not None:
        code, key_of = binned
        distinct = np.flatnonzero(key_of).tolist()  # bins of some key but 0 (no level)
        keys = key_of[distinct].tolist()
    else:
        code, keys = _factorized(kept["keys"])
        distinct = range(len(keys))
    names: list[str] = []
    of_code = np.full(256 if binned is not None else len(keys), -1, dtype=np.intp)
    for c, key in zip(distinct, keys):
        level = spelled(_spelling(key))
        if level is not None:
            if level not in names:
                names.append(level)
            of_code[c] = names.index(level)
    return of_code[code], names


def _spelling(key: int) -> bytes | None:
    """The level spelling of a kernel level key (kernel._count_levels), None for no level."""
    size = min(key >> 56, 8)
    text = key.to_bytes(8, "little")[:size]
    return text if key and text.isalpha() else None


def _factorized(keys: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Each level key's distinct number, and the key of each number."""
    distinct, code = np.unique(keys, return_inverse=True)
    return code.reshape(-1), distinct.tolist()
