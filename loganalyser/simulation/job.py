"""The whole job under a seeded schedule: election, master and workers, faults, on a fake network.

Every rank is a real RankNode (node.py) with its real election, master and
worker duties; only MPI (the network the election's simulation runs on too,
election/network.py) and the clock are replaced. One seeded generator
decides everything: which rank takes the next turn, which message
in flight arrives next, when the clock moves, and which rank crashes (SIGKILL:
what it had not sent is lost), is paused (SIGSTOP: its messages wait for it)
or feigns a failure (--chaos: it ignores everything for a while), and when
the network splits: a random minority of the ranks (a host whose network is
cut) cannot reach the others for a while, then the split heals. Tasks are
counted for real, from files. The same seed replays the same schedule, and
`log` (a callable taking one line) receives its transcript.

A job ends one of three ways (`end`): it finishes; it is interrupted (SIGINT
to rank 0, or SIGTERM to every rank, at a seeded moment); or one task's input
cannot be read (every rank that counts it gets an input error). Each end is a
stop state of the nodes, with its exit code.

    sim = JobSimulation(tasks, expected, size=4, rng=random.Random(seed))
    sim.run(focus="ending")
    assert not sim.problems, sim.problems

`problems` collects every broken property: two masters in one epoch, an epoch
going back, a rank raising, a result that is not exact or misses a task, a
second result (allowed only when the rank that reported first died before
its Release got out: output and messages cannot be made atomic), a result
by a master without a majority's lease, a live rank
still running long after the faults stopped, or an end that does not fit:
a finished job without a result, an interrupted one with neither a result nor
a master that stopped it, an unreadable input with a result or without a
rank that stopped on it, an exit code the end does not explain.
"""

from __future__ import annotations

import random
import signal
from collections import Counter
from dataclasses import dataclass

from election.bully import BullyNode, ElectionTiming
from election.network import SimNetwork, pick_fault
from loganalyser.cluster.master import MasterFactory, MasterSummary
from loganalyser.cluster.modes import Mode
from loganalyser.cluster.node import RankNode
from loganalyser.cluster.scheduler import Timing
from loganalyser.cluster.stealing import STEP_BYTES
from loganalyser.cluster.worker import WorkerDuty
from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.errors import ExitCode, InputError
from loganalyser.work.subranges import SEP, uncovered

from .network import SimTransport

TIMING = Timing(heartbeat_interval=0.5, worker_timeout=3.0)
ELECTION_TIMING = ElectionTiming()
ENDING_MODES = (Mode.STOPPING, Mode.AWAITING_RELEASE)
QUIET_LIMIT = 120.0  # simulated seconds after the faults stop by which every live rank must have ended
# The schedules' fault storms (ranks paused and feigning by turns for a minute) can keep every majority
# apart far longer than real faults would: ranks wait for one longer than the program's 30 s.
MINORITY_WAIT = 60.0
MAX_EVENTS = 300_000  # turns, arrivals and clock moves per schedule: more means the job never quiets
MAX_TICK = 0.2  # the clock moves at most this far at once, so every rank acts between heartbeats
FOCUSES = ("leader", "candidate", "ending", "stop", "feign", "partition", "mixed")  # rows of election.network.FAULT_RATES
FAULTS = ("crash", "stop", "feign", "partition")  # what this simulation injects
ENDS = ("finish", "interrupt", "input error")
INTERRUPT_WITHIN = 600  # an interrupting schedule sends its signal within this many events
# What each end allows as the exit code of a rank that lived to the end.
END_CODES = {"finish": {0}, "interrupt": {0, int(ExitCode.INTERRUPTED)}, "input error": {0, int(ExitCode.INPUT)}}
MINORITY_CODE = int(ExitCode.TOO_FEW_RANKS)  # a rank cut off from the majority left without a result


class SimChaos:
    """--chaos under the simulation's control: a failure to feign at the node's next turn."""

    def __init__(self):
        self.pending: float | None = None

    def due(self, now: float) -> float | None:
        length, self.pending = self.pending, None
        return length


@dataclass(frozen=True)
class Report:
    rank: int
    epoch: int
    time: float
    total: PartialResult
    task_ids: frozenset


