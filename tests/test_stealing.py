"""Work stealing: sub-range ids, cut points, the scheduler's splits, and seeded schedules that stay line-exact.

The seeded schedules run the real Scheduler and real WorkerDuty objects on a
fake network (per-pair FIFO, random interleaving) over a synthetic corpus
whose lines start at random offsets: a range's result counts the lines that
start in it, so a line counted twice or missed shows in the totals. Split
points are random (the network rewrites the share a worker keeps), and
workers crash before or after replying to a split, or pause past the timeout.
A failing schedule names its seed: rerun it with `run_schedule(seed)`.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter, deque

import pytest

from loganalyser.cluster.protocol import Ack, Assign, Heartbeat, Result, Split, SplitReply, WorkRequest
from loganalyser.cluster.scheduler import AckResults, AssignTasks, InputFailed, Scheduler, Timing, WorkerBack, WorkerLost
from loganalyser.cluster.stealing import MIN_STEP_SHARE, AskSplit, Rates, TaskSplit, cut_point, keep_share, step_for
from loganalyser.cluster.worker import WorkerDuty
from loganalyser.counting.result import PartialResult
from loganalyser.persistence.policy import FileTracker, restore
from loganalyser.persistence.store import Checkpoint
from loganalyser.work.inputs import LogFile
from loganalyser.work.jobstate import JobState
from loganalyser.work.subranges import RangeIndex, bounds_of, minus, root_of, splittable, sub_id, sub_task, uncovered
from loganalyser.work.tasks import Piece, Task

TIMING = Timing(heartbeat_interval=0.5, worker_timeout=2.0)


# --- a synthetic corpus: lines start at known offsets ------------------------------

class Corpus:
    """Files whose lines start at random offsets; a range's result counts the lines starting in it."""

    def __init__(self, rng: random.Random, files: int = 4):
        self.starts: dict[str, list[int]] = {}
        self.sizes: dict[str, int] = {}
        for i in range(files):
            size = rng.randint(3_000, 30_000)
            path = f"/logs/f{i}.log"
            self.sizes[path] = size
            self.starts[path] = [0] + sorted(rng.sample(range(1, size), size // 60))

    def lines_in(self, path: str, start: int, end: int) -> int:
        starts = self.starts[path]
        return bisect.bisect_left(starts, end) - bisect.bisect_left(starts, start)

    def analyse(self, pieces, on_chunk=None, warn=None) -> PartialResult:
        total = PartialResult()
        for p in pieces:
            n = self.lines_in(p.path, p.offset, p.offset + p.length)
            total.add(PartialResult(counts={"INFO": n}, lines=n, bytes=p.length, files=int(p.offset == 0)))
            if on_chunk:
                on_chunk()
        return total

    def tasks(self, rng: random.Random) -> list[Task]:
        """Each file in 1-3 ranges, and one batch of two small ranges (not splittable)."""
        tasks = []
        for i, (path, size) in enumerate(self.sizes.items()):
            cuts = sorted(rng.sample(range(1, size), rng.randint(0, 2)))
            bounds = [0, *cuts, size]
            for a, b in zip(bounds, bounds[1:]):
                tasks.append(Task(f"t{i}-{a}", (Piece(path, a, b - a, f"id{i}", file_size=size),)))
        batch = [tasks.pop(), tasks.pop()]
        tasks.append(Task("batch", tuple(p for t in batch for p in t.pieces)))
        return sorted(tasks, key=lambda t: (-t.size, t.task_id))

    def expected(self) -> int:
        return sum(len(s) for s in self.starts.values())


def range_task(task_id: str, path: str, start: int, end: int, size: int = 100_000) -> Task:
    return Task(task_id, (Piece(path, start, end - start, "id", file_size=size),))


def of_type(actions, kind) -> list:
    return [a for a in actions if isinstance(a, kind)]


# --- sub-range ids and coverage ------------------------------------------------------

def test_a_sub_range_id_names_its_planned_task_and_its_bounds():
    task = range_task("abc", "/f", 100, 900)
    part = sub_task(task, 300, 900)
    assert part.task_id == sub_id("abc", 300, 900) and root_of(part.task_id) == "abc"
    assert bounds_of(part.task_id) == (300, 900) and bounds_of("abc") is None
    assert (part.pieces[0].offset, part.pieces[0].length, part.pieces[0].whole) == (300, 600, False)
    assert sub_task(part, 300, 500).task_id == sub_id("abc", 300, 500)  # a part of a part: still named after the root
    assert sub_task(task, 100, 900) is task


def test_what_is_left_of_a_range():
    assert minus((0, 10), (3, 5)) == [(0, 3), (5, 10)]
    assert minus((0, 10), (0, 10)) == []
    assert minus((0, 10), (8, 20)) == [(0, 8)]


def test_only_plain_ranges_are_splittable():
    assert splittable(range_task("a", "/f.log", 0, 5 << 20))
    assert not splittable(Task("b", (Piece("/f.log.gz", 0, 5 << 20, "id", whole=True),)))
    assert not splittable(Task("c", (Piece("/small.log", 0, 1000, "id", whole=True),)))
    assert not splittable(Task("d", (Piece("/a.log", 0, 10, "i"), Piece("/b.log", 0, 10, "j"))))


def test_overlapping_parts_are_refused_by_the_index_and_the_job_state():
    index = RangeIndex()
    assert index.claim(sub_id("t", 0, 10)) and index.claim(sub_id("t", 10, 20))
    assert not index.claim(sub_id("t", 5, 15)) and not index.claim("t")
    state = JobState()
    one = PartialResult(lines=1)
    assert state.accept("u", one)
    assert not state.accept(sub_id("u", 0, 5), one)  # all of u is counted already
    assert state.accept(sub_id("v", 0, 5), one) and not state.accept("v", one)
    assert state.total().lines == 2


def test_uncovered_names_tasks_whose_parts_do_not_tile_them():
    a, b = range_task("a", "/f", 0, 100), range_task("b", "/f", 100, 200)
    assert uncovered([a, b], ["a", sub_id("b", 100, 150), sub_id("b", 150, 200)]) == []
    assert uncovered([a, b], ["a", sub_id("b", 100, 150)]) == [b]
    assert uncovered([a, b], ["a", "b", sub_id("b", 100, 150)]) == [a, b]  # an overlap spoils everything
    assert uncovered([a], ["a", "zzz"]) == [a]


# --- cut points and shares -----------------------------------------------------------

def test_a_cut_falls_on_the_step_grid_at_or_after_the_asked_point():
    assert cut_point(3000, 9000, 0.5, 1000) == 6000
    assert cut_point(3000, 9000, 0.0, 1000) == 3000
    assert cut_point(3000, 9000, 0.55, 1000) == 7000
    assert cut_point(8000, 9000, 0.5, 1000) is None  # the last step: nothing to give


def test_a_slow_worker_counts_smaller_steps():
    assert step_for(None, 4 << 20) == 4 << 20
    assert step_for(1e9, 4 << 20) == 4 << 20
    assert step_for(20e6, 4 << 20) == 1_000_000
    assert step_for(1e3, 4 << 20) == (4 << 20) // 16


def test_the_share_kept_evens_out_finishing_times_by_rate():
    assert keep_share(1000, 1000, 1.0, 1.0) == 0.5
    assert keep_share(1000, 1000, 1.0, 4.0) == pytest.approx(0.2)  # a slow worker keeps a fifth
    assert keep_share(1000, 3000, 1.0, 1.0) == 0.0  # more to give than this task: all of it
    rates = Rates()
    rates.started(1, 0.0)
    rates.finished(1, 400, 2.0, still_busy=True)
    rates.finished(1, 400, 4.0, still_busy=False)
    assert rates.rate(1) == 200 and rates.rate(2) is None and rates.rate_or_typical(2) == 200
    rates.started(2, 4.0)
    rates.finished(2, 4000, 5.0, still_busy=False)
    assert rates.slow(1, [1, 2]) and not rates.slow(2, [1, 2])


# --- the scheduler's splits, by hand -------------------------------------------------

STEP = 1000


def busy_and_idle(size: int = 10_000) -> tuple[Scheduler, Task]:
    """Worker 1 holds the only task (a range of `size` bytes); worker 2 asks for work."""
    task = range_task("big", "/f.log", 0, size)
    sched = Scheduler([task], [1, 2], TIMING, now=0.0, step_bytes=STEP)
    sched.step(1, WorkRequest(1, 1), 0.0)
    return sched, task


def test_an_idle_worker_makes_the_holder_of_the_largest_range_split():
    sched, task = busy_and_idle()
    actions = sched.step(2, WorkRequest(1, 1), 0.1)
    assert actions == [AskSplit(1, "big", 0.5)]
    assert sched.step(2, WorkRequest(1, 1), 0.2) == []  # one request per idle worker at a time


def test_the_cut_gives_the_rest_to_the_idle_worker_and_both_parts_count_once():
    sched, task = busy_and_idle()
    sched.step(2, WorkRequest(1, 1), 0.1)
    actions = sched.step(1, SplitReply(1, "big", 6000), 0.2)
    kept, given = sub_task(task, 0, 6000), sub_task(task, 6000, 10_000)
    assert of_type(actions, TaskSplit) == [TaskSplit(1, "big", kept, given)]
    assert [(a.worker, a.tasks) for a in of_type(actions, AssignTasks)] == [(2, (given,))]
    assert sched.held == {1: [kept.task_id], 2: [given.task_id]}
    sched.step(2, Result(1, given.task_id, PartialResult(lines=4, bytes=4000)), 0.3)
    assert not sched.finished
    sched.step(1, Result(1, kept.task_id, PartialResult(lines=6, bytes=6000)), 0.4)
    assert sched.finished and sched.state.total().lines == 10 and sched.progress == 1.0


def test_a_worker_that_will_not_cut_is_not_asked_again():
    sched, _ = busy_and_idle()
    sched.step(2, WorkRequest(1, 1), 0.1)
    assert sched.step(1, SplitReply(1, "big", None), 0.2) == []
    assert sched.step(2, WorkRequest(1, 1), 0.3) == []


def test_small_ranges_are_not_split():
    sched, _ = busy_and_idle(size=2 * STEP)
    assert sched.step(2, WorkRequest(1, 1), 0.1) == []


def test_the_splitting_worker_dies_before_replying_the_whole_task_goes_back():
    sched, task = busy_and_idle()
    sched.step(2, WorkRequest(1, 1), 0.1)
    actions = sched.process_failed(1, 0.2)
    assert [(a.worker, a.tasks) for a in of_type(actions, AssignTasks)] == [(2, (task,))]
    assert sched.step(1, SplitReply(1, "big", 6000), 0.3) == []  # from a dead rank: ignored


def test_the_splitting_worker_dies_after_replying_the_part_it_kept_goes_back():
    sched, task = busy_and_idle()
    sched.step(2, WorkRequest(1, 1), 0.1)
    sched.step(1, SplitReply(1, "big", 6000), 0.2)
    actions = sched.process_failed(1, 0.3)
    assert of_type(actions, WorkerLost)[0].requeued == (sub_task(task, 0, 6000),)


def test_a_cut_made_before_the_task_was_taken_back_and_given_again_is_applied():
    sched, task = busy_and_idle()
    sched.step(2, WorkRequest(1, 1), 0.1)  # asks worker 1 to split, for worker 2
    sched.process_failed(2, 0.15)
    sched.step(1, WorkRequest(1, 2), 0.2)  # worker 1 follows anew (after --chaos): its task goes back, and to it again
    assert sched.held[1] == ["big"] and not sched.splitting
    actions = sched.step(1, SplitReply(1, "big", 6000), 0.3)  # its reply to the old request, which it did carry out
    kept, given = sub_task(task, 0, 6000), sub_task(task, 6000, 10_000)
    assert of_type(actions, TaskSplit) == [TaskSplit(1, "big", kept, given)]
    assert sched.held[1] == [kept.task_id, given.task_id] and sched.holder == {kept.task_id: 1, given.task_id: 1}


def test_a_late_result_of_the_whole_task_replaces_its_parts():
    sched, task = busy_and_idle()
    sched.step(2, WorkRequest(1, 1), 0.1)
    sched.step(1, SplitReply(1, "big", 6000), 0.2)
    sched.step(3, Result(1, "big", PartialResult(lines=10, bytes=10_000)), 0.3)  # not a worker: ignored
    sched.accept_local("big", PartialResult(lines=10, bytes=10_000))  # e.g. resent to this master by its counter
    assert sched.finished and sched.progress == 1.0
    sched.step(2, Result(1, sub_id("big", 6000, 10_000), PartialResult(lines=4, bytes=4000)), 0.4)
    assert sched.state.total().lines == 10


def test_a_result_for_a_part_it_never_made_leaves_the_rest_as_new_ranges():
    task = range_task("big", "/f.log", 0, 10_000)
    sched = Scheduler([task], [1, 2], TIMING, now=0.0, step_bytes=STEP)
    sched.step(1, WorkRequest(1, 1), 0.0)
    sched.accept_local(sub_id("big", 3000, 5000), PartialResult(lines=2, bytes=2000))  # a worker of an old master's
    assert sched.remaining == {sub_id("big", 0, 3000), sub_id("big", 5000, 10_000)}
    assert sched.progress == 0.2
    actions = sched.step(2, WorkRequest(1, 2), 0.1)
    assert sorted(t.task_id for a in of_type(actions, AssignTasks) for t in a.tasks) == sorted(sched.remaining)


def test_a_scheduler_resumed_after_a_split_plans_only_what_is_left():
    task, other = range_task("big", "/f.log", 0, 10_000), range_task("small", "/g.log", 0, 500)
    state = JobState({sub_id("big", 0, 4000): PartialResult(lines=4, bytes=4000),
                      sub_id("big", 6000, 8000): PartialResult(lines=2, bytes=2000)})
    sched = Scheduler([task, other], [1], TIMING, now=0.0, state=state, step_bytes=STEP)
    assert sched.remaining == {sub_id("big", 4000, 6000), sub_id("big", 8000, 10_000), "small"}
    assert sched.done_bytes == 6000


def test_a_split_task_counts_as_one_processed_file_once_its_parts_tile_it():
    files = [LogFile("/f.log", 10_000, 0, 1, 1)]
    task = range_task("big", "/f.log", 0, 10_000, size=10_000)
    tracker = FileTracker(files, [task])
    assert tracker.task_done(sub_id("big", 0, 6000)) == 0
    assert tracker.task_done(sub_id("big", 6000, 10_000)) == 1 and tracker.processed == ["/f.log"]
    doc = {"tasks": {sub_id("big", 0, 6000): PartialResult(lines=6).to_dict(),
                     sub_id("big", 6000, 10_000): PartialResult(lines=4).to_dict(),
                     sub_id("gone", 0, 5): PartialResult(lines=99).to_dict()}}
    restored = restore(Checkpoint(1, "ck", doc), files, [task])
    assert restored.files == 1 and restored.state.total().lines == 10 and len(restored.state) == 2


def test_a_slow_worker_gets_the_smallest_tasks_and_the_fast_one_the_largest():
    tasks = [range_task(f"t{i}", f"/f{i}.log", 0, size) for i, size in enumerate((900, 800, 700, 600, 500, 400))]
    sched = Scheduler(tasks, [1, 2], TIMING, now=0.0, step_bytes=STEP)
    sched.step(1, WorkRequest(1, 1), 0.0)
    sched.step(2, WorkRequest(1, 1), 0.0)
    sched.step(1, Result(1, "t0", PartialResult(bytes=900)), 1.0)  # 900 B/s
    actions = sched.step(2, Result(1, "t1", PartialResult(bytes=800)), 8.0)  # 100 B/s: slow
    assert [(a.worker, a.tasks[0].task_id) for a in of_type(actions, AssignTasks)] == [(2, "t5")]
    actions = sched.step(1, Result(1, "t2", PartialResult(bytes=700)), 8.5)
    assert [(a.worker, a.tasks[0].task_id) for a in of_type(actions, AssignTasks)] == [(1, "t3")]


# --- the worker's side -----------------------------------------------------------------

def test_a_worker_cuts_the_task_it_counts_at_a_step_boundary_and_reports_the_part_it_kept():
    corpus = Corpus(random.Random(1), files=1)
    path, size = next(iter(corpus.sizes.items()))
    task = Task("whole", (Piece(path, 0, size, "id", file_size=size),))
    sent = []
    worker = WorkerDuty(1, TIMING, lambda dest, m: sent.append(m), lambda text: None, clock=lambda: 0.0,
                        analyse=corpus.analyse, step_bytes=STEP)
    worker.follow(0, 1)
    worker.on_message(0, Assign(1, (task,), 0.0))
    worker.work()  # a small first step (to learn its rate), then steps of STEP from where it stands
    worker.work()
    position = worker.counting.position
    assert worker.counting.step == STEP and STEP < position < 2 * STEP
    worker.on_message(0, Split(1, "whole", 0.5))
    cut = sent[-1].cut
    assert isinstance(sent[-1], SplitReply) and (cut - position) % STEP == 0 and position < cut < size
    while worker.has_work:
        _, finished = worker.work()
    assert finished.task_id == sub_id("whole", 0, cut)
    assert finished.result.lines == corpus.lines_in(path, 0, cut)
    worker.on_message(0, Split(1, "whole", 0.5))
    assert sent[-1] == SplitReply(1, "whole", None)  # done: nothing to cut


def test_a_worker_gives_up_a_queued_task_it_has_not_started():
    sent = []
    worker = WorkerDuty(1, TIMING, lambda dest, m: sent.append(m), lambda text: None, clock=lambda: 0.0, step_bytes=STEP)
    worker.follow(0, 1)
    worker.measured = True  # it has counted before: its steps are STEP long
    first, second = range_task("a", "/f.log", 0, 5000), range_task("b", "/g.log", 0, 8000)
    worker.queue.extend([first, second])
    worker.on_message(0, Split(1, "b", 0.0))
    assert sent[-1] == SplitReply(1, "b", 0) and list(worker.queue) == [first]
    worker.on_message(0, Split(1, "a", 0.5))
    assert sent[-1] == SplitReply(1, "a", 3000) and list(worker.queue) == [sub_task(first, 0, 3000)]


# --- seeded schedules --------------------------------------------------------------------

class Cluster:
    """The real Scheduler and real workers on a fake network, driven by one seeded generator."""

    def __init__(self, seed: int):
        self.rng = rng = random.Random(seed)
        self.corpus = Corpus(rng, files=rng.randint(2, 5))
        self.tasks = self.corpus.tasks(rng)
        self.step = rng.choice((256, 512, 1024, 2048))
        self.now = 0.0
        workers = list(range(1, rng.randint(2, 5)))
        self.sched = Scheduler(self.tasks, workers, TIMING, self.now, step_bytes=self.step)
        self.links: dict[tuple[int, int], deque] = {}  # (source, dest) -> messages in flight, in order
        self.workers = {w: WorkerDuty(w, TIMING, self._sender(w), lambda text: None, clock=lambda: self.now,
                                      analyse=self.corpus.analyse, step_bytes=self.step) for w in workers}
        self.dead: set[int] = set()
        self.paused: dict[int, float] = {}  # worker -> when it resumes
        self.feigning: set[int] = set()  # paused workers that drop what they are sent, then ask for work anew
        self.seen: Counter = Counter()
        self.problems: list[str] = []
        for w in workers:
            self.workers[w].follow(0, 1)

    def _sender(self, source: int):
        return lambda dest, message: self.links.setdefault((source, dest), deque()).append(message)

    def run(self, max_events: int = 50_000) -> None:
        for _ in range(max_events):
            if self.sched.finished or self.problems:
                break
            self.event()
        else:
            self.problems.append(f"not finished after {max_events} events")
            return
        lines = self.sched.state.total().lines
        if lines != self.corpus.expected():
            self.problems.append(f"counted {lines} lines, expected {self.corpus.expected()}")
        if uncovered(self.tasks, [t for t, _ in self.sched.state.items()]):
            self.problems.append("the accepted ids do not tile the plan")

    def event(self) -> None:
        rng = self.rng
        live = [w for w in self.workers if w not in self.dead and w not in self.paused]
        links = [k for k, q in self.links.items() if q and k[0] not in self.dead
                 and (k[1] not in self.paused or k[1] in self.feigning)]
        roll = rng.random()
        if roll < 0.01 and len(self.dead) < len(self.workers) - 1 and live:
            self.crash(rng.choice(live))
        elif roll < 0.015 and live:
            w = rng.choice(live)
            self.paused[w] = self.now + rng.uniform(0.5, 2 * TIMING.worker_timeout)
            if rng.random() < 0.5:
                self.feigning.add(w)
                self.seen["feigned"] += 1
        elif roll < 0.1 or not (live or links):
            self.now += rng.uniform(0.01, 0.3)
            for w, until in list(self.paused.items()):
                if until <= self.now:
                    del self.paused[w]
                    if w in self.feigning:  # as after --chaos: it follows its master anew
                        self.feigning.discard(w)
                        self.workers[w].follow(0, 1)
            self.carry_out(self.sched.tick(self.now))
            if not self.sched.live_workers():
                self.run_locally()
        elif links and (not live or rng.random() < 0.5):
            self.deliver(rng.choice(links))
        else:
            self.turn(rng.choice(live))

    def turn(self, w: int) -> None:
        worker = self.workers[w]
        if worker.has_work:
            _, finished = worker.work()
            if finished is not None:
                worker.deliver(finished)
        worker.heartbeat_if_due()

    def deliver(self, link: tuple[int, int]) -> None:
        source, dest = link
        message = self.links[link].popleft()
        if dest == 0:
            self.carry_out(self.sched.step(source, message, self.now))
            self.check_held()
        elif dest not in self.dead and dest not in self.feigning:
            self.workers[dest].on_message(0, message)

    def check_held(self) -> None:
        """A remaining task's holder lists it among what it holds (else losing the holder loses the task)."""
        for task_id, w in self.sched.holder.items():
            if task_id in self.sched.remaining and task_id not in self.sched.held[w]:
                self.problems.append(f"{task_id} held by {w} per holder, not per held {self.sched.held[w]}")

    def carry_out(self, actions) -> None:
        send = self._sender(0)
        for action in actions:
            if isinstance(action, AssignTasks):
                send(action.worker, Assign(1, action.tasks, self.sched.progress, action.seq))
            elif isinstance(action, AckResults):
                send(action.worker, Ack(1, action.task_ids, self.sched.progress))
            elif isinstance(action, AskSplit):
                self.seen["split asked"] += 1
                keep = action.keep if self.rng.random() < 0.3 else self.rng.random()  # random split points
                send(action.worker, Split(1, action.task_id, keep))
            elif isinstance(action, TaskSplit):
                self.seen["split"] += 1
            elif isinstance(action, InputFailed):
                self.problems.append(f"input failed: {action}")
            elif not isinstance(action, (WorkerLost, WorkerBack)):
                raise TypeError(action)

    def crash(self, w: int) -> None:
        """SIGKILL: what it had not sent yet may be lost; the master hears of it (ULFM) or times it out."""
        if w in self.sched.splitting.values():
            self.seen["crash before the split reply"] += 1
        counting = self.workers[w].counting
        if counting is not None and root_of(counting.task.task_id) != counting.task.task_id:
            self.seen["crash counting a part it kept"] += 1
        self.dead.add(w)
        link = self.links.get((w, 0))
        if link:
            for _ in range(self.rng.randint(0, len(link))):
                link.pop()
        if self.rng.random() < 0.7:
            self.carry_out(self.sched.process_failed(w, self.now))

    def run_locally(self) -> None:
        task = self.sched.claim_local()
        if task is not None:
            self.sched.accept_local(task.task_id, self.corpus.analyse(task.pieces))


SCHEDULES = 600


def run_schedule(seed: int) -> Cluster:
    cluster = Cluster(seed)
    cluster.run()
    return cluster


def test_seeded_schedules_with_random_split_points_stay_line_exact():
    seen, failures = Counter(), []
    for seed in range(SCHEDULES):
        cluster = run_schedule(seed)
        seen.update(cluster.seen)
        if cluster.problems:
            failures.append((seed, cluster.problems[:2]))
    assert not failures, failures[:5]
    for what in ("split", "crash before the split reply", "crash counting a part it kept", "feigned"):
        assert seen[what] > 0, (what, seen)


def test_heartbeats_say_where_the_counting_stands():
    sent = []
    worker = WorkerDuty(1, TIMING, lambda dest, m: sent.append(m), lambda text: None, clock=lambda: 10.0,
                        analyse=lambda pieces, **kw: PartialResult(bytes=sum(p.length for p in pieces)), step_bytes=STEP)
    worker.master, worker.epoch = 0, 1
    worker.queue.append(range_task("r", "/f.log", 0, 5000))
    worker.work()
    worker.heartbeat_if_due()
    assert sent[-1] == Heartbeat(1, ("r",), 0, STEP // MIN_STEP_SHARE, None)  # a small first step; a fake clock: no rate


# --- what the tools read from the event log ----------------------------------------------

def _event(second: float, kind: str, **fields) -> dict:
    return {"time": f"2026-01-01T00:00:{second:06.3f}Z", "event": kind, "rank": 0, "epoch": 1, **fields}


SPLIT_LOG = [
    _event(0.0, "job_start", tasks=2, bytes=2000),
    _event(0.0, "assign", worker=1, task="a", bytes=1000),
    _event(0.0, "assign", worker=2, task="b", bytes=1000),
    _event(1.0, "result", worker=1, task="a"),
    _event(1.0, "split", worker=2, task="b", kept="b@0-200", given="b@200-1000", kept_bytes=200, given_bytes=800),
    _event(1.0, "assign", worker=1, task="b@200-1000", bytes=800),
    _event(1.8, "result", worker=1, task="b@200-1000"),
    _event(2.0, "result", worker=2, task="b@0-200"),
]


def test_the_straggler_bench_reads_rates_and_the_end_from_the_event_log():
    from utils.straggler_bench import figures

    got = figures(SPLIT_LOG, slow_rank=2)
    assert got["rates_mb_s"] == {"1": 0.0, "2": 0.0} and got["splits"] == 1  # (MB/s rounded: 1000 and 100 B/s)
    assert got["span_s"] == 2.0 and got["ideal_s"] == pytest.approx(2000 / 1100)
    assert got["straggling_s"] == pytest.approx(0.2) and got["tail_s"] == pytest.approx(1.0)
    assert got["slow_share"] == pytest.approx(0.1) and got["slow_fair_share"] == pytest.approx(100 / 1100)


def test_the_timeline_follows_a_task_through_its_split():
    from utils import timeline

    bars = timeline.task_bars(SPLIT_LOG, timeline.datetime.fromisoformat("2026-01-01T00:00:00+00:00"))
    assert sorted(bars) == [(1, 0.0, 1.0, True), (1, 1.0, 1.8, True), (2, 0.0, 2.0, True)]


def test_results_that_covered_no_bytes_give_no_rate_and_a_split_share_can_still_be_chosen():
    """Ranges inside one 1 GB line own no line: their results cover 0 bytes. That is no evidence
    of a rate (a rate of 0 on both sides divided by zero when the share to keep was chosen)."""
    rates = Rates()
    for worker in (1, 2):
        rates.started(worker, 0.0)
        rates.finished(worker, 0, 1.0, still_busy=False)
    assert rates.rate(1) is None and rates.rate_or_typical(1) == rates.rate_or_typical(2) == 1.0
    assert 0.0 <= keep_share(8 << 20, 16 << 20, rates.rate_or_typical(1), rates.rate_or_typical(2)) <= 1.0
    rates.reported[2] = 5e8  # a heartbeat's rate is evidence
    assert rates.rate(2) == 5e8
