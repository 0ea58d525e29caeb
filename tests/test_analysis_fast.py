"""The whole-chunk statistics (analysis/chunks.py, seed_chunks.py) equal the per-line pass (LinePass), their definition.

Seeded random chunks of several formats, full of traps (CRLF and lone CRs, no
final newline, blank, continuation and malformed lines, level words, numbers,
quotes, paths, odd and impossible timestamps, bytes that are not UTF-8), under
random options: the counts and statistics of both passes must be equal. A
failure names its seed.
"""

from __future__ import annotations

import random

import pytest

from loganalyser.counting.analysis import Analysis
from loganalyser.counting.analysis.chunks import ChunkPass
from loganalyser.counting.analysis.lines import WHOLE_CHUNKS_FROM, FileAnalysis, LinePass
from loganalyser.counting.formats import FormatSet
from loganalyser.counting.result import PartialResult
from utils import format_logs, generate_logs

FORMATS = FormatSet.standard()
WORDS = ["disk", "read", "failed", "user", "ERROR", "[WARN]", "info:", "id=42", "k8s=v1,", "0x1f", "5x12",
         "deadbeef99", "/var/log/app.log", "C:\\tmp\\x.txt", "10.0.0.1:80", "3.5.1", "\"quoted 12\"", "'it''s'",
         "\"open", "close\"", "3f2a9c1e-4b5d-11ee-be56-0242ac120002", "é", "٣٤", "\x1f", "-", ":", "\t", "\r"]
LEVELS = ["INFO", "warn", "ERROR", "Debug", "fatal", "Notice", "TRACE", "E", "LEVELTOOLONGFORSEED"]


def _message(rng: random.Random) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.5 else str(rng.randint(0, 10 ** rng.randint(1, 7)))
             for _ in range(rng.randint(0, 5))]
    return rng.choice(["", " ", ": ", " - "]) + " ".join(words)


def _stamp(rng: random.Random) -> str:
    y, mo, d = rng.choice([2024, 2026]), rng.randint(1, 12), rng.randint(1, 28)
    h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    base = f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    odd = rng.random()
    if odd < 0.6:
        return f"{base}.{rng.randint(0, 999):03d}"
    return rng.choice([base, f"{base},{rng.randint(0, 999):03d}", f"{base}.{rng.randint(0, 10 ** 9 - 1)}",
                       f"{base}.{rng.randint(0, 99)}", base.replace("T", " ") + ".5", f" {base}.1",
                       f"{base}.12 ", "2026-02-30T00:00:00.000", "2026-13-01T00:00:00.000", "", "garbage",
                       f"{base}.1234567890", f"{base}Z", f"{base}.5+02:00", ".123", f"{base}.", "2026-1-5T1:02:03.4"])


def _record(fmt: str, rng: random.Random) -> str:
    level, message = rng.choice(LEVELS), _message(rng)
    stamp = _stamp(rng)
    if fmt == "seed":
        return f"[{stamp}] [{level}]{message}"
    if fmt == "log4j":
        stamp = stamp.replace("T", " ", 1) if rng.random() < 0.7 else stamp
        thread = rng.choice(["", "[main] ", "[pool-1] "])
        return f"{stamp} {thread}{level}{message}"
    if fmt == "syslog_rfc3164":
        pri = rng.choice(["", "<34>", "<13>", "<191>"])
        day = rng.choice([" 5", "15", "30", "31"])
        return f"{pri}{rng.choice(['Jan', 'Feb', 'Oct', 'Xyz'])} {day} 0{rng.randint(0, 9)}:1{rng.randint(0, 9)}:59 " \
               f"{rng.choice(['web-1', 'db', 'é'])} {rng.choice(['app:', 'sshd[12]:', 'kernel:'])}{message}"
    if fmt == "access":
        return f"{rng.choice(['1.2.3.4', 'host-a', 'é'])} - - [{rng.randint(1, 31):02d}/{rng.choice(['Oct', 'Feb'])}" \
               f"/2000:13:55:{rng.randint(10, 59)} {rng.choice(['-0700', '+0100', 'Z'])}] " \
               f"\"GET /x{message.replace(chr(34), '')} HTTP/1.0\" " \
               f"{rng.choice([200, 404, 503, 301])} {rng.randint(0, 9999)}"
    if fmt == "python_asctime":
        stamp = stamp.replace("T", " ", 1).replace(".", ",", 1)
        return f"{stamp} - {rng.choice(['app.db', 'root', 'x'])} - {level} - {message}"
    return '{"level": "%s", "msg": "%s", "time": "%s"}' % (level, message.replace('"', ""), stamp)