class JobSimulation:
    """Ranks 0..size-1 running one job; faults on demand; properties checked as it goes."""

    def __init__(self, tasks, expected: PartialResult, size: int, rng, backups: int = 1, ulfm: bool = True,
                 max_delay: float = 0.0, log=None, end: str = "finish", step_bytes: int = STEP_BYTES):
        self.tasks = tuple(tasks)
        self.step_bytes = step_bytes  # the workers' counting step: small ones let tasks be split
        self.expected = expected
        self.end = end  # how the job is meant to end: one of ENDS
        self.bad_task = rng.choice(self.tasks) if end == "input error" else None  # its input cannot be read
        self.interrupt_at = rng.randint(1, INTERRUPT_WITHIN) if end == "interrupt" else None  # event number
        self.stopped_on: list[tuple[int, int]] = []  # (rank, exit code) of every master that stopped the job on an error
        self.size = size
        self.rng = rng
        self.backups = backups
        self.ulfm = ulfm  # crashes come with failure notices (else only the probes find them)
        self.log = log
        self.net = SimNetwork(size, rng)
        self.net.max_delay = max_delay
        self.net.hold_across_split = True  # MPI runs on TCP: a cut link delays messages until it heals
        self.paused: dict[int, float] = {}  # rank -> when its SIGSTOP ends
        self.paused_since: dict[int, float] = {}
        self.idle = [False] * size  # its last turn did nothing, and nothing arrived since
        self.reports: list[Report] = []
        self.cut_short: set[int] = set()  # reporters killed before all their messages got out
        self.splits = 0  # times the network split
        self.masters_by_epoch: dict[int, set[int]] = {}
        self.problems: list[str] = []
        self.seen_events: Counter = Counter()  # what the schedule covered, for the tests' coverage checks
        self.events = 0
        self._epochs = [1] * size
        self.nodes = [self._make_node(rank) for rank in range(size)]
        for node in self.nodes:
            node.start()
        for rank in range(size):
            self._check(rank)

    @property
    def now(self) -> float:
        return self.net.now

    # ----------------------------------------------------------------- queries
    def live(self) -> list[int]:
        return [r for r in range(self.size) if r not in self.net.dead]

    def running(self) -> list[int]:
        return [r for r in self.live() if self.nodes[r].exit_code is None]

    def masters(self) -> list[int]:
        return [r for r in self.running() if self.nodes[r].master is not None]

    # ------------------------------------------------------------------ events
    def run(self, focus: str = "mixed", fault_events: int | None = None) -> None:
        """Faults (steered by `focus`) during the first events, then quiet until the job ends."""
        fault_events = fault_events if fault_events is not None else self.rng.randint(100, 3000)
        self._say(f"size {self.size}, ULFM notices {self.ulfm}, delay up to {self.net.max_delay}s, "
                  f"backups {self.backups}, focus {focus}, faults during {fault_events} events")
        while self.running() and self.events < fault_events and not self.problems:
            fault = pick_fault(self.rng, focus, FAULTS, _boost(self, focus))
            if fault is not None:
                _inject(self, fault, focus)
            else:
                self.step()
        self._say("-- faults stop --")
        quiet_from = self.now
        while self.running() and not self.problems:
            if self.events >= MAX_EVENTS:
                self.problems.append(f"still busy after {MAX_EVENTS} events")
                return
            if self.now - quiet_from > QUIET_LIMIT:
                self.problems.append(f"ranks {self.running()} still running {QUIET_LIMIT:.0f}s after the faults stopped "
                                     f"(roles: {[self._role(r) for r in self.running()]})")
                return
            self.step()
        if not self.problems:
            self.problems += self.outcome_problems()

    def step(self) -> None:
        """One event: a turn of a rank with something to do, an arrival, or the clock moving."""
        self.events += 1
        if self.events == self.interrupt_at:
            self.interrupt(self.rng.choice((signal.SIGINT, signal.SIGTERM)))
        for rank, until in sorted(self.paused.items()):
            if until <= self.now:
                self.resume(rank)
        active = [r for r in self.running() if r not in self.paused and not self.idle[r]]
        arrivals = self.net.ready()
        if not active and not arrivals:
            self._advance()
            return
        pick = self.rng.randrange(len(active) + len(arrivals))
        if pick < len(active):
            self.turn(active[pick])
        else:
            got = self.net.arrive(arrivals[pick - len(active)])
            if got is None:  # the split keeps it from its destination
                return
            source, dest, message = got
            self.idle[dest] = False
            self._say(f"{source}->{dest} {type(message).__name__}")

    def turn(self, rank: int) -> None:
        node = self.nodes[rank]
        try:
            busy = node.turn()
        except Exception as exc:  # noqa: BLE001 - any exception in a rank is a bug to report
            self.problems.append(f"rank {rank} raised {type(exc).__name__}: {exc}")
            return
        self.idle[rank] = not busy and not self.net.inbox[rank]
        self._check(rank)
        if node.mode is Mode.STOPPING and node.stop_error is not None and (rank, node.stop_error) not in self.stopped_on:
            self.stopped_on.append((rank, node.stop_error))
        if node.ending is not None and node.ending.vanish:  # a worker passed an interrupt on: it ends as if killed
            self.seen_events["worker passed an interrupt on"] += 1
            self._say(f"{rank} vanishes (exit {node.ending.exit_code})")
            self.net.kill(rank, self.ulfm, 0.3, lambda n: n)

    def _advance(self) -> None:
        """Moves the clock: to the next arrival if sooner, at most MAX_TICK; every rank acts again."""
        step = self.rng.uniform(0.005, MAX_TICK)
        arrival = self.net.next_arrival()
        if arrival is not None and arrival > self.now:
            step = min(step, arrival - self.now)
        self.net.now += step
        self.idle = [False] * self.size

    # ------------------------------------------------------------------ faults
    def crash(self, rank: int) -> None:
        """SIGKILL: the rank never acts again; a random part of what it sent last is lost."""
        node = self.nodes[rank]
        if rank in self.net.dead or len(self.running()) < 2:
            return
        what = self._role(rank)
        if any(rank in self.nodes[r].master.scheduler.splitting.values() for r in self.masters()):
            self.seen_events["worker crashed before its split reply"] += 1
        if node.worker.counting is not None and SEP in node.worker.counting.task.task_id:
            self.seen_events["worker crashed counting the part of a task it kept"] += 1
        if node.master is not None:
            self.seen_events["master crashed"] += 1
            if node.master.scheduler.splitting:
                self.seen_events["master crashed mid-split"] += 1
            if node.master_epoch > 1:
                self.seen_events["second master crashed"] += 1
            if node.mode is Mode.STOPPING:
                self.seen_events["master crashed while waiting for Bye"] += 1
        elif node.electing:
            self.seen_events["candidate crashed mid-election"] += 1
        elif node.mode is Mode.AWAITING_RELEASE:
            self.seen_events["worker crashed waiting for Release"] += 1
        elif node.worker.has_work:
            self.seen_events["worker crashed holding tasks"] += 1
        self._say(f"crash {rank} ({what})")
        before = self.net.in_flight_from(rank)
        self.net.kill(rank, self.ulfm, 0.3, lambda n: self.rng.randint(0, n))
        if any(report.rank == rank for report in self.reports) and self.net.in_flight_from(rank) < before:
            self.cut_short.add(rank)
            self.seen_events["reporter killed before its Release got out"] += 1
        self.paused.pop(rank, None)

    def pause(self, rank: int, seconds: float) -> None:
        """SIGSTOP for `seconds`: the rank takes no turn; messages wait in its inbox."""
        if rank in self.net.dead or rank in self.paused:
            return
        self._say(f"pause {rank} ({self._role(rank)}) for {seconds:.2f}s")
        self.paused[rank] = self.now + seconds
        self.paused_since[rank] = self.now

    def resume(self, rank: int) -> None:
        self.paused.pop(rank, None)
        if self.nodes[rank].master is not None and self.now - self.paused_since[rank] > ELECTION_TIMING.probe_timeout:
            self.seen_events["master paused past the probe timeout"] += 1
        self._say(f"resume {rank}")
        self.idle[rank] = False

    def interrupt(self, signum: int) -> None:
        """A signal, as mpirun passes it on: SIGINT reaches rank 0 only (the others ignore it),
        SIGTERM every rank. A rank acts on it at its next turn (a paused one when it resumes)."""
        targets = [r for r in self.running() if signum == signal.SIGTERM or r == 0]
        self._say(f"{signal.Signals(signum).name} to ranks {targets}")
        for rank in targets:
            what = "master" if self.nodes[rank].master is not None else "worker"
            self.seen_events[f"{signal.Signals(signum).name} to a {what}"] += 1
            self.nodes[rank].interrupted = signum
            self.idle[rank] = False

    def split(self, minority: set[int], seconds: float) -> None:
        """A host's network is cut: `minority` and the other ranks cannot reach each other for `seconds`."""
        if self.net.split_until > self.now:
            return
        self.splits += 1
        if any(self.nodes[r].master is not None for r in minority):
            self.seen_events["master cut off in a minority"] += 1
        self._say(f"split {sorted(minority)} from the others for {seconds:.2f}s")
        self.net.split([minority, set(range(self.size)) - minority], seconds)

    def feign(self, rank: int, seconds: float) -> None:
        """--chaos: the rank plays dead for `seconds` from its next turn."""
        node = self.nodes[rank]
        if rank in self.net.dead or node.mode is Mode.FEIGNING or node.end_announced:
            return
        self._say(f"feign {rank} ({self._role(rank)}) for {seconds:.2f}s")
        self.seen_events["feigned failure" + (" of a master" if node.master is not None else "")] += 1
        node.chaos.pending = seconds
        self.idle[rank] = False

    # -------------------------------------------------------------- properties
    def outcome_problems(self) -> list[str]:
        """What is wrong with how the job ended."""
        codes = {r: self.nodes[r].exit_code for r in self.live()}
        problems = []
        # A rank cut off, or left behind by ranks that ended (an aborted job's Stop, deaths no one
        # reported), cannot tell them from a cut: it waits for a majority, then leaves with 5.
        left_behind = self.splits or not self.ulfm or self.end != "finish"
        allowed = END_CODES[self.end] | ({MINORITY_CODE} if left_behind else set())
        if MINORITY_CODE in codes.values():
            self.seen_events["a rank left as a minority"] += 1
        if any(code not in allowed for code in codes.values()):
            problems.append(f"exit codes {codes} after a job meant to end by {self.end}")
        stopped = sorted({code for _, code in self.stopped_on})
        if self.end == "input error":
            self.seen_events[f"stopped on an input error ({len(self.stopped_on)} time(s))"] += 1
            if self.reports:
                problems.append(f"a result by rank {self.reports[0].rank} although task {self.bad_task.task_id} cannot be read")
            if stopped != [int(ExitCode.INPUT)]:
                problems.append(f"no master stopped the job on its input error (stopped with {stopped})")
            return problems
        if self.end == "interrupt" and not self.reports:
            # A rank that is no master when the signal comes passes it on and ends like a killed
            # process: with SIGTERM to all while no rank is master, every rank does.
            self.seen_events["interrupted before the result"] += 1
            if stopped != [int(ExitCode.INTERRUPTED)] and self.live():
                problems.append(f"neither a result nor a master that stopped on the interrupt (stopped with {stopped}), "
                                f"yet ranks {self.live()} live")
            return problems
        if not self.reports:
            return problems + [f"no result (live ranks {self.live()}, exit codes {codes})"]
        if self.end == "interrupt":
            self.seen_events["result despite the interrupt"] += 1
        for report in self.reports:
            missing = uncovered(self.tasks, report.task_ids)
            if missing:
                problems.append(f"rank {report.rank}'s result misses (parts of) {len(missing)} task(s) "
                                f"or holds overlapping or unplanned parts")
            if any(SEP in task_id for task_id in report.task_ids):
                self.seen_events["result made of split tasks"] += 1
            if report.total != self.expected:
                problems.append(f"rank {report.rank}'s counts {report.total.to_dict()} != {self.expected.to_dict()}")
        for earlier, later in zip(self.reports, self.reports[1:]):
            if earlier.rank not in self.cut_short:
                problems.append(f"a second result, by rank {later.rank} at t={later.time:.3f}, after rank "
                                f"{earlier.rank}'s at t={earlier.time:.3f}, which got its Release out")
        return problems

    def _check(self, rank: int) -> None:
        """Safety, after every turn: one master per epoch, epochs never go back."""
        node = self.nodes[rank]
        if node.master is not None:
            holders = self.masters_by_epoch.setdefault(node.master_epoch, set())
            holders.add(rank)
            if len(holders) > 1:
                self.problems.append(f"epoch {node.master_epoch} has masters {sorted(holders)}")
        epoch = node.election.epoch
        if epoch < self._epochs[rank]:
            self.problems.append(f"rank {rank}: epoch went back from {self._epochs[rank]} to {epoch}")
        self._epochs[rank] = epoch

    # ----------------------------------------------------------------- helpers
    def _make_node(self, rank: int) -> RankNode:
        transport = SimTransport(self.net, rank)
        clock = self._clock
        say = lambda text: self._say(f"{rank}: {text}")  # noqa: E731
        election = BullyNode(rank, self.size, ELECTION_TIMING, random.Random(self.rng.random()), 0.0)
        worker = WorkerDuty(rank, TIMING, transport.send, say, clock=clock, analyse=self._analyse,
                            step_bytes=self.step_bytes)
        masters = MasterFactory(rank, self.tasks, TIMING, transport, say, backups=self.backups, clock=clock,
                                analyse=self._analyse, step_bytes=self.step_bytes)
        return RankNode(transport, election, worker, masters, say, SimChaos(),
                        lambda summary: self._report(rank, summary), clock, minority_wait=MINORITY_WAIT)

    def _clock(self) -> float:
        return self.net.now

    def _analyse(self, pieces, **kwargs) -> PartialResult:
        """Counts for real; the bad task's input cannot be read (as a file whose permissions changed)."""
        pieces = tuple(pieces)
        if self.bad_task is not None and any(_overlap(p, bad) for p in pieces for bad in self.bad_task.pieces):
            raise InputError(f"cannot read {self.bad_task.pieces[0].path}: Permission denied")
        return analyse_pieces(pieces, **kwargs)

    def _report(self, rank: int, summary: MasterSummary) -> None:
        self.reports.append(Report(rank, summary.epoch, self.now, summary.total, summary.task_ids))
        if not self.nodes[rank].election.has_lease(self.now):
            self.problems.append(f"rank {rank} reported without a majority's lease")
        self._say(f"{rank}: REPORT (epoch {summary.epoch}, {len(summary.task_ids)} task(s))")

    def _role(self, rank: int) -> str:
        node = self.nodes[rank]
        if node.master is not None:
            return f"master e{node.master_epoch}" + (" stopping" if node.mode is Mode.STOPPING else "")
        return f"{node.election.role.value}{' after Bye' if node.mode is Mode.AWAITING_RELEASE else ''}"

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(f"t={self.now:8.3f}  {line}")


