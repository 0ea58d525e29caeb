"""JSON lines' bitmap path (json_bits.py) and its compiled twin (native/json.c) against the per-line rule.

Every line a reader settles (a level, NONE, no record, blank) must get the
rule's answer; the lines they leave go to the sure pattern, which
test_format_speed_paths.py checks. The compiled scanner settles every line the
bitmaps settle, the same way, and more.
"""

from __future__ import annotations

import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numpy as np

from loganalyser.counting.formats.json_bits import GUARD, LEVELED, read_lines, scan_lines
from loganalyser.counting.formats.levels import NO_LEVEL
from loganalyser.counting.kernel import CONTINUATION
from loganalyser.counting.native import load

from .test_format_speed_paths import JSON_TRAPS, _generated_lines, dumped_json_lines, json_lines, mutated_lines
from .test_logfmt_bits import lines_agree

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCANNER = load("json")
READERS = ["bitmaps", pytest.param("scanner", marks=pytest.mark.skipif(SCANNER is None, reason="not built (or turned off)"))]

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


def scanned(v: np.ndarray):
    return scan_lines(v, SCANNER)


def scanned_value(lines, i: int) -> bytes:
    return lines.values[lines.kinds[i] - LEVELED][0]


def settled_lines_agree(data: bytes, raw: bool = False, reader: str = "bitmaps") -> int:
    dialect = _dialect(raw)

    def level_of(lines, i, padded):
        if reader == "scanner":
            return dialect._bits._level(scanned_value(lines, i), dialect)
        at, size = int(lines.value_at[i]), int(lines.value_size[i])
        return dialect._bits._level(padded[at : at + size], dialect)
    return lines_agree(dialect, scanned if reader == "scanner" else read_lines, GUARD, data, level_of)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("raw", [False, True])
@SETTINGS
@given(data=object_lines())
def test_settled_object_lines_equal_the_rule(raw, reader, data):
    settled_lines_agree(data, raw, reader)


@pytest.mark.parametrize("reader", READERS)
@SETTINGS
@given(data=json_lines())
def test_settled_json_lines_equal_the_rule(reader, data):
    settled_lines_agree(data, reader=reader)


@pytest.mark.parametrize("reader", READERS)
@SETTINGS
@given(data=st.data())
def test_settled_mutated_generated_lines_equal_the_rule(reader, data):
    settled_lines_agree(data.draw(mutated_lines(_generated_lines("jsonl"))), reader=reader)


BIT_TRAPS = [b'{"level":"info","level":"error"}', b'{"level":"info","lvl":"error"}', b'{"severity":"x","level":"y"}',
             b'{"time":1,"level":"warn"}', b'{"Level":"x"}', b'{"url":"x"}', b'{"level":01}', b'{"level":-0}', b'{"level":-}',
             b'{"level":1-2}', b'{"level":"x"1}', b'{"a":1"b":2}', b'{"a"}', b'{"a":}', b'{,"a":1}', b'{"a":1,}', b'{"a":"b":"c"}',
             b'{"a","b"}', b'{"a"::1}', b'{"a":1:2}', b'{:1}', b'{"a""b"}', b'{"a":1}{"b":2}', b'{"a":1}x', b'{"a":tru}',
             b'{ "level":"info"}', b'{"level" :"info"}', b'{}', b'{"":1}', b'{"level":""}', b'{"level":"' + b"x" * 14 + b'"}',
             b'{"level":"' + b"x" * 15 + b'"}', b'{"level":' + b"9" * 16 + b"}", b'{"level":' + b"9" * 17 + b"}",
             b'{"log":{"level":"warn"}}', b'{"log":"x","level":"info"}', b'{"log.level":"error","pid":1}', b'{"level":30}\r',
             b'{"n":' + b"2" * 5000 + b',"level":"info"}', b'{"level":"\xc3\xa9"}', b'{"level":"a\x7fb"}', b"{", b"}", b"  {",
             b'   "level": "x",', b"        {}", b"\t\t{}", b"\x0b{}", b"    at x", b"not json", b"[1]", b'"{}"']


