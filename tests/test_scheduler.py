"""The bare Scheduler (pure: no MPI, no clock, no I/O) driven with a fake clock.

The first half feeds it hand-made events and asserts on the exact actions it
returns. The second half is a seeded random-schedule property test: a
simulated cluster (workers that run tasks, heartbeat, crash, pause past the
timeout and resume; a network that delays, duplicates and drops messages to
dead ranks) around the real Scheduler, checked for exactly-once results, exact
totals, no over-capacity worker and a job that always finishes.
"""

from __future__ import annotations

import functools
import random
import traceback
from collections import deque
from dataclasses import dataclass, field

import pytest

from loganalyser.cluster.protocol import Ack, Assign, Heartbeat, Result, WorkRequest
from loganalyser.cluster.scheduler import (
    AckResults,
    AssignTasks,
    InputFailed,
    Scheduler,
    Timing,
    WorkerBack,
    WorkerLost,
)
from loganalyser.counting.result import PartialResult
from loganalyser.work.inputs import LogFile
from loganalyser.work.jobstate import JobState
from loganalyser.work.tasks import Piece, Task, plan_tasks

HB, TIMEOUT = 0.5, 2.0
TIMING = Timing(heartbeat_interval=HB, worker_timeout=TIMEOUT)


# --- helpers --------------------------------------------------------------------

def make_tasks(n: int, size0: int = 1000) -> list[Task]:
    """n tasks t00, t01, ... of strictly decreasing size (the order plan_tasks gives)."""
    return [Task(f"t{i:02d}", (Piece(f"/logs/f{i}.log", 0, size0 - i, f"id{i}"),)) for i in range(n)]


def true_result(task: Task) -> PartialResult:
    """A task's 'real' statistics: distinct per task, so a double count shows."""
    n = int(task.task_id[1:])
    return PartialResult(counts={"INFO": 3 * n + 1, "ERROR": n % 4}, lines=3 * n + 1 + n % 4 + 2, malformed=1,
                         blank=1, bytes=task.size, files=1)


def hb(*holding: str, seq: int = 0) -> Heartbeat:
    """A heartbeat from a worker that runs or holds `holding`, having read `seq` assignments."""
    return Heartbeat(1, tuple(holding), seq)


def result_msg(task: Task, error: str | None = None) -> Result:
    return Result(1, task.task_id, None if error else true_result(task), error)


def ids(tasks) -> list[str]:
    return [t.task_id for t in tasks]


def of_type(actions, kind) -> list:
    return [a for a in actions if isinstance(a, kind)]


def assigned(actions, worker: int | None = None) -> list[str]:
    """Task ids assigned by `actions` (to `worker`, if given), in order."""
    return [t.task_id for a in of_type(actions, AssignTasks) if worker in (None, a.worker) for t in a.tasks]


def fresh(n_tasks: int = 6, workers=(1, 2, 3)) -> tuple[list[Task], Scheduler]:
    tasks = make_tasks(n_tasks)
    return tasks, Scheduler(tasks, list(workers), TIMING, now=0.0)


# --- Timing ---------------------------------------------------------------------

