"""logfmt's bitmap path (logfmt_bits.py) and its compiled twin (native/logfmt.c) against the
per-line rule, line by line.

Every line a reader settles (a level, NONE, no record, blank) must get the
rule's answer; the lines it leaves go to the sure pattern, which
test_format_speed_paths.py checks. Where it is built, the compiled reader
reads every example too and must settle what the bitmaps settle, alike.
The bit helpers are checked against plain Python on random bits.
"""

from __future__ import annotations

import functools
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.formats import bitmaps
from loganalyser.counting.formats.logfmt_bits import COMPILED, GUARD, read_lines, read_lines_compiled
from loganalyser.counting.formats.levels import NO_LEVEL
from loganalyser.counting.kernel import BLANK, CONTINUATION

from .test_format_speed_paths import LOGFMT_TRAPS, _generated_lines, logfmt_lines, mutated_lines

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [b"time", b"t", b"level", b"lvl", b"msg", b"at", b"loglevel", b"protocol", b"_k", b"k@x", b"a.b:c/d-e", b"k" * 70,
        b"q" * 200, b"9k", b"", b"l", b"Level", b"k\xc3\xa9", b"k\"", b"k\\", b"k\t"]
VALUES = [b"info", b"WARNING", b"error", b"x", b"", b"2024-03-01T00:00:00.501Z", b"in-fo", b"a=b", b'"x"', b'"a b"', b'"level=error"',
          b'"x level=error"', b'"x level=error y=1"', b'"p lvl=x y=1"', b'"a b=c"', b'""', b'"', b'"unterminated', b'"a"b',
          b'"esc \\" level=fatal"', b"v" * 70, b'"' + b"m " * 40 + b'"', b"\xff", b"a\rb", b"a\x00b", b"CRITICAL", b"INFORMATIONAL",
          b'"a\\" b"', b'"a\\\\"', b'"\\"', b'"a\\\tb"', b'"a\\\\" b"', b"x\\y", b'"new=\\"level=fatal\\" requested"']
GAPS = [b" ", b" ", b" ", b"  ", b"\t"]


@st.composite
def pair_lines(draw) -> bytes:
    """Lines of pairs (mostly valid), level tokens first, second, later or none."""
    lines = []
    for _ in range(draw(st.integers(0, 25))):
        pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES), st.sampled_from(GAPS)), max_size=6))
        line = b"".join(k + b"=" + v + g for k, v, g in pairs).rstrip(b" ")
        lines.append(draw(st.sampled_from([b"", b"", b"", b" ", b"\t"])) + line + draw(st.sampled_from([b"", b"", b" "])))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    return b"".join(a + b for a, b in zip(lines, ends))


@functools.lru_cache(maxsize=None)
def _dialect(raw: bool = False):
    from loganalyser.counting.formats import FormatSet

    return FormatSet.standard(raw_levels=raw).dialect("logfmt")


def lines_agree(dialect, read, guard: int, data: bytes, level_of) -> int:
    """Each line a bitmap reader settles gets the rule's answer (`level_of(lines, i, data)`: a
    leveled line's level); returns how many it settled. The data is padded with blank lines,
    so that no line is left for being near the end."""
    assert dialect.count(data) == dialect.count_reference(data)  # as it is: its last lines near the end
    if data and not data.endswith(b"\n"):
        data += b"\n"
    own = data.count(b"\n")  # the lines before the padding
    data += b"\n" * guard
    lines = read(np.frombuffer(data, dtype=np.uint8))
    settled = -(lines.ends.size - own)  # the padding's blank lines are settled: not counted
    for i, (start, end) in enumerate(zip(lines.starts.tolist(), lines.ends.tolist())):
        line = data[start:end]
        rule = dialect.classify(line)
        if lines.blank[i]:
            assert rule == BLANK, line
        elif lines.leveled[i]:
            assert level_of(lines, i, data) == rule, line
        elif lines.plain[i]:
            assert rule == NO_LEVEL, line
        elif lines.no_record[i]:
            assert rule in (CONTINUATION, None), line
        else:
            continue
        settled += 1
    assert dialect.count(data) == dialect.count_reference(data)
    return settled


def _settled(lines) -> np.ndarray:
    return lines.blank | lines.leveled | lines.plain | lines.no_record


def compiled_agrees(bits, compiled) -> None:
    """The compiled reader settles every line the bitmaps settle, alike (it may settle more)."""
    for name in ("starts", "ends", "head"):
        assert np.array_equal(getattr(bits, name), getattr(compiled, name)), name
    settled = _settled(bits)
    for name in ("blank", "leveled", "plain", "no_record"):
        assert np.array_equal(getattr(bits, name)[settled], getattr(compiled, name)[settled]), name
    assert np.array_equal(bits.keys[bits.leveled], compiled.keys[bits.leveled])


