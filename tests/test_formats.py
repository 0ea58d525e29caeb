"""Format specs: the built-ins load and pass their samples, every fast path equals
the per-line rule, levels are canonical, detection picks the right spec."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.formats import BLANK, CONTINUATION, FormatSet, SpecError, builtin_specs, load_format_file
from loganalyser.counting.formats.detect import detect
from loganalyser.counting.formats.engine import Dialect
from loganalyser.counting.formats.levels import canonical
from loganalyser.counting.formats.spec import chunk_safe, spec_from_dict

FORMATS = FormatSet.standard()
NAMES = FORMATS.names
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Lines every format must survive: blank, CR, continuations, junk, other formats' lines.
TRAPS = [b"", b"\r", b"\r\r", b" ", b"\t", b"\tat com.example.Main.run(Main.java:12)", b"Caused by: java.io.IOException",
         b"\t... 12 more", b"... 3 more", b"at", b"attic", b"garbage \xff\xfe not utf-8", b"[x] [INFO] seed-ish",
         b"{\"level\": \"warn\"}", b"{broken json", b"level=error msg=x", b"\x00", b"--------- beginning of main"]
ALL_SAMPLES = [line for name in NAMES for line, _ in FORMATS.specs[name].samples]


def test_builtins_load_and_pass_their_samples():
    assert len(NAMES) >= 20
    FORMATS.check_samples()
    for spec in builtin_specs():
        assert spec.samples, f"{spec.name} has no samples"
        assert all(level in {"TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "FATAL"} for level in spec.levels.values())


@pytest.mark.parametrize("name", [n for n in NAMES if FORMATS.specs[n].kind == "regex" and not FORMATS.specs[n].kernel])
def test_builtin_regexes_take_the_whole_chunk_path(name):
    """A built-in regex never touches CR or LF, so one findall per chunk counts it."""
    assert FORMATS.dialect(name)._chunk is not None


@st.composite
def buffers_for(draw, name: str) -> bytes:
    own = [line for line, _ in FORMATS.specs[name].samples]
    line = st.sampled_from(own * 3 + TRAPS + ALL_SAMPLES)
    mutated = st.tuples(line, st.integers(0, 400), st.sampled_from(list(b" \r\t[]:0aZ-/<>\"{}"))).map(
        lambda t: t[0][: t[1] % (len(t[0]) + 1)] + bytes([t[2]]) + t[0][t[1] % (len(t[0]) + 1) + 1:])
    truncated = st.tuples(line, st.integers(0, 400)).map(lambda t: t[0][: t[1] % (len(t[0]) + 1)])
    lines = draw(st.lists(st.one_of(line, mutated, truncated), max_size=40))
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(a + b for a, b in zip(lines, ends))
    if data and draw(st.booleans()):
        data = data[:-1]
    return data


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_fast_path_equals_per_line_rule(name, data):
    dialect = FORMATS.dialect(name)
    buf = data.draw(buffers_for(name))
    assert dialect.count(buf) == dialect.count_reference(buf)
    # The reader's way: a prefix of a larger reused buffer.
    padded = bytearray(buf + b"\nnot counted\n")
    assert dialect.count(padded, len(buf)) == dialect.count_reference(buf)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_counts_add_up_over_any_cut_at_line_starts(name, data):
    dialect = FORMATS.dialect(name)
    buf = data.draw(buffers_for(name))
    starts = [i + 1 for i, b in enumerate(buf) if b == 10 and i + 1 < len(buf)]
    cuts = sorted(set(data.draw(st.lists(st.sampled_from(starts), max_size=6)))) if starts else []
    bounds = [0, *cuts, len(buf)]
    parts = [dialect.count(buf[a:b]) for a, b in zip(bounds, bounds[1:])]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    assert total == dialect.count_reference(buf)
    assert total.lines == total.blank + total.continuation + total.malformed + sum(total.counts.values())


@pytest.mark.parametrize("regex, safe", [
    (r"(?P<level>[A-Z]+) ", True), (r"^\[(?P<level>[a-z]+)\]", True), (r"[^\]\r\n]*(?P<level>\w+)", True),
    (r"(?P<level>\w+)(?![^ \r\n])", True), (r"\b(?P<level>[0-9]{3})\b", True),
    (r".*(?P<level>[A-Z]+)", False),  # "." matches CR
    (r"\s(?P<level>[A-Z]+)", False), (r"[^\]]*(?P<level>x)", False), (r"(?P<level>x)$", False),
    (r"(?<=a)(?P<level>x)", False), (r"(?P<level>x)\Z", False), (r"a^(?P<level>x)", False),
    (r"(?P<level>x)[\s\S]", False), (r"(?P<level>x)(?=[^a])", False),
])
def test_chunk_safety(regex, safe):
    assert chunk_safe(regex) is safe


def user_dialect(regex: str, **extra) -> Dialect:
    return Dialect(spec_from_dict({"name": "mine", "regex": regex, **extra}))


@SETTINGS
@given(st.lists(st.sampled_from([b"INFO: a", b"WARN: b\r", b"x", b"", b" cont", b"ERROR:", b"INFO: $", b"\r"]), max_size=30))
def test_unsafe_user_regexes_are_counted_line_by_line_exactly(lines):
    data = b"\n".join(lines)
    for regex in [r"(?P<level>[A-Z]+):.*$", r"(?P<level>[A-Z]+):\s", r"(?P<level>[A-Z]+):(\s)?"]:
        dialect = user_dialect(regex)
        assert dialect._chunk is None
        assert dialect.count(data) == dialect.count_reference(data)


def test_crlf_and_level_padding():
    zk = FORMATS.dialect("zookeeper")
    line = b"2015-07-29 17:41:44,747 - WARN  [main:QuorumPeer@1] - ERROR in message\r\n"
    assert zk.count(line * 3).counts == {"WARN": 3}
    assert zk.classify(line) == "WARN"


@pytest.mark.parametrize("spelling, level", [
    ("warning", "WARN"), ("W", "WARN"), ("Err", "ERROR"), ("SEVERE", "ERROR"), ("failure", "ERROR"),
    ("CRITICAL", "FATAL"), ("crit", "FATAL"), ("emerg", "FATAL"), ("ALERT", "FATAL"), ("panic", "FATAL"),
    ("F", "FATAL"), ("A", "FATAL"), ("V", "TRACE"), ("verbose", "TRACE"), ("finer", "TRACE"), ("FINEST", "TRACE"),
    ("D", "DEBUG"), ("fine", "DEBUG"), ("CONFIG", "DEBUG"), ("i", "INFO"), ("Information", "INFO"),
    ("informational", "INFO"), ("notice", "NOTICE"), ("INFO  ", "INFO"), ("trace3", "TRACE"), ("0", "FATAL"),
    ("3", "ERROR"), ("4", "WARN"), ("5", "NOTICE"), ("6", "INFO"), ("7", "DEBUG"), ("Perf", "PERF"), ("", "NONE"),
])
def test_canonical_levels(spelling, level):
    assert canonical(spelling) == level


def test_level_rules_and_raw_levels():
    syslog = FORMATS.dialect("syslog_rfc5424")
    assert syslog.classify(b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 - msg") == "NOTICE"  # 165 % 8 = 5
    assert syslog.classify(b"<11>1 2003-10-11T22:14:15.003Z host app - - - msg") == "ERROR"
    access = FORMATS.dialect("access")
    line = b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" %d 12'
    assert [access.classify(line % code) for code in (200, 302, 404, 500)] == ["INFO", "INFO", "WARN", "ERROR"]
    raw = FormatSet.standard(raw_levels=True)
    assert raw.dialect("seed").count(b"[t] [warning] a\n[t] [WARN] b\n[t] [Warn] c\n").counts == {"warning": 1, "WARN": 1, "Warn": 1}
    assert raw.dialect("zookeeper").classify(b"2015-07-29 17:41:44,747 - INFO  [x] - y") == "INFO"
    assert raw.digest() != FORMATS.digest()


def test_jsonl_levels():
    js = FORMATS.dialect("jsonl")
    cases = {b'{"level":"warn"}': "WARN", b'{"severity":"ERROR"}': "ERROR", b'{"lvl":"dbug"}': "DBUG",
             b'{"log.level":"info"}': "INFO", b'{"log":{"level":"crit"}}': "FATAL", b'{"level":30}': "INFO",
             b'{"level":60}': "FATAL", b'{"level":3}': "ERROR", b'{"msg":"x"}': "NONE", b'{"level":null,"lvl":"warn"}': "WARN",
             b'{"level": 1e999}': "INF", b'{"level": NaN}': "NAN", b'{"level": 30.5}': "30.5",
             b'[1,2]': None, b'{"level": "info"': None, b'  {"level":"info"}': "INFO", b'\t{"level":"info"}': "INFO",
             b'{"level":"\\ud800"}': "\\XED\\XA0\\X80", b'{"level":"\\udcff"}': "\\XED\\XB3\\XBF",
             b'{"level":"\xed\xa0\x80"}': "\\XED\\XA0\\X80"}  # lone surrogates, escaped or as bytes (json.loads takes both)
    for line, level in cases.items():
        assert js.classify(line) == level, line


@pytest.mark.parametrize("name", NAMES)
def test_detection_picks_each_format_on_its_own_samples(name):
    spec = FORMATS.specs[name]
    lines = [line for line, level in spec.samples if level not in (None, "continuation")]
    head = b"\r\n".join(lines * 10) + b"\r\n"
    assert detect(head, FORMATS) == (name, True)


def test_detection_of_junk_and_empty_files():
    assert detect(b"hello\nworld\n", FORMATS) == ("seed", False)
    # A format that parses a few lines (under MIN_SCORE) does not fit: the seed rules count the file.
    assert detect(b"key=value\n" + b"\xff junk \x00\n" * 9, FORMATS) == ("seed", False)
    assert detect(b"", FORMATS) == ("seed", True)
    assert detect(b"\n\r\n", FORMATS) == ("seed", True)


def test_detection_ignores_stack_traces_in_the_head():
    head = (b"2024-03-01 12:00:00,123 ERROR [main] com.example.App - boom\n"
            b"java.lang.IllegalStateException: boom\n\tat com.example.App.main(App.java:3)\n\t... 4 more\n") * 20
    assert detect(head, FORMATS) == ("log4j", True)


WORKED_EXAMPLE = {
    "name": "myapp",
    "description": "myapp: 2024-03-01 12:00:00 | host | LEVEL | message",
    "regex": r"(?P<timestamp>[0-9-]{10} [0-9:]{8}) \| (?P<host>[^ |\r\n]+) \| (?P<level>[A-Za-z]+) \|",
    "levels": {"OOPS": "ERROR"},
    "timestamp": "yyyy-MM-dd HH:mm:ss",
    "priority": 50,
    "samples": [{"line": "2024-03-01 12:00:00 | web1 | oops | disk full", "level": "ERROR"},
                {"line": "2024-03-01 12:00:01 | web1 | Info | ok", "level": "INFO"}],
}


def test_a_users_format_file(tmp_path):
    path = tmp_path / "myapp.json"
    path.write_text(json.dumps([WORKED_EXAMPLE]))
    formats = FormatSet.standard([str(path)])
    assert "myapp" in formats and FORMATS.digest() != formats.digest()
    data = b"2024-03-01 12:00:00 | web1 | oops | x\n2024-03-01 12:00:01 | web2 | WARNING | y\n  more\n"
    assert formats.dialect("myapp").count(data).counts == {"ERROR": 1, "WARN": 1}
    assert detect(data, formats) == ("myapp", True)


@pytest.mark.parametrize("change, message", [
    ({"name": "Bad Name"}, "'name' must be"),
    ({"regex": "(?P<lvl>x)"}, "named group (?P<level>"),
    ({"regex": "(?P<level>x"}, "bad regex"),
    ({"levels": ["x"]}, "'levels' must map"),
    ({"level_rule": "bogus"}, "'level_rule' must be"),
    ({"samples": [{"line": "nope", "level": "INFO"}]}, "sample 'nope' gives None, expected 'INFO'"),
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"fields": {"level": 0}}, "'fields' must be"),
])
def test_bad_user_specs_are_one_line_errors(tmp_path, change, message):
    path = tmp_path / "bad.json"
    spec = {**WORKED_EXAMPLE, **change}
    if "fields" in change:
        del spec["regex"]
    path.write_text(json.dumps(spec))
    with pytest.raises(SpecError) as info:
        FormatSet.standard([str(path)])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unreadable_and_invalid_format_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read format file"):
        load_format_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_format_file(str(bad))


def test_fields_layout_is_the_kth_token():
    dialect = Dialect(spec_from_dict({"name": "tok", "fields": {"level": 3}}))
    assert dialect.classify(b"2024-03-01 12:00:00  WARN  x") == "WARN"
    assert dialect.classify(b"a b") is None
    assert dialect.classify(b"  a b ERR x") == "ERROR"
    assert dialect.classify(b"") == BLANK
    assert dialect.classify(b"\tx") == CONTINUATION  # one token only: no level, indented


FAST = [n for n in NAMES if FORMATS.specs[n].fast]


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("seed", range(6))
def test_vectorised_programs_equal_the_regex_on_mutated_real_shapes(name, seed, tmp_path):
    """Generated lines of the format, with random bytes changed where fields meet."""
    import random

    from utils import format_logs

    format_logs.generate(name, str(tmp_path), files=1, lines=400, seed=seed, noise=0.1, malformed=0.05, blank=0.02,
                         traces=0.05, crlf=seed % 2 == 1)
    data = bytearray((tmp_path / "node1.log").read_bytes())
    rng = random.Random(seed)
    alphabet = b" \t\r0123456789aZ:-.,[]/_\xff"
    for _ in range(len(data) // 40):
        data[rng.randrange(len(data))] = rng.choice(alphabet)
    dialect = FORMATS.dialect(name)
    assert dialect._fast is not None
    assert dialect.count(bytes(data)) == dialect.count_reference(bytes(data))
    for cut in sorted(rng.sample(range(len(data)), 5)):  # and at any line start, as the reader cuts
        start = data.find(b"\n", cut) + 1
        assert dialect.count(bytes(data), None, start) == dialect.count_reference(bytes(data[start:]))


@pytest.mark.parametrize("name", [n for n in FAST if len(FORMATS.specs[n].fast) > 1])
def test_alternative_programs_exclude_each_other(name, tmp_path):
    """The vectorised path tries alternatives in turn: no line may fit two of them."""
    import random

    import numpy as np

    from utils import format_logs

    format_logs.generate(name, str(tmp_path), files=1, lines=2000, seed=3, noise=0.1, malformed=0.05, traces=0.05)
    data = bytearray((tmp_path / "node1.log").read_bytes())
    rng = random.Random(3)
    for _ in range(len(data) // 50):
        data[rng.randrange(len(data))] = rng.choice(b" \t0123456789aZ:-.,[]/<>T")
    fits = FORMATS.dialect(name)._fast.fits(bytes(data))
    assert np.sum(fits, axis=0).max() <= 1 and fits[0].any()
