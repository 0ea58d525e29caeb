"""The faster counting paths of user specs equal the per-line rule on random input:
the vectorised program made for a `fields` spec (exact: lines it reads to their
end are no records), and the whole-chunk regex path of a user's regex."""

from __future__ import annotations

import functools
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.formats.engine import Dialect
from loganalyser.counting.formats.spec import spec_from_dict

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Tokens that fit a word, that do not, level words, and bytes the tokens of the regex
# take but a word-wise token does not (control bytes), or that end a line early (CR).
TOKENS = [b"a", b"INFO", b"warn", b"ERROR", b"Warning", b"CRITICAL", b"17/06/09", b"20:10:40", b"x" * 7, b"y" * 8,
          b"z" * 9, b"q" * 100, b"at", b"Caused", b"by:", b"...", b"3", b"more", b"\xff\xfe", b"a\x01b", b"\x0b",
          b"\x7f", b"\r", b"a\rb", b"[x]", b"\x00"]
GAPS = [b" ", b"  ", b"\t", b" \t ", b"", b"\r", b" \r"]


@st.composite
def token_lines(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 40))):
        lead = draw(st.sampled_from([b"", b"", b" ", b"\t", b"  \t"]))
        parts = draw(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(GAPS)), max_size=6))
        lines.append(lead + b"".join(t + g for t, g in parts))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(a + b for a, b in zip(lines, ends))
    if data and draw(st.booleans()):
        data = data[:-1]
    return data


def fields_dialect(k: int, **extra) -> Dialect:
    return Dialect(spec_from_dict({"name": f"tok{k}", "fields": {"level": k}, **extra}))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@SETTINGS
@given(data=token_lines())
def test_fields_programs_equal_their_regex(k, data):
    dialect = fields_dialect(k)
    assert dialect._fast is not None and dialect._fast.exact
    assert dialect.count(data) == dialect.count_reference(data)
    padded = bytearray(data + b"\nnot counted\n")  # the reader's way: a prefix of a reused buffer
    assert dialect.count(padded, len(data)) == dialect.count_reference(data)


@SETTINGS
@given(data=token_lines())
def test_fields_spec_with_its_own_continuation_rule(data):
    dialect = fields_dialect(3, continuation="a ")
    assert dialect.count(data) == dialect.count_reference(data)


def test_lines_a_fields_program_reads_to_their_end_are_continuations_or_malformed():
    dialect = fields_dialect(3)
    body = b"17/06/09 20:10:40 INFO ok\n\tat x.y(Z.java:1)\n  two tokens\nat one\nCaused by:\r\nonly two\n" * 4
    got = dialect.count(body)
    assert got == dialect.count_reference(body)
    assert got.counts == {"INFO": 4} and got.continuation == 16 and got.malformed == 4


# -- programs made from a user's regex ---------------------------------------------

BACKTRACKS = r"(?P<host>[a-z0-9]+)(?P<level>[0-9]) "  # greedy host takes the level's digit: never sure
COMPILED = {  # regex -> lines it matches (mutated by the tests)
    r"(?P<timestamp>[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) +(?P<level>[A-Za-z]+)(?![^ \r\n])":
        [b"17/06/09 20:10:40 INFO executor.X: ok", b"17/06/09 20:10:40   warn", b"17/06/09 20:10:40 E x"],
    r"(?P<timestamp>[0-9-]{10} [0-9:]{8}) \| (?P<host>[^ |\r\n]+) \| (?P<level>[A-Za-z]+) \|":
        [b"2024-03-01 12:00:00 | web1 | oops | disk full", b"2024-03-01 12:00:01 | w | Info |"],
    r"^\[(?P<level>[A-Z]{1,5})\] \S+ \d+": [b"[INFO] main 12 x", b"[E] a.b 1", b"[WARN] x:y 123"],
    r"(?P<level>\w+): *(?=[A-Za-z])": [b"INFO: ok", b"warn:x", b"E_1:  Z"],
    r"(?P<a>[^:\r\n]*):(?P<level>[0-9]{1,3}) x": [b"host a:12 x", b":1 x y", b"a b c:123 x"],
    BACKTRACKS: [b"abc9 x", b"a1 b"],
    r"(?P<level>[^ \t\r\n]+)[ \t]+[^\d\r\n]{2}x": [b"INFO  abx", b"W\tzzx rest"],
    r"(?:ab){2}(?P<level>[VDIWE])/": [b"ababW/tag", b"ababE/"],
}
NOT_COMPILED = [r"(?P<level>INFO|WARN)", r"(?P<level>[A-Z]+?) ", r"\b(?P<level>[A-Z]+)", r"(?i:(?P<level>[a-z]+)) ",
                r"[0-9]{2,5} (?P<level>[A-Z]+)", r".(?P<level>[A-Z]+)", r"(?P<level>[A-Z]+)$", r"(?<=x)(?P<level>[A-Z]+)",
                r"(?P<level>[A-Z]+)(?= [a-z])"]
