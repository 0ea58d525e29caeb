"""JSON lines' bitmap path (json_bits.py) against the per-line rule, line by line.

Every line the bitmaps settle (a level, NONE, no record, blank) must get the
rule's answer; the lines they leave go to the sure pattern, which
test_format_speed_paths.py checks.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.formats.json_bits import GUARD, read_lines

from .test_format_speed_paths import JSON_TRAPS, _generated_lines, json_lines, mutated_lines
from .test_logfmt_bits import lines_agree

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [b'"level"', b'"severity"', b'"lvl"', b'"log.level"', b'"log"', b'"msg"', b'"time"', b'"pid"', b'"Level"', b'"url"', b'""',
        b'"key"', b'"a:b,c{}"', b'"\xc3\xa9"', b'"le\\u0076el"', b'"levels"', b'"xlevel"']
VALUES = [b'"info"', b'"WARNING"', b'"warn "', b'"critical-ish-long-level"', b'""', b"30", b"-5", b"0", b"-0", b"01", b"-", b"1-2",
          b"50.0", b"1e2", b"true", b"null", b'"a\\"b"', b'"\xff"', b'"a\tb"', b'{"level":"error"}', b"[1]", b'"{\\"level\\":1}"',
          b'"x,y:z}"', b"12345678901234567890", b"1" * 20, b'"' + b"m" * 70 + b'"', b"", b'"', b'"a"1']


@st.composite
def object_lines(draw) -> bytes:
    """Flat objects (mostly compact and valid), with level keys first, later, doubled or none."""
    lines = []
    for _ in range(draw(st.integers(0, 25))):
        pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=6))
        inner = b",".join(k + b":" + v for k, v in pairs)
        shape = draw(st.sampled_from([b"{%s}", b"{%s}", b"{%s}", b"{%s} ", b" {%s}", b"{%s},", b"{ %s}", b"[{%s}]", b"{%s}}"]))
        lines.append(shape.replace(b"%s", inner))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    return b"".join(a + b for a, b in zip(lines, ends))


@functools.lru_cache(maxsize=None)
def _dialect(raw: bool = False):
    from loganalyser.counting.formats import FormatSet

    return FormatSet.standard(raw_levels=raw).dialect("jsonl")


def settled_lines_agree(data: bytes, raw: bool = False) -> int:
    dialect = _dialect(raw)

    def level_of(lines, i, padded):
        at, size = int(lines.value_at[i]), int(lines.value_size[i])
        return dialect._bits._level(padded[at : at + size], dialect)
    return lines_agree(dialect, read_lines, GUARD, data, level_of)


@pytest.mark.parametrize("raw", [False, True])
@SETTINGS
@given(data=object_lines())
def test_settled_object_lines_equal_the_rule(raw, data):
    settled_lines_agree(data, raw)


@SETTINGS
@given(data=json_lines())
def test_settled_json_lines_equal_the_rule(data):
    settled_lines_agree(data)


@SETTINGS
@given(data=st.data())
def test_settled_mutated_generated_lines_equal_the_rule(data):
    settled_lines_agree(data.draw(mutated_lines(_generated_lines("jsonl"))))


BIT_TRAPS = [b'{"level":"info","level":"error"}', b'{"level":"info","lvl":"error"}', b'{"severity":"x","level":"y"}',
             b'{"time":1,"level":"warn"}', b'{"Level":"x"}', b'{"url":"x"}', b'{"level":01}', b'{"level":-0}', b'{"level":-}',
             b'{"level":1-2}', b'{"level":"x"1}', b'{"a":1"b":2}', b'{"a"}', b'{"a":}', b'{,"a":1}', b'{"a":1,}', b'{"a":"b":"c"}',
             b'{"a","b"}', b'{"a"::1}', b'{"a":1:2}', b'{:1}', b'{"a""b"}', b'{"a":1}{"b":2}', b'{"a":1}x', b'{"a":tru}',
             b'{ "level":"info"}', b'{"level" :"info"}', b'{}', b'{"":1}', b'{"level":""}', b'{"level":"' + b"x" * 14 + b'"}',
             b'{"level":"' + b"x" * 15 + b'"}', b'{"level":' + b"9" * 16 + b"}", b'{"level":' + b"9" * 17 + b"}",
             b'{"log":{"level":"warn"}}', b'{"log":"x","level":"info"}', b'{"log.level":"error","pid":1}', b'{"level":30}\r',
             b'{"n":' + b"2" * 5000 + b',"level":"info"}', b'{"level":"\xc3\xa9"}', b'{"level":"a\x7fb"}', b"{", b"}", b"  {",
             b'   "level": "x",', b"        {}", b"\t\t{}", b"\x0b{}", b"    at x", b"not json", b"[1]", b'"{}"']


@pytest.mark.parametrize("raw", [False, True])
def test_bit_trap_lines(raw):
    for line in BIT_TRAPS + JSON_TRAPS:  # one by one, so that a failure names its line
        settled_lines_agree(line + b"\n", raw)
    settled_lines_agree(b"\n".join(BIT_TRAPS + JSON_TRAPS), raw)


def test_odd_quotes_do_not_leak_into_the_next_lines():
    lines = [b'{"level":"info', b'{"level":"warn"}', b'{"a":"b', b'{"level":30,"msg":"x y"}', b'{"msg":"1 2"}']
    assert settled_lines_agree(b"\n".join(lines) + b"\n") >= 3


def test_lines_at_every_word_offset():
    """Strings and numbers that cross 64-bit words, at each of the 64 offsets."""
    for pad in range(70):
        data = b'{"p":"' + b"x" * pad + b'"}\n{"level":"info","time":"t","pid":4242,"msg":"a b"}\n{"msg":"no level","n":-10}\n'
        assert settled_lines_agree(data * 3) == 9


def test_the_common_lines_are_settled():
    """The bitmaps are no fast path if they settle nothing: the usual shapes are settled."""
    lines = [b'{"level":30,"time":1709294400000,"pid":1,"hostname":"web01","msg":"failed"}',
             b'{"level":"info","time":"2024-03-01T00:00:00.540Z","pid":4243,"msg":"job 881942 finished"}',
             b'{"severity":"WARNING","time":"t","msg":"disk usage at 91% on /data"}', b'{"lvl":"debug","msg":"m"}',
             b'{"log.level":"ERROR","msg":"connection refused by 10.0.3.9:5432"}', b'{"time":"t","msg":"no level"}',
             b"    at Object.<anonymous> (/app/index.js:3:9)", b"Error: boom", b""]
    assert settled_lines_agree(b"\n".join(lines) + b"\n") == len(lines)