# What the scanner reads beyond the bitmaps: escapes, nesting, every JSON token, whitespace, and where it stops.
SCANNER_TRAPS = [
    b'{"lev\\u0065l":"error"}', b'{"level":"info","lev\\u0065l":"error"}', b'{"log":{"lev\\u0065l":"warn"}}', b'{"a\\"b":1}',
    b'{"msg":"a\\"b","level":"warn"}', b'{"level":"\\u0057ARN"}', b'{"level":"a\\"b"}',
    b'{"msg":"\\ud800\\udc00\\n\\t\\/\\b\\f\\r\\\\","lvl":"x"}', b'{"a":"\\q"}', b'{"a":"\\u12"}', b'{"a":"\\u12G4"}',
    b'{"a":"\\', b'{"a":"x\x7f","level":"warn"}', b'{"level":"x\x7f"}', b'{"a":"\x01"}', b'{"a":"\t"}',
    b' { "level" : "warn" , "a" : [ 1 , { "b" : null } ] } ', b'\t{"level":"x"}\t', b'{"level":\r"info"}\r\r', b'\r{}',
    b'\r\r', b'  ', b'\x0c{}', b'{}{}', b'{} {}', b'{"a":1}x', b'{"a":1}]', b'{"a":tru}', b'{"a":truex}', b'{"a":nul}',
    b'{"a":fals}', b'{"a":1.}', b'{"a":.5}', b'{"a":1e}', b'{"a":1e+}', b'{"a":1E-5,"level":2.5e1}', b'{"a":-}', b'{"a":--1}',
    b'{"a":-01}', b'{"a":[1,]}', b'{"a":[,1]}', b'{"a":[}', b'{"a":{"b":}}', b'{"a":{"b" 1}}', b'{"a":[1 2]}', b'{"a":{}}',
    b'{"a":[]}', b'{"level":nan}', b'{"level":Infinity}', b'{"level":-Infinity}', b'{"a":NaN,"level":"x"}', b'{"a":Nope}',
    b'{"level":null}', b'{"level":null,"level":"error"}', b'{"level":"error","level":null}', b'{"level":null,"lvl":null}',
    b'{"lvl":"x","level":"y"}', b'{"log.level":"x","lvl":"y"}', b'{"log.level":{"a":1},"log":{"level":"warn"}}',
    b'{"log":{"level":"warn"},"log":{"a":1}}', b'{"log":{"level":"warn"},"log":null}', b'{"log":[{"level":"warn"}]}',
    b'{"log":{"log":{"level":"warn"}}}', b'{"log":{"level":{"level":"warn"}}}', b'{"log":{"level":[1]}}',
    b'{"log":{"level":"warn","level":null}}', b'{"log":{"level":"w\\u0041rn"}}', b'{"x":{"level":"warn"}}',
    b'{"level":"' + b"x" * 62 + b'"}', b'{"level":"' + b"x" * 63 + b'"}', b'{"level":' + b"7" * 64 + b"}",
    b'{"level":' + b"7" * 65 + b"}", b'{"n":' + b"2" * 4300 + b',"level":"info"}', b'{"n":' + b"2" * 4301 + b',"level":"info"}',
    b'{"n":-' + b"2" * 4300 + b"}", b'{"n":' + b"2" * 3999 + b"}", b'{"n":0.' + b"2" * 5000 + b"}", b'{"n":' + b"[" * 63 + b"]" * 63 + b"}",
    b'{"n":' + b"[" * 70 + b"]" * 70 + b"}", b'{"n":' + b"[" * 1200 + b"]" * 1200 + b"}", b'{"n":' + b"[" * 70 + b"}",
    b"{\x00}\x00", b'{\x00"level":"x"}', b'{"a":"\x00"}', b'{"a":1}\x00', b'{"a":"\xc3\xa9","level":"warn"}',
    b'{"a":"\xed\xa0\x80","level":"warn"}', b'{"a":"\xff","level":"warn"}', b'{"a":1,\xff}', b'{"level":"\xc3\xa9"}',
    b'\xef\xbb\xbf{"level":"x"}', b'{"a":1,"level":"' + b"\\u0041" * 12 + b'"}',
    *(b'{"msg":"' + b"m" * pad + b'","level":"warn","x":"\\u0041"}' for pad in range(490, 520, 3)),  # past the masked 512 bytes
    *(b'{"msg":"' + b"m" * pad + b'\\"","lvl":"warn"}' for pad in range(116, 128))]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("raw", [False, True])