def _chunk(fmt: str, rng: random.Random, n: int) -> bytes:
    lines = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            lines.append(rng.choice(["", "\r", " ", "\r\r"]))
        elif kind < 0.1:
            lines.append(rng.choice(["\tat com.example.Main(Main.java:12)", "Caused by: x", "... 3 more", "  more"]))
        elif kind < 0.14:
            lines.append(rng.choice(["no level here 12", "[2026-01-01T00:00:00.000] no level", "[x] [", "]"]))
        else:
            lines.append(_record(fmt, rng))
        if rng.random() < 0.02:  # a line just like a seed record's template key, before such a record
            lines += [f"[{'0' * 23}] [INFO] disk 7", "[2026-01-01T00:00:00.000] [INFO] disk 5"]
        if rng.random() < 0.15 and lines:  # repeat a line: first examples must be the first occurrence
            lines.append(lines[rng.randrange(len(lines))])
    ends = [rng.choice(["\n", "\r\n", "\n", "\r\r\n"]) for _ in lines]
    data = "".join(line + end for line, end in zip(lines, ends)).encode("utf-8", "surrogateescape")
    if rng.random() < 0.2:
        data = data.replace("é".encode(), b"\xe9", 1)  # not UTF-8
    if rng.random() < 0.3:
        data = data.rstrip(b"\r\n")  # no final newline
    return data


def _analysis(rng: random.Random) -> Analysis:
    since = until = None
    if rng.random() < 0.2:
        since = 1_704_067_200_000 + rng.randint(0, 3 * 366) * 86_400_000  # 2024-01-01 + some days
        until = since + rng.choice([3600, 86_400 * 200, 86_400 * 800]) * 1000 if rng.random() < 0.7 else None
    return Analysis(
        bucket_s=rng.choice([None, 1, 60, 3600, 86_400]),
        top=rng.choice([0, 0, 3, 50]),
        max_templates=rng.choice([20_000, 20_000, 4]),
        masks=rng.choice([(), (), ("node-[a-z]+",), ("^x", "(?<=a)b"), ("[0-9]{2}",)]),
        by=rng.choice([None, "file", "host", "component"]),
        host_from_path=rng.choice([None, r"/(\w+)/[^/]*$"]),
        max_groups=rng.choice([10_000, 2]),
        levels=rng.choice([None, None, ("ERROR", "FATAL"), ("INFO",)]),
        grep=rng.choice([None, None, "fail", r"id=\d+", "é", "^ ?disk"]),
        since_ms=since, until_ms=until, year=rng.choice([None, 2026]))


def _both_passes(fmt: str, analysis: Analysis, data: bytes, year, offset: int):
    dialect = FORMATS.dialect(fmt)
    results = []
    for fast in (False, True):
        lines = LinePass(dialect, analysis)
        runner = ChunkPass.build(lines) if fast else lines
        assert runner is not None, fmt
        stats, counts = lines.new_stats(), {}
        runner.run(data, "/logs/web-7/app.log", offset, year, stats, counts)
        results.append((counts, stats.to_dict()))
    return results


@pytest.mark.parametrize("fmt", ["seed", "log4j", "syslog_rfc3164", "access", "python_asctime"])
@pytest.mark.parametrize("seed", range(40))
def test_whole_chunks_give_what_lines_give(fmt, seed):
    rng = random.Random(f"{fmt}-{seed}")
    analysis = _analysis(rng)
    if not analysis.per_line:
        analysis = Analysis(bucket_s=60, top=5, by="host")
    data = _chunk(fmt, rng, rng.choice([0, 1, 2, 30, 300]))
    by_line, by_chunk = _both_passes(fmt, analysis, data, rng.choice([None, 2025]), rng.choice([0, 17]))
    assert by_chunk == by_line, f"seed {seed}: {analysis}"


