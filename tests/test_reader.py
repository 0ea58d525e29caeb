"""The range reader: ranges that tile a file count every line once, in bounded memory."""

from __future__ import annotations

import io
import os
import random
import subprocess
import tempfile
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loganalyser.counting.reader import CHUNK_SIZE, SMALL_FILE, analyse_pieces, analyse_range
from loganalyser.counting.result import PartialResult
from loganalyser.errors import InputError
from loganalyser.work.inputs import find_log_files
from loganalyser.work.tasks import Piece, partition_by_bytes, plan_tasks, split_file

from .helpers import PYTHON, log_buffers, seed_reference

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHUNK_SIZES = [16, 64, 1000, 1 << 20]


@pytest.fixture(scope="module")
def scratch():
    """One file that hypothesis examples overwrite (a function fixture would be shared anyway)."""
    with tempfile.TemporaryDirectory() as folder:
        yield os.path.join(folder, "sample.log")


def write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def tile(path, cuts, chunk_size) -> PartialResult:
    """The sum of analyse_range over the ranges between sorted cut points."""
    size = os.path.getsize(path)
    bounds = [0, *sorted(cuts), size]
    return PartialResult.total(analyse_range(path, a, b - a, chunk_size=chunk_size) for a, b in zip(bounds, bounds[1:]))


@SETTINGS
@given(log_buffers(), st.data(), st.sampled_from(CHUNK_SIZES))
def test_tiling_ranges_sum_to_whole_file(scratch, data, draw, chunk_size):
    path = write(scratch, data)
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=10))
    assert tile(path, cuts, chunk_size) == seed_reference(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_buffers(max_lines=12), st.sampled_from(CHUNK_SIZES))
def test_every_single_byte_range(scratch, data, chunk_size):
    """Cutting at every byte: each line is owned by the range of its first byte only."""
    path = write(scratch, data)
    assert tile(path, range(1, len(data)), chunk_size) == seed_reference(data)


@pytest.mark.parametrize("chunk_size", [16, 64, 1000, None])
def test_whole_file_in_one_range(tmp_path, chunk_size):
    data = b"[t] [INFO] a\n\n\r\n[t] [warn] b\r\nbad line\n" * 300 + b"[t] [ERROR] no final newline"
    path = write(tmp_path / "a.log", data)
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    got = analyse_range(path, **kwargs)
    assert got == seed_reference(data)
    assert got.counts == {"INFO": 300, "WARN": 300, "ERROR": 1} and got.blank == 600 and got.malformed == 300


@pytest.mark.parametrize("chunk_size", [16, 64])
@pytest.mark.parametrize("line", [
    b"[2026-01-01T00:00:00] [WARN] " + b"m" * 500,  # level early, long message
    b"[" + b"9" * 500 + b"] [error] late level",  # level field starts after several chunks
    b"[" + b"9" * 63 + b"] [ABCDEFGHIJKLMNOP] level across a chunk border",
    b"[" + b"9" * 60 + b"] [ABCDEFGHIJKLMNOPQ] seventeen letters",
    b"[" + b"9" * 500 + b"] [INFO",  # no closing bracket
    b"[" + b"9" * 500 + b"]",  # nothing after the first bracket
    b"x" * 500,  # no bracket at all
])
def test_line_longer_than_chunk(tmp_path, chunk_size, line):
    data = b"[t] [INFO] short\n" + line + b"\r\n" + b"[t] [DEBUG] after\n" + line
    path = write(tmp_path / "long.log", data)
    assert analyse_range(path, chunk_size=chunk_size) == seed_reference(data)
    assert tile(path, [17, 18, 40, len(data) - 5], chunk_size) == seed_reference(data)


@pytest.mark.parametrize("chunk_size", [16, 64, 1 << 20])
def test_range_starting_mid_line(tmp_path, chunk_size):
    lines = [b"[t] [INFO] first line\n", b"[t] [WARN] second line\n", b"[t] [ERROR] third line\n"]
    path = write(tmp_path / "a.log", b"".join(lines))
    second = len(lines[0])
    # Starting inside the first line: it belongs to the range before; the range owns lines 2 and 3.
    got = analyse_range(path, 5, 100, chunk_size=chunk_size)
    assert got.counts == {"WARN": 1, "ERROR": 1} and got.lines == 2
    assert got.bytes == len(lines[1]) + len(lines[2])
    # Starting exactly on a line start owns that line; ending one byte into line 3 owns line 3 too.
    got = analyse_range(path, second, len(lines[1]) + 1, chunk_size=chunk_size)
    assert got.counts == {"WARN": 1, "ERROR": 1}
    # Ending exactly at a line start does not own that line.
    got = analyse_range(path, second, len(lines[1]), chunk_size=chunk_size)
    assert got.counts == {"WARN": 1} and got.lines == 1


