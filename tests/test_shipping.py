"""Shipping without MPI: a worker counts bytes the master sent exactly as it would count its own file.

The two ends (cluster/shipping.py) are wired through an in-memory exchange:
the worker's requests are answered by the master's `serve`, and the answers
delivered in order (as MPI delivers messages of one sender), with tiny chunks
so a shipment takes many round trips. Every count is compared with the
reader's count of the local file, line for line.
"""

from __future__ import annotations

import gzip
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from election.messages import ElectionTag
from loganalyser.cluster import shipping
from loganalyser.cluster.protocol import Tag
from loganalyser.cluster.scheduler import Timing
from loganalyser.cluster.shipping import (
    LOCAL_FILES,
    ShipChunk,
    ShippedFiles,
    Shipping,
    ShipRequest,
    ShipTag,
    invisible_because,
    shipped_span,
)
from loganalyser.cluster.worker import WorkerDuty, count_steps
from loganalyser.counting.reader import analyse_pieces
from loganalyser.errors import InputError
from loganalyser.work.inputs import find_log_files
from loganalyser.work.tasks import Piece, make_task, plan_tasks, whole_piece
from loganalyser.counting.analysis.options import Analysis
from loganalyser.counting.formats import FormatSet
from loganalyser.work.scanning import assign_formats
from utils import generate_logs
from utils.format_logs import generate

from .helpers import log_buffers

MASTER, WORKER = 0, 1
SYSLOG = "syslog_rfc3164"  # time stamps without a year


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch):
    """Chunks of a few bytes: every boundary case of a shipment is met on small files."""
    monkeypatch.setattr(shipping, "CHUNK_BYTES", 7)
    monkeypatch.setattr(shipping, "TAIL_BYTES", 3)


class Exchange:
    """A master and a worker joined by in-order queues; `pump` delivers everything waiting."""

    def __init__(self, mode="always"):
        self.to_master: list = []
        self.to_worker: list = []
        self.master = Shipping(mode, "head", lambda dest, m: self.to_worker.append((MASTER, m)))
        self.worker = Shipping(mode, "far", lambda dest, m: self.to_master.append((dest, m)))
        self.requests = 0

    def pump(self) -> None:
        while self.to_master or self.to_worker:
            if self.to_master:
                dest, request = self.to_master.pop(0)
                assert dest == MASTER and isinstance(request, ShipRequest)
                assert request.length <= shipping.CHUNK_BYTES
                self.requests += 1
                self.master.take_request(WORKER, request, 1)
                self.master.serve_some()
            if self.to_worker:
                self.worker.on_chunk(*self.to_worker.pop(0))

    def count(self, step, epoch: int = 1, next_step=None, **reading):
        """Fetches a step's files (turn after turn, as the worker's loop would; `next_step`'s
        meanwhile) and counts them (`reading`: analyse_pieces's other options)."""
        for _turn in range(100_000):
            files = self.worker.files_for(step, MASTER, epoch, next_step)
            if files is not None:
                result = analyse_pieces(step, files=files, **reading)
                self.worker.counted(step)
                return result
            assert len(self.to_master) <= shipping.WINDOW  # flow control: never more outstanding
            self.pump()
        raise AssertionError("the shipment never completed")


