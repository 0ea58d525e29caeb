"""A worker counts a task a step per turn, and the steps add up to the task, exactly.

The rank's loop is the only driver (node.py): a long task is counted in steps
of about STEP_BYTES, each one a call of `WorkerDuty.work`, so the loop hears
its messages between any two; nothing below calls back up.
"""

from __future__ import annotations

import gzip

import pytest

from loganalyser.cluster.scheduler import Timing
from loganalyser.cluster.worker import Counted, WorkerDuty, count_steps
from loganalyser.counting.formats import AUTO, FormatSet
from loganalyser.counting.reader import SMALL_FILE, analyse_pieces
from loganalyser.work.inputs import find_log_files
from loganalyser.work.scanning import assign_formats
from loganalyser.work.tasks import make_task, plan_tasks, whole_piece
from utils import generate_logs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steps")
    generate_logs.generate(folder, files=3, lines=1500, seed=11, noise=0.1, malformed=0.05, blank=0.05, crlf=True)
    with gzip.open(folder / "zipped.log.gz", "wb") as dst:  # a compressed file is one step, however long
        dst.write((folder / "node1.log").read_bytes())
    return find_log_files([str(folder)])


@pytest.mark.parametrize("step", [997, 16_384, 1 << 20])
def test_the_steps_of_a_task_add_up_to_the_task(corpus, step):
    for task in plan_tasks(corpus, chunk_bytes=50_000, batch_bytes=200_000):
        steps = count_steps(task, step)
        assert steps, task.describe()
        total = analyse_pieces([p for s in steps for p in s])
        counted = [analyse_pieces(s) for s in steps]
        whole = analyse_pieces(task.pieces)
        assert sum(counted[1:], counted[0]) == whole == total, (task.describe(), step)


def test_a_whole_file_cut_in_steps_counts_the_file_once(corpus):
    task = make_task([whole_piece(corpus[0])])
    steps = count_steps(task, 1000)
    assert len(steps) > 5
    assert sum((analyse_pieces(s) for s in steps[1:]), analyse_pieces(steps[0])).files == 1


@pytest.mark.parametrize("step", [997, 16_384])
def test_a_small_file_left_to_its_reader_to_detect_is_one_step(corpus, step):
    """A file the planner leaves AUTO (read whole, detected on reading) is never cut into
    ranges, however small the steps of a slow worker: a range of it has no format (a worker
    on a loaded machine once crashed with "unknown format 'auto'")."""
    files = assign_formats(corpus, FormatSet.standard(), AUTO, read_later=SMALL_FILE)
    assert any(f.format == AUTO for f in files)
    for task in plan_tasks(files, chunk_bytes=SMALL_FILE, batch_bytes=SMALL_FILE):
        steps = count_steps(task, step)
        for piece in (p for s in steps for p in s):
            assert piece.format != AUTO or piece.whole, piece
        counted = [analyse_pieces(s) for s in steps]
        assert sum(counted[1:], counted[0]) == analyse_pieces(task.pieces)


def test_a_worker_counts_a_task_one_step_per_call(corpus):
    sent = []
    worker = WorkerDuty(1, Timing(), lambda dest, message: sent.append(message), lambda text: None,
                        clock=lambda: 0.0)
    task = make_task([whole_piece(corpus[0])])
    worker.queue.append(task)
    calls = 0
    while True:
        calls += 1
        counted, finished = worker.work()
        assert counted
        if finished is not None:
            break
        assert worker.has_work  # the task is held (and heartbeats name it) between steps
    assert calls == len(count_steps(task, 4 << 20))
    assert finished == Counted(task.task_id, analyse_pieces(task.pieces))
    assert not worker.has_work