@pytest.mark.parametrize("hb, timeout", [(1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (-0.5, 1.0), (0.5, 0.0)])
def test_timing_rejects_heartbeat_not_below_timeout(hb, timeout):
    with pytest.raises(ValueError):
        Timing(heartbeat_interval=hb, worker_timeout=timeout)


def test_timing_accepts_heartbeat_below_timeout():
    assert Timing(0.99, 1.0).worker_timeout == 1.0


# --- assignment -----------------------------------------------------------------

def test_initial_work_request_assigns_up_to_capacity_largest_first():
    files = [LogFile(f"/logs/{name}.log", size, 0, i, 1) for i, (name, size) in
             enumerate([("small", 300 << 10), ("huge", 5 << 20), ("mid", 900 << 10), ("tiny", 10)])]
    tasks = plan_tasks(files, chunk_bytes=1 << 20, workers=2)
    sizes = [t.size for t in tasks]
    assert sizes == sorted(sizes, reverse=True) and len(tasks) >= 5
    sched = Scheduler(tasks, [1, 2], TIMING, now=0.0)
    actions = sched.step(1, WorkRequest(1, 2), now=0.1)
    assert actions == [AssignTasks(1, tuple(tasks[:2]), (False, False))]
    actions = sched.step(2, WorkRequest(1, 3), now=0.2)
    assert actions == [AssignTasks(2, tuple(tasks[2:5]), (False, False, False))]
    assert sched.held == {1: ids(tasks[:2]), 2: ids(tasks[2:5])}


def test_work_request_capacity_is_at_least_one():
    tasks, sched = fresh(3, workers=[1])
    assert assigned(sched.step(1, WorkRequest(1, 0), 0.1)) == ["t00"]


def test_work_request_with_fewer_tasks_than_capacity():
    tasks, sched = fresh(1, workers=[1, 2])
    assert assigned(sched.step(1, WorkRequest(1, 2), 0.1)) == ["t00"]
    assert sched.step(2, WorkRequest(1, 2), 0.1) == []


def test_result_is_acked_recorded_and_topped_up():
    tasks, sched = fresh(5, workers=[1])
    sched.step(1, WorkRequest(1, 2), 0.1)
    actions = sched.step(1, result_msg(tasks[0]), 0.2)
    assert actions == [AckResults(1, ("t00",)), AssignTasks(1, (tasks[2],), (False,))]
    assert sched.held[1] == ["t01", "t02"]
    assert sched.state.total() == true_result(tasks[0])
    assert sched.progress == pytest.approx(tasks[0].size / sum(t.size for t in tasks))


def test_duplicate_result_is_acked_and_ignored():
    tasks, sched = fresh(4, workers=[1])
    sched.step(1, WorkRequest(1, 2), 0.1)
    sched.step(1, result_msg(tasks[0]), 0.2)
    total, done = sched.state.total(), sched.done_bytes
    actions = sched.step(1, result_msg(tasks[0]), 0.3)
    assert actions == [AckResults(1, ("t00",))]  # nothing new to hand out: worker 1 is full
    assert sched.state.total() == total and sched.done_bytes == done and len(sched.state) == 1
    assert sched.held[1] == ["t01", "t02"]


def test_late_result_from_lost_worker_is_acked_and_ignored():
    tasks, sched = fresh(2, workers=[1, 2])
    sched.step(1, WorkRequest(1, 1), 0.1)  # t00
    sched.step(2, WorkRequest(1, 1), 0.1)  # t01
    sched.step(2, hb("t01"), 1.9)
    lost = sched.tick(2.2)  # worker 1 silent since 0.1
    assert lost == [WorkerLost(1, "timeout", (tasks[0],))]
    sched.step(2, result_msg(tasks[1]), 2.3)  # worker 2 takes t00, flagged reassigned
    sched.step(2, result_msg(tasks[0]), 2.4)
    assert sched.finished
    total = sched.state.total()
    late = sched.step(1, result_msg(tasks[0]), 2.5)  # the old holder finally answers
    assert of_type(late, AckResults) == [AckResults(1, ("t00",))]
    assert of_type(late, AssignTasks) == []
    assert sched.state.total() == total == true_result(tasks[0]) + true_result(tasks[1])


def test_late_result_of_reassigned_task_counts_once_whoever_is_first():
    tasks, sched = fresh(1, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)
    sched.step(2, WorkRequest(1, 2), 0.0)
    sched.step(2, hb(), 2.0)
    sched.tick(2.1)  # worker 1 lost; t00 goes to worker 2
    assert sched.held[2] == ["t00"]
    first = sched.step(1, result_msg(tasks[0]), 2.2)  # the lost worker was first after all
    assert first == [AckResults(1, ("t00",))] and sched.finished  # counted, but a result does not bring it back
    second = sched.step(2, result_msg(tasks[0]), 2.3)
    assert of_type(second, AckResults) == [AckResults(2, ("t00",))]
    assert sched.state.total() == true_result(tasks[0]) and len(sched.state) == 1
    assert sched.held == {1: [], 2: []} and not sched.holder
    assert sched.live_workers() == [2]


# --- failures -------------------------------------------------------------------

def test_ulfm_failure_requeues_held_tasks_to_the_front_for_the_next_asker():
    tasks, sched = fresh(6, workers=[1, 2, 3])
    sched.step(1, WorkRequest(1, 2), 0.1)  # t00 t01
    sched.step(2, WorkRequest(1, 2), 0.1)  # t02 t03
    actions = sched.process_failed(1, 0.5)
    assert actions == [WorkerLost(1, "died", (tasks[0], tasks[1]))]  # worker 2 is full: nobody to give them to
    assert list(sched.pending)[:3] == ["t00", "t01", "t04"]
    assert sched.failed_workers == [1] and sched.live_workers() == [2, 3]
    actions = sched.step(3, WorkRequest(1, 2), 0.6)  # the next worker to ask
    assert actions == [AssignTasks(3, (tasks[0], tasks[1]), (True, True))]
    actions = sched.step(2, result_msg(tasks[2]), 0.7)
    assert of_type(actions, AssignTasks) == [AssignTasks(2, (tasks[4],), (False,))]
    assert sched.reassigned == 2


def test_ulfm_failure_gives_requeued_tasks_to_a_worker_with_room_at_once():
    tasks, sched = fresh(3, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.1)  # t00 t01
    sched.step(2, WorkRequest(1, 2), 0.1)  # t02, one slot free
    actions = sched.process_failed(1, 0.2)
    assert actions == [WorkerLost(1, "died", (tasks[0], tasks[1])), AssignTasks(2, (tasks[0],), (True,))]
    assert list(sched.pending) == ["t01"]


def test_dead_worker_is_ignored_forever():
    tasks, sched = fresh(2, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.1)
    sched.process_failed(1, 0.2)
    assert sched.process_failed(1, 0.3) == []
    assert sched.step(1, result_msg(tasks[0]), 0.4) == []  # a dead rank's message: no ack, no count
    assert sched.step(1, WorkRequest(1, 2), 0.5) == []
    assert len(sched.state) == 0 and sched.live_workers() == [2]
    assert sched.failed_workers == [1]


def test_unknown_source_is_ignored():
    tasks, sched = fresh(2, workers=[1])
    assert sched.step(7, WorkRequest(1, 2), 0.1) == []
    assert sched.process_failed(7, 0.1) == []


def test_timeout_after_worker_timeout_of_silence_and_not_before():
    tasks, sched = fresh(4, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)
    sched.step(2, WorkRequest(1, 2), 0.0)
    for k in range(1, int(TIMEOUT / HB) + 1):  # worker 1 heartbeats every HB, worker 2 says nothing
        sched.step(1, hb("t00"), k * HB)
        assert sched.tick(k * HB) == [], k * HB  # silent, but not for longer than the timeout yet
    assert sched.tick(TIMEOUT) == []  # exactly the timeout is still fine
    lost = sched.tick(TIMEOUT + 0.01)
    assert lost == [WorkerLost(2, "timeout", (tasks[2], tasks[3]))]
    for t in (3.0, 6.0, 9.0, 12.0):
        sched.step(1, hb("t00"), t - 0.4)
        assert sched.tick(t) == []  # worker 1 keeps speaking; worker 2 is already out
    assert sched.failed_workers == [2] and sched.live_workers() == [1]


def test_heartbeats_keep_a_busy_worker_alive_for_a_long_task():
    tasks, sched = fresh(1, workers=[1])
    sched.step(1, WorkRequest(1, 2), 0.0)
    for k in range(1, 200):
        now = k * HB
        sched.step(1, hb("t00"), now)
        assert sched.tick(now + TIMEOUT * 0.99) == []
    assert sched.failed_workers == [] and sched.held[1] == ["t00"]


def test_timed_out_worker_that_heartbeats_again_is_back_and_may_get_work():
    tasks, sched = fresh(5, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)  # t00 t01
    sched.step(2, WorkRequest(1, 2), 0.0)  # t02 t03
    sched.step(2, hb("t02", "t03"), 2.0)
    assert sched.tick(2.5) == [WorkerLost(1, "timeout", (tasks[0], tasks[1]))]
    assert list(sched.pending)[:2] == ["t00", "t01"]  # worker 2 is full: nobody took them
    back = sched.step(1, hb("t00", "t01", seq=1), 3.0)  # it was only slow, and still holds both
    assert back == [WorkerBack(1)]  # at capacity with what it holds: nothing more
    assert sched.held[1] == ["t00", "t01"] and sched.live_workers() == [1, 2]
    actions = sched.step(1, result_msg(tasks[0]), 3.1)
    assert actions == [AckResults(1, ("t00",)), AssignTasks(1, (tasks[4],), (False,))]
    assert sched.claim_local() is None  # t01 is held again, not pending
    assert sched.failed_workers == [1] and sched.state.total() == true_result(tasks[0])


def test_result_from_lost_worker_counts_but_does_not_bring_it_back():
    tasks, sched = fresh(4, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)  # t00 t01
    sched.step(2, WorkRequest(1, 1), 0.0)  # t02
    sched.step(2, hb("t02"), 2.0)
    sched.tick(2.5)
    actions = sched.step(1, result_msg(tasks[1]), 2.6)
    assert actions == [AckResults(1, ("t01",))]  # no work for a worker still out of the pool
    assert sched.live_workers() == [2] and "t01" in sched.state
    assert sched.step(1, hb("t00", seq=1), 2.7) == [WorkerBack(1), AssignTasks(1, (tasks[3],), (False,))]


def test_timed_out_worker_back_with_a_work_request_gets_work():
    tasks, sched = fresh(3, workers=[1, 2])
    sched.step(2, WorkRequest(1, 1), 0.0)  # worker 1 never asked ...
    sched.step(2, hb("t00"), 2.0)
    assert sched.tick(2.1) == [WorkerLost(1, "timeout", ())]  # ... and held nothing
    actions = sched.step(1, WorkRequest(1, 2), 2.2)
    assert actions == [WorkerBack(1), AssignTasks(1, (tasks[1], tasks[2]), (False, False))]


def test_ulfm_failure_after_timeout_is_final():
    tasks, sched = fresh(2, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)
    sched.step(2, hb(), 2.0)
    sched.tick(2.1)
    assert of_type(sched.process_failed(1, 2.2), WorkerLost) == [WorkerLost(1, "died", ())]
    assert sched.step(1, hb(), 2.3) == []  # dead stays dead
    assert sched.failed_workers == [1]


def test_all_workers_lost_master_finishes_the_job_locally():
    tasks, sched = fresh(4, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)  # t00 t01
    sched.step(2, WorkRequest(1, 2), 0.0)  # t02 t03
    sched.step(1, result_msg(tasks[0]), 0.5)
    sched.process_failed(2, 1.0)
    sched.tick(3.0)  # worker 1 silent since 0.5
    assert sched.live_workers() == [] and sched.failed_workers == [2, 1]
    done = []
    while (task := sched.claim_local()) is not None:
        sched.accept_local(task.task_id, true_result(task))
        done.append(task.task_id)
        assert sched.finished == (len(done) == 3)
    assert sorted(done) == ["t01", "t02", "t03"]
    assert sched.finished and sched.progress == 1.0
    assert sched.state.total() == PartialResult.total(true_result(t) for t in tasks)


def test_claim_local_with_no_worker_at_all():
    tasks, sched = fresh(3, workers=[])
    assert sched.live_workers() == [] and sched.tick(100.0) == []
    order = []
    while (task := sched.claim_local()) is not None:
        order.append(task.task_id)
        sched.accept_local(task.task_id, true_result(task))
    assert order == ["t00", "t01", "t02"] and sched.finished


def test_claim_local_skips_held_and_done_tasks():
    tasks, sched = fresh(4, workers=[1])
    sched.step(1, WorkRequest(1, 2), 0.0)  # t00 t01 held
    sched.accept_local("t02", true_result(tasks[2]))  # done some other way
    assert sched.claim_local() == tasks[3]
    assert sched.claim_local() is None


def test_result_with_error_is_input_failed():
    tasks, sched = fresh(3, workers=[1])
    sched.step(1, WorkRequest(1, 2), 0.0)
    actions = sched.step(1, result_msg(tasks[0], error="cannot read /logs/f0.log: Permission denied"), 0.1)
    assert actions == [AckResults(1, ("t00",)),
                       InputFailed(1, "t00", "cannot read /logs/f0.log: Permission denied")]
    assert "t00" in sched.remaining and len(sched.state) == 0 and not sched.finished


def test_finished_exactly_when_all_tasks_are_done():
    tasks, sched = fresh(5, workers=[1, 2])
    queue = {w: deque(assigned(sched.step(w, WorkRequest(1, 2), 0.0), w)) for w in (1, 2)}
    by_id = {t.task_id: t for t in tasks}
    now, finished_at = 0.0, []
    while any(queue.values()):
        for w in (1, 2):
            if queue[w]:
                now += 0.1
                actions = sched.step(w, result_msg(by_id[queue[w].popleft()]), now)
                queue[w].extend(assigned(actions, w))
                if sched.finished and not finished_at:
                    finished_at.append(len(sched.state))
                assert sched.finished == (len(sched.state) == len(tasks))
    assert finished_at == [len(tasks)]
    assert sched.state.total() == PartialResult.total(true_result(t) for t in tasks)


def test_scheduler_resumes_from_a_known_state():
    tasks = make_tasks(3)
    state = JobState({"t00": true_result(tasks[0])})
    sched = Scheduler(tasks, [1], TIMING, 0.0, state)
    assert assigned(sched.step(1, WorkRequest(1, 5), 0.1)) == ["t01", "t02"]
    assert sched.progress == pytest.approx(tasks[0].size / sum(t.size for t in tasks))


# --- a worker that comes back --------------------------------------------------

def test_idle_worker_back_by_heartbeat_gets_pending_work():
    """It holds nothing, so it will never send a result: the heartbeat itself must bring it work.

    Otherwise, being the only live worker, it would keep the master from counting the rest itself
    while getting nothing to do: the job would never end.
    """
    tasks, sched = fresh(3, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)  # t00 t01
    sched.step(2, WorkRequest(1, 2), 0.0)  # t02
    sched.step(2, result_msg(tasks[2]), 0.1)  # worker 2 is idle now, nothing left to hand out
    sched.step(1, hb("t00", "t01", seq=1), 2.0)
    assert sched.tick(2.2) == [WorkerLost(2, "timeout", ())]  # worker 2 paused (SIGSTOP) while idle
    sched.process_failed(1, 2.3)  # worker 1 dies: t00 t01 back in the queue, no live worker
    task = sched.claim_local()  # so the master runs one task itself ...
    sched.accept_local(task.task_id, true_result(task))
    back = sched.step(2, hb(seq=1), 2.5)  # ... and worker 2 resumes: an idle heartbeat
    assert back == [WorkerBack(2), AssignTasks(2, (tasks[1],), (True,))]
    assert sched.live_workers() == [2] and sched.claim_local() is None


def test_worker_back_after_timeout_holds_no_more_than_its_capacity():
    """A worker stopped while holding tasks still holds them when it resumes: they use its capacity."""
    tasks, sched = fresh(6, workers=[1, 2])
    really_holds = deque(assigned(sched.step(1, WorkRequest(1, 2), 0.0), 1))  # what worker 1 really holds
    sched.step(2, WorkRequest(1, 2), 0.0)
    sched.step(2, hb("t02", "t03"), 2.0)
    sched.tick(2.1)  # worker 1 stopped (SIGSTOP) while holding t00 (running) and t01 (prefetched)
    really_holds.extend(assigned(sched.step(1, hb(*really_holds, seq=1), 2.2), 1))  # SIGCONT: it heartbeats first
    assert list(really_holds) == ["t00", "t01"]
    assert really_holds.popleft() == "t00"  # then finishes t00 and reports it
    really_holds.extend(assigned(sched.step(1, result_msg(tasks[0]), 2.3), 1))
    assert list(really_holds) == ["t01", "t04"]  # never more than its capacity of 2


def test_worker_back_claiming_a_task_someone_else_holds():
    tasks, sched = fresh(4, workers=[1, 2])
    sched.step(1, WorkRequest(1, 1), 0.0)  # t00
    sched.step(2, WorkRequest(1, 2), 0.0)  # t01 t02
    sched.step(2, hb("t01", "t02"), 2.0)
    sched.tick(2.1)  # worker 1 lost; t00 waits for room
    reassigned = sched.step(2, result_msg(tasks[1]), 2.2)
    assert of_type(reassigned, AssignTasks) == [AssignTasks(2, (tasks[0],), (True,))]
    assert sched.step(1, hb("t00", seq=1), 2.3) == [WorkerBack(1)]  # both run t00 now; worker 1 is full with it
    assert sched.holder["t00"] == 2 and sched.held[1] == ["t00"]
    sched.step(1, result_msg(tasks[0]), 2.4)
    sched.step(2, result_msg(tasks[0]), 2.5)  # the duplicate: ignored
    assert sched.state.total() == true_result(tasks[0]) + true_result(tasks[1])


# --- defects found by these tests, now fixed (kept as regression tests)

def _back_while_another_holds_its_task():
    """Worker 1 comes back claiming t00, which worker 2 holds; then worker 2 dies."""
    tasks, sched = fresh(4, workers=[1, 2])
    sched.step(1, WorkRequest(1, 2), 0.0)  # t00 t01
    sched.step(2, WorkRequest(1, 2), 0.0)  # t02 t03
    sched.step(2, hb("t02", "t03"), 2.0)
    sched.tick(2.1)  # worker 1 stopped: lost, t00 t01 back in the queue
    sched.step(2, result_msg(tasks[2]), 2.2)  # worker 2 takes t00 ...
    sched.step(2, result_msg(tasks[3]), 2.3)  # ... and t01
    assert sched.step(1, hb("t00", seq=1), 2.4) == [WorkerBack(1)]  # worker 1 resumes, still running t00
    died = sched.process_failed(2, 2.5)  # worker 2 dies: t00 and t01 back in the queue
    return tasks, sched, died


def test_worker_back_is_not_given_a_task_it_already_holds():
    tasks, sched, died = _back_while_another_holds_its_task()
    assert assigned(died, 1) == ["t01"], f"worker 1 already runs t00, yet: {assigned(died, 1)}"
    assert sorted(sched.held[1]) == ["t00", "t01"]


def test_losing_a_worker_that_holds_a_task_twice_does_not_crash():
    tasks, sched, _ = _back_while_another_holds_its_task()
    lost = sched.tick(10.0)  # worker 1 silent again: lost
    assert of_type(lost, WorkerLost) == [WorkerLost(1, "timeout", (tasks[0], tasks[1]))]


def test_worker_stopped_with_an_unread_assign_holds_no_more_than_its_capacity():
    tasks, sched = fresh(6, workers=[1, 2])
    unread = assigned(sched.step(1, WorkRequest(1, 2), 0.0), 1)  # t00 t01: in its inbox while it is stopped
    sched.step(2, WorkRequest(1, 2), 0.0)
    sched.step(2, hb("t02", "t03"), 2.0)
    sched.tick(2.1)  # worker 1 lost: t00 t01 back in the queue
    refill = assigned(sched.step(1, hb(), 2.2), 1)  # resumed: it heartbeats, then reads its inbox
    really_holds = unread + refill
    assert len(really_holds) <= 2, f"worker 1 (capacity 2) really holds {really_holds}"


# --- the random-schedule property test ------------------------------------------

class CountingState(JobState):
    """A JobState that remembers how often each task id was accepted."""

    def __init__(self):
        super().__init__()
        self.accepted: dict[str, int] = {}

    def accept(self, task_id, result) -> bool:
        new = super().accept(task_id, result)
        if new:
            self.accepted[task_id] = self.accepted.get(task_id, 0) + 1
        return new


@dataclass
class SimWorker:
    rank: int
    capacity: int
    start_at: float  # when its WorkRequest goes out
    started: bool = False
    dead: bool = False
    paused_until: float = 0.0
    queue: deque = field(default_factory=deque)  # assigned, not started
    running: str | None = None
    done_at: float = 0.0
    last_spoke: float = float("-inf")
    assign_seq: int = 0  # the last assignment it read

    def paused(self, now) -> bool:
        return now < self.paused_until

    def holding(self) -> tuple[str, ...]:
        """What it runs and holds, as its heartbeat says."""
        return ((self.running,) if self.running else ()) + tuple(self.queue)

    def load(self) -> int:
        return len(self.queue) + (self.running is not None)


class Stalled(AssertionError):
    """The job can no longer finish: live workers idle, tasks pending, nothing moving."""


class Cluster:
    """The master's shell, the workers and the network, all driven by one Random."""

    MAX_STEPS = 30_000

    def __init__(self, seed: int, directed: bool = False):
        self.rng = rng = random.Random(seed)
        self.now = 0.0
        self.tasks = make_tasks(rng.randint(1, 25))
        self.by_id = {t.task_id: t for t in self.tasks}
        n = rng.randint(1, 6)
        self.workers = {r: SimWorker(r, rng.randint(1, 3), rng.uniform(0, 0.3)) for r in range(1, n + 1)}
        self.state = CountingState()
        self.sched = Scheduler(self.tasks, list(self.workers), TIMING, 0.0, self.state)
        self.to_master = {r: deque() for r in self.workers}  # (deliver_at, message)
        self.to_worker = {r: deque() for r in self.workers}
        self.notices: list[tuple[float, int]] = []  # ULFM failure notices: (deliver_at, rank)
        horizon = 1.0 + len(self.tasks) * 0.8 / n  # about how long the job would take without faults
        # (when, rank or None for any, "crash"/"pause" or None for either)
        self.faults = sorted((rng.uniform(0, horizon), None, None) for _ in range(0 if directed else rng.randint(0, 6)))
        self.directed = directed
        self.directed_crashes = False
        self.p_dup = rng.choice([0.0, 0.1, 0.3])  # chance a Result is delivered twice
        self.p_slow = rng.choice([0.0, 0.02, 0.1])  # chance a message is delayed past the timeout
        self.last_progress = 0.0  # when a task was last assigned or accepted
        self.accepted_seen = 0
        self.log: list[str] = []
        self.overloads: list[str] = []  # times a worker really held more than its capacity

    # -- network
    def delay(self) -> float:
        if self.rng.random() < self.p_slow:
            return self.rng.uniform(TIMEOUT, 2 * TIMEOUT)
        return self.rng.expovariate(1 / 0.05)

    def send_to_master(self, w: SimWorker, message) -> None:
        self.to_master[w.rank].append((self.now + self.delay(), message))
        w.last_spoke = self.now
        if isinstance(message, Result) and self.rng.random() < self.p_dup:
            self.to_master[w.rank].append((self.now + self.delay(), message))

    def ready(self, channels) -> list[int]:
        return [r for r, q in channels.items() if q and q[0][0] <= self.now]

    # -- master
    def master_handles(self, actions) -> None:
        if any(isinstance(a, AssignTasks) for a in actions) or len(self.state) != self.accepted_seen:
            self.last_progress, self.accepted_seen = self.now, len(self.state)
        for action in actions:
            if isinstance(action, AssignTasks):
                assert len(action.tasks) == len(action.reassigned)
                msg = Assign(1, action.tasks, self.sched.progress, action.seq)
                self.to_worker[action.worker].append((self.now + self.delay(), msg))
            elif isinstance(action, AckResults):
                self.to_worker[action.worker].append((self.now + self.delay(), Ack(1, action.task_ids, 0.0)))
            elif isinstance(action, InputFailed):
                raise AssertionError(f"unexpected {action}")
        self.check_invariants(actions)

    def check_invariants(self, actions) -> None:
        s = self.sched
        for w, held in s.held.items():
            if len(held) > max(1, s.capacity[w]):  # see test_random_schedules_no_worker_holds_more_than_its_capacity
                self.overloads.append(f"the master has worker {w} hold {held}, capacity {s.capacity[w]}")
            assert not held or w not in s.lost, f"lost worker {w} still holds {held}"
        for t in s.remaining:  # every unfinished task is somewhere: queued, or held by one live worker
            if t in s.holder:
                w = s.holder[t]
                assert t in s.held[w] and w not in s.lost, f"{t}: holder {w} (lost: {w in s.lost}) held {s.held[w]}"
            else:
                assert t in s.pending, f"task {t} is lost (neither pending nor held)"
        for w, sim in self.workers.items():  # what the worker really holds, not what the master thinks
            if sim.load() > sim.capacity:
                self.overloads.append(f"worker {w} really holds {sim.holding()}, capacity {sim.capacity}")

    # -- workers
    def advance_workers(self) -> None:
        for w in self.workers.values():
            if w.dead or w.paused(self.now):
                continue
            if not w.started:
                if self.now >= w.start_at:
                    w.started = True
                    self.send_to_master(w, WorkRequest(1, w.capacity))
                continue
            while w.running is not None and self.now >= w.done_at:
                task = self.by_id[w.running]
                self.send_to_master(w, Result(1, task.task_id, true_result(task)))
                w.running = None
                self.start_next(w)
            self.start_next(w)
            if self.now - w.last_spoke >= HB:
                self.send_to_master(w, hb(*w.holding(), seq=w.assign_seq))

    def start_next(self, w: SimWorker) -> None:
        if w.running is None and w.queue:
            w.running = w.queue.popleft()
            w.done_at = self.now + self.rng.uniform(0.05, 1.5)

    def deliver_to_worker(self, rank: int) -> None:
        w = self.workers[rank]
        _, message = self.to_worker[rank].popleft()
        if w.dead:
            return  # dropped: nobody reads it
        if isinstance(message, Assign):
            w.queue.extend(t.task_id for t in message.tasks)
            w.assign_seq = max(w.assign_seq, message.seq)
            self.start_next(w)

    # -- faults
    def fault(self) -> None:
        _, rank, kind = self.faults.pop(0)
        candidates = [w for w in self.workers.values() if not w.dead]
        if not candidates:
            return
        crash = kind == "crash" if kind else self.rng.random() < 0.5
        if rank is not None:
            w = self.workers[rank]
        else:  # bias: crash busy workers, pause idle ones (the corners where tasks move and come back)
            preferred = [w for w in candidates if (w.load() > 0) == crash]
            w = self.rng.choice(preferred if preferred and self.rng.random() < 0.7 else candidates)
        if w.dead:
            return
        if crash:
            w.dead = True
            self.log.append(f"{self.now:.2f} crash {w.rank}")
            if self.rng.random() < 0.5:
                self.to_master[w.rank].clear()  # what it sent last never arrives
            if self.rng.random() < (0.0 if self.directed_crashes else 0.75):  # ULFM notices it, or the timeout
                self.notices.append((self.now + self.rng.uniform(0, 1.0), w.rank))
        else:
            w.paused_until = max(self.now, w.paused_until) + TIMEOUT * self.rng.uniform(1.05, 3.0)
            self.log.append(f"{self.now:.2f} pause {w.rank} until {w.paused_until:.2f}")

    def direct(self) -> None:
        """Directed mode: once the queue first runs dry, pause an idle worker and crash the busy ones."""
        s = self.sched
        idle = [w for w in self.workers.values() if w.started and not w.dead and w.load() == 0
                and w.rank in s.live_workers() and not s.held[w.rank]]
        if s.pending or s.finished or not idle:
            return
        self.directed = False
        self.directed_crashes = True  # unnoticed: the paused worker times out first
        victim = self.rng.choice(idle)
        victim.paused_until = self.now + TIMEOUT * self.rng.uniform(2.0, 3.0)
        self.log.append(f"{self.now:.2f} pause {victim.rank} until {victim.paused_until:.2f} (directed)")
        for w in self.workers.values():
            if w is not victim:
                self.faults.append((self.now + self.rng.uniform(0.0, 0.5), w.rank, "crash"))
        self.faults.sort(key=lambda f: f[0])

    # -- the loop
    def run(self) -> None:
        rng, sched = self.rng, self.sched
        for _ in range(self.MAX_STEPS):
            if sched.finished:
                return
            from_workers, to_workers = self.ready(self.to_master), self.ready(self.to_worker)
            to_workers = [r for r in to_workers if not self.workers[r].paused(self.now)]
            options = [("time", 3.0)]
            if from_workers:
                options.append(("to_master", 4.0))
            if to_workers:
                options.append(("to_worker", 4.0))
            if self.directed:
                self.direct()
            if self.faults and self.faults[0][0] <= self.now:
                options.append(("fault", 2.0))
            if not sched.live_workers():
                options.append(("local", 2.0))
            what = rng.choices([o for o, _ in options], [wt for _, wt in options])[0]
            if what == "time":
                self.now += rng.uniform(0, 0.3)
                self.advance_workers()
                due = [n for n in self.notices if n[0] <= self.now]
                self.notices = [n for n in self.notices if n[0] > self.now]
                for _, rank in due:
                    self.master_handles(sched.process_failed(rank, self.now))
                self.master_handles(sched.tick(self.now))
            elif what == "to_master":
                rank = rng.choice(from_workers)
                _, message = self.to_master[rank].popleft()
                self.master_handles(sched.step(rank, message, self.now))
            elif what == "to_worker":
                self.deliver_to_worker(rng.choice(to_workers))
            elif what == "fault":
                self.fault()
            elif what == "local":
                task = sched.claim_local()
                if task is not None:
                    self.now += rng.uniform(0.05, 1.5)  # the master counts it itself
                    sched.accept_local(task.task_id, true_result(task))
                    self.master_handles([])
            if self.stalled():
                raise Stalled(f"live workers {sched.live_workers()} idle with {len(sched.pending)} task(s) pending")
        raise AssertionError(f"not finished after {self.MAX_STEPS} steps")

    def stalled(self) -> bool:
        """Live workers holding nothing while tasks are pending, and no progress for 10 timeouts."""
        s = self.sched
        live = s.live_workers()
        if s.finished or not live or self.faults or any(s.held[w] for w in live) or not s.pending:
            return False
        return self.now - self.last_progress > 10 * TIMEOUT

    def check_end(self) -> None:
        expected = PartialResult.total(true_result(t) for t in self.tasks)
        assert self.state.accepted == {t.task_id: 1 for t in self.tasks}, "a task was not accepted exactly once"
        assert self.state.total() == expected, "final totals differ from the sum of the tasks' true results"
        assert self.sched.progress == 1.0, f"progress {self.sched.progress} at the end"
        for w in self.sched.failed_workers:
            assert w in self.workers


def run_schedule(seed: int, directed: bool = False) -> Cluster:
    cluster = Cluster(seed, directed)
    cluster.run()
    cluster.check_end()
    return cluster


SEEDS = range(600)  # random faults
DIRECTED_SEEDS = range(300)  # random schedules plus the directed pause-then-crash corner


@functools.lru_cache(maxsize=None)
def _run_all(seeds, directed: bool = False):
    """What the schedules of `seeds` showed; cached, as several tests read it.

    failures: 'seed N: why' for a broken property; crashes: the scheduler raised (KeyError in _release,
    see test_losing_a_worker_that_holds_a_task_twice_does_not_crash); overloads: a worker held more than its
    capacity (see test_worker_stopped_with_an_unread_assign_holds_no_more_than_its_capacity).
    """
    failures, crashes, overloads = [], [], []
    seen = {"died": 0, "timeout": 0, "back": 0, "reassigned": 0, "local": 0, "dup": 0, "workers": set()}
    tag = " (directed)" if directed else ""
    for seed in seeds:
        cluster = None
        try:
            cluster = Cluster(seed, directed)
            cluster.run()
            cluster.check_end()
        except AssertionError as exc:  # a broken property, a stall, or a wrong end
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(f"seed {seed}{tag}: {type(exc).__name__}: {exc or 'assert'} "
                            f"(line {where.lineno}: {where.line})")
            continue
        except Exception as exc:  # noqa: BLE001 - the scheduler itself failed
            where = traceback.extract_tb(exc.__traceback__)[-1]
            crashes.append(f"seed {seed}{tag}: {type(exc).__name__}: {exc} in {where.name} (line {where.lineno})")
            continue
        finally:
            if cluster is not None and cluster.overloads:
                overloads.append(f"seed {seed}{tag}: {cluster.overloads[0]}")
        s = cluster.sched
        seen["workers"].add(len(cluster.workers))
        seen["died"] += len(s.dead)
        seen["timeout"] += sum(1 for w in s.failed_workers if w not in s.dead)
        seen["back"] += sum(1 for w in s.failed_workers if w not in s.lost)
        seen["reassigned"] += s.reassigned
        seen["local"] += not s.live_workers()
        seen["dup"] += cluster.p_dup > 0
    return failures, crashes, overloads, seen


@pytest.mark.parametrize("directed", [False, True], ids=["random", "directed"])
def test_random_schedules_are_exact_safe_and_finish(directed):
    """Every schedule: each task accepted exactly once, exact totals, no task lost, a lost worker holds
    nothing, finished exactly at the end, and the job always finishes (crashes: see the test below)."""
    seeds = DIRECTED_SEEDS if directed else SEEDS
    failures = _run_all(seeds, directed)[0]
    assert not failures, (f"{len(failures)} failing seed(s) (rerun with run_schedule(SEED, directed={directed})):\n"
                          + "\n".join(failures[:10]))


def test_random_schedules_exercise_the_faults():
    """The simulation really produces crashes, timeouts, comebacks, duplicates and local work."""
    seen = _run_all(SEEDS)[3]
    assert seen["workers"] == {1, 2, 3, 4, 5, 6}
    for key in ("died", "timeout", "back", "reassigned", "local", "dup"):
        assert seen[key] >= 20, f"the simulation rarely produces {key}: {seen}"


def test_random_schedules_never_crash_the_scheduler():
    crashes = _run_all(SEEDS)[1] + _run_all(DIRECTED_SEEDS, directed=True)[1]  # cached: no second run
    assert not crashes, f"{len(crashes)} seed(s) crash the scheduler:\n" + "\n".join(crashes[:10])


def test_random_schedules_no_worker_holds_more_than_its_capacity():
    """Neither in the master's view nor in what a simulated worker really runs and holds."""
    overloads = _run_all(SEEDS)[2] + _run_all(DIRECTED_SEEDS, directed=True)[2]  # cached: no second run
    assert not overloads, f"{len(overloads)} seed(s) overload a worker:\n" + "\n".join(overloads[:10])