def tasks_of(folder, chunk_bytes, batch_bytes):
    return plan_tasks(find_log_files([str(folder)]), chunk_bytes=chunk_bytes, batch_bytes=batch_bytes)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Generated logs with noise and CRLF, a file without its last newline, one long line, an empty file, a .gz."""
    folder = tmp_path_factory.mktemp("ship")
    generate_logs.generate(folder, files=3, lines=400, seed=5, noise=0.1, malformed=0.05, blank=0.05, crlf=True)
    (folder / "tail.log").write_bytes(b"[2024-01-01 00:00:00] ERROR a\n[2024-01-01 00:00:01] INFO no newline")
    (folder / "empty.log").write_bytes(b"")
    (folder / "long.log").write_bytes(b"[2024-01-01 00:00:00] WARN " + b"x" * 5000 + b"\n" + b"INFO short\n" * 50)
    with gzip.open(folder / "zipped.log.gz", "wb") as dst:
        dst.write((folder / "node1.log").read_bytes())
    return folder


@pytest.mark.parametrize("chunk_bytes,batch_bytes,step", [(997, 4000, 300), (5000, 30_000, 1 << 20), (64, 64, 50)])
def test_shipped_steps_count_exactly_what_a_local_read_counts(corpus, chunk_bytes, batch_bytes, step):
    exchange = Exchange()
    steps = [pieces for task in tasks_of(corpus, chunk_bytes, batch_bytes) for pieces in count_steps(task, step)]
    for pieces, after in zip(steps, [*steps[1:], None]):  # each step's files fetched while the one before is counted
        heard, local_heard = [], []
        shipped = exchange.count(pieces, next_step=after, warn=heard.append)
        assert shipped == analyse_pieces(pieces, warn=local_heard.append), [p.describe() for p in pieces]
        assert heard == local_heard == []  # no file looks removed, grown or shrunk
    assert exchange.master.shipped_bytes == exchange.worker.received_bytes > 0


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(log_buffers(), st.data())
def test_any_cut_of_any_buffer_ships_exactly(tmp_path, data, draw):
    path = tmp_path / "any.log"
    path.write_bytes(data)
    (f,) = find_log_files([str(path)])
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *cuts, len(data)]
    exchange = Exchange()
    for a, b in zip(bounds, bounds[1:]):
        piece = Piece(f.path, a, b - a, f.identity, whole=a == 0 and b == len(data) and len(data) > 0,
                      file_size=f.size, format=f.format)
        assert exchange.count((piece,)) == analyse_pieces((piece,)), (a, b)


def test_statistics_of_a_shipped_file_take_the_masters_modification_time(tmp_path):
    """Year-less timestamps take the year of the file's mtime: the worker's copy may not exist at all."""
    generate(SYSLOG, tmp_path, files=1, lines=3000, seed=9, noise=0.1)
    path = tmp_path / "node1.log"
    os.utime(path, (0, 1_000_000_000))  # 2001: not this year, so a wrong guess shows
    formats = FormatSet.standard(analysis=Analysis(bucket_s=3600, top=3, by="file"))
    (f,) = assign_formats(find_log_files([str(path)]), formats, SYSLOG)
    steps = [*count_steps(make_task([whole_piece(f)]), 20_000), (whole_piece(f),)]  # ranges, and the file read whole
    local = [analyse_pieces(step, formats=formats) for step in steps]
    fetched = []
    for step in steps:  # a worker each, so that every step's bytes are held at once
        exchange = Exchange()
        while (files := exchange.worker.files_for(step, MASTER, 1)) is None:
            exchange.pump()
        fetched.append(files)
    path.unlink()  # every byte is in hand: the counts may not look at this host's file system
    assert [analyse_pieces(step, formats=formats, files=files) for step, files in zip(steps, fetched)] == local
    assert local[0].stats is not None


def test_a_range_ships_the_byte_before_it_up_to_the_end_of_its_last_line(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"INFO one\nINFO two\nINFO three\n")
    (f,) = find_log_files([str(path)])
    piece = Piece(f.path, 10, 3, f.identity, file_size=f.size)  # inside "INFO two"
    assert shipped_span(piece) == (9, 4, True)
    exchange = Exchange()
    assert exchange.count((piece,)) == analyse_pieces((piece,))
    # [9, 13) in chunks of 7, then tails of 3 until the newline at 17 is in hand: nothing beyond 20
    assert exchange.master.shipped_bytes <= 20 - 9


def test_a_master_change_in_mid_shipment_asks_the_new_master_for_the_rest(corpus):
    step = (whole_piece(find_log_files([str(corpus / "node1.log")])[0]),)
    exchange = Exchange()
    assert exchange.worker.files_for(step, MASTER, 1) is None
    exchange.master.serve(WORKER, exchange.to_master.pop(0)[1], 1)  # one answer arrives ...
    exchange.worker.on_chunk(*exchange.to_worker.pop(0))
    stale = list(exchange.to_master)  # ... the other requests die with the old master
    exchange.to_master.clear()
    assert stale
    new_master = 5
    assert exchange.worker.files_for(step, new_master, 2) is None  # asks the new master again
    assert all(dest == new_master for dest, _ in exchange.to_master)
    late = ShipChunk(1, stale[0][1].ticket, step[0].path, stale[0][1].position, b"garbage", 10, 0.0)
    exchange.worker.on_chunk(MASTER, late)  # the old master's late answer is dropped
    for _ in range(100_000):
        while exchange.to_master:
            _, request = exchange.to_master.pop(0)
            exchange.master.serve(WORKER, request, 2)
        while exchange.to_worker:
            exchange.worker.on_chunk(new_master, exchange.to_worker.pop(0)[1])
        files = exchange.worker.files_for(step, new_master, 2)
        if files is not None:
            break
    assert analyse_pieces(step, files=files) == analyse_pieces(step)


def test_a_step_given_up_keeps_its_answers_in_the_window_and_drops_them(corpus):
    """A step abandoned in mid-fetch (its task dropped): the answers still on their way count against
    the window until they arrive, so the master never holds more than WINDOW chunks for a worker."""
    first, second = ((whole_piece(find_log_files([str(corpus / name)])[0]),) for name in ("node1.log", "node2.log"))
    exchange = Exchange()
    assert exchange.worker.files_for(first, MASTER, 1) is None
    assert len(exchange.to_master) == shipping.WINDOW
    assert exchange.worker.files_for(second, MASTER, 1) is None  # `first` given up: nothing more may go out yet
    assert len(exchange.to_master) == shipping.WINDOW
    assert exchange.count(second) == analyse_pieces(second)
    assert exchange.worker.received_bytes == exchange.master.shipped_bytes - 2 * shipping.CHUNK_BYTES


def test_a_worker_that_dies_mid_shipment_leaves_the_master_nothing_to_clean(corpus):
    """The master keeps no state per shipment: another worker fetches the same step from scratch."""
    (f,) = find_log_files([str(corpus / "node2.log")])
    step = (whole_piece(f),)
    first = Exchange()
    assert first.worker.files_for(step, MASTER, 1) is None
    first.master.serve(WORKER, first.to_master.pop(0)[1], 1)  # a part went out, then the worker died
    second = Exchange()
    second.master = first.master  # the same master, with nothing to undo, serves another worker
    second.master.send = lambda dest, m: second.to_worker.append((MASTER, m))
    assert second.count(step) == analyse_pieces(step)


def test_auto_reads_here_what_this_host_sees_and_fetches_the_rest(corpus, tmp_path):
    files = {f.path: f for f in find_log_files([str(corpus)])}
    visible = whole_piece(files[str(corpus / "node1.log")])
    assert invisible_because(visible) is None
    exchange = Exchange(mode="auto")
    assert exchange.worker.files_for((visible,), MASTER, 1) is LOCAL_FILES
    gone = Piece(str(tmp_path / "elsewhere.log"), 0, 10, "1:2:10:3", whole=True, file_size=10)
    assert invisible_because(gone) == "no such file or directory"
    other = Piece(visible.path, 0, visible.length, "1:2:%d:3" % visible.length, whole=True, file_size=visible.length)
    assert "modification time" in invisible_because(other)
    assert isinstance(exchange.worker.files_for((visible, other), MASTER, 1), (type(None), ShippedFiles))
    assert exchange.to_master and all(m.path == visible.path for _, m in exchange.to_master)


def test_never_is_an_input_error_naming_the_file_and_the_host(corpus, tmp_path):
    (visible,) = find_log_files([str(corpus / "node1.log")])
    assert Exchange(mode="never").worker.files_for((whole_piece(visible),), MASTER, 1) is LOCAL_FILES
    gone = Piece(str(tmp_path / "elsewhere.log"), 0, 10, "1:2:10:3", whole=True, file_size=10)
    with pytest.raises(InputError, match=r"elsewhere\.log is not visible on host far \(no such file.*--ship never"):
        Exchange(mode="never").worker.files_for((gone,), MASTER, 1)


def test_a_file_the_master_cannot_read_either_is_an_input_error(tmp_path):
    gone = Piece(str(tmp_path / "nowhere.log"), 0, 10, "1:2:10:3", whole=True, file_size=10)
    exchange = Exchange()
    assert exchange.worker.files_for((gone,), MASTER, 1) is None
    exchange.pump()
    with pytest.raises(InputError, match=r"cannot read .*nowhere\.log on host head"):
        exchange.worker.files_for((gone,), MASTER, 1)


def test_a_worker_counts_a_task_with_shipped_bytes_between_turns(corpus):
    """WorkerDuty.work: no count while the bytes travel (the loop hears its messages), then the exact result."""
    exchange = Exchange()
    sent = []
    worker = WorkerDuty(WORKER, Timing(), lambda dest, m: sent.append(m), lambda text: None, clock=lambda: 0.0,
                        shipping=exchange.worker)
    worker.master, worker.epoch = MASTER, 1
    task = make_task([whole_piece(f) for f in find_log_files([str(corpus)]) if f.size < 100_000])
    worker.queue.append(task)
    idle = 0
    for _turn in range(100_000):
        counted, finished = worker.work()
        idle += not counted
        if finished is not None:
            break
        exchange.pump()
    assert finished.error is None and finished.result == analyse_pieces(task.pieces)
    assert idle > 0


def test_the_master_answers_a_bounded_amount_per_turn(corpus):
    """However many requests wait, one turn of the master's loop reads about SERVE_PER_TURN bytes."""
    master = Shipping("always", "head", lambda dest, m: sent.append(m))
    sent = []
    path = str(corpus / "node1.log")
    for ticket in range(10):
        master.take_request(WORKER, ShipRequest(1, ticket, path, ticket * 7, 7), 1)
    turns = []
    while master.serve_some(budget=20):
        turns.append(len(sent))
    assert turns == [3, 6, 9, 10]  # 7 bytes a request: three fill the budget of 20
    assert [m.ticket for m in sent] == list(range(10))
    assert not master.serve_some()


def test_shipping_tags_are_their_own():
    assert {int(t) for t in ShipTag}.isdisjoint({int(t) for t in Tag} | {int(t) for t in ElectionTag})


def test_a_window_reads_like_the_file_it_was_cut_from(tmp_path):
    data = bytes(random.Random(3).randrange(256) for _ in range(100))
    path = tmp_path / "w.log"
    path.write_bytes(data)
    (f,) = find_log_files([str(path)])
    exchange = Exchange()
    piece = Piece(f.path, 40, 20, f.identity, file_size=f.size)
    while (files := exchange.worker.files_for((piece,), MASTER, 1)) is None:
        exchange.pump()
    with files.open(f.path) as window:
        low = shipped_span(piece)[0]
        window.seek(low)
        assert window.read(5) == data[low : low + 5]
        window.seek(2, os.SEEK_CUR)
        buffer = bytearray(8)
        got = window.readinto(buffer)
        assert bytes(buffer[:got]) == data[low + 7 : low + 7 + got]
        with pytest.raises(OSError):
            window.seek(0)
            window.read(1)
    assert files.size(f.path) == len(data)