def test_trap_lines(raw, reader):
    traps = BIT_TRAPS + JSON_TRAPS + SCANNER_TRAPS
    for line in traps:  # one by one, so that a failure names its line
        settled_lines_agree(line + b"\n", raw, reader)
    settled_lines_agree(b"\n".join(traps), raw, reader)


@pytest.mark.parametrize("reader", READERS)
def test_odd_quotes_do_not_leak_into_the_next_lines(reader):
    lines = [b'{"level":"info', b'{"level":"warn"}', b'{"a":"b', b'{"level":30,"msg":"x y"}', b'{"msg":"1 2"}']
    assert settled_lines_agree(b"\n".join(lines) + b"\n", reader=reader) >= 3


@pytest.mark.parametrize("reader", READERS)
def test_lines_at_every_word_offset(reader):
    """Strings and numbers that cross 64-bit words, at each of the 64 offsets."""
    for pad in range(70):
        data = b'{"p":"' + b"x" * pad + b'"}\n{"level":"info","time":"t","pid":4242,"msg":"a b"}\n{"msg":"no level","n":-10}\n'
        assert settled_lines_agree(data * 3, reader=reader) == 9


COMMON_LINES = [b'{"level":30,"time":1709294400000,"pid":1,"hostname":"web01","msg":"failed"}',
                b'{"level":"info","time":"2024-03-01T00:00:00.540Z","pid":4243,"msg":"job 881942 finished"}',
                b'{"severity":"WARNING","time":"t","msg":"disk usage at 91% on /data"}', b'{"lvl":"debug","msg":"m"}',
                b'{"log.level":"ERROR","msg":"connection refused by 10.0.3.9:5432"}', b'{"time":"t","msg":"no level"}',
                b"    at Object.<anonymous> (/app/index.js:3:9)", b"Error: boom", b""]


@pytest.mark.parametrize("reader", READERS)
def test_the_common_lines_are_settled(reader):
    """A reader is no fast path if it settles nothing: the usual shapes are settled."""
    assert settled_lines_agree(b"\n".join(COMMON_LINES) + b"\n", reader=reader) == len(COMMON_LINES)


# -- the scanner alone ------------------------------------------------------------------------

needs_scanner = pytest.mark.skipif(SCANNER is None, reason="not built (or turned off)")


@needs_scanner
def test_the_scanner_settles_the_lines_the_bitmaps_leave():
    """What the bench's lines need beyond the bitmaps: escaped strings, a nested log, a lone "{", any JSON value."""
    lines = [b'{"level":30,"time":"t","msg":"payload {\\"level\\":\\"error\\"} echoed back"}',
             b'{"log":{"level":"warn","logger":"app.http"},"time":"t","pid":4244,"msg":"retrying"}', b"{", b'  "level": "error",',
             b'{"level":"error","msg":"truncated json', b'{"a":1.5,"b":true,"c":null,"d":[1,{"e":-2e3}],"level":"warn"}',
             b' { "level" : "warn" } ', b'{"severity":"x","msg":"caf\\u00e9"}']
    assert settled_lines_agree(b"\n".join(lines) + b"\n", reader="scanner") == len(lines)


