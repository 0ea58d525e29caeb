"""A log format as data: what a line of it looks like and where its level is.

A spec is a JSON object (the built-in ones live in `specs/`, a user adds more
with `--format-file`):

    {"name": "hdfs",
     "description": "Hadoop HDFS daemons: yyMMdd HHmmss pid LEVEL class: msg",
     "regex": "(?P<timestamp>\\d{6} \\d{6}) +(?P<pid>\\d+) +(?P<level>[A-Za-z]+)(?![^ \\r\\n])",
     "timestamp": "yyMMdd HHmmss",
     "levels": {"WARNING": "WARN"},
     "samples": [{"line": "081109 203615 148 INFO dfs.DataNode: ok", "level": "INFO"}]}

* `regex` is matched at the start of each line (without its newline and one
  trailing CR); the named group `level` is the level field. Other named groups
  (`timestamp`, `host`, `component`, `message`) are documentation for now.
  Instead of `regex`, `"fields": {"level": K}` says "the K-th whitespace-
  separated token", and `"kind": "json"` reads JSON objects.
* `levels` maps this format's spellings to canonical levels (levels.py has the
  shared table); `level_rule` is `syslog_pri` or `http_status` for levels
  written as numbers.
* `continuation` is the format's own rule for lines that belong to the record
  above (beside the shared one: leading whitespace, `at `, `Caused by:`,
  `... N more`).
* `record: "logfmt"` says where the statistics find a record's timestamp,
  message, host and component when the regex names no such groups: in its
  key=value pairs (analysis/pairs.py lists the keys).
* `priority` breaks ties in detection: the more specific format wins.
* `samples` are lines with their expected level (a canonical level,
  "continuation", or null for malformed); they are checked when a spec loads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

try:  # Python 3.11+
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from loganalyser.counting.kernel import CONTINUATION_RULE

from .levels import LEVEL_RULES

KINDS = ("regex", "json")
RECORDS = ("logfmt",)  # how a record's fields are read where the regex names none
SHARED_CONTINUATION = CONTINUATION_RULE  # stack traces and indented lines, in every format
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}")


class SpecError(ValueError):
    """A format spec that cannot be used, with the reason in one line."""


@dataclass(frozen=True)
class FormatSpec:
    """One log format, validated and compiled."""

    name: str
    kind: str = "regex"
    regex: str | None = None  # matched at line start; group `level` is the level field
    levels: dict = field(default_factory=dict)  # spelling (upper-case) -> canonical level
    level_rule: str | None = None  # syslog_pri | http_status
    continuation: str | None = None  # the format's own continuation lines
    timestamp: str | None = None  # layout of the timestamp group, e.g. "yyyy-MM-dd HH:mm:ss,SSS"
    record: str | None = None  # "logfmt": the statistics read a record's fields from its key=value pairs
    priority: int = 0  # detection tie-break: higher is more specific
    kernel: str | None = None  # a vectorised kernel that implements this spec exactly
    description: str = ""
    samples: tuple = ()  # (line bytes, expected level | "continuation" | None)
    source: str = ""  # the JSON text the spec came from, less its programs (its identity in checkpoints)
    fast: tuple = ()  # built-ins: field programs of the vectorised path (vectorised.py)
    fast_words: tuple = ()  # ... and the only level spellings the regex takes, if it lists them
    fields_level: int = 0  # a `fields` spec's K (its program is exact), else 0
    fast_continuation: tuple = ()  # built-ins: programs of lines that surely match `continuation`
    fast_exact: bool = False  # built-ins: a line the program is not sure of is surely no record
    fast_no_record: tuple = ()  # built-ins: programs of lines that surely are no records
    fast_sure: str | None = None  # built-ins: the whole-chunk sure pattern of sure_lines.py that counts it

    @property
    def pattern(self) -> re.Pattern | None:
        return _compile(self.regex) if self.regex else None

    @property
    def continuation_pattern(self) -> re.Pattern:
        own = f"|{self.continuation}" if self.continuation else ""
        return _compile(f"(?:{SHARED_CONTINUATION}{own})")


def _compile(regex: str) -> re.Pattern:
    return re.compile(regex.encode("utf-8"))


def spec_from_dict(data: dict, origin: str = "spec", builtin: bool = False) -> FormatSpec:
    """Validates a spec's JSON object; raises SpecError naming what is wrong.

    Only built-in specs may carry a vectorised program (`fast`): the test suite
    proves each one against its regex, and nothing could prove a user's. A
    `fields` spec gets the program made for it here (tested for every K)."""
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a format spec must be a JSON object")
    unknown = set(data) - {"name", "kind", "regex", "fields", "levels", "level_rule", "continuation",
                           "timestamp", "record", "priority", "kernel", "description", "samples", "documentation"}
    if builtin:
        unknown -= {"fast", "fast_words", "fast_continuation", "fast_exact", "fast_no_record", "fast_sure"}
    if unknown:
        raise SpecError(f"{origin}: unknown key(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SpecError(f"{origin}: 'name' must be lower-case letters, digits, '_', '.' or '-' (got {name!r})")
    origin = f"{origin} ({name})"
    kind = data.get("kind", "regex")
    if kind not in KINDS:
        raise SpecError(f"{origin}: 'kind' must be one of {', '.join(KINDS)}")
    regex = data.get("regex")
    if "fields" in data:
        if regex is not None:
            raise SpecError(f"{origin}: give 'regex' or 'fields', not both")
        regex = _fields_regex(data["fields"], origin)
    if kind == "regex":
        if not isinstance(regex, str):
            raise SpecError(f"{origin}: needs a 'regex' (or 'fields')")
        _check_regex(regex, origin, needs_level=True)
    continuation = data.get("continuation")
    if continuation is not None:
        if not isinstance(continuation, str):
            raise SpecError(f"{origin}: 'continuation' must be a regex string")
        _check_regex(continuation, f"{origin} continuation", needs_level=False)
    levels = data.get("levels", {})
    if not isinstance(levels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in levels.items()):
        raise SpecError(f"{origin}: 'levels' must map spellings to level names")
    rule = data.get("level_rule")
    if rule is not None and rule not in LEVEL_RULES:
        raise SpecError(f"{origin}: 'level_rule' must be one of {', '.join(LEVEL_RULES)}")
    record = data.get("record")
    if record is not None and (kind != "regex" or record not in RECORDS):
        raise SpecError(f"{origin}: 'record' must be one of {', '.join(RECORDS)}, with a regex")
    priority = data.get("priority", 0)
    if not isinstance(priority, int):
        raise SpecError(f"{origin}: 'priority' must be a whole number")
    spec = FormatSpec(
        name=name, kind=kind, regex=regex,
        levels={k.strip().upper(): v.strip().upper() for k, v in levels.items()},
        level_rule=rule, continuation=continuation, timestamp=data.get("timestamp"), record=record,
        priority=priority, kernel=data.get("kernel"), description=str(data.get("description", "")),
        samples=_samples(data.get("samples", []), origin),
        # What counting means: a program changes speed, never a count, so it is no part of it.
        source=json.dumps({k: v for k, v in data.items() if not k.startswith("fast")}, sort_keys=True),
        fast=_fast_program(data.get("fast", []), origin) if "fields" not in data else _fields_program(data["fields"]["level"]),
        fast_words=tuple(data.get("fast_words", ())),
        fields_level=data["fields"]["level"] if "fields" in data else 0,
        fast_continuation=_fast_program(data.get("fast_continuation", []), origin),
        fast_exact=bool(data.get("fast_exact", False)),
        fast_no_record=_fast_program(data.get("fast_no_record", []), origin),
        fast_sure=_sure_pattern(data.get("fast_sure"), origin),
    )
    return spec


def _fast_program(alternatives, origin: str) -> tuple:
    from .field_steps import STEP_KINDS

    for program in alternatives:
        kinds = [next(iter(step)) for step in program]
        if any(len(step) != 1 for step in program) or not set(kinds) <= set(STEP_KINDS) or kinds.count("level") > 1:
            raise SpecError(f"{origin}: 'fast' programs are lists of known one-key steps, at most one 'level'")
    return tuple(tuple(program) for program in alternatives)


def _sure_pattern(name, origin: str) -> str | None:
    from .sure_lines import PATTERNS

    if name is not None and name not in PATTERNS:
        raise SpecError(f"{origin}: 'fast_sure' must be one of {', '.join(sorted(PATTERNS))}")
    return name


def _fields_program(k: int) -> tuple:
    """The vectorised program of a `fields` spec, step for step its regex (below): made
    here, never written by a user, and checked against the regex by the tests."""
    program = [{"blanks": 0}]
    for _ in range(k - 1):
        program += [{"token": 1}, {"blanks": 1}]
    program += [{"level": [1, 7, "token"]}, {"after": " \t\r\n"}]
    return (tuple(program),)


def _fields_regex(fields, origin: str) -> str:
    """The regex of "the level is the K-th whitespace-separated token"."""
    if not isinstance(fields, dict) or not isinstance(fields.get("level"), int) or fields["level"] < 1:
        raise SpecError(f"{origin}: 'fields' must be {{\"level\": K}} with K >= 1 (the K-th token)")
    skip = fields["level"] - 1
    token, gap = r"[^ \t\r\n]+", r"[ \t]+"
    return f"[ \\t]*(?:{token}{gap}){{{skip}}}(?P<level>{token})" if skip else f"[ \\t]*(?P<level>{token})"


def _check_regex(regex: str, origin: str, needs_level: bool) -> None:
    try:
        compiled = _compile(regex)
    except (re.error, UnicodeEncodeError) as exc:
        raise SpecError(f"{origin}: bad regex: {exc}") from None
    if needs_level and "level" not in compiled.groupindex:
        raise SpecError(f"{origin}: the regex needs a named group (?P<level>...)")


def _samples(samples, origin: str) -> tuple:
    if not isinstance(samples, list):
        raise SpecError(f"{origin}: 'samples' must be a list of {{\"line\": ..., \"level\": ...}}")
    out = []
    for sample in samples:
        if not isinstance(sample, dict) or not isinstance(sample.get("line"), str) or "level" not in sample:
            raise SpecError(f"{origin}: each sample needs 'line' (text) and 'level' (a level, \"continuation\" or null)")
        out.append((sample["line"].encode("utf-8", "surrogateescape"), sample["level"]))
    return tuple(out)


def chunk_safe(regex: str, line_ends: tuple = (10, 13)) -> bool:
    """True if the regex can never consume or look at a CR or LF (the bytes of
    `line_ends`), and has no anchors but a leading `^`: then matching it after
    each "\\n" of a whole chunk gives exactly what matching it on each line alone gives."""
    try:
        parsed = sre_parse.parse(regex.encode("utf-8"))
    except (re.error, UnicodeEncodeError):
        return False
    items = list(parsed)
    if items and items[0][0] is sre_constants.AT and items[0][1] in (sre_constants.AT_BEGINNING, sre_constants.AT_BEGINNING_STRING):
        items = items[1:]
    return _safe(items, line_ends)


_SAFE_CATEGORIES = {"CATEGORY_DIGIT", "CATEGORY_NOT_SPACE", "CATEGORY_WORD"}


def _safe(items, line_ends) -> bool:
    c = sre_constants
    for op, arg in items:
        if op is c.LITERAL:
            if arg in line_ends:
                return False
        elif op is c.IN:
            if any(_in_class(arg, ch) for ch in line_ends):
                return False
        elif op is c.CATEGORY:
            if str(arg) not in _SAFE_CATEGORIES:
                return False
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", None):
            if not _safe(arg[2], line_ends):
                return False
        elif op is c.SUBPATTERN:
            if not _safe(arg[-1], line_ends):
                return False
        elif op is getattr(c, "ATOMIC_GROUP", None):
            if not _safe(arg, line_ends):
                return False
        elif op is c.BRANCH:
            if not all(_safe(branch, line_ends) for branch in arg[1]):
                return False
        elif op in (c.ASSERT, c.ASSERT_NOT):
            direction, sub = arg
            if direction < 0 or not _safe(sub, line_ends):  # a lookbehind at line start would see the "\n"
                return False
        elif op is c.AT:
            if arg not in (c.AT_BOUNDARY, c.AT_NON_BOUNDARY):
                return False
        elif op is c.GROUPREF:
            continue  # repeats text an earlier group matched: safe if that group is
        else:  # ANY (matches CR), NOT_LITERAL, conditionals, anything unforeseen
            return False
    return True


def _in_class(items, ch: int) -> bool:
    """Whether a character class (sre's IN argument) contains byte `ch`."""
    c = sre_constants
    negate = False
    hit = False
    for op, arg in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            hit |= arg == ch
        elif op is c.RANGE:
            hit |= arg[0] <= ch <= arg[1]
        elif op is c.CATEGORY:
            hit |= str(arg) not in _SAFE_CATEGORIES
        else:
            return True  # unknown: assume the worst
    return hit != negate