def test_a_chunk_of_many_records_of_few_templates_and_seconds():
    rng = random.Random(7)
    lines = [f"[2026-01-01T00:{rng.randint(0, 1):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}] "
             f"[{rng.choice(LEVELS[:4])}] {rng.choice(['Disk read failed', 'User login'])} id={rng.randint(0, 99999)}"
             for _ in range(5000)]
    data = "\n".join(lines).encode()
    analysis = Analysis(bucket_s=60, top=10, by="file")
    by_line, by_chunk = _both_passes("seed", analysis, data, None, 0)
    assert by_chunk == by_line


def test_many_level_spellings_and_unsorted_seconds():
    rng = random.Random(5)
    spellings = ["".join(rng.choice("abcdefgXYZ") for _ in range(rng.randint(1, 9))) for _ in range(40)]
    lines = [f"[2026-01-{rng.randint(1, 3):02d}T00:00:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}] "
             f"[{rng.choice(spellings)}] m {rng.randint(0, 9)}" for _ in range(3000)]
    by_line, by_chunk = _both_passes("seed", Analysis(bucket_s=60, top=3), "\n".join(lines).encode(), None, 0)
    assert by_chunk == by_line and len(by_line[0]) > 16


@pytest.mark.parametrize("fmt", ["log4j", "seed"])
@pytest.mark.parametrize("seed", range(20))
def test_times_read_by_second_and_whole_in_one_chunk(fmt, seed):
    """Texts of a few seconds, some read by their second (the layout's fraction, or RFC 3339's
    where the layout does not match at all) and some whole (the layout matches but not all)."""
    rng = random.Random(seed)
    stamps = [f"2026-01-01{rng.choice([' ', 'T'])}00:00:0{rng.randint(0, 2)}{rng.choice([',', '.', ''])}"
              f"{rng.randint(0, 999):03d}" for _ in range(rng.randint(1, 40))]
    lines = [f"[{stamp}] [{rng.choice(LEVELS[:3])}] x" if fmt == "seed" else f"{stamp} {rng.choice(LEVELS[:3])} x"
             for stamp in stamps]
    analysis = Analysis(bucket_s=1, since_ms=rng.choice([None, 1_767_225_601_500]))
    by_line, by_chunk = _both_passes(fmt, analysis, "\n".join(lines).encode(), None, 0)
    assert by_chunk == by_line


@pytest.mark.parametrize("fmt", sorted(name for name, spec in FORMATS.specs.items()
                                       if spec.kind == "regex" and spec.record is None))
def test_generated_logs_of_every_regex_format(fmt, tmp_path):
    """Lines as the format-aware generator writes them (own level spellings, traces, noise, CRLF)."""
    shapes = dict(files=1, lines=600, seed=11, noise=0.1, malformed=0.05, blank=0.03, crlf=True, no_final_newline=True)
    if fmt == "seed":
        totals = generate_logs.generate(str(tmp_path), **shapes)
    else:
        totals = format_logs.generate(fmt, str(tmp_path), traces=0.05, **shapes)
    data = (tmp_path / "node1.log").read_bytes()
    analysis = Analysis(bucket_s=60, top=20, by=random.Random(fmt).choice(["host", "component", "file"]))
    by_line, by_chunk = _both_passes(fmt, analysis, data, 2025, 0)
    assert by_chunk == by_line
    assert sum(by_line[0].values()) == sum(totals["counts"].values())


def test_formats_whose_lines_the_chunk_pass_cannot_stand_for_keep_the_line_pass():
    analysis = Analysis(bucket_s=60)
    assert ChunkPass.build(LinePass(FORMATS.dialect("jsonl"), analysis)) is None
    assert ChunkPass.build(LinePass(FORMATS.dialect("logfmt"), analysis)) is None  # fields from its pairs
    for name in ("seed", "log4j", "access", "syslog_rfc5424", "hdfs"):
        assert ChunkPass.build(LinePass(FORMATS.dialect(name), analysis)) is not None, name


def test_file_analysis_uses_the_chunk_pass_and_agrees_with_lines():
    rng = random.Random(3)
    data = _chunk("seed", rng, 600)
    assert len(data) >= WHOLE_CHUNKS_FROM
    analysis = Analysis(bucket_s=60, top=5, by="file")
    part = PartialResult()
    files = FileAnalysis(FORMATS.dialect("seed"), analysis, "/logs/a.log")
    assert files.chunks is not None
    files.apply(part, data, 0)
    lines = LinePass(FORMATS.dialect("seed"), analysis)
    stats, counts = lines.new_stats(), {}
    lines.run(data, "/logs/a.log", 0, files.year, stats, counts)
    assert (part.counts, part.stats.to_dict()) == (counts, stats.to_dict())