@needs_scanner
@SETTINGS
@given(data=st.data())
def test_scanned_real_json_lines_equal_the_rule(data):
    """Real JSON (json.dumps: nesting, escapes, unicode, every value), as it is or with a few bytes edited."""
    lines = data.draw(dumped_json_lines())
    if data.draw(st.booleans()):
        lines = data.draw(mutated_lines(lines.split(b"\n")))
    settled_lines_agree(lines, reader="scanner")


@needs_scanner
@SETTINGS
@given(data=object_lines() | json_lines() | dumped_json_lines())
def test_the_scanner_settles_every_line_the_bitmaps_settle_alike(data):
    padded = (data if data.endswith(b"\n") or not data else data + b"\n") + b"\n" * GUARD
    v = np.frombuffer(padded, dtype=np.uint8)
    bits, scan = read_lines(v), scanned(v)
    assert np.array_equal(bits.ends, scan.ends) and np.array_equal(bits.blank, scan.blank)
    for name in ("plain", "no_record", "leveled"):
        assert not (getattr(bits, name) & ~getattr(scan, name)).any(), name
    for i in np.flatnonzero(bits.leveled):
        at, size = int(bits.value_at[i]), int(bits.value_size[i])
        assert scanned_value(scan, i) == padded[at : at + size]


@needs_scanner
def test_more_level_values_than_the_scanner_holds():
    """The scanner counts up to 252 distinct level values per buffer; lines with more are left to the rule."""
    data = b"".join(b'{"level":%d}\n' % (k % 400) for k in range(1200)) + b"\n" * GUARD
    lines = scanned(np.frombuffer(data, dtype=np.uint8))
    assert len(lines.values) == 252 and sum(n for _, n in lines.values) == int(lines.leveled.sum())
    assert 0 < int((lines.kinds == 0).sum()) < 1200
    settled_lines_agree(data, reader="scanner")


@needs_scanner
def test_level_values_alike_in_their_first_bytes_are_told_apart():
    """The scanner's table keys a value by its first 16 bytes and its size, then compares the rest (enough
    values that share their first 8 or 16 bytes for the table's probes to meet)."""
    rng = random.Random(7)
    ends = sorted({"".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(1, 3))).encode() for _ in range(400)})
    values = ([b'"critical-%s"' % end for end in ends[:150]] + [b'"a-very-long-level-%s"' % end for end in ends[:80]]
              + [b"12345678901234567", b'"' + b"z" * 100 + b'"', b'"' + b"z" * 99 + b'y"'])
    data = b"".join(b'{"level":%s}\n' % value for value in values * 3)
    lines = scanned(np.frombuffer(data, dtype=np.uint8))
    assert sorted(lines.values) == sorted((value, 3) for value in values)
    assert settled_lines_agree(data, reader="scanner") == 3 * len(values)


@needs_scanner
def test_lines_at_the_buffers_end():
    """The last line ends at the buffer's last byte: no word is read past it, and each line still gets the rule's answer."""
    dialect = _dialect()
    for pad in range(24):
        for line in (b'{"level":"' + b"x" * pad + b'"}', b'{"msg":"' + b"y" * pad, b"{" + b" " * pad, b'{"n":' + b"1" * pad):
            data = b'{"lvl":"warn"}\n' + line + b"\n"
            lines = scanned(np.frombuffer(bytearray(data), dtype=np.uint8))  # a buffer of exactly these bytes
            rule = dialect.classify(line)
            if lines.leveled[1]:
                assert dialect._bits._level(scanned_value(lines, 1), dialect) == rule, line
            elif lines.plain[1]:
                assert rule == NO_LEVEL, line
            elif lines.no_record[1]:  # only GUARD bytes or more before the end (the continuation rule reads words)
                assert rule in (CONTINUATION, None) and len(data) - 15 >= GUARD, line
            assert dialect.count(data) == dialect.count_reference(data)


@needs_scanner
def test_the_scanner_wants_a_last_newline():
    for data in (b"", b'{}\n{"a":1}'):
        with pytest.raises(ValueError):
            SCANNER.read_lines(np.frombuffer(data, dtype=np.uint8), GUARD)
