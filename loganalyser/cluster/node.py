"""One rank's loop: poll, dispatch, tick; the master's and the worker's duties.

Every rank runs this loop. The election state machine (election/) says who
the master is; the rank that is master carries the MasterDuty, every other
rank the WorkerDuty (backups are workers too: no rank sits idle). Leadership
can move: a rank that wins an election builds the master's state from its
replica, the newest checkpoint and what the workers resend; an old master that
learns of a newer term hands its state over and becomes a worker.

The loop is a sequence of turns (`turn`), and a turn never waits: the MPI
program runs turns back to back with a short sleep after an idle one; the
whole-job simulation (loganalyser/simulation/job.py) runs the turns of many nodes
in a seeded order on a fake clock.

The job ends in two phases, so that it survives its master dying at the very
end. The finished master sends Stop; a worker answers Bye and stops working,
but stays (still in the election) until Release. The master waits for every
Bye (or death, or STOP_GRACE), reports the result, then sends Release to every
rank not known dead. Release means "the result is out": any rank that gets it
ends, whatever its role or term, so no second master reports. If the master
dies before Release, the waiting ranks elect a new one, which holds the whole
state (replica, resent results, checkpoint) and ends the job itself.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

from election.actions import BecomeLeader, NewLeader, Send, StepDown
from election.bully import BullyNode, Role
from election.messages import ELECTION_MESSAGES, Coordinator, Probe
from loganalyser.counting.result import PartialResult
from loganalyser.errors import AnalyserError, ExitCode
from loganalyser.work.jobstate import JobState

from .backoff import IdleBackoff
from .master import MasterDuty, MasterFactory, MasterSummary
from .protocol import (
    Ack,
    Assign,
    Bye,
    Heartbeat,
    Interrupt,
    Release,
    Result,
    StateHandover,
    StateSync,
    Stop,
    WorkRequest,
)
from .seams import Clock, Say, Transport
from .worker import WorkerDuty

_ELECTION_TAGS = set(ELECTION_MESSAGES)  # the election's own list of its messages
_BURST = 64  # messages handled per turn before ticking the clocks
STOP_GRACE = 6.0  # seconds the final master waits for every worker's Bye
# Feigned failures drop messages (a real pause only delays them), and a rank may
# feign again right after it recovers: with --chaos the master waits longer.
CHAOS_STOP_GRACE = 20.0
STOP_RESEND = 0.5  # seconds between Stop messages to workers that have not answered
# What a master waiting for Bye drops: the job is done, and no term's work matters any more.
_IGNORED_WHEN_STOPPING = (WorkRequest, Result, Heartbeat, Assign, Ack, StateSync, StateHandover, Interrupt)


class FailureSchedule(Protocol):
    """When this rank feigns a failure (--chaos), and for how long."""

    def due(self, now: float) -> float | None:
        """The length of a failure to feign now, or None."""


Report = Callable[[MasterSummary], None]  # prints and writes the result, on the final master, before Release


@dataclass
class _Stopping:
    """A master that sent Stop, waiting for its workers' Bye."""

    master: MasterDuty
    deadline: float
    next_resend: float


@dataclass
class _Feigning:
    """A rank playing dead until `until` (--chaos)."""

    until: float
    deaths: list[int] = field(default_factory=list)  # failure notices kept for the recovery
    released: bool = False  # the job ended meanwhile: a Release is not ignored