def read_both(v: np.ndarray):
    """The bitmaps' lines, checked against the compiled reader's; the compiled ones where it is built."""
    bits = read_lines(v)
    if COMPILED is None:
        return bits
    compiled = read_lines_compiled(v)
    compiled_agrees(bits, compiled)
    return compiled


READERS = [pytest.param(read_lines, id="bits"),
           pytest.param(read_both, id="compiled", marks=pytest.mark.skipif(COMPILED is None, reason="not built"))]


def settled_lines_agree(data: bytes, raw: bool = False, read=read_both) -> int:
    """Each line settled gets the rule's answer; the compiled reader needs no guard, so its data
    are not padded: it is checked on the lines at the buffer's end too."""
    dialect = _dialect(raw)

    def level_of(lines, i, _data):
        key = int(lines.keys[i])
        return dialect.level(key.to_bytes(8, "little")[: key >> 56 or 8])
    return lines_agree(dialect, read, 0 if read is read_both and COMPILED is not None and data else GUARD, data, level_of)


@pytest.mark.parametrize("raw", [False, True])
@SETTINGS
@given(data=pair_lines())
def test_settled_pair_lines_equal_the_rule(raw, data):
    settled_lines_agree(data, raw)


# Escapes in quoted values, which only the compiled reader follows: its own lines, against the rule.
ESCAPED = [b'"a\\" b"', b'"\\\\"', b'"\\"', b'"x \\" level=warn"', b'"\\"level=fatal\\" x"', b'"a\\\\" b"', b"x\\y", b'"\\\tb"',
           b'"a\\', b'"a\\"b"', b'"q\\\xff"', b'"p lvl=x"', b"info", b"WARN", b"", b'"a b"', b'"a"', b'"\\\\\\" y"']


@st.composite
def escaped_lines(draw) -> bytes:
    """Lines of pairs split by spaces, with escapes in their quoted values."""
    keys = st.sampled_from([b"level", b"lvl", b"msg", b"t", b"label", b"x.lvl", b"Level"])
    lines = []
    for _ in range(draw(st.integers(0, 25))):
        pairs = draw(st.lists(st.tuples(keys, st.sampled_from(ESCAPED), st.sampled_from([b" ", b"  "])), max_size=5))
        lines.append(b"".join(k + b"=" + v + g for k, v, g in pairs).rstrip(b" ") + draw(st.sampled_from([b"\n", b"\r\n"])))
    return b"".join(lines)


@settings(SETTINGS, max_examples=150)
@given(data=escaped_lines())
def test_settled_escaped_lines_equal_the_rule(data):
    settled_lines_agree(data)


@SETTINGS
@given(data=logfmt_lines())
def test_settled_token_lines_equal_the_rule(data):
    settled_lines_agree(data)


@SETTINGS
@given(data=st.data())
def test_settled_mutated_generated_lines_equal_the_rule(data):
    settled_lines_agree(data.draw(mutated_lines(_generated_lines("logfmt"))))


BIT_TRAPS = [b"_k=1 level=info", b"k@x=1 level=info", b"level=info k@x=1", b"k" * 70 + b"=1 level=warn", b"level=warn " + b"k" * 200 + b"=1",
             b"q" * 200 + b" level=warn", b'a="x y" level=info', b'level="info"', b'level="info" x=1', b'a=1 level="warn"',
             b'a="b level=error"', b'a="b lvl=error c=1"', b'a="b  level=error"', b'a="b" c="d level=x e=f"', b"a=b protocol=https",
             b"a=b loglevel=error", b"a=b Level=error", b"a=b level=", b"a=b level=in-fo", b"level=info=x", b"level=INFORMATIONAL",
             b"level=CRITICAL", b"level=CRITICAL9", b'level=info msg="a"b', b'level=info msg="a""b"', b'level=info msg="', b"level=info\r",
             b"level=info \r", b"\tlevel=info", b"\t/app/main.go:12", b"  at x", b"at x", b"Caused by: x", b"... 3 more", b"goroutine 1",
             b"main.main()", b"=x level=info", b"9=x level=info", b"level=info\x00", b"\xff\xfe level=info", b"level=info x", b"x level=info",
             b'"level=info"', b'k="x" level=info', b'k="" level=trace', b"k= level=info", b"lvl=crit level=info", b"k=v lvl=e level=f"]


@pytest.mark.parametrize("read", READERS)
@pytest.mark.parametrize("raw", [False, True])
def test_bit_trap_lines(raw, read):
    for line in BIT_TRAPS + LOGFMT_TRAPS:  # one by one, so that a failure names its line
        settled_lines_agree(line + b"\n", raw, read)
    settled_lines_agree(b"\n".join(BIT_TRAPS + LOGFMT_TRAPS), raw, read)


