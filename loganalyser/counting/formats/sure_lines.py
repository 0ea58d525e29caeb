"""Whole-chunk counting for formats no field program can read: JSON lines and logfmt.

A "sure" pattern matches, behind a "\\n", only lines on which the per-line rule
(Dialect.classify) surely agrees with it, and captures one token that settles
the line's level (None: the line has none). One `split` over the chunk gives
the tokens of those lines and, between them, every other line, which goes to
the per-line rule. A pattern may miss lines (each then costs a per-line call)
but never misjudge one; tests/test_format_speed_paths.py checks both patterns
against the rule on random and mutated lines.

Why each pattern is sure:

* JSON: the line is an object of printable-ASCII strings without escapes,
  JSON numbers, true, false or null, so json.loads reads it to a dict; at most
  one of its keys is a level key and none is "log", so that key's value is the
  one the rule picks; or it has no level key but one "log" whose value is such
  an object with at most one "level" (the rule's log.level).
* logfmt: every token is `key=value` (no tab, control byte or backslash);
  up to the first `level=`/`lvl=` token whose value is a plain word, values
  split into pairs one way only (bare; quoted without a space; or quoted
  with a word after its first space that is no `key=`, at which the regex's
  other reading, a bare `"word` and pairs after it, fails), and none is a
  quoted `level="..."`; any quoted values come after it. The spec's regex
  tries its level token at the first pair it can and takes a quoted value
  whole first, so it stops at that same token; a line of such pairs only
  has no level (NONE). Other lines with a quoted value before their level
  token are left to the regex: its backtracking may find a `level=` inside
  the quotes.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from loganalyser.counting.kernel import tally
from loganalyser.counting.result import PartialResult

_END = rb" *+\r?(?=\n)"  # trailing spaces, the one CR the rule strips, and the line's end

# JSON: strings of printable ASCII but '"' and '\' (so without escapes); JSON's numbers, with
# at most 100 digits before the point (json.loads refuses integers of over 4300 digits).
_TEXT = rb"[ !#-\[\]-~]*+"
_VALUE = (rb'(?:"' + _TEXT + rb'"|-?+(?:0|[1-9][0-9]{0,99}+)(?:\.[0-9]++)?+(?:[eE][-+]?+[0-9]++)?+|true|false|null)')
_PAIR = rb'"(?!(?:level|severity|lvl|log\.level|log)")' + _TEXT + rb'" *+: *+' + _VALUE  # no level key, no "log"
_NESTED_PAIR = rb'"(?!level")' + _TEXT + rb'" *+: *+' + _VALUE


def _object(pair: bytes, level_key: bytes, group: bytes) -> bytes:
    """A flat object's inside: pairs, of which at most one has `level_key` (its value captured)."""
    return (rb"(?:(?:" + pair + rb" *+, *+)*+" + level_key + rb" *+: *+(" + group + rb")(?: *+, *+" + pair + rb")*+"
            rb"|" + pair + rb"(?: *+, *+" + pair + rb")*+)?")


# Group 1: the top-level level key's value; group 2: log.level's, written as "log": {"level": ...}.
JSON_SURE = (rb"\n *+\{ *+(?:" + _object(_PAIR, rb'"(?:level|severity|lvl|log\.level)"', _VALUE)
             + rb"|(?:" + _PAIR + rb' *+, *+)*+"log" *+: *+\{ *+' + _object(_NESTED_PAIR, rb'"level"', _VALUE)
             + rb" *+\}(?: *+, *+" + _PAIR + rb")*+) *+\}" + _END)

# logfmt: the spec's key; bare values without quote, backslash or control byte (tab included); a
# pair before the level token splits into pairs one way only (bare, or quoted without a space) and
# is no quoted level= (the regex would take that as the level token).
_KEY = rb"[A-Za-z_][A-Za-z0-9_.:/@-]*+="
_BARE = rb'[^ "\\\x00-\x1f]*+'
_QUOTED = rb'"[^"\\\x00-\x1f]*+"'
# A quoted value with a space splits one way only too if a word after its first space is no
# `key=` (the regex's other way, a bare `"word` and pairs after it, fails at that word).
_UNSPLIT = (rb'"[^ "\\\x00-\x1f]*+(?: ++[^ "\\\x00-\x1f]*+)*? ++(?![A-Za-z_][A-Za-z0-9_.:/@-]*+=)'
            rb'[^"\\\x00-\x1f]*+"')
_PLAIN = rb'(?!(?:level|lvl)=")' + _KEY + rb'(?:"[^ "\\\x00-\x1f]*+"|' + _UNSPLIT + rb"|" + _BARE + rb")"
LOGFMT_SURE = (rb"\n *+(?:(?:" + _PLAIN + rb" ++)*?(?:level|lvl)=([A-Za-z0-9_]++)(?= |\r?\n)"
               rb"(?: ++" + _KEY + rb"(?:" + _QUOTED + rb"|" + _BARE + rb"))*+"
               rb"|" + _PLAIN + rb"(?: ++" + _PLAIN + rb")*+)" + _END)

PATTERNS = {"json": JSON_SURE, "logfmt": LOGFMT_SURE}


class SureLines:
    """Counts buffers with a sure pattern; `level_of(token)` is a token's reported level."""

    def __init__(self, pattern: bytes, level_of):
        self.pattern = re.compile(pattern)
        self._level_of = level_of
        self._levels: dict = {}  # token -> reported level (a cache)

    def count(self, data, start: int, end: int, classify) -> PartialResult:
        """Line statistics of data[start:end]; `classify` is the per-line rule."""
        result = PartialResult(bytes=end - start)
        if end <= start:
            return result
        text = b"\n" + bytes(data[start:end])
        if not text.endswith(b"\n"):
            text += b"\n"
        parts = self.pattern.split(text)
        # parts: the text between matches (each unmatched line as "\n" + line, then the final "\n"), then
        # each match's groups; at most one group of a match holds a token.
        step = self.pattern.groups + 1
        matched = len(parts) // step
        tokens = Counter(parts[1::step])
        for group in range(2, step):
            tokens.update(parts[group::step])
        tokens.pop(None, None)
        tokens[None] = matched - sum(tokens.values())
        for token, n in tokens.items():
            level = self._levels.get(token)
            if level is None:
                level = self._levels[token] = self._level_of(token)
            if n:
                result.counts[level] = result.counts.get(level, 0) + n
        result.lines += matched
        rest = b"".join(parts[0::step])
        for line in rest[:-1].split(b"\n")[1:]:
            tally(result, classify(line))
        return result


def json_token_value(token: bytes | None):
    """The value a JSON sure-line's level token stands for (None: no level key)."""
    return None if token is None else json.loads(token)