class RankNode:
    """Runs one rank until the job ends; the final master reports through `report`."""

    def __init__(self, transport: Transport, election: BullyNode | None, worker: WorkerDuty, masters: MasterFactory,
                 say: Say, chaos: FailureSchedule | None = None, report: Report | None = None,
                 clock: Clock = time.monotonic):
        self.transport = transport
        self.rank = transport.rank
        self.election = election  # BullyNode, or None with a single rank
        self.worker = worker
        self.masters = masters  # builds this rank's master when it wins an election
        self.say = say
        self.chaos = chaos  # FeignedFailures, or None
        self.report = report
        self.clock = clock
        self.master: MasterDuty | None = None
        self.replica = JobState()  # results the master replicated to us
        self.exit_code: int | None = None  # set when the job ends for this rank
        self.interrupted: int | None = None  # a signal asked us to stop (set by a handler)
        self.elections = 0  # terms started while this rank ran
        self.final_master = False  # True on the one rank that ends the job and reports
        self.said_bye = False  # answered a final Stop: waits for Release and feigns no more
        self._deferred: deque = deque()  # messages received while only probes could be answered
        self._in_service = False
        self._stopping: _Stopping | None = None
        self._feigning: _Feigning | None = None

    @property
    def stopping(self) -> bool:
        """A master that sent Stop and waits for its workers' Bye."""
        return self._stopping is not None

    @property
    def feigning(self) -> bool:
        return self._feigning is not None

    @property
    def master_epoch(self) -> int | None:
        """The term this rank is master of, or None."""
        return self.master.epoch if self.master is not None else None

    @property
    def electing(self) -> bool:
        """An election runs here: a candidate, or waiting for the winner's word."""
        return self.election is not None and self.election.role in (Role.CANDIDATE, Role.AWAITING_COORDINATOR)

    # -------------------------------------------------------------------- loop
    def run(self) -> int:
        """Runs turns until the job ends; flushes outgoing messages however it ends."""
        idle = IdleBackoff()
        try:
            self.start()
            while self.exit_code is None:
                if self.turn():
                    idle.reset()
                else:
                    idle.sleep()
            return self.exit_code
        except AnalyserError:
            if self.master is not None and self.master.leaving:  # the workers were told to stop: see them go
                self._stopping = self._stop_phase(self.master)
                while self._stopping is not None:
                    if not self._stop_turn(self.clock()):
                        idle.sleep()
            raise
        finally:
            self.transport.flush(timeout=1.0)

    def start(self) -> None:
        if self.election is None or self.election.is_leader:
            self._become_master(self.election.epoch if self.election else 1)
        else:
            self.worker.follow(self.election.leader, self.election.epoch)

    def turn(self) -> bool:
        """One pass of the loop; True if it did anything (else the caller may sleep a little)."""
        now = self.clock()
        if self._feigning is not None:
            return self._feign_turn(now)
        if self._stopping is not None:
            return self._stop_turn(now)
        if self.chaos is not None and self.election is not None and not self.said_bye:
            length = self.chaos.due(now)
            if length is not None:
                self._start_feigning(length, now)
                return True
        busy = self._service()
        if self.exit_code is not None:
            return True
        if self.interrupted is not None:
            if self.master is None:  # a worker told to stop passes it on, then ends like a failed process
                if self.worker.master is not None:
                    self.transport.send(self.worker.master, Interrupt(self.worker.epoch, self.interrupted))
                raise SystemExit(1)
            self.master.interrupt(self.interrupted)
        if self.master is not None:
            if self.master.finished:
                self.master.final_checkpoint()
                self.master.stop_workers(int(ExitCode.OK))
                self._stopping = self._stop_phase(self.master)
                return True
            if self.master.needs_local_work():
                return self.master.run_one_locally()
        elif self.worker.has_work:
            self._deliver(*self.worker.run_next(self._service))
            return True
        else:
            self.worker.heartbeat_if_due()
        return busy

    def _service(self) -> bool:
        """Handles failure notices, waiting messages and clock ticks; True if anything came."""
        if self._in_service:  # called again from inside a task's chunk callback
            return False
        self._in_service = True
        try:
            now = self.clock()
            busy = False
            for rank in self.transport.take_failures():
                busy = True
                self._on_failure(rank, now)
            for _ in range(_BURST):
                got = self._next_message()
                if got is None:
                    break
                busy = True
                self._dispatch(got[0], got[1], now)
                if self.exit_code is not None:
                    return True
            if self.election is not None:
                self._apply(self.election.tick(now), now)
            if self.master is not None:
                self.master.tick(now)
            return busy
        finally:
            self._in_service = False

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, source: int, message, now: float) -> None:
        tag = message.TAG
        if tag in _ELECTION_TAGS:
            if self.election is not None:
                self._apply(self.election.step(source, message, now), now)
        elif isinstance(message, (WorkRequest, Result, Heartbeat)):
            if self.master is not None:
                self.master.on_message(source, message, now)
        elif isinstance(message, (Assign, Ack)):
            self.worker.on_message(source, message)
        elif isinstance(message, Stop):
            self._on_stop(source, message)
        elif isinstance(message, Release):
            self._on_release(source)
        elif isinstance(message, StateSync):
            if message.epoch >= self._epoch():
                for task_id, result in message.results:
                    self.replica.accept(task_id, result)
        elif isinstance(message, StateHandover):
            if self.master is not None:
                self.say(f"[Rank {self.rank}] Took over {len(message.results)} result(s) from rank {source}")
                self.master.merge(message.results)
        elif isinstance(message, Interrupt):
            if self.master is not None and self.interrupted is None:
                self.interrupted = message.signum  # as if the signal had reached us
        elif isinstance(message, Bye):
            pass  # outside the stop phase: the answer to an older master's Stop
        else:
            raise TypeError(f"no handler for {type(message).__name__}")

    def _next_message(self):
        """A deferred message first, else a waiting one, else None."""
        return self._deferred.popleft() if self._deferred else self.transport.poll()

    def _answer_probes(self) -> None:
        """During long master work (storing thousands of files): answer PROBEs so the
        followers do not think us dead; every other message waits its turn."""
        if self.election is None:
            return
        while (got := self.transport.poll()) is not None:
            if isinstance(got[1], Probe):
                for action in self.election.step(got[0], got[1], self.clock()):
                    if isinstance(action, Send):
                        self.transport.send(action.dest, action.message)
            else:
                self._deferred.append(got)

    def _on_stop(self, source: int, message: Stop) -> None:
        """The job's end, if said by the newest master we know; else tell a stale master the present."""
        if message.epoch >= self._epoch():
            if self.master is not None:  # a newer master ended the job: ours is no term any more
                self._step_down(source, message.epoch)
            self.transport.send(source, Bye(message.epoch))
            if message.exit_code != ExitCode.OK:
                self.exit_code = 0  # an aborted job reports no result: nothing to wait for
            else:
                self.said_bye = True  # wait for Release, or elect a master that ends the job
        elif self.election is not None and self.election.leader is not None:
            self.transport.send(source, Coordinator(self.election.epoch, self.election.leader))

    def _on_release(self, source: int) -> None:
        """The result is out (whoever reported it): this rank's part is over, in any role."""
        if self.master is not None:
            self.say(f"[Rank {self.rank}] Rank {source} reported the result: leaving without reporting")
            self.master = None
        self.exit_code = 0

    # ------------------------------------------------------------ job's end
    def _stop_phase(self, master: MasterDuty) -> _Stopping:
        now = self.clock()
        grace = CHAOS_STOP_GRACE if self.chaos is not None else STOP_GRACE
        return _Stopping(master, now + grace, now + STOP_RESEND)

    def _stop_turn(self, now: float) -> bool:
        """The master waits for its workers' Bye (resending Stop); then, if the job
        finished and it is still master, it reports and releases everyone."""
        stopping = self._stopping
        master = stopping.master
        busy = False
        for rank in self.transport.take_failures():
            busy = True
            master.leaving.discard(rank)
            self._on_failure(rank, now)
        got = self._next_message()
        if got is not None:
            busy = True
            source, message = got
            if isinstance(message, Bye):
                master.leaving.discard(source)
            elif isinstance(message, Stop):  # a newer master ended the job while we were away
                self._on_stop(source, message)
            elif isinstance(message, Release):
                self._on_release(source)
            elif message.TAG in _ELECTION_TAGS:
                if self.election is not None:
                    self._apply(self.election.step(source, message, now), now)
            elif not isinstance(message, _IGNORED_WHEN_STOPPING):
                raise TypeError(f"no handler for {type(message).__name__}")
        if self.master is not master or self.exit_code is not None:
            self._stopping = None  # stepped down for a newer term, or the job ended elsewhere
            return True
        if not master.leaving or now >= stopping.deadline:
            self._stopping = None
            if master.exit_code == ExitCode.OK:
                self._end_job(master)
            return True
        if now >= stopping.next_resend:
            master.resend_stop()
            stopping.next_resend = now + STOP_RESEND
        return busy

    def _end_job(self, master: MasterDuty) -> None:
        """We are the final master: the result first, then Release (a master that
        dies in between leaves the job to a successor, which reports again)."""
        self.final_master = True
        try:
            if self.report is not None:
                self.report(master.summary())
        finally:
            master.release()
            self.exit_code = int(ExitCode.OK)

    # ---------------------------------------------------------- feigned failure
    def _start_feigning(self, length: float, now: float) -> None:
        """Plays dead for `length` seconds (deaf and mute), then recovers with an election."""
        self.say(f"[Rank {self.rank}] Feigning failure for {length:.1f}s")
        if self.master is not None:  # a silent master is no master: keep its results, drop the role
            for task_id, result in self.master.state.items():
                self.replica.accept(task_id, result)
            self.master = None
        self.election.pause()
        self._deferred.clear()
        self._feigning = _Feigning(now + length)

    def _feign_turn(self, now: float) -> bool:
        feigning = self._feigning
        feigning.deaths += self.transport.take_failures()
        while (got := self.transport.poll()) is not None:
            # Ignored, as a dead rank would; but the job's end is kept: a rank
            # that comes back after the result is out must leave, not restart it.
            feigning.released = feigning.released or isinstance(got[1], Release)
        if now < feigning.until:
            return False
        self._feigning = None
        if feigning.released:
            self.exit_code = 0
            return True
        self.say(f"[Rank {self.rank}] Recovered from feigned failure; starting an election")
        self._apply(self.election.recover(now), now)
        for rank in feigning.deaths:
            self._on_failure(rank, now)
        return True

    # -------------------------------------------------------------- transitions
    def _on_failure(self, rank: int, now: float) -> None:
        if self.master is not None:
            self.master.on_failure(rank, now)
        if self.election is not None:
            self._apply(self.election.peer_failed(rank, now), now)

    def _apply(self, actions, now: float) -> None:
        """Carries out the election's decisions."""
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(action.dest, action.message)
            elif isinstance(action, BecomeLeader):
                self.elections += 1
                self._become_master(action.epoch)
            elif isinstance(action, StepDown):
                self._step_down(action.new_leader, action.epoch)
            elif isinstance(action, NewLeader):
                self.elections += 1
                if action.leader != self.rank:
                    self.say(f"[Rank {self.rank}] New master: rank {action.leader} (epoch {action.epoch})")
                    self.worker.follow(action.leader, action.epoch)
            else:
                raise TypeError(f"no handler for {type(action).__name__}")

    def _become_master(self, epoch: int) -> None:
        held = [self.replica, JobState(self.worker.results)]
        if self.master is not None:  # re-elected (bully rule): keep what we hold
            held.append(self.master.state)
        self.master = self.masters.build(epoch, held)
        self.master.answer_probes_with(self._answer_probes)
        self.worker.queue.clear()  # our own assignments came from the old master
        if epoch > 1:
            self.say(f"[Rank {self.rank}] Became master (epoch {epoch}) with {len(self.master.state)} result(s) in hand")

    def _step_down(self, new_leader: int, epoch: int) -> None:
        if self.master is None:
            return
        results = tuple(self.master.state.items())
        self.say(f"[Rank {self.rank}] Stepping down for rank {new_leader} (epoch {epoch}); handing over {len(results)} result(s)")
        self.transport.send(new_leader, StateHandover(epoch, results))
        for task_id, result in results:
            self.replica.accept(task_id, result)
        self.master = None
        self.worker.follow(new_leader, epoch)

    def _deliver(self, task_id: str, result: PartialResult | None, error: str | None) -> None:
        """A task this rank counted: to the master, or straight in if we are it now."""
        if self.master is not None and result is not None:
            self.master.merge([(task_id, result)])
        else:
            self.worker.deliver(task_id, result, error)

    def _epoch(self) -> int:
        return self.election.epoch if self.election is not None else 1
