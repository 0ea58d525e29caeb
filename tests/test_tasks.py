"""The work model: plans and static partitions cover every byte of every file exactly once."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from loganalyser.work import tasks as tasks_module
from loganalyser.work.inputs import LogFile
from loganalyser.work.tasks import (
    BATCH_FILES,
    CHUNK_BYTES,
    MIN_TASK_BYTES,
    TASKS_PER_WORKER,
    Piece,
    make_task,
    partition_by_bytes,
    plan_tasks,
    split_file,
)

SETTINGS = settings(max_examples=200, deadline=None)


def log_files(sizes) -> list[LogFile]:
    return [LogFile(f"logs/f{i:04d}.log", size, 1_700_000_000_000_000_000 + i, 1000 + i, 42) for i, size in enumerate(sizes)]


def assert_tiles(files: list[LogFile], pieces: list[Piece]) -> None:
    """Each file's pieces, in offset order, cover [0, size) once; a zero-size file has one empty piece."""
    by_path = defaultdict(list)
    for piece in pieces:
        by_path[piece.path].append(piece)
    assert set(by_path) == {f.path for f in files}
    for f in files:
        own = sorted(by_path[f.path], key=lambda p: p.offset)
        assert all(p.identity == f.identity for p in own)
        assert all(p.whole == (p.offset == 0 and p.length == f.size) for p in own), own
        if f.size == 0:
            assert [(p.offset, p.length) for p in own] == [(0, 0)]
            continue
        assert all(p.length > 0 for p in own), own
        assert own[0].offset == 0
        assert all(a.offset + a.length == b.offset for a, b in zip(own, own[1:])), own
        assert own[-1].offset + own[-1].length == f.size


# --- plan_tasks ----------------------------------------------------------------

_SIZES = st.lists(st.one_of(st.just(0), st.integers(0, 60), st.integers(0, 1000)), max_size=40)


@SETTINGS
@given(_SIZES, st.integers(1, 200), st.integers(1, 200), st.integers(1, 6), st.none() | st.integers(1, 8), st.integers(1, 100))
def test_plan_covers_every_byte_once(sizes, chunk_bytes, batch_bytes, batch_files, workers, min_task_bytes):
    files = log_files(sizes)
    with mock.patch.object(tasks_module, "MIN_TASK_BYTES", min_task_bytes):  # let tiny inputs spread too
        tasks = plan_tasks(files, chunk_bytes, batch_bytes, batch_files, workers=workers)
        assert plan_tasks(files, chunk_bytes, batch_bytes, batch_files, workers=workers) == tasks  # deterministic
    assert_tiles(files, [p for t in tasks for p in t.pieces])
    size_of = {f.path: f.size for f in files}
    for task in tasks:
        assert task.pieces and task.size == sum(p.length for p in task.pieces)
        if len(task.pieces) == 1 and task.pieces[0].length < size_of[task.pieces[0].path]:
            assert task.pieces[0].length <= chunk_bytes  # a piece of a split file
        else:  # a batch of whole small files
            assert all(p.offset == 0 and p.length == size_of[p.path] <= chunk_bytes for p in task.pieces)
            assert len(task.pieces) <= batch_files
            assert len(task.pieces) == 1 or task.size <= batch_bytes
    assert [t.size for t in tasks] == sorted((t.size for t in tasks), reverse=True)  # largest first
    assert len({t.task_id for t in tasks}) == len(tasks)


