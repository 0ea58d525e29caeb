"""The compiled field steps (native/steps.c, through native_steps.py) equal their numpy twins
(field_steps.py): the same lines sure, with the same cursor and level key, and the same lines
marked as ended in exact programs, for every built-in program and a program of each step kind,
on random lines and on the generator's lines with bytes changed; and the formats' counts with
them equal the per-line rule's, at any cut of the buffer."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.formats import FormatSet, field_steps, native_steps
from loganalyser.counting.formats.bitmaps import Bitmaps
from loganalyser.counting.formats.field_steps import Cursor
from loganalyser.counting.formats.swar import word_view
from loganalyser.counting.formats.vectorised import GUARD, KEY_SLOTS, distinct_keys, sure_key_counts

pytestmark = pytest.mark.skipif(native_steps._STEPS is None, reason="steps.c not built, or LOGANALYSER_NATIVE=0")

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = FormatSet.standard()
BUILT_IN = {f"{name}.{part}{i}": program for name in FORMATS.names
            for part in ("fast", "fast_continuation", "fast_no_record")
            for i, program in enumerate(getattr(FORMATS.specs[name], part))}
EACH_KIND = [  # every step kind, bounds and the level's options
    [{"fixed": "[Ull dd.dddddd] "}, {"oneof": "AP"}, {"noneof": ":"}, {"blanks": 1}, {"level": [1, 8]}, {"after": " \t"}],
    [{"spaces": [1, 3]}, {"digits": [1, 2]}, {"token": 2}, {"literal": " "}, {"level": [2, 8, "letters", "12345678"]}],
    [{"until1": ":]"}, {"level": [1, 1, "upper"]}, {"after_word_end": True}, {"spaces": 0}, {"digits": 1}],
    [{"level": [1, 5, "token"]}, {"literal": " - "}, {"tokens": 2}, {"until": "\"\\"}, {"digits": [0, 2]}],
    [{"level": [3, 3, "digits"]}, {"literal": ": "}, {"until": " "}, {"spaces": 2}, {"level": [1, 7, "upper"]}],
    [{"until": "]|="}, {"token": 1}],  # three stops in the range of the bytes it takes
    [{"digits": 1}, {"fixed": "d"}],  # runs as long as their caps (96, 128 bytes), then a byte they take
    [{"token": 1}, {"oneof": "uv9"}],
]
PROGRAMS = {**BUILT_IN, **{f"kind{i}": program for i, program in enumerate(EACH_KIND)}}
PIECES = [b"INFO", b"WARNING", b"ABCDEFGH", b"ABCDEFGHI", b"info", b"trace6", b"I", b"W/", b"E", b": ", b":", b" ",
          b"  ", b" - ", b"\t", b"<", b">1 ", b"134", b"1", b"12", b"1234", b"[", b"] [", b"]", b"(", b"): ", b"( 12): ",
          b'"', b'\\"', b"\\", b"/", b"|", b"=", b"a|b]c", b"a=b]c", b"-", b".", b"Mon", b"Mar", b" 01 ", b"12:00:00", b".123456", b" 2024", b"core:",
          b"\r", b"\x00", b"\x01", b"\x0b", b"\x80", b"\xc3\xa9", b"\xff", b"x" * 30, b"y" * 63, b"z" * 95, b"w" * 96,
          b"v" * 127, b"u" * 128, b"9" * 100, b" " * 9, b"host.example.com ", b"2024-03-01T00:00:00.5Z "]


class _MadeBitmaps(Bitmaps):
    """Bitmaps the numpy steps take as made: they read every run from them (caps of 128 bytes), as
    on a chunk of many lines, not by words (96 bytes) as they may on a few lines."""

    def has(self, key) -> bool:
        return True


def _samples() -> list[bytes]:
    return [line for spec in FORMATS.specs.values() for line, _ in spec.samples]


LINES = st.lists(st.one_of(st.lists(st.sampled_from(PIECES), max_size=10).map(b"".join),
                           st.tuples(st.sampled_from(_samples()), st.integers(0, 200), st.sampled_from(PIECES),
                                     st.integers(0, 3)).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + t[3]:])),
                 max_size=40)


def _run(steps, data: bytes, exact: bool) -> Cursor:
    v = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(v == 10)
    ends = newlines[newlines < v.size - GUARD]
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if ends.size else ends
    cur = Cursor(v, word_view(v), starts, ends, exact, _MadeBitmaps(v))
    for step in steps:
        step(cur)
    return cur


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@SETTINGS
@given(lines=LINES, exact=st.booleans())
def test_compiled_steps_equal_the_numpy_steps(name, lines, exact):
    data = b"\n".join(lines) + b"\n" + b"\n" * GUARD
    compiled = _run(native_steps.compile_program(PROGRAMS[name]), data, exact)
    numpy = _run(field_steps.compile_program(PROGRAMS[name]), data, exact)
    assert np.array_equal(compiled.ok, numpy.ok)
    sure = compiled.ok
    assert np.array_equal(compiled.p[sure], numpy.p[sure]) and np.array_equal(compiled.key[sure], numpy.key[sure])
    if exact:
        assert np.array_equal(compiled.ended, numpy.ended)


def test_every_built_in_program_is_compiled_whole():
    for name, program in BUILT_IN.items():
        steps = native_steps.compile_program(program)
        assert len(steps) == 1 and isinstance(steps[0], native_steps._Interpreted), name


def test_a_literal_with_a_newline_is_left_to_numpy():
    steps = native_steps.compile_program([{"token": 1}, {"literal": "a\nb"}, {"token": 1}])
    assert [isinstance(step, native_steps._Interpreted) for step in steps] == [True, False, True]


@pytest.mark.parametrize("name", [n for n in FORMATS.names if FORMATS.specs[n].fast])
@pytest.mark.parametrize("seed", range(2))
def test_counts_with_compiled_steps_equal_the_rule(name, seed, tmp_path, monkeypatch):
    from utils import format_logs

    format_logs.generate(name, str(tmp_path), files=1, lines=1200, seed=seed, noise=0.1, malformed=0.05, traces=0.05)
    data = bytearray((tmp_path / "node1.log").read_bytes())
    rng = random.Random(seed)
    for _ in range(len(data) // 40):  # bytes changed: fields cut short, runs joined, CR, NUL, non-UTF-8
        data[rng.randrange(len(data))] = rng.choice(b" \t\r\n\x00\x01:[]()<>\"\\/0123456789aAZ-._\xff")
    data = bytes(data).replace(b"\n", b"\r\n", 50)
    dialect = FORMATS.dialect(name)
    monkeypatch.setattr(native_steps, "_STEPS", None)
    numpy_dialect = FormatSet.standard().dialect(name)
    for cut in (len(data), len(data) - 1, len(data) - 7, len(data) // 2):  # a final newline or none, a line cut
        piece = data[:cut]
        assert dialect.count(piece) == dialect.count_reference(piece) == numpy_dialect.count(piece)


@SETTINGS
@given(keys=st.lists(st.integers(0, (1 << 64) - 2), max_size=50), repeats=st.lists(st.integers(0, 60), max_size=400),
       seed=st.integers(0, 1000))
def test_compiled_key_counts_equal_numpy(keys, repeats, seed):
    pool = np.array(keys or [0], dtype=np.uint64)
    drawn = pool[np.array(repeats, dtype=np.int64) % pool.size]
    sure = np.random.default_rng(seed).random(drawn.size) < 0.8
    assert _sorted(sure_key_counts(drawn, sure)) == _sorted(distinct_keys(drawn[sure]))


def _sorted(distinct_and_counts) -> list:
    return sorted(zip(*(part.tolist() for part in distinct_and_counts)))


def test_many_keys_are_counted_by_numpy():
    keys = np.arange(5 * KEY_SLOTS, dtype=np.uint64) * np.uint64(3)  # more than the hash table holds
    assert _sorted(sure_key_counts(np.repeat(keys, 2), np.ones(2 * keys.size, dtype=bool))) == [(k, 2) for k in keys.tolist()]


def test_the_interpreter_refuses_rows_and_cursors_it_cannot_read_safely():
    steps = native_steps.compile_program([{"token": 1}, {"literal": " "}])[0]
    v = np.frombuffer(b"abc def\n" * 4, dtype=np.uint8)
    lines = np.arange(0, 32, 8, dtype=np.int64)
    ok, keys = np.ones(4, dtype=bool), np.zeros(4, dtype=np.uint64)
    with pytest.raises(ValueError):  # a cursor before the buffer
        steps.run_steps(v, steps.ops, steps.tables, lines - 1, ok, keys)
    wrong = steps.ops.copy()
    wrong[0, 1] = steps.tables.size // 256  # a table that is not there
    with pytest.raises(ValueError):
        steps.run_steps(v, wrong, steps.tables, lines.copy(), ok, keys)
    steps.run_steps(v, steps.ops, steps.tables, lines, ok, keys)
    assert ok.all() and np.array_equal(lines, np.arange(0, 32, 8) + 4)