# Escapes (which only the compiled reader follows), at the buffer's end or not.
ESCAPE_TRAPS = [b'time=t level=info msg="new=\\"level=fatal\\" requested" id=2', b'msg="a\\" level=error" level=info',
                b'msg="a\\" b" lvl=warn x=1', b'msg="a\\\\" level=error x=1', b'msg="a\\\\" b" c=1 level=error',
                b'msg="a\\"', b'msg="a\\\\"', b'msg="a\\\\\\" level=info', b'msg="\\\t" level=info', b'msg="\\\r" level=info',
                b'msg="x\\ y" z=1', b'msg="x \\"level=warn\\"" z=1', b'msg="x \\" level=warn" z=1', b'a=x\\y level=info',
                b'level=info msg="\\"', b'level=info msg="\\\\" b=\\', b'a="\\"" level=info', b'a="\\x"y level=info',
                b'a=1 b="\\" level=x" level=info', b'a=1 label=x', b'a=1 lab=x l=2', b"a=1 Lvl=x", b"a=1 x.lvl=2",
                b"a=" + b"k" * 300 + b" level=info", b"k" * 300 + b"=1 level=info", b"level=12345678", b"level=123456789",
                b"a=1 level=WARNING", b'a=1 level="warn"', b"a=1 level=warn\\", b"a=1  level=warn  ", b"a= level=warn"]


@pytest.mark.parametrize("read", READERS)
@pytest.mark.parametrize("raw", [False, True])
def test_escape_trap_lines(raw, read):
    for line in ESCAPE_TRAPS:
        settled_lines_agree(line, raw, read)  # no final newline
        settled_lines_agree(line + b"\r\n", raw, read)
    settled_lines_agree(b"\n".join(ESCAPE_TRAPS), raw, read)


@pytest.mark.skipif(COMPILED is None, reason="not built")
def test_compiled_reader_settles_more():
    """Escapes, long keys, a level token past 64 bytes, lines at the buffer's end: the bitmaps
    leave them, the compiled reader settles them."""
    lines = [b'time=t level=info msg="new=\\"level=fatal\\" requested" id=2', b'msg="a\\" b" lvl=warn x=1',
             b"k" * 300 + b"=1 level=info", b"a=" + b"k" * 70 + b" level=info", b"a=1 label=x", b"k" * 70 + b": no record",
             b"level=warn"]
    v = np.frombuffer(b"\n".join(lines) + b"\n", dtype=np.uint8)
    assert not _settled(read_lines(v)).any()
    assert settled_lines_agree(v.tobytes()) == len(lines)


@pytest.mark.parametrize("read", READERS)
def test_crlf_lines_are_settled(read):
    lines = [b'time=t level=warn msg="a b" id=0', b"at=info fwd=\"1.2\" protocol=https", b"level=info ", b"level=info\r",
             b'msg="x\r" level=info', b"Killed", b"goroutine 1 [running]:"]
    assert settled_lines_agree(b"\r\n".join(lines) + b"\r\n", read=read) == 5  # not: a CR before the CR, a CR in quotes


@pytest.mark.parametrize("read", READERS)
def test_odd_quotes_do_not_leak_into_the_next_lines(read):
    lines = [b'a="x level=info', b"level=warn", b'b="y', b"time=t level=error msg=\"p q\" id=1", b"at=x msg=\"1 2\""]
    assert settled_lines_agree(b"\n".join(lines), read=read) >= 3


@pytest.mark.parametrize("read", READERS)
def test_lines_at_every_word_offset(read):
    """Tokens, quotes and keys that cross 64-bit words, at each of the 64 offsets."""
    for pad in range(70):
        data = b"p=" + b"x" * pad + b"\n" + b'time=t level=info msg="a b c" id=1\nat=info fwd="1.2" protocol=https\n'
        assert settled_lines_agree(data * 3, read=read) >= 6


@pytest.mark.parametrize("read", READERS)
def test_the_common_lines_are_settled(read):
    """The bitmaps are no fast path if they settle nothing: the usual shapes are settled."""
    lines = [b'time=2024-03-01T00:00:00.501Z level=warn msg="slow response from peer 10.0.3.7 after 2048 ms" id=0',
             b"t=2024-03-01T00:00:14.145Z lvl=info msg=started logger=alerting", b"level=error msg=\"x\" err=\"y z\"",
             b'at=info method=GET path=/ host=a.b fwd="204.204.4.204" dyno=web.1 status=200 protocol=https',
             b"time=t loglevel=error msg=\"job 1 finished\" id=5", b"goroutine 1 [running]:", b"\t/app/main.go:12 +0x1d", b""]
    assert settled_lines_agree(b"\n".join(lines) + b"\n", read=read) == len(lines)


