"""Counting the lines of a buffer in one format: the per-line rule and the fast paths.

The rule for one line (its content: without the "\\n" and one trailing "\\r") is
`Dialect.classify`, the oracle every fast path must agree with:

* blank: the content is empty;
* a record: the format's regex matches at the start; counted under the
  canonical level of its `level` group (NONE if the group is empty);
* continuation: it does not parse, and starts with a space or tab, `at `,
  `Caused by:`, `... N more`, or the format's own continuation rule;
* malformed: anything else.

Fast paths, by format: the seed format's numpy kernel (kernel.py); a built-in
spec's vectorised field program (vectorised.py); for JSON lines and logfmt,
bitmaps of the chunk (json_bits.py, logfmt_bits.py), then a whole-chunk sure
pattern (sure_lines.py); for a regex that can never
touch a CR or LF (`spec.chunk_safe`), one `findall` over the whole chunk with
the pattern behind a literal "\\n", which Python's regex engine finds with a
memchr-speed scan (no per-line Python); otherwise the rule line by line.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

from loganalyser.counting import kernel as seed_kernel
from loganalyser.counting.kernel import BLANK, CONTINUATION, tally
from loganalyser.counting.result import PartialResult

from .levels import LEVEL_RULES, NO_LEVEL, canonical, from_number
from .spec import SHARED_CONTINUATION, FormatSpec, _compile, chunk_safe
from .regex_program import first_bytes, program_of
from .json_bits import JsonBits
from .logfmt_bits import LogfmtBits
from .sure_lines import PATTERNS as SURE_PATTERNS
from .sure_lines import SureLines, json_token_value
from .vectorised import NO_BYTES, FieldProgram

# classify's answers: a level, BLANK, CONTINUATION, or None for a malformed line (kernel.py's).

JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level")
MANY_MATCHES = 64  # lines that start like "at ", "Caused by:" or "... N more" past which one findall checks them


class Dialect:
    """A format spec ready to count: compiled patterns and the level mapping."""

    def __init__(self, spec: FormatSpec, raw_levels: bool = False):
        self.spec = spec
        self.raw_levels = raw_levels  # report spellings as written, not canonical levels
        self._line = spec.pattern  # matched at a line's start
        self._continuation = spec.continuation_pattern
        self._levels: dict[bytes, str] = {}  # spelling -> reported level (a cache)
        self._fast = None  # the vectorised path: a built-in's program, a `fields` spec's, or one made from the regex
        first = first_bytes(spec.regex) if spec.kind == "regex" else None
        own_first = first_bytes(spec.continuation) if spec.continuation else NO_BYTES
        if spec.fast:
            self._fast = FieldProgram([list(p) for p in spec.fast], list(spec.fast_words), exact=spec.fields_level > 0,
                                      first_bytes=first, continuation=[list(p) for p in spec.fast_continuation],
                                      unsure_is_no_record=spec.fast_exact, own_first=own_first,
                                      no_record=[list(p) for p in spec.fast_no_record])
        elif spec.kind == "regex" and spec.kernel is None:
            steps = program_of(spec.regex)
            self._fast = FieldProgram([], compiled=steps, first_bytes=first, own_first=own_first) if steps else None
        self._sure = None  # the whole-chunk path of JSON lines and logfmt (sure_lines.py)
        if spec.kind == "json":
            self._sure = SureLines(SURE_PATTERNS["json"], lambda token: self._json_value_level(json_token_value(token)))
        elif spec.fast_sure:
            self._sure = SureLines(SURE_PATTERNS[spec.fast_sure], lambda token: self.level(token or b""))
        # Bitmaps of the whole chunk settle most lines before the sure pattern (json_bits.py, logfmt_bits.py).
        self._bits = JsonBits(self._sure) if spec.kind == "json" else LogfmtBits(self._sure) if spec.fast_sure == "logfmt" else None
        # The spec's regex behind a "\n": records in a buffer, exactly where chunk-safe, else an estimate.
        self.after_newline = _compile(f"\\n(?:{_strip_caret(spec.regex)})") if spec.kind == "regex" else None
        self.own_continuation = _compile(f"\\n(?:{spec.continuation})") if spec.continuation else None
        self._chunk = None  # whole-chunk patterns, where the spec allows them
        if spec.kind == "regex" and spec.kernel is None and chunk_safe(spec.regex) and chunk_safe(self._continuation.pattern.decode()):
            record = _only_level_group(_strip_caret(spec.regex))
            if record is not None:
                self._chunk = _ChunkPatterns(record, spec.continuation)

    # -- the rule, one line at a time --------------------------------------

    def classify(self, line: bytes) -> str | None:
        """The reported level of one line, BLANK, CONTINUATION, or None (malformed)."""
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            return BLANK
        level = self._parse(line)
        if level is not None:
            return level
        if self._continuation.match(line):
            return CONTINUATION
        return None

    def parses(self, content: bytes) -> bool:
        """Whether a line's content (no "\\n", no final "\\r") is a record of this format."""
        if self.spec.kind == "json":
            return self._json_level(content) is not None
        return self._line.match(content) is not None

    def _parse(self, content: bytes) -> str | None:
        if self.spec.kind == "json":
            return self._json_level(content)
        match = self._line.match(content)
        if match is None:
            return None
        return self.level(match.group("level") or b"")

    def _json_level(self, content: bytes) -> str | None:
        if not content.lstrip().startswith(b"{"):
            return None
        try:
            record = json.loads(content)
        except (ValueError, RecursionError):
            return None
        if not isinstance(record, dict):
            return None
        nested = record.get("log")
        for key in JSON_LEVEL_KEYS:
            value = record.get(key)
            if value is None and key == "log.level" and isinstance(nested, dict):
                value = nested.get("level")
            if value is not None:
                return self._json_value_level(value)
        return NO_LEVEL

    def _json_value_level(self, value) -> str:
        """How the value of a record's level key is reported (None: the record has none)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return NO_LEVEL
        if isinstance(value, (int, float)):
            return str(value) if self.raw_levels else from_number(value)
        return self.level(value.encode("utf-8", "surrogatepass"))  # a lone surrogate ("\\ud800") is text too

    def level(self, spelling: bytes) -> str:
        """How a level field's text is reported (canonical, or as written)."""
        reported = self._levels.get(spelling)
        if reported is None:
            text = spelling.decode("utf-8", "backslashreplace").strip(" \t\r")
            if self.raw_levels:
                reported = text or NO_LEVEL
            elif self.spec.level_rule:
                reported = LEVEL_RULES[self.spec.level_rule](text) if text else NO_LEVEL
            else:
                reported = canonical(text, self.spec.levels)
            self._levels[spelling] = reported
        return reported

    # -- whole buffers -------------------------------------------------------

    def count_reference(self, data) -> PartialResult:
        """The rule applied line by line (the oracle of every fast path)."""
        result = PartialResult(bytes=len(data))
        lines = bytes(data).split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # a final "\n" ends the last line; it does not start one
        for line in lines:
            tally(result, self.classify(line))
        return result

    def count(self, data, end: int | None = None, start: int = 0) -> PartialResult:
        """Line statistics of data[start:end] (whole lines; the last may lack "\\n").

        `data` is bytes or a bytearray (a reader's reused buffer: no copy is made).
        """
        if isinstance(data, memoryview):
            data = data.tobytes()
        end = len(data) if end is None else end
        if self.spec.kernel == "seed":
            return self._relabel(seed_kernel.count_lines(memoryview(data)[start:end]))
        if self._bits is not None:
            return self._bits.count(data, start, end, self)
        if self._sure is not None:
            return self._sure.count(data, start, end, self.classify)
        if self._fast is not None:
            return self._fast.count(data, start, end, self)
        first = data.find(b"\n", start, end)
        if self._chunk is None or first < 0:
            return self.count_reference(data[start:end])
        last = data.rfind(b"\n", start, end)
        result = PartialResult(bytes=end - start)
        tally(result, self.classify(bytes(data[start:first])))
        if last + 1 < end:
            tally(result, self.classify(bytes(data[last + 1 : end])))
        if last > first:  # the lines that start after a "\n" and end at the next one
            self._chunk.count(data, first, last, result, self.level)
        return result

    def count_lines_after_newlines(self, joined: bytes, result: PartialResult) -> None:
        """Adds the lines of `joined`, "\\n" + line + "\\n" + ... + line + "\\n", to `result`."""
        if self._chunk is not None and len(joined) > 1:
            self._chunk.count(joined, 0, len(joined) - 1, result, self.level)
            return
        for line in joined[1:-1].split(b"\n"):
            tally(result, self.classify(line))

    def _relabel(self, part: PartialResult) -> PartialResult:
        """The seed kernel reports spellings: map them as this dialect reports levels."""
        counts: dict[str, int] = {}
        for spelling, n in part.counts.items():
            level = self.level(spelling.encode())
            counts[level] = counts.get(level, 0) + n
        part.counts = counts
        return part