@pytest.mark.parametrize("chunk_size", [16, 64, 1 << 20])
def test_range_inside_one_line_owns_nothing(tmp_path, chunk_size):
    data = b"[t] [INFO] x\n[t] [WARN] " + b"y" * 200 + b"\n[t] [ERROR] z\n"
    path = write(tmp_path / "a.log", data)
    for offset, length in [(14, 10), (20, 150), (30, 180), (1, 5), (14, 0), (0, 0)]:
        assert analyse_range(path, offset, length, chunk_size=chunk_size) == PartialResult(), (offset, length)


class _CountedReads:
    """LocalFiles whose files count the bytes read from them."""

    def __init__(self):
        self.read = 0

    def open(self, path):
        files = self

        class Counted(io.FileIO):
            def read(self, size=-1):
                data = super().read(size)
                files.read += len(data)
                return data

            def readinto(self, b):
                got = super().readinto(b)
                files.read += got or 0
                return got

        return Counted(path, "rb")

    def mtime(self, path):
        return None


@pytest.mark.parametrize("chunk_size", [64, 1 << 20])
def test_a_range_inside_a_long_line_reads_only_its_own_bytes(tmp_path, chunk_size):
    """Reading on to the line's end would make every range of a line of N ranges cost the
    rest of the line (N ranges of a 1 GB line once read 16 GB)."""
    data = b"[t] [INFO] " + b"x" * 100_000 + b"\n[t] [WARN] y\n"
    path = write(tmp_path / "a.log", data)
    for offset, length in [(1000, 500), (50_000, 4000), (99_000, 1012)]:
        files = _CountedReads()
        assert analyse_range(path, offset, length, chunk_size=chunk_size, files=files) == PartialResult()
        assert files.read <= length + 1, (offset, length, files.read)
    files = _CountedReads()  # a range that reaches the next line reads to that line's end
    got = analyse_range(path, 99_000, 1013, chunk_size=chunk_size, files=files)
    assert got.counts == {"WARN": 1} and files.read <= len(data) - 99_000 + chunk_size


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_one_byte_chunks(tmp_path, chunk_size):
    """A lone-"\\r" blank line read one byte at a time is still blank (it once streamed as malformed)."""
    data = b"[t] [INFO] x\n\r\n\n\r\n[t] [warn] y\r\nbad\n\r"
    path = write(tmp_path / "a.log", data)
    expected = seed_reference(data)
    assert expected.blank == 4 and expected.malformed == 1
    assert analyse_range(path, chunk_size=chunk_size) == expected
    assert tile(path, range(1, len(data)), chunk_size) == expected


def test_empty_range_at_line_start_owns_nothing(tmp_path):
    path = write(tmp_path / "a.log", b"[t] [INFO] x\n[t] [WARN] y\n")
    assert analyse_range(path, 13, 0) == PartialResult()
    assert analyse_range(path, 13, 1).counts == {"WARN": 1}


def test_range_past_end_and_empty_file(tmp_path):
    path = write(tmp_path / "a.log", b"[t] [INFO] x\n")
    assert analyse_range(path, 13, 100) == PartialResult()
    assert analyse_range(path, 500, 10) == PartialResult()
    empty = write(tmp_path / "empty.log", b"")
    assert analyse_range(empty) == PartialResult()


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        analyse_range(str(tmp_path / "gone.log"))


def test_analyse_pieces_counts_each_file_once(tmp_path):
    a = write(tmp_path / "a.log", b"[t] [INFO] a\n" * 10)
    b = write(tmp_path / "b.log", b"[t] [WARN] b\n" * 3)
    empty = write(tmp_path / "empty.log", b"")
    pieces = [Piece(a, 0, 40, "id", False), Piece(a, 40, 50, "id", False), Piece(a, 90, 40, "id", False),
              Piece(b, 0, 39, "id"), Piece(empty, 0, 0, "id")]
    got = analyse_pieces(pieces)
    assert got.files == 3
    assert got.counts == {"INFO": 10, "WARN": 3} and got.lines == 13 and got.bytes == 130 + 39
    # Pieces of a file without its first piece count no file.
    assert analyse_pieces(pieces[1:3]).files == 0
    assert analyse_pieces(pieces[:1]).files == 1
    assert analyse_pieces([]) == PartialResult()