def test_small_input_spreads_over_workers():
    files = log_files([4 * 8 * MIN_TASK_BYTES])  # one file, enough bytes for 4 tasks per worker of 8
    assert len(plan_tasks(files)) == 1  # 8 MiB: neither over CHUNK_BYTES nor over BATCH_BYTES
    assert len(plan_tasks(files, workers=8)) == 8 * TASKS_PER_WORKER
    assert len(plan_tasks(log_files([MIN_TASK_BYTES // 2] * 4), workers=8)) == 2  # never below MIN_TASK_BYTES


def test_small_files_are_batched():
    files = log_files([100] * 1000)
    tasks = plan_tasks(files)
    assert len(tasks) == -(-1000 // BATCH_FILES) <= 3
    assert_tiles(files, [p for t in tasks for p in t.pieces])


def test_big_files_are_split_into_pieces_of_at_most_chunk_bytes():
    sizes = [3 * CHUNK_BYTES + 1, CHUNK_BYTES + 1, CHUNK_BYTES, 10]
    files = log_files(sizes)
    tasks = plan_tasks(files)
    assert all(t.size <= CHUNK_BYTES for t in tasks)
    pieces_of = defaultdict(list)
    for t in tasks:
        for p in t.pieces:
            pieces_of[p.path].append(p)
    assert [len(pieces_of[f.path]) for f in files[:2]] == [4, 2]
    # Not split: the file of exactly CHUNK_BYTES (alone, being over BATCH_BYTES) and the small one.
    assert len(tasks) == 4 + 2 + 1 + 1
    assert_tiles(files, [p for t in tasks for p in t.pieces])


def test_order_is_largest_first():
    files = log_files([10, 5 * CHUNK_BYTES // 2, 3000, CHUNK_BYTES // 2])
    sizes = [t.size for t in plan_tasks(files, batch_bytes=4000)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] <= 3010


def test_ids_are_deterministic_and_follow_file_identity():
    files = log_files([100, 200, 3 * CHUNK_BYTES])
    first = plan_tasks(files, batch_files=1)
    assert [t.task_id for t in plan_tasks(list(files), batch_files=1)] == [t.task_id for t in first]
    for field, value in [("mtime_ns", 1), ("inode", 7), ("device", 9)]:
        changed = [dataclasses.replace(files[0], **{field: value}), *files[1:]]
        second = plan_tasks(changed, batch_files=1)
        old = {t.pieces[0].path: t.task_id for t in first if len(t.pieces) == 1 and t.pieces[0].offset == 0}
        new = {t.pieces[0].path: t.task_id for t in second if len(t.pieces) == 1 and t.pieces[0].offset == 0}
        assert new[files[0].path] != old[files[0].path], field
        assert {t.task_id for t in second} - {t.task_id for t in first} == {new[files[0].path]}


def test_make_task_id_depends_on_pieces_only():
    a = Piece("a.log", 0, 10, "1:2:10:3")
    assert make_task([a]).task_id == make_task((a,)).task_id
    assert make_task([a]).task_id != make_task([dataclasses.replace(a, length=9)]).task_id
    assert make_task([a]).task_id != make_task([dataclasses.replace(a, offset=1)]).task_id
    assert make_task([a]).task_id != make_task([dataclasses.replace(a, identity="1:2:10:4")]).task_id
    b = Piece("b\udcff.log", 0, 5, "x")  # an undecodable file name still hashes
    assert make_task([a, b]).task_id != make_task([b, a]).task_id


@SETTINGS
@given(st.integers(0, 10**9).flatmap(lambda n: st.tuples(st.just(n), st.integers(max(1, n // 500), 2 * n + 1))))
def test_split_file(sized):
    size, chunk_bytes = sized
    f = log_files([size])[0]
    pieces = split_file(f, chunk_bytes)
    assert all(p.length <= chunk_bytes for p in pieces)
    assert len(pieces) == max(1, -(-size // chunk_bytes))
    assert_tiles([f], pieces)


# --- partition_by_bytes ----------------------------------------------------------

_PARTITION_SIZES = st.lists(st.one_of(st.just(0), st.integers(0, 50), st.integers(0, 10_000)), max_size=30).flatmap(
    lambda sizes: st.tuples(st.just(sizes), st.integers(0, len(sizes)), st.one_of(st.none(), st.integers(10**6, 10**12))))


@SETTINGS
@given(_PARTITION_SIZES, st.integers(1, 7))
def test_partition_tiles_and_balances(sized, parts):
    sizes, where, huge = sized
    if huge is not None:
        sizes = [*sizes[:where], huge, *sizes[where:]]
    files = log_files(sizes)
    shares = partition_by_bytes(files, parts)
    assert len(shares) == parts
    assert_tiles(files, [p for share in shares for p in share])
    zero = {f.path for f in files if f.size == 0}
    assert sorted(p.path for share in shares for p in share if p.path in zero) == sorted(zero)  # each exactly once
    total = sum(sizes)
    for share in shares:
        assert abs(sum(p.length for p in share) - total / parts) < 1
    # Share r holds bytes [r*T/parts, (r+1)*T/parts) of the concatenation, in order.
    starts, at = {}, 0
    for f in files:
        starts[f.path] = at
        at += f.size
    for r, share in enumerate(shares):
        spans = [(starts[p.path] + p.offset, starts[p.path] + p.offset + p.length) for p in share if p.length]
        if spans:
            assert spans[0][0] == total * r // parts and spans[-1][1] == total * (r + 1) // parts
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_partition_examples():
    files = log_files([0, 10, 0])
    shares = partition_by_bytes(files, 3)
    assert [[(p.path[-8:], p.offset, p.length) for p in s] for s in shares] == [
        [("0000.log", 0, 0), ("0001.log", 0, 3)], [("0001.log", 3, 3)], [("0001.log", 6, 4), ("0002.log", 0, 0)]]
    only_empty = partition_by_bytes(log_files([0, 0]), 4)
    assert sum(len(s) for s in only_empty) == 2
    assert partition_by_bytes([], 3) == [[], [], []]