def _overlap(piece, other) -> bool:
    """The two pieces share bytes of one file (a worker counts a task in steps: parts of its pieces)."""
    return (piece.path == other.path and piece.offset < other.offset + other.length
            and other.offset < piece.offset + piece.length)


def _boost(sim: JobSimulation, focus: str) -> float:
    """Faults come faster where the focus is: in elections, or once the job is ending."""
    if focus == "candidate" and any(sim.nodes[r].electing for r in sim.running()):
        return 30.0
    if focus == "ending" and any(sim.nodes[r].mode in ENDING_MODES for r in sim.running()):
        return 20.0
    return 1.0


def _inject(sim: JobSimulation, fault: str, focus: str) -> None:
    rng = sim.rng
    running = [r for r in sim.running() if r not in sim.paused]
    if not running:
        return
    masters = [r for r in running if sim.nodes[r].master is not None]
    electing = [r for r in running if sim.nodes[r].electing]
    stopping = [r for r in running if sim.nodes[r].mode is Mode.STOPPING]
    waiting = [r for r in running if sim.nodes[r].mode is Mode.AWAITING_RELEASE]
    if focus == "mixed":
        focus = rng.choice(("leader", "candidate", "ending", "any"))
    targets = {"leader": masters, "candidate": electing or masters, "ending": stopping or waiting or masters,
               "stop": masters, "feign": running}.get(focus) or running
    target = rng.choice(targets if rng.random() < 0.8 else running)
    if fault == "crash":
        # Without ULFM's notices a death cannot be told from a cut link, so the dead count as
        # unreachable: random schedules keep a majority and one rank more (to pause or feign) alive.
        if sim.ulfm or len(sim.live()) - 1 >= sim.size // 2 + 2:
            sim.crash(target)
    elif fault == "partition":
        others = [r for r in range(sim.size) if r != target]
        sim.split({target, *rng.sample(others, rng.randint(0, (sim.size - 1) // 2 - 1))} if sim.size > 2 else {target},
                  rng.uniform(1.0, 15.0))
    elif fault == "stop":
        sim.pause(target, rng.uniform(0.2, 8.0))
    else:
        sim.feign(target, rng.uniform(1.0, 4.0))


def random_job(tasks, expected: PartialResult, rng, focus: str = "mixed", log=None,
               end: str = "finish", step_bytes: int = STEP_BYTES) -> JobSimulation:
    """A cluster of 2..6 ranks with random settings runs the job under `focus`ed faults to its `end`."""
    size = rng.randint(2, 6)
    sim = JobSimulation(tasks, expected, size, rng, backups=rng.choice((1, 1, 2)), ulfm=rng.random() < 0.7,
                        max_delay=rng.choice((0.0, 0.0, 0.05, 0.5)), log=log, end=end, step_bytes=step_bytes)
    sim.run(focus)
    return sim