EDIT_BYTES = b" \t\r0123456789aZ:|/-_[]xW\xff\x00"


@st.composite
def mutated_lines(draw, samples) -> bytes:
    """Lines of the regex's samples with a few bytes replaced, dropped, inserted or doubled."""
    lines = []
    for _ in range(draw(st.integers(0, 40))):
        line = bytearray(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(line)))
            edit = draw(st.sampled_from(["replace", "drop", "insert", "double"]))
            byte = draw(st.sampled_from(list(EDIT_BYTES)))
            if edit == "insert" or at == len(line):
                line[at:at] = bytes([byte])
            elif edit == "replace":
                line[at] = byte
            elif edit == "drop":
                del line[at]
            else:
                line[at:at] = line[at : at + 1]
        lines.append(bytes(line))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    return b"".join(a + b for a, b in zip(lines, ends))


def regex_dialect(regex: str) -> Dialect:
    return Dialect(spec_from_dict({"name": "mine", "regex": regex}))


@pytest.mark.parametrize("regex", list(COMPILED))
def test_programs_made_from_regexes_read_their_samples(regex):
    dialect = regex_dialect(regex)
    samples = b"".join(line + b"\n" for line in COMPILED[regex]) * 3
    sure = dialect._fast.fits(samples + b"\n" * 16)[0]
    assert not sure.any() if regex == BACKTRACKS else sure.all()  # the program is sure of them all
    assert dialect.count(samples) == dialect.count_reference(samples)


@pytest.mark.parametrize("regex", list(COMPILED))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_programs_made_from_regexes_equal_the_regex(regex, data):
    dialect = regex_dialect(regex)
    data = data.draw(mutated_lines(COMPILED[regex]))
    assert dialect.count(data) == dialect.count_reference(data)
    padded = bytearray(data + b"\nnot counted\n")
    assert dialect.count(padded, len(data)) == dialect.count_reference(data)


@pytest.mark.parametrize("regex", NOT_COMPILED)
def test_regexes_a_program_cannot_state_keep_the_regex_path(regex):
    dialect = regex_dialect(regex)
    assert dialect._fast is None
    data = b"INFO x\nwarn: y\nxINFO \n12 ERROR\n" * 10
    assert dialect.count(data) == dialect.count_reference(data)