# -- the seed format's records read from the kernel's lines (analysis/fixed.py) ------------

def _seed_trap_stamp(rng: random.Random) -> str:
    """Timestamps of exactly the usual width (23 characters), many of them wrong in one place."""
    base = f"2026-0{rng.randint(1, 2)}-{rng.choice(['01', '28', '29', '30', '31'])}T0{rng.randint(0, 1)}:0" \
           f"{rng.randint(0, 2)}:{rng.choice(['00', '07', '59', '60', '61', '99'])}.{rng.randint(0, 999):03d}"
    if rng.random() < 0.3:
        at = rng.randrange(len(base))
        base = base[:at] + rng.choice("0123456789 -T:.,xZ/") + base[at + 1:]
    elif rng.random() < 0.1:  # the layout's fields shifted: the minute's 16 characters end inside the seconds
        base = rng.choice(["2026-1-1T1:02:03", "2026-01-1T1:2:03", "2026-1-01T01:02", "2026-01-01T1:2:3"]) + base[16:]
    return base


def _seed_trap_chunk(rng: random.Random, n: int) -> bytes:
    lines = []
    for _ in range(n):
        message = _message(rng) + rng.choice(["", "", " 11", " 12"])  # a digit twice, or two digits
        if rng.random() < 0.1:  # longer than a row
            message += " " + "y" * rng.randint(30, 90)
        if rng.random() < 0.05:  # a NUL, as the bytes after a key are made
            message += "\0" * rng.randint(1, 3)
        level = rng.choice(LEVELS) if rng.random() < 0.9 else rng.choice(["IN1O", "E-R", "WARN_", "12"])  # no level
        lines.append(f"[{_seed_trap_stamp(rng)}] [{level}]{message}")
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "\tat x", "[x] [INFO] odd stamp", "no record"]))
    if rng.random() < 0.5:  # a few minutes, in order, as logs mostly are
        lines.sort(key=lambda line: line[:17])
    ends = [rng.choice(["\n", "\n", "\r\n", "\r\r\n"]) for _ in lines]
    return "".join(line + end for line, end in zip(lines, ends)).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("seed", range(40))
def test_seed_records_read_from_the_kernel_lines_give_what_lines_give(seed):
    """Traps of the numpy reading: timestamps of the usual width with a wrong character,
    seconds 60 (read as 59) and 61+, impossible dates, runs of a minute, CRs, long lines,
    digits in messages, greps that do and do not tell digits apart."""
    rng = random.Random(f"seed-kernel-{seed}")
    analysis = _analysis(rng)
    analysis = Analysis(**{**analysis.__dict__, "grep": rng.choice([None, "fail", r"id=4\d", "[13]", r"\d+ more",
                                                                     "y$", "^ ", r"(?P<d>\d)(?P=d)"]),
                           "masks": rng.choice([(), (), (r"(?P<d>\d)(?P=d)",), ("[0-9]{2}",)])})
    if not analysis.per_line:
        analysis = Analysis(bucket_s=60, top=5)
    data = _seed_trap_chunk(rng, rng.choice([30, 300, 1000]))
    by_line, by_chunk = _both_passes("seed", analysis, data, None, rng.choice([0, 17]))
    assert by_chunk == by_line, f"seed {seed}: {analysis}"


@pytest.mark.parametrize("seed", range(5))
def test_seed_record_keys_sharing_a_hash_bucket_are_told_apart(seed, monkeypatch):
    """With 1 or 2 buckets every key shares one: the check must number each key apart."""
    from loganalyser.counting.analysis import fixed

    monkeypatch.setattr(fixed, "_BINS", seed % 2 + 1)
    _fresh_groups(monkeypatch)
    rng = random.Random(f"buckets-{seed}")
    data = _seed_trap_chunk(rng, 500)
    analysis = Analysis(bucket_s=3600, top=50, grep=rng.choice([None, "a"]))
    by_line, by_chunk = _both_passes("seed", analysis, data, None, 0)
    assert by_chunk == by_line


