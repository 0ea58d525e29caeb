"""The vectorised kernel agrees with the per-line definition (kernel.classify_line).

The kernel reports level spellings as written; the seed format's dialect
(`SEED`, kernel plus canonical levels) is what the programs report, and the
hand-written examples check that."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.kernel import BLANK, CONTINUATION, classify_line, count_lines, count_lines_reference
from loganalyser.counting.reader import standard_formats
from loganalyser.counting.result import PartialResult

from .helpers import log_buffers

SEED = standard_formats().dialect("seed")

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that matter to the rule, weighted towards the ones that shape a line.
_RULE_BYTES = st.sampled_from(list(b"[] \n\r") * 4 + list(b"AbZz\x03\x00\xff1"))


def result(counts=None, lines=0, malformed=0, blank=0, bytes_=0, continuation=0) -> PartialResult:
    return PartialResult(counts=counts or {}, lines=lines, malformed=malformed, blank=blank, bytes=bytes_,
                         continuation=continuation)


def line_starts(data: bytes) -> list[int]:
    """Offsets where a line starts (after every "\\n" except a final one)."""
    return [i + 1 for i, b in enumerate(data) if b == 10 and i + 1 < len(data)]


@SETTINGS
@given(log_buffers())
def test_vectorised_equals_definition(data):
    assert count_lines(data) == count_lines_reference(data)


@SETTINGS
@given(st.lists(_RULE_BYTES, max_size=400).map(bytes))
def test_vectorised_equals_definition_on_byte_soup(data):
    assert count_lines(data) == count_lines_reference(data)


@SETTINGS
@given(log_buffers(max_lines=30), st.integers(0, 40))
def test_vectorised_equals_definition_with_padding(data, pad):
    """Every line of the sample, once in the vectorised body and once in the tail."""
    padded = data + b"\n" * (1 + pad) + data
    assert count_lines(padded) == count_lines_reference(padded)


def test_definition_counts_lines_as_split_on_newline():
    data = b"a\n\nb\r\n\r\n"
    assert count_lines_reference(data) == result(lines=4, malformed=2, blank=2, bytes_=len(data))


@SETTINGS
@given(log_buffers(), st.data())
def test_parts_split_at_line_boundaries_sum_to_whole(data, draw):
    starts = line_starts(data)
    cuts = sorted(set(draw.draw(st.lists(st.sampled_from(starts), max_size=8)))) if starts else []
    bounds = [0, *cuts, len(data)]
    parts = [count_lines(data[a:b]) for a, b in zip(bounds, bounds[1:])]
    assert PartialResult.total(parts) == count_lines(data) == count_lines_reference(data)


def test_memoryview_and_bytearray_inputs():
    data = b"[t] [INFO] a\n" * 10 + b"[t] [warn] b\n"
    expected = result({"INFO": 10, "WARN": 1}, lines=11, bytes_=len(data))
    assert SEED.count(memoryview(data)) == expected
    assert SEED.count(bytearray(data)) == expected
    assert SEED.count(memoryview(b"xx" + data)[2:]) == expected
    assert count_lines(memoryview(b"xx" + data)[2:]).counts == {"INFO": 10, "warn": 1}  # the kernel: as written


def test_many_distinct_levels():
    """Enough distinct level keys that the hashing shortcut must fall back to sorting."""
    import itertools

    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    levels = ["".join(p) for p in itertools.islice(itertools.product(letters, repeat=3), 600)]
    levels += [w + "x" * 6 for w in levels[:50]] + [w * 4 for w in levels[:50]]  # 9 and 12 letters
    data = b"".join(f"[t] [{lvl}] m\n".encode() for lvl in levels * 2)
    got = SEED.count(data)
    assert got == SEED.count_reference(data) and count_lines(data) == count_lines_reference(data)
    assert got.counts == {lvl.upper(): 2 for lvl in levels}


# --- hand-written examples with exact answers ---------------------------------

PADDING = b"\n" * 40  # puts an example line in the vectorised body, not the tail

EXAMPLES = [
    # (buffer, counts, lines, malformed, blank)
    (b"[2026-01-01T00:00:00] [INFO] retry after [ERROR] upstream\n", {"INFO": 1}, 1, 0, 0),
    (b"[2026-01-01T00:00:00] [ERROR] disk full\r\n", {"ERROR": 1}, 1, 0, 0),
    (b"[t] [warn] x\n", {"WARN": 1}, 1, 0, 0),
    (b"[t] [Debug] x\n", {"DEBUG": 1}, 1, 0, 0),
    (b"[t] [ABCDEFGHIJKLMNOP] sixteen letters\n", {"ABCDEFGHIJKLMNOP": 1}, 1, 0, 0),
    (b"[t] [ABCDEFGHIJKLMNOPQ] seventeen letters\n", {}, 1, 1, 0),
    (b"[t] [ABCDEFGH] eight\n", {"ABCDEFGH": 1}, 1, 0, 0),
    (b"[t] [ABCDEFG\x03] eighth byte is a control char\n", {}, 1, 1, 0),
    (b"[t] [ABCDEFG\x00] eighth byte is NUL\n", {}, 1, 1, 0),
    (b"[t] [ABCDEFGH\x03] ninth byte is a control char\n", {}, 1, 1, 0),
    (b"[t] [\x03] control char level\n", {}, 1, 1, 0),
    (b"[t] [INFO1] digit\n", {}, 1, 1, 0),
    (b"[t] [\xc3\x89TAT] non-ascii letter\n", {}, 1, 1, 0),
    (b"[t] [] empty level\n", {}, 1, 1, 0),
    (b"[t][INFO] no space\n", {}, 1, 1, 0),
    (b" [t] [INFO] leading space\n", {}, 1, 0, 0),  # a continuation line
    (b"no brackets\n", {}, 1, 1, 0),
    (b"[user 42]\n", {}, 1, 1, 0),
    (b"[]\n", {}, 1, 1, 0),
    (b"[t] [INFO\n", {}, 1, 1, 0),
    (b"\n", {}, 1, 0, 1),
    (b"\r\n", {}, 1, 0, 1),
    (b"\n\n\r\n\n", {}, 4, 0, 4),
    (b"\r\r\n", {}, 1, 1, 0),  # two carriage returns are not blank
    (b"[t] [INFO] a\n\n[t] [INFO] b\n", {"INFO": 2}, 3, 0, 1),
]


@pytest.mark.parametrize("data, counts, lines, malformed, blank", EXAMPLES)
def test_examples(data, counts, lines, malformed, blank):
    continued = lines - malformed - blank - sum(counts.values())
    expected = result(counts, lines, malformed, blank, len(data), continued)
    assert SEED.count_reference(data) == expected
    assert SEED.count(data) == expected
    # The same line in the vectorised body (before padding) and repeated.
    body = data + PADDING
    assert SEED.count(body) == result(counts, lines + 40, malformed, blank + 40, len(body), continued)
    many = data * 50
    assert SEED.count(many) == result({k: 50 * v for k, v in counts.items()}, 50 * lines, 50 * malformed, 50 * blank,
                                      len(many), 50 * continued)


def test_no_trailing_newline():
    data = PADDING + b"[t] [INFO] a\n[t] [ERROR] last line has no newline"
    assert SEED.count(data) == result({"INFO": 1, "ERROR": 1}, lines=42, blank=40, bytes_=len(data))
    data = PADDING + b"[t] [INFO] a\r"  # a final lone "\r" stays part of the line
    assert SEED.count(data) == result({"INFO": 1}, lines=41, blank=40, bytes_=len(data))


def test_final_lone_cr_is_a_blank_line():
    data = b"[t] [INFO] a\n" * 5 + b"\r"
    assert SEED.count(data) == result({"INFO": 5}, lines=6, blank=1, bytes_=len(data))


def test_empty_buffer():
    assert count_lines(b"") == result()
    assert count_lines_reference(b"") == result()


def test_blank_lines_are_not_malformed():
    data = b"\n" * 100 + b"\r\n" * 100
    assert count_lines(data) == result(lines=200, blank=200, bytes_=len(data))


def test_very_long_lines():
    long_info = b"[" + b"9" * 100_000 + b"] [info] " + b"m" * 100_000 + b"\n"
    long_bad = b"x" * 200_000 + b"\n"
    data = long_info + long_bad + long_info
    assert SEED.count(data) == result({"INFO": 2}, lines=3, malformed=1, bytes_=len(data))


@pytest.mark.parametrize("line, level", [
    (b"[t] [INFO] x", "INFO"), (b"[t] [INFO] x\n", "INFO"), (b"", BLANK), (b"\r", BLANK), (b"\n", BLANK),
    (b"[t] [iNfO] x", "iNfO"), (b"[t] [INFO]", "INFO"), (b"[t] [INFO", None), (b"[t] [IN\nFO]", None),
    (b"\tat com.example.Main.run(Main.java:12)", CONTINUATION), (b"Caused by: java.io.IOException", CONTINUATION),
    (b"    ... 12 more", CONTINUATION), (b"... 12 more", CONTINUATION), (b"...12 more", None), (b"at", None),
])
def test_classify_line(line, level):
    assert classify_line(line) == level