def expected_for(contents) -> PartialResult:
    """The definition applied file by file (a file's last line ends with the file)."""
    total = PartialResult.total(seed_reference(data) for data in contents)
    total.files = len(contents)
    total.formats = {"seed": len(contents)}
    return total


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(log_buffers(max_lines=15), min_size=1, max_size=8), st.integers(1, 5), st.integers(1, 300))
def test_analyse_pieces_of_planned_work_equals_definition(contents, parts, chunk_bytes):
    """Files cut by plan_tasks and by partition_by_bytes, pieces analysed, results summed."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [write(os.path.join(folder, f"f{i}.log"), data) for i, data in enumerate(contents)]
        files = find_log_files([folder])
        assert [f.path for f in files] == paths
        expected = expected_for(contents)
        shares = partition_by_bytes(files, parts)
        assert PartialResult.total(analyse_pieces(share) for share in shares) == expected
        tasks = plan_tasks(files, chunk_bytes=chunk_bytes, batch_bytes=chunk_bytes, batch_files=3)
        assert PartialResult.total(analyse_pieces(task.pieces) for task in tasks) == expected


def test_analyse_pieces_batches_of_small_files_and_big_pieces(tmp_path):
    """Enough whole small files to fill several batches, next to a file cut in pieces."""
    rng = random.Random(3)
    lines = [b"[t] [INFO] a", b"[t] [warn] retry after [ERROR] x", b"bad", b"", b"\r", b"[t] [ERROR] " + b"e" * 100]
    contents = []
    for i in range(12):  # about 0.9 MB each, up to SMALL_FILE
        body = b"\n".join(rng.choice(lines) for _ in range(30_000))[: SMALL_FILE - i]
        contents.append(body + (b"\r" if i % 3 == 0 else b"\n" if i % 3 == 1 else b""))
    contents += [b"", b"\r", b"[t] [INFO] no newline", b"\n".join(rng.choice(lines) for _ in range(90_000)) + b"\n"]
    for i, data in enumerate(contents):
        write(tmp_path / f"f{i:02d}.log", data)
    files = find_log_files([str(tmp_path)])
    assert max(f.size for f in files) > SMALL_FILE and sum(f.size for f in files) > 2 * CHUNK_SIZE
    pieces = [p for f in files for p in split_file(f, SMALL_FILE)]
    whole = sum(p.length for p in pieces if p.whole)
    assert whole > 2 * CHUNK_SIZE and sum(not p.whole for p in pieces) >= 2  # several batches, and pieces
    assert analyse_pieces(pieces) == expected_for([open(f.path, "rb").read() for f in files])


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, subprocess, sys
    child = ("from loganalyser.counting.reader import analyse_range; import sys; "
             "r = analyse_range(sys.argv[1]); print(r.lines, r.bytes)")
    out = subprocess.run([sys.executable, "-c", child, sys.argv[1]], check=True, capture_output=True, text=True).stdout
    print(out.strip(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
""")


@pytest.mark.parametrize("shape", ["many lines", "one line"])
def test_memory_is_bounded_on_a_large_file(tmp_path, shape):
    """analyse_range with the default chunk size: peak RSS well under the 200 MB file."""
    if shape == "many lines":
        block = (b"[2026-01-01T00:00:00.000] [INFO] Request processed\n"
                 b"[2026-01-01T00:00:00.001] [ERROR] retry after [WARN] upstream\r\n"
                 b"malformed line\n\n") * 4096
        head, lines_per_block = b"", 4 * 4096
    else:  # one 200 MB line: streamed past, never held whole
        block, head, lines_per_block = b"m" * (1 << 20), b"[t] [INFO] ", 0
    path = tmp_path / "big.log"
    blocks = -(-(200 << 20) // len(block))
    with open(path, "wb") as f:
        f.write(head)
        for _ in range(blocks):
            f.write(block)
    size = path.stat().st_size
    # The measuring process is a fresh child, so RUSAGE_CHILDREN sees only the analyser.
    proc = subprocess.run([PYTHON, "-c", MEMORY_SCRIPT, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines, covered, maxrss_kib = map(int, proc.stdout.split())
    assert covered == size and lines == (lines_per_block * blocks or 1)
    assert maxrss_kib * 1024 < 300 << 20, f"peak RSS {maxrss_kib / 1024:.0f} MiB for a {size >> 20} MiB file"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 64, 1 << 20])
def test_a_byte_order_mark_is_no_part_of_the_first_line(tmp_path, chunk_size):
    """Windows tools start files with a UTF-8 BOM: it is counted in bytes, never as part of a line."""
    data = b"\xef\xbb\xbf[t] [INFO] x\r\n[t] [WARN] y\r\n\xef\xbb\xbf[t] [ERROR] not at the start: malformed\r\n"
    path = write(tmp_path / "bom.log", data)
    whole = analyse_range(path, chunk_size=chunk_size)
    assert whole.counts == {"INFO": 1, "WARN": 1} and whole.malformed == 1 and whole.bytes == len(data)
    assert whole == seed_reference(data)
    assert tile(path, range(1, len(data)), chunk_size) == whole
    batch = analyse_pieces([Piece(path, 0, len(data), "id", whole=True, file_size=len(data))] * 2)
    assert batch.counts == {"INFO": 2, "WARN": 2} and batch.bytes == 2 * len(data)


@pytest.mark.parametrize("chunk_size", [1, 16])
def test_a_range_ending_inside_the_first_bytes_read(tmp_path, chunk_size):
    """The first read of a file (3 bytes, for a byte-order mark) may pass the range's end."""
    path = write(tmp_path / "a.log", b"\n\n")
    assert analyse_range(path, 0, 1, chunk_size=chunk_size).lines == 1
    assert analyse_range(path, 1, 1, chunk_size=chunk_size).lines == 1