def test_file_analysis_counts_seed_chunks_once_and_agrees_with_lines():
    """FileAnalysis.count (the reader's call) gives the dialect's line classes and LinePass's statistics."""
    rng = random.Random(9)
    data = _seed_trap_chunk(rng, 800) + _chunk("seed", rng, 300)
    assert len(data) >= WHOLE_CHUNKS_FROM
    dialect = FORMATS.dialect("seed")
    analysis = Analysis(bucket_s=60, top=5, by="file", levels=("ERROR", "INFO", "WARN"))
    files = FileAnalysis(dialect, analysis, "/logs/a.log")
    buf = bytearray(b"xx" + data + b"yy")
    part = files.count(dialect, buf, 2 + len(data), 2, 100)
    expected = dialect.count(data)
    assert (part.lines, part.blank, part.continuation, part.malformed, part.bytes) == \
        (expected.lines, expected.blank, expected.continuation, expected.malformed, expected.bytes)
    lines = LinePass(dialect, analysis)
    stats, counts = lines.new_stats(), {}
    lines.run(data, "/logs/a.log", 100, files.year, stats, counts)
    assert (part.counts, part.stats.to_dict()) == (counts, stats.to_dict())


@pytest.mark.parametrize("bins", [1, 16])
def test_seed_record_keys_of_one_message_with_and_without_trailing_nuls_differ(bins, monkeypatch):
    """A key's bytes after its end are made 0: its length must tell "a" from "a\\0" (also in one bucket)."""
    from loganalyser.counting.analysis import fixed

    monkeypatch.setattr(fixed, "_BINS", bins)
    _fresh_groups(monkeypatch)
    lines = [f"[2026-01-01T00:00:{i % 60:02d}.000] [INFO] disk 7{chr(0) * (i % 3)}" for i in range(600)]
    by_line, by_chunk = _both_passes("seed", Analysis(top=5), "\n".join(lines).encode(), None, 0)
    assert by_chunk == by_line and len(by_line[1]["templates"]["INFO"]) == 3


def _fresh_groups(monkeypatch) -> None:
    """No key groups left by earlier tests (they last across chunks and files)."""
    import weakref

    from loganalyser.counting.analysis import seed_chunks

    monkeypatch.setattr(seed_chunks, "_LASTING", weakref.WeakKeyDictionary())


def _few_buckets(bins: int, monkeypatch) -> None:
    """Key buckets of `bins` bits (0: one bucket, every key in it), from no lasting groups."""
    import numpy as np

    from loganalyser.counting.analysis import fixed

    if bins:
        monkeypatch.setattr(fixed, "_BINS", bins)
    else:
        monkeypatch.setattr(fixed, "_hash", lambda words, n, size, seen: np.zeros(len(size), dtype=np.uint64))
    _fresh_groups(monkeypatch)


def _stamped(messages, ends=None) -> bytes:
    ends = ends or ["\n"] * len(messages)
    return "".join(f"[2026-01-01T00:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i % 1000:03d}] [INFO]{m}{e}"
                   for i, (m, e) in enumerate(zip(messages, ends))).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("bins", [0, 1, 16])
def test_seed_keys_tell_0x_from_other_digits_before_an_x(bins, monkeypatch):
    """A group takes any digit for a digit, but right before "x"/"X" a 0 (a hex number's 0x) only for a 0."""
    _few_buckets(bins, monkeypatch)
    rng = random.Random(bins)
    words = [" at 0x1f", " at 5x1f", " at 0X2a", " at 9X2a", " at 10x1f", " at 00x1f", " id=10", " id=97",
             " 0x", " 1x", " x0", " 0y1", " 7y1", " 0xg", " 3xg"]
    messages = [rng.choice(words) + rng.choice(["", " 0", " 5", " 0x0"]) for _ in range(3000)]
    for analysis in (Analysis(top=50), Analysis(top=50, grep="x"), Analysis(top=50, grep="0x")):
        by_line, by_chunk = _both_passes("seed", analysis, _stamped(messages), None, 0)
        assert by_chunk == by_line, analysis
        assert any("<HEX>" in t for t in by_line[1]["templates"]["INFO"]), "the trap holds no hex number"