class _ChunkPatterns:
    """The whole-chunk patterns of a chunk-safe spec (see Dialect).

    One regex pass finds the records and their levels; numpy finds the lines,
    the blank ones and those that start like a continuation; a second regex
    pass runs only when some do (to tell continuations from records that
    happen to start that way), or when the format has its own continuation rule.
    """

    def __init__(self, record: str, continuation: str | None):
        not_blank = r"\n(?!\r?(?:\n|\Z))"
        rule = SHARED_CONTINUATION + (f"|{continuation}" if continuation else "")
        self.records = _compile(f"{not_blank}(?:{record})")  # one group: the level
        self.continued = _compile(f"{not_blank}(?={rule})") if continuation else None
        self.both = _compile(f"{not_blank}(?={rule})(?:{record})")  # records that look continued
        self.shared = _compile(f"(?:{SHARED_CONTINUATION})")
        self.shared_words = _compile(r"\n(?=at |Caused by:|\.\.\. \d+ more)")  # the rule's lines that start no blank

    def count(self, buf, first: int, last: int, result: PartialResult, level) -> None:
        """Adds the lines after the "\\n"s in buf[first:last] (each ends at the next "\\n", the last at `last`)."""
        v = np.frombuffer(buf, dtype=np.uint8, count=last - first, offset=first)
        newlines = np.flatnonzero(v == 10)  # v[0] is one: each starts a line
        ends = np.empty_like(newlines)
        ends[:-1] = newlines[1:]
        ends[-1] = v.size
        length = ends - newlines - 1
        head = v[np.minimum(newlines + 1, v.size - 1)]
        blank = int(np.count_nonzero((length == 0) | ((length == 1) & (head == 13))))
        lines = newlines.size
        if self.continued is not None:
            continued = len(self.continued.findall(buf, first, last))
        else:
            continued = int(np.count_nonzero(((head == 32) | (head == 9)) & (length > 0)))
            maybe = np.flatnonzero(((head == 97) | (head == 67) | (head == 46)) & (length > 0))
            if maybe.size > MANY_MATCHES:  # one scan of the buffer costs less than a match per line
                continued += len(self.shared_words.findall(buf, first, last))
            for i in maybe.tolist() if maybe.size <= MANY_MATCHES else ():
                start = first + int(newlines[i]) + 1  # rare: "at ", "Caused by:", "... N more"
                continued += self.shared.match(buf, start, first + int(ends[i])) is not None
        if continued:
            continued -= len(self.both.findall(buf, first, last))
        levels = Counter(self.records.findall(buf, first, last))
        result.lines += lines
        result.blank += blank
        result.continuation += continued
        records = 0
        for spelling, n in levels.items():
            name = level(spelling)
            result.counts[name] = result.counts.get(name, 0) + n
            records += n
        result.malformed += lines - blank - continued - records


def _strip_caret(regex: str) -> str:
    return regex[1:] if regex.startswith("^") else regex[2:] if regex.startswith(r"\A") else regex


def _only_level_group(regex: str) -> str | None:
    """The regex with every named group but `level` made non-capturing, so that
    findall returns the level alone; None if other (unnamed) groups remain."""
    out = re.sub(r"\(\?P<(?!level>)[A-Za-z_][A-Za-z0-9_]*>", "(?:", regex)
    return out if re.compile(out).groups == 1 else None
