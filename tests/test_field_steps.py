"""The faster pieces of the vectorised path (field_steps.py, vectorised.py, swar.py) equal their plain
versions on random input: the newline finders (compiled and numpy), short bounded runs, a level read with
the literal after it, fixed templates with letter classes, and the built-ins'
no-record programs, which may only claim lines the spec's regex does not match."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.formats import FormatSet
from loganalyser.counting.formats.swar import newline_offsets, newline_offsets_by_words
from loganalyser.counting.formats.field_steps import compile_step
from loganalyser.counting.formats.vectorised import FieldProgram

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = FormatSet.standard()


@SETTINGS
@given(data=st.lists(st.sampled_from([b"\n", b"\n\n", b"a", b"\r\n", b"abcdefg", b"\n" * 9, b"x" * 13, b"\x0a\x0b"]),
                     max_size=80).map(b"".join), skip=st.integers(0, 7))
def test_newline_offsets_are_flatnonzero(data, skip):
    v = np.frombuffer(data, dtype=np.uint8)[skip:]  # any length, any alignment
    expected = np.flatnonzero(v == 10)
    assert np.array_equal(newline_offsets(v), expected)  # compiled, where it was built
    assert np.array_equal(newline_offsets_by_words(v), expected)


@pytest.mark.parametrize("data", [b"\n" * 5000, b"a\n" * 3000, b"\r\n" * 2000 + b"x" * 70, b"x" * 200 + b"\n" * 9])
def test_newline_offsets_of_dense_lines(data):
    v = np.frombuffer(data, dtype=np.uint8)  # more newlines than the first guess of their number
    assert np.array_equal(newline_offsets(v), np.flatnonzero(v == 10))


def _split_program(program: list[dict]) -> FieldProgram:
    """The program with every step compiled alone (no fused level and literal, no short runs)."""
    from loganalyser.counting.formats import field_steps

    steps = []
    for step in program:
        (kind, arg), = step.items()
        if kind == "tokens":
            steps += [compile_step({"token": 1}), compile_step({"literal": " "})] * arg
        elif kind == "digits" and isinstance(arg, list):  # the words' run, bounded after
            low, high = arg
            steps.append(lambda cur, low=low, high=high: cur.run(field_steps.digits, low, high))
        else:
            steps.append(compile_step(step))
    return FieldProgram([], compiled=steps)


PROGRAMS = [
    [{"level": [1, 7, "upper"]}, {"literal": ": "}],
    [{"literal": "<"}, {"level": [1, 3, "digits"]}, {"literal": ">1 "}, {"token": 1}],
    [{"level": [1, 8]}, {"literal": "] ["}],
    [{"level": [2, 8, "letters", "12345678"]}, {"literal": "] "}],
    [{"fixed": "Ull dd, dddd "}, {"digits": [1, 2]}, {"fixed": ":dd:dd "}, {"oneof": "AP"}, {"literal": "M "}],
    [{"digits": [0, 2]}, {"fixed": "lUd"}, {"digits": [1, 1]}],
    [{"digits": [1, 2]}, {"token": 1}],  # a third digit: too long a run, not a token's first byte
    [{"tokens": 3}, {"level": [1, 8]}],
    [{"literal": "<"}, {"tokens": 2}],
    [{"tokens": 1}, {"token": 1}],
]
PIECES = [b"INFO", b"WARNING", b"SEVERE", b"FINEST", b"ABCDEFGH", b"ABCDEFGHI", b"info", b": ", b":", b" ", b"<",
          b">1 ", b">1", b"134", b"1", b"1234", b"] [", b"]", b"trace6", b"x", b"Mar 01, 2024 ", b"Mar 1, 2024 ",
          b"mAr", b"12", b"9", b"123", b":00:59 ", b":0a:59 ", b"AM ", b"PM ", b"XM ", b"\r", b"\x00", b"\xff", b"@[`{",
          b"  ", b"\t", b"\x01", b"y" * 30, b"z" * 63, b"w" * 64, b"v" * 130, b"host.example.com "]


@pytest.mark.parametrize("program", PROGRAMS, ids=range(len(PROGRAMS)))
@SETTINGS
@given(lines=st.lists(st.lists(st.sampled_from(PIECES), max_size=8).map(b"".join), max_size=30))
def test_fused_and_short_steps_equal_the_plain_steps(program, lines):
    data = b"\n".join(lines) + b"\n" + b"\n" * 20  # past the guard zone
    fast, plain = FieldProgram([program]), _split_program(program)
    got, want = fast.fits(data)[0], plain.fits(data)[0]
    assert np.array_equal(got, want)
    v = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(v == 10)[: got.size]
    starts = np.concatenate([[0], ends[:-1] + 1])
    words = np.ndarray(shape=(v.size - 7,), dtype="<u8", buffer=v, strides=(1,))
    a = fast._cursor(fast._compiled[0], v, words, starts, ends)
    b = plain._cursor(plain._compiled[0], v, words, starts, ends)
    assert np.array_equal(a.key[a.ok], b.key[b.ok]) and np.array_equal(a.p[a.ok], b.p[b.ok])


@pytest.mark.parametrize("template, example, regex", [
    ("Ull dd, dddd ", b"Mar 01, 2024 ", rb"[A-Z][a-z]{2} [0-9]{2}, [0-9]{4} "),
    ("lUdUl-", b"aZ9Az-", rb"[a-z][A-Z][0-9][A-Z][a-z]-")])
@SETTINGS
@given(changes=st.lists(st.tuples(st.integers(0, 12), st.sampled_from(list(b"aAzZ09@[`{/:- ,\x80\xc1\xfa\xdb"))),
                        max_size=2))
def test_templates_with_letter_classes_equal_their_regex(template, example, regex, changes):
    text = bytearray(example)
    for at, byte in changes:  # one or two bytes of a line that fits, changed
        text[at % len(text)] = byte
    step = FieldProgram([[{"fixed": template}]])
    data = bytes(text) + b"\n" + b"\n" * 20
    assert bool(step.fits(data)[0][0]) == (re.match(regex, bytes(text)) is not None)


NO_RECORD_TRAPS = {
    "python": [b"Traceback (most recent call last):", b"INFO\r", b"INFO", b"ABCDEFGH:x:", b"ABCDEFGHI:x:", b"ABCDEFGHI",
               b"INFO :x:", b"INFO\x00:x:", b"I:x:", b"ERROR:a b:", b"ConnectionError: x", b"WARNING:root:ok"],
    "openstack": [b"Command: sudo x", b"Exit code: 1", b"Killed", b"Killed\r", b"a\x01b 2024-03-01 00:00:00.5 1 INFO x",
                  b"a\tb 2024-03-01 00:00:00.5 1 INFO x", b"nova.log 2024-03-01 00:00:00.501 2 INFO x", b"x 1", b"x  2",
                  b"\xff\xfe 2024-03-01 00:00:00.501 3 ERROR y", b"2024-03-01 00:00:00.501 4 INFO z", b"x\r2 y"],
}


@pytest.mark.parametrize("name", [n for n in FORMATS.names if FORMATS.specs[n].fast_no_record])
@pytest.mark.parametrize("seed", range(4))
def test_no_record_programs_claim_only_lines_the_regex_refuses(name, seed, tmp_path):
    import random

    from utils import format_logs

    format_logs.generate(name, str(tmp_path), files=1, lines=1500, seed=seed, noise=0.1, malformed=0.05, traces=0.05)
    data = bytearray((tmp_path / "node1.log").read_bytes())
    rng = random.Random(seed)
    for _ in range(len(data) // 30):
        data[rng.randrange(len(data))] = rng.choice(b" \t\r\x00\x01:0123456789aAZ-._\xff")
    data = bytes(data) + b"\n".join(NO_RECORD_TRAPS.get(name, []) * 2) + b"\n" + b"\n" * 20
    dialect = FORMATS.dialect(name)
    claimed = np.any(dialect._fast.no_record.fits(data), axis=0)
    assert claimed.any()
    for line, no_record in zip(data.split(b"\n"), claimed.tolist()):
        content = line[:-1] if line.endswith(b"\r") else line
        if no_record:
            assert dialect._line.match(content) is None, content
    assert dialect.count(data) == dialect.count_reference(data)