@pytest.mark.parametrize("bins", [0, 1, 16])
def test_seed_keys_of_a_chunk_with_crs_compare_their_lengths(bins, monkeypatch):
    """With a CR in the chunk, the byte after a key may be a CR inside a longer line: lengths decide."""
    _few_buckets(bins, monkeypatch)
    rng = random.Random(5)
    messages, ends = [], []
    for _ in range(2000):
        messages.append(rng.choice([" a", " a\rb", " a\r", " a\r\r", " a\rbc 12", " a 12", " 7\r8"]))
        ends.append(rng.choice(["\n", "\r\n"]))
    by_line, by_chunk = _both_passes("seed", Analysis(top=50, bucket_s=60), _stamped(messages, ends), None, 0)
    assert by_chunk == by_line


def test_seed_key_after_which_a_cr_ends_the_line_is_no_longer_keys_with_a_cr_there(monkeypatch):
    """One bucket whose group is made from the last record, "a" ending "\\r\\n": "a\\rb" must not pass."""
    _few_buckets(0, monkeypatch)
    data = _stamped([" a\rb", " a\rbc", " a"] * 50 + [" a"] * 20, ["\n", "\n", "\r\n"] * 50 + ["\r\n"] * 20)
    by_line, by_chunk = _both_passes("seed", Analysis(top=50), data, None, 0)
    assert by_chunk == by_line and len(by_line[1]["templates"]["INFO"]) == 3


def test_seed_keys_at_the_longest_a_row_holds(monkeypatch):
    """Keys of 62, 63 and 64 bytes (the row holds the key and its line's end, at most 64 bytes)."""
    _fresh_groups(monkeypatch)
    messages = [" " + "m" * (n - 8) + rng_digit for n in (60, 61, 62, 63, 64, 65) for rng_digit in ("1", "0", "")]
    by_line, by_chunk = _both_passes("seed", Analysis(top=50, grep="m"), _stamped(messages * 300), None, 0)
    assert by_chunk == by_line


@pytest.mark.parametrize("seed", range(6))
def test_seed_key_groups_last_across_chunks_and_files(seed, monkeypatch):
    """Groups made by earlier chunks (of this file and others) decide later ones: each chunk must still
    give what lines give, also when the groups outgrow their cap and start again, and with few buckets."""
    from loganalyser.counting.analysis import fixed

    _few_buckets([0, 2, 16][seed % 3], monkeypatch)
    monkeypatch.setattr(fixed, "MAX_GROUPS", [3, 50, 100_000][seed // 2])
    rng = random.Random(f"lasting-{seed}")
    analysis = Analysis(bucket_s=90, top=5, grep=rng.choice([None, "a", "[0-9]"]), masks=rng.choice([(), ("[0-9]{2}",)]))
    dialect = FORMATS.dialect("seed")
    for k in range(8):
        data = _seed_trap_chunk(rng, 400) + _chunk("seed", rng, 100)
        path = f"/logs/{k % 3}.log"
        files = FileAnalysis(dialect, analysis, path)
        buf = bytearray(data)
        part = files.count(dialect, buf, len(data), 0, 0)
        lines = LinePass(dialect, analysis)
        stats, counts = lines.new_stats(), {}
        lines.run(data, path, 0, files.year, stats, counts)
        assert (part.counts, part.stats.to_dict()) == (counts, stats.to_dict()), f"seed {seed}, chunk {k}"
        expected = dialect.count(data)  # the line classes, also where the kernel left the levels to the statistics
        assert (part.lines, part.blank, part.continuation, part.malformed) == \
            (expected.lines, expected.blank, expected.continuation, expected.malformed), f"seed {seed}, chunk {k}"


def test_seed_times_of_second_60_and_the_range_of_a_minute(monkeypatch):
    """Second 60 reads as 59: a minute's last time may be a 59.9 after a 60.1, and a 60 may be the first."""
    _fresh_groups(monkeypatch)
    lines = []
    for minute, seconds in enumerate([["60.100", "59.900", "00.000"], ["60.500"], ["59.999", "60.000", "61.000"],
                                      ["61.000"], ["60.999", "60.001"]]):
        lines += [f"[2026-03-01T10:{minute:02d}:{s}] [WARN] x" for s in seconds]
    data = ("\n".join(lines * 2) + "\n").encode()
    for analysis in (Analysis(bucket_s=60), Analysis(bucket_s=1, top=3), Analysis(by="file", since_ms=0)):
        by_line, by_chunk = _both_passes("seed", analysis, data, None, 0)
        assert by_chunk == by_line