# -- the bit helpers, against plain Python ------------------------------------------------


def _words(bits: list[int]) -> np.ndarray:
    out = np.zeros(len(bits) // 64 + 2, dtype="<u8")
    for p, b in enumerate(bits):
        if b:
            out[p >> 6] |= np.uint64(1 << (p & 63))
    return out


def _bits(words: np.ndarray, size: int) -> list[int]:
    return [int(words[p >> 6]) >> (p & 63) & 1 for p in range(size)]


@pytest.mark.parametrize("seed", range(20))
def test_bit_helpers(seed):
    rng = random.Random(seed)
    size = rng.randrange(1, 400)
    density = rng.choice([0.02, 0.3, 0.9])
    a = [int(rng.random() < density) for _ in range(size)]
    b = [int(rng.random() < 0.1) for _ in range(size)]
    x, y = _words(a), _words(b)
    assert _bits(bitmaps.prefix_xor(x), size) == [sum(a[: p + 1]) & 1 for p in range(size)]
    assert bitmaps.positions(x).tolist() == [p for p in range(size) if a[p]]
    assert _bits(bitmaps.shift_up(x, first=1), size) == [1] + a[: size - 1]
    assert _bits(bitmaps.shift_down(x), size - 1) == a[1:size]
    assert _bits(bitmaps.shift_up_by(x, 5), size) == [0] * 5 + a[: size - 5] if size > 5 else True
    total, left = bitmaps.add_long(x, y)
    whole = int.from_bytes(x.tobytes(), "little") + int.from_bytes(y.tobytes(), "little")
    if not left.any():  # no carry was cut short: the sum of the two long numbers
        assert int.from_bytes(total.tobytes(), "little") == whole % (1 << (64 * x.size))
    p = np.array(sorted(rng.randrange(0, size + 1) for _ in range(10)), dtype=np.int64)
    q = np.minimum(p + np.array([rng.randrange(0, 100) for _ in range(10)]), size)
    assert bitmaps.count_in(x, p, q).tolist() == [sum(a[i:j]) for i, j in zip(p.tolist(), q.tolist())]


# -- the compiled reader against the bitmaps, on byte soups -------------------------------

SOUP = [b"level=", b"lvl=", b" l", b"l=", b"info", b"WARNING", b"k", b"_", b"@", b"=", b'"', b'"', b" ", b" ", b"  ", b"\t",
        b"\\", b'\\"', b"\r", b"\r\n", b"\n", b"\n", b"\n\n", b"\x00", b"\xff", b"-./:9", b"k" * 63, b"k" * 200, b"v" * 70]


@pytest.mark.skipif(COMPILED is None, reason="not built")
@pytest.mark.parametrize("seed", range(40))
def test_compiled_reads_as_the_bitmaps(seed):
    """Soups of logfmt's pieces, lines at the buffer's end included (no padding): both readers alike."""
    rng = random.Random(seed)
    for _ in range(25):
        data = b"".join(rng.choice(SOUP) for _ in range(rng.randrange(0, 120))) + b"\n"
        v = np.frombuffer(data, dtype=np.uint8)
        compiled_agrees(read_lines(v), read_lines_compiled(v))


_PAST_THE_END = """
import ctypes, mmap, sys
import numpy as np
from loganalyser.counting.formats.logfmt_bits import read_lines_compiled

page = mmap.PAGESIZE
memory = mmap.mmap(-1, 2 * page)
libc = ctypes.CDLL(None, use_errno=True)
address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
assert libc.mprotect(ctypes.c_void_p(address + page), page, 0) == 0  # the page after the buffer: no access
for line in eval(sys.argv[1]):
    for cut in range(1, 24):  # the buffer ends right at the inaccessible page, at every offset of its last word
        data = b"x=1\\n" * (cut % 8) + line + b"\\n"
        memory[page - len(data) : page] = data
        read_lines_compiled(np.frombuffer(memory, dtype=np.uint8, count=len(data), offset=page - len(data)))
"""


@pytest.mark.skipif(COMPILED is None or not sys.platform.startswith("linux"), reason="not built, or no mprotect")
def test_compiled_reads_no_byte_past_the_buffer():
    """The buffer's last line ends at an inaccessible page: a word read past it would crash."""
    lines = [b'a="' + b"q" * k + b'"' for k in range(12)] + [b"a=" + b"b" * k for k in range(12)]
    lines += [b"k" * 9 + b"=", b'level=info msg="a\\\\"', b"a=1 lvl=abcdefgh", b"a=1 label=x", b"panic: x", b" \\t", b"\\r"]
    run = subprocess.run([sys.executable, "-c", _PAST_THE_END, repr(lines)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)  # this checkout's package
    assert run.returncode == 0, run.stderr