def test_a_users_regex_program_on_generated_spark_lines(tmp_path):
    """The bench's user_regex spec on the spark generator's lines, mutated where fields meet."""
    import random

    from utils import format_logs

    format_logs.generate("spark", str(tmp_path), files=1, lines=600, seed=5, noise=0.1, malformed=0.05, blank=0.02,
                         traces=0.05, crlf=True)
    data = bytearray((tmp_path / "node1.log").read_bytes())
    rng = random.Random(5)
    for _ in range(len(data) // 40):
        data[rng.randrange(len(data))] = rng.choice(b" \t\r0123456789aZ:-./_\xff")
    for dialect in (regex_dialect(next(iter(COMPILED))), fields_dialect(3)):
        assert dialect._fast is not None
        assert dialect.count(bytes(data)) == dialect.count_reference(bytes(data))


# -- lines that cannot start a record -------------------------------------------------

@pytest.mark.parametrize("regex, starts", [
    (r"[0-9]{2}/(?P<level>[A-Z]+)", b"0123456789"), (r"(?:<(?P<level>\d+)>)?[A-Z]x", b"<ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    (r"(?=a)(?P<level>[ab]+)", b"ab"), (r"^(?:x|yz)*q(?P<level>[A-Z])", b"qxy"),
    (r"[a-z]*(?P<level>[A-Z]*)", None), (r".(?P<level>x)", None), (r"(?i:a)(?P<level>x)", None),
])
def test_first_bytes_of_a_regex(regex, starts):
    from loganalyser.counting.formats.regex_program import first_bytes

    table = first_bytes(regex)
    assert (table is None) if starts is None else bytes(i for i in range(256) if table[i]) == starts


@pytest.mark.parametrize("regex", list(COMPILED))
@SETTINGS
@given(data=st.data())
def test_a_line_whose_first_byte_no_match_starts_with_never_matches(regex, data):
    import re

    from loganalyser.counting.formats.regex_program import first_bytes

    table, pattern = first_bytes(regex), re.compile(regex.encode())
    for line in data.draw(mutated_lines(COMPILED[regex])).split(b"\n"):
        line = line[:-1] if line.endswith(b"\r") else line
        assert not line or table[line[0]] or pattern.match(line) is None


# -- built-ins' claims: fast_exact (not sure: no record), fast_continuation (sure: continued)

def _builtins_with(key: str) -> list:
    from loganalyser.counting.formats import FormatSet

    formats = FormatSet.standard()
    return [(name, formats) for name in formats.names if getattr(formats.specs[name], key)]


JUL_EDGES = [b"Mar 1, 2024 1:00:00 PM x", b"Mar 123, 2024 12:00:00 AM x", b"Mar 01, 2024 123:00:00 PM x",
             b"Mar 01, 2024 12:00:00 PMx", b"mar 01, 2024 12:00:00 AM x", b"Mar 01, 2024 12:00:00 XM x",
             b"WARNINGS: x", b"INFO:x", b"Info: x", b"FINEST: ok", b"FINER: ok", b"SEVERE:  x", b"CONFIGX: x"]


@pytest.mark.parametrize("name, formats", _builtins_with("fast_exact") + _builtins_with("fast_continuation"))
@pytest.mark.parametrize("seed", range(4))
def test_exact_and_continuation_programs_claim_only_what_the_regex_says(name, formats, seed, tmp_path):
    import random

    from utils import format_logs

    format_logs.generate(name, str(tmp_path), files=1, lines=1500, seed=seed, noise=0.1, malformed=0.05, traces=0.05)
    data = bytearray((tmp_path / "node1.log").read_bytes())
    rng = random.Random(seed)
    for _ in range(len(data) // 30):
        data[rng.randrange(len(data))] = rng.choice(b" \t\r0123456789aAZ:,-.[]/_M\xff")
    data = bytes(data) + b"\n".join(JUL_EDGES * 2) + b"\n" + b"\n" * 20
    dialect, spec = formats.dialect(name), formats.specs[name]
    fits = dialect._fast.fits(data)
    continued = dialect._fast.continuation.fits(data) if dialect._fast.continuation else None
    for i, line in enumerate(data.split(b"\n")[: len(fits[0])]):
        content = line[:-1] if line.endswith(b"\r") else line
        match = dialect._line.match(content)
        if spec.fast_exact and match is not None:  # a record: the program is sure of it, with a listed word
            assert any(f[i] for f in fits), content
            assert not spec.fast_words or match.group("level").decode() in spec.fast_words
        if continued is not None and any(c[i] for c in continued):
            assert dialect._continuation.match(content), content
    assert dialect.count(data) == dialect.count_reference(data)


# -- run lengths from a chunk's stop bitmap ---------------------------------------------

@SETTINGS
@given(data=st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r", b"(", b"\x01", b"\xff", b"a" * 63, b"b" * 64, b"c" * 130]),
                     min_size=1, max_size=60).map(b"".join), seed=st.integers(0, 2**32 - 1))
def test_bitmap_runs_are_the_longest_runs_of_the_class(data, seed):
    import numpy as np

    from loganalyser.counting.formats.bitmaps import MAX_WINDOWS, Bitmaps, run_lengths, stops_of

    v = np.frombuffer(data, dtype=np.uint8)
    maps = Bitmaps(v)
    p = np.random.default_rng(seed).integers(0, v.size, size=20)
    for kind, stops in [("token", b""), ("spaces", b""), ("blanks", b""), ("digits", b""), ("until", b"("), ("until", b": \t")]:
        key, mask = stops_of(kind, stops)
        stop = mask(v)
        got = run_lengths(maps.get(key, mask), p)
        for at, n in zip(p.tolist(), got.tolist()):
            want = next((i for i in range(at, v.size) if stop[i]), v.size) - at  # the chunk's end stops a run
            assert n == min(want, 64 * MAX_WINDOWS) or (want >= 64 * MAX_WINDOWS and n >= 64 * MAX_WINDOWS)


# -- JSON lines and logfmt: the whole-chunk sure patterns (sure_lines.py) ---------------------

JSON_KEYS = [b'"level"', b'"severity"', b'"lvl"', b'"log.level"', b'"log"', b'"msg"', b'"time"', b'"Level"', b'"level "',
             b'"le\\u0076el"', b'"lvl\\""', b'"log.lvl"', b'"\xc3\xa9"', b'"a:b,c"', b"level", b'""']
JSON_VALUES = [b'"info"', b'"WARNING"', b'"warn "', b"30", b"50.0", b"-0", b"1e2", b"1E+400", b"01", b"true", b"false",
               b"null", b"NaN", b"-Infinity", b'"err\\"or"', b'"\\u0045RROR"', b'"\xc3\xa9"', b'"\xff"', b'"a\tb"', b"[1]",
               b'{"level":"error"}', b'{"level":"warn","logger":"x"}', b'{"level":null}', b'{"lvl":"x"}', b"{}",
               b'{"level":"a","level":"b"}', b'{"level":{"x":1}}', b'"level=error"', b'"{\\"level\\":\\"fatal\\"}"', b"",
               b'"', b"tru", b"1.", b".5"]
JSON_GLUE = [b":", b": ", b" : ", b"\t:"]
JSON_COMMAS = [b",", b", ", b" ,", b",,", b""]


@st.composite
def json_lines(draw) -> bytes:
    """Objects (and near misses) with level keys nested, doubled, escaped, null, in strings, ..."""
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        pairs = draw(st.lists(st.tuples(st.sampled_from(JSON_KEYS), st.sampled_from(JSON_GLUE),
                                        st.sampled_from(JSON_VALUES), st.sampled_from(JSON_COMMAS)), max_size=5))
        inner = b"".join(k + g + v + c for k, g, v, c in pairs)
        if pairs and draw(st.booleans()):
            inner = inner.rstrip(b", ")  # mostly well formed
        open_, close = draw(st.sampled_from([(b"{", b"}"), (b" { ", b" } "), (b"{", b""), (b"[{", b"}]"), (b"", b""),
                                             (b"\t{", b"}"), (b"{", b"}x"), (b"{", b"}\r")]))
        lines.append(draw(st.sampled_from([b"", b"    at x", b"not json"])) if draw(st.integers(0, 9)) == 0
                     else open_ + inner + close)
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(a + b for a, b in zip(lines, ends))
    return data[:-1] if data and draw(st.booleans()) else data


LOGFMT_TOKENS = [b"level=info", b"level=ERROR", b"lvl=crit", b"level=in-fo", b"level=", b'level="warn"', b'level="warn',
                 b'level=warn"', b'lvl="a b"', b"xlevel=error", b"loglevel=error", b"Level=error", b"at=info", b"msg=ok",
                 b'msg="a b"', b'msg="x level=error"', b'msg="level=error"', b'msg="x level=error y"', b'msg="a b=c"',
                 b'msg="stats active=3"', b'msg=""', b'msg="unterminated', b'msg="esc \\" level=fatal"', b"a=b=c",
                 b'fwd="1.2.3.4"', b'k="x"y', b"k=\xc3\xa9", b"k=\xff", b"1bad=x", b"_k.a:b/c@d-e=1", b"word", b'"', b"=x",
                 b"k=a\tb", b"k=a\x01b", b"level=info\rx"]


@st.composite
def logfmt_lines(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        tokens = draw(st.lists(st.sampled_from(LOGFMT_TOKENS), max_size=6))
        gaps = draw(st.lists(st.sampled_from([b" ", b"  ", b"\t"]), min_size=len(tokens), max_size=len(tokens)))
        lead = draw(st.sampled_from([b"", b"", b" ", b"\t"]))
        lines.append(lead + b"".join(t + g for t, g in zip(tokens, gaps)).rstrip(b" ") + draw(st.sampled_from([b"", b" "])))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(a + b for a, b in zip(lines, ends))
    return data[:-1] if data and draw(st.booleans()) else data


@functools.lru_cache(maxsize=None)
def _sure_dialect(name: str, raw: bool = False) -> Dialect:
    from loganalyser.counting.formats import FormatSet

    return FormatSet.standard(raw_levels=raw).dialect(name)


def assert_sure_lines_agree(dialect: Dialect, data: bytes) -> int:
    """Every line the sure pattern takes gets the rule's level from its token; the counts equal the rule's.
    Returns how many lines the pattern took."""
    sure = dialect._sure
    text = b"\n" + data + (b"" if data.endswith(b"\n") else b"\n")
    taken = 0
    for match in sure.pattern.finditer(text):
        token = next((g for g in match.groups() if g is not None), None)
        assert sum(g is not None for g in match.groups()) <= 1, line
        line = match.group(0)[1:]
        assert sure._level_of(token) == dialect.classify(line), line
        taken += 1
    assert dialect.count(data) == dialect.count_reference(data)
    padded = bytearray(b"x\n" + data + b"\nnot counted\n")  # a reader's reused buffer, a range inside it
    assert dialect.count(padded, 2 + len(data), 2) == dialect.count_reference(data)
    return taken


@pytest.mark.parametrize("raw", [False, True])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=json_lines())
def test_json_sure_lines_equal_the_rule(raw, data):
    assert_sure_lines_agree(_sure_dialect("jsonl", raw), data)


@pytest.mark.parametrize("raw", [False, True])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=logfmt_lines())
def test_logfmt_sure_lines_equal_the_rule(raw, data):
    assert_sure_lines_agree(_sure_dialect("logfmt", raw), data)


@pytest.mark.parametrize("name", ["jsonl", "logfmt"])
@SETTINGS
@given(data=st.data())
def test_sure_lines_on_mutated_generated_lines(name, data):
    samples = _generated_lines(name)
    assert_sure_lines_agree(_sure_dialect(name), data.draw(mutated_lines(samples)))


def _generated_lines(name: str, cache={}) -> list:
    if name not in cache:
        import tempfile

        from utils import format_logs

        with tempfile.TemporaryDirectory() as folder:
            format_logs.generate(name, folder, files=1, lines=400, seed=3, noise=0.2, malformed=0.05, traces=0.05)
            with open(os.path.join(folder, "node1.log"), "rb") as f:
                cache[name] = [line for line in f.read().split(b"\n") if line]
    return cache[name]


@pytest.mark.parametrize("name, lines, share", [
    ("jsonl", [b'{"level":30,"time":"t","pid":1,"msg":"a b"}', b'{"time": "t", "severity": "WARNING", "n": -1.5e3}',
               b'{"log":{"level":"warn","logger":"x"},"msg":"m"}', b'{"msg":"no level","ok":true,"x":null}', b"{}"], 1.0),
    ("logfmt", [b"time=t level=warn msg=\"slow peer after 2 ms\" id=0", b"t=t lvl=crit msg=\"a=b c\" logger=x",
                b'at=info method=GET fwd="1.2.3.4" status=200', b"a=1 b=2"], 1.0)])
def test_sure_patterns_take_the_common_lines(name, lines, share):
    """The fast path is no fast path if it takes nothing: the usual shapes are taken."""
    data = b"\n".join(lines) + b"\n"
    assert assert_sure_lines_agree(_sure_dialect(name), data) >= share * len(lines)


JSON_TRAPS = [b'{"log":{"level":"warn"},"log":"x"}', b'{"log":"x","log":{"level":"warn"}}', b'{"level":"info","level":"error"}',
              b'{"level":null,"severity":"error"}', b'{"severity":"error","level":"info"}', b'{"lvl":"debug","severity":"x"}',
              b'{"log.level":"error","log":{"level":"warn"}}', b'{"log.level":null,"log":{"level":"warn"}}',
              b'{"log":{"level":"warn"},"log.level":"error"}', b'{"log":{"level":"warn","level":"error"}}',
              b'{"log":{"level":null}}', b'{"log":{"lvl":"error"}}', b'{"log":{}}', b'{"level":"x","log":{"level":"warn"}}',
              b'{"le\\u0076el":"error"}', b'{"msg":"{\\"level\\":\\"error\\"}"}', b'{"msg":"\\"level\\":\\"error\\""}',
              b'{"level":"info"} {"level":"x"}', b'{"level":true}', b'{"level":false}', b'{"level":1.5}', b'{"level":50.0}',
              b'{"level":-0}', b'{"level":1e400}', b'{"level":[1]}', b'{"level":{"x":1}}', b'{"level":"info",}',
              b'{"a":1 2}', b'{"a"::1}', b'{"level":"\xc3\xa9"}', b'{"level":"\xff"}', b' {"level":"info"} ', b'{"level":"info"}\r',
              b'\x0b{"level":"info"}', b'{"level":"info"}x', b'[{"level":"error"}]', b'{"level":"a\tb"}', b'{"level" :"warn"}',
              b'{"level":"info","msg":"x"}}', b'{{"level":"info"}}', b'{"level":NaN}', b'{"level":01}', b"{}", b"{ }", b"{",
              b'{"level":' + b"1" * 5000 + b"}", b'{"n":' + b"2" * 5000 + b',"level":"info"}', b'{"level":' + b"3" * 101 + b"}",
              b'{"level":1.' + b"5" * 5000 + b"}", b'{"level":1e99999}']
LOGFMT_TRAPS = [b'msg="x level=error"', b'at=info msg="x level=error"', b'msg="x level=error" a=1 level=info',
                b'a="x level=error" a=1 b=2 level=info', b'level="info" lvl=warn', b'level=info" lvl=warn',
                b'level="warn lvl=error', b'lvl="a b" level=info', b"level=info\tmsg=x", b'level=info msg="a\\" level=error"',
                b'fwd="1.2.3.4" level=warn', b'fwd="1.2.3.4" msg="a level=error"', b'k="x"y level=info', b"level=in-fo lvl=warn",
                b"xlevel=error", b"level=info\rx", b'msg="level=error"', b"  level=debug  ", b'level=error msg="unterminated',
                b'lvl=crit level=info', b'a=1 level=warn b="c d" level=error', b'a=1 level=warn b="c d"e', b'level=info x',
                b'x level=info', b'k="" level=trace', b'k="a" level=trace msg="b c"', b'level=warn msg="x" y',
                b'm="x level=error y" level=info', b'at=info msg="x level=error y"', b'a="p q=1 r" level=warn',
                b'a="p q=1" level=warn', b'a="p  " level=warn', b'a=" p" level=warn', b'a="p level=x"', b'a="p lvl=x y=1"',
                b'a="p lvl=x y" b="c level=d" lvl=e', b'a="p 1 level=x" level=y', b'a="p q=" level=warn n="y z"',
                b'm="x a=" n="p level=error" z=1']


@pytest.mark.parametrize("name, traps", [("jsonl", JSON_TRAPS), ("logfmt", LOGFMT_TRAPS)])
@pytest.mark.parametrize("raw", [False, True])
def test_sure_lines_on_trap_lines(name, traps, raw):
    for line in traps:  # one by one, so that a failure names its line
        assert_sure_lines_agree(_sure_dialect(name, raw), line + b"\n")
    assert_sure_lines_agree(_sure_dialect(name, raw), b"\r\n".join(traps))


_KEYS = st.sampled_from(["level", "severity", "lvl", "log.level", "log", "msg", "Level"]) | st.text(max_size=4)
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
            | st.sampled_from(["info", "WARNING", "error", 'say "level"', "a\\b", "é", "\u2028", "\x00", "50"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=8)


@st.composite
def dumped_json_lines(draw) -> bytes:
    """Real JSON (json.dumps) of objects with level keys at every depth, escapes, unicode, non-objects."""
    lines = []
    for _ in range(draw(st.integers(0, 20))):
        value = draw(st.dictionaries(_KEYS, _JSON, max_size=5) | _JSON)
        separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]))
        text = json.dumps(value, ensure_ascii=draw(st.booleans()), separators=separators)
        lines.append(text.encode("utf-8", "surrogatepass"))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n", b"\n\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(a + b for a, b in zip(lines, ends))
    return data[:-1] if data and draw(st.booleans()) else data


@pytest.mark.parametrize("raw", [False, True])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=dumped_json_lines())
def test_json_sure_lines_on_real_json(raw, data):
    assert_sure_lines_agree(_sure_dialect("jsonl", raw), data)
