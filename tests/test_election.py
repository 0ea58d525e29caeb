"""The bare BullyNode (pure: no MPI, no clock, no randomness of its own), one event at a time.

Each test builds a node, feeds it messages, ticks and failure notices with a
fake `now`, and asserts on the exact actions it returns. The last tests walk
the election package's imports: the state machine must stay pure.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from election.actions import BecomeLeader, LostQuorum, NewLeader, Send, StepDown
from election.bully import BullyNode, ElectionTiming, Role
from election.messages import ELECTION_MESSAGES, Accept, Coordinator, Election, ElectionTag, Ok, Probe, ProbeOk

T = ElectionTiming()
ELECTION_PACKAGE = Path(__file__).resolve().parent.parent / "election"


class FixedRng:
    """A stand-in for random.Random: uniform(a, b) gives the point `fraction` of the way, and is recorded."""

    def __init__(self, fraction: float = 0.5):
        self.fraction = fraction
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return a + (b - a) * self.fraction


def node(rank: int, size: int = 5, now: float = 0.0, rng=None, timing: ElectionTiming = T) -> BullyNode:
    return BullyNode(rank, size, timing, rng or FixedRng(), now)


def sends(actions, kind=None) -> list[tuple[int, object]]:
    """(dest, message) of each Send in `actions` (of message type `kind`, if given)."""
    return [(a.dest, a.message) for a in actions if isinstance(a, Send) and (kind is None or isinstance(a.message, kind))]


def follower_at(rank: int, leader: int, epoch: int, size: int = 5, now: float = 0.0) -> BullyNode:
    """A follower of `leader` at `epoch` (told so by the leader's Coordinator)."""
    n = node(rank, size, now)
    n.step(leader, Coordinator(epoch, leader), now)
    assert (n.role, n.leader, n.epoch) == (Role.FOLLOWER, leader, epoch)
    return n


def claim(epoch: int, leader: int, now: float, dests, confirmed: bool = False) -> list[Send]:
    """The stamped Coordinators a leader sends to `dests` to be accepted."""
    return [Send(r, Coordinator(epoch, leader, now, confirmed)) for r in dests]


def leader_at(rank: int, seen: int, size: int = 5, now: float = 0.0) -> BullyNode:
    """A leader that declared itself after hearing of epoch `seen` from rank size-1 (and every rank above it dead)."""
    n = node(rank, size, now)
    n.step(size - 1, Ok(seen), now)  # any message teaches its epoch
    for r in range(rank):
        n.peer_failed(r, now)  # the leader's death starts an election that nobody above can answer
    assert n.is_leader
    return n


# --- timing and vocabulary -----------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(probe_min=0.0), dict(probe_min=3.5), dict(probe_max=-1.0),
                                    dict(probe_timeout=0.0), dict(election_timeout=0.0),
                                    dict(election_timeout=3.0), dict(coordinator_timeout=0.5)])
def test_timing_rejects_bad_order_or_sign(kwargs):
    with pytest.raises(ValueError):
        ElectionTiming(**kwargs)


def test_timing_defaults_follow_the_seeds():
    assert (T.probe_min, T.probe_max, T.probe_timeout, T.election_timeout, T.coordinator_timeout) == (
        0.5, 3.0, 1.0, 1.0, 3.0)
    assert (T.renew, T.lease) == (0.5, 4.0)


def test_messages_are_frozen_tagged_and_carry_an_epoch():
    assert ELECTION_MESSAGES == {ElectionTag.ELECTION: Election, ElectionTag.OK: Ok,
                                 ElectionTag.COORDINATOR: Coordinator, ElectionTag.PROBE: Probe,
                                 ElectionTag.PROBE_OK: ProbeOk, ElectionTag.ACCEPT: Accept}
    for message in (Election(3), Ok(3), Coordinator(3, 1), Probe(3), ProbeOk(3, 1), Accept(3, 0.5)):
        assert message.epoch == 3
        with pytest.raises(FrozenInstanceError):
            message.epoch = 4


def test_bad_rank_or_message_is_refused():
    with pytest.raises(ValueError):
        BullyNode(5, 5, T, FixedRng(), 0.0)
    with pytest.raises(ValueError):
        node(1).step(7, Probe(1), 0.0)
    with pytest.raises(TypeError):
        node(1).step(0, "hello", 0.0)


# --- the initial state ---------------------------------------------------------------

def test_rank_0_starts_as_leader_of_epoch_1_without_an_election():
    n = node(0)
    assert (n.role, n.is_leader, n.leader, n.epoch) == (Role.LEADER, True, 0, 1)
    assert n.has_lease(0.0)  # as if every rank had accepted it at the start
    assert n.tick(0.0) == [] and n.next_deadline() == T.renew


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_other_ranks_start_following_rank_0_at_epoch_1(rank):
    n = node(rank)
    assert (n.role, n.is_leader, n.leader, n.epoch) == (Role.FOLLOWER, False, 0, 1)
    assert n.tick(0.0) == []


def test_single_rank_leads_alone_and_sends_nothing():
    n = node(0, size=1)
    assert n.is_leader and n.tick(100.0) == [] and n.start_election(100.0) == []


# --- probing the leader (seed 001) ---------------------------------------------------

def test_probe_intervals_are_drawn_uniformly_from_probe_min_to_probe_max():
    rng = FixedRng(0.25)
    n = node(3, rng=rng)
    assert rng.calls == [(0.5, 3.0)]
    first = 0.5 + 2.5 * 0.25
    assert n.tick(first - 0.01) == []
    assert n.tick(first) == [Send(0, Probe(1))]
    assert n.step(0, ProbeOk(1, 0), first + 0.2) == []
    assert rng.calls == [(0.5, 3.0)] * 2
    assert n.tick(first + 0.2 + first - 0.01) == []
    assert n.tick(first + 0.2 + first) == [Send(0, Probe(1))]


def test_probe_times_with_a_real_generator_fall_within_the_bounds():
    n = node(2, rng=random.Random(7))
    now, last_answer, gaps = 0.0, 0.0, []
    while len(gaps) < 200:
        now = round(now + 0.01, 2)
        if sends(n.tick(now), Probe):
            gaps.append(now - last_answer)
            n.step(0, ProbeOk(1, 0), now)
            last_answer = now
    assert all(0.5 <= g <= 3.0 + 0.011 for g in gaps)
    assert min(gaps) < 0.8 and max(gaps) > 2.7  # spread over the whole range


def test_leader_does_not_probe():
    n = node(0)
    assert sends(n.tick(10.0), Probe) == []


def test_unanswered_probe_means_the_leader_is_dead_and_starts_an_election():
    n = node(3, rng=FixedRng(0.0))
    assert n.tick(0.5) == [Send(0, Probe(1))]
    assert n.tick(0.5 + T.probe_timeout - 0.01) == []
    actions = n.tick(0.5 + T.probe_timeout)
    assert actions == [Send(0, Election(1)), Send(1, Election(1)), Send(2, Election(1))]
    assert (n.role, n.leader) == (Role.CANDIDATE, None)


def test_answered_probe_keeps_the_peace():
    n = node(3, rng=FixedRng(0.0))
    n.tick(0.5)
    assert n.step(0, ProbeOk(1, 0), 0.9) == []
    assert n.tick(1.39) == []
    assert n.tick(1.4) == [Send(0, Probe(1))]  # the next probe, 0.5 s after the answer; no election
    assert n.role is Role.FOLLOWER


def test_probe_ok_from_an_older_term_does_not_count_as_an_answer():
    n = follower_at(3, leader=1, epoch=6)
    t = n.next_deadline()
    assert n.tick(t) == [Send(1, Probe(6))]
    assert n.step(1, ProbeOk(1, 0), t + 0.1) == []
    assert sends(n.tick(t + T.probe_timeout), Election) == [(0, Election(6)), (1, Election(6)), (2, Election(6))]


def test_leader_answers_a_probe_with_itself():
    n = node(0)
    assert n.step(3, Probe(1), 1.0) == [Send(3, ProbeOk(1, 0))]


def test_non_leader_answers_a_probe_with_the_leader_it_knows():
    n = follower_at(2, leader=1, epoch=6)
    assert n.step(4, Probe(1), 1.0) == [Send(4, ProbeOk(6, 1))]


def test_rank_that_knows_no_live_leader_does_not_answer_a_probe():
    n = node(2)
    n.peer_failed(0, 0.0)
    assert n.leader is None and n.step(4, Probe(1), 0.1) == []


def test_prober_learns_a_newer_leader_from_the_answer():
    n = node(3, rng=FixedRng(0.0))
    n.tick(0.5)
    actions = n.step(0, ProbeOk(6, 1), 0.6)  # rank 0 stepped down: rank 1 leads epoch 6
    assert actions == []  # followed, but not announced before rank 1 shows it holds a lease
    assert (n.leader, n.epoch, n.role) == (1, 6, Role.FOLLOWER)
    assert n.tick(0.6 + 0.5) == [Send(1, Probe(6))]
    assert n.step(1, Coordinator(6, 1, 1.2, True), 1.2) == [NewLeader(1, 6)]


# --- elections -------------------------------------------------------------------------

def test_election_goes_to_higher_priority_ranks_only():
    n = node(3)
    actions = n.start_election(0.0)
    assert actions == [Send(0, Election(1)), Send(1, Election(1)), Send(2, Election(1))]
    assert n.role is Role.CANDIDATE and n.start_election(0.1) == []


def test_election_skips_ranks_known_failed():
    n = node(3)
    n.peer_failed(1, 0.0)
    assert sends(n.start_election(0.0)) == [(0, Election(1)), (2, Election(1))]


def test_no_ok_in_time_makes_the_candidate_leader():
    n = node(3)
    n.start_election(0.0)
    assert n.tick(T.election_timeout - 0.01) == []
    now = T.election_timeout
    assert n.tick(now) == claim(3, 3, now, (0, 1, 2, 4))  # a claim: no master before a majority accepts
    assert (n.role, n.is_leader, n.leader, n.epoch) == (Role.LEADER, True, 3, 3)
    assert not n.has_lease(now)


def test_declared_epoch_is_congruent_to_the_rank_and_above_every_epoch_seen():
    n = node(2, size=5)
    n.step(4, Ok(13), 0.0)  # any message teaches its epoch
    n.start_election(0.0)
    n.tick(T.election_timeout)
    assert n.is_leader and n.seen == n.epoch == 17


@given(st.integers(2, 9).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size - 1))),
       st.integers(1, 10_000))
def test_own_epoch_is_the_smallest_one_above_seen_congruent_to_the_rank(size_rank, seen):
    size, rank = size_rank
    n = node(rank, size=size)
    n.step((rank + 1) % size, Ok(seen), 0.0)
    actions = []
    for r in range(rank):
        actions += n.peer_failed(r, 0.0)
    if rank == 0:  # it led epoch 1 from the start
        n.pause()
        n.recover(0.0)  # nobody above is left: it declares at once
    assert n.is_leader and n.epoch % size == rank and seen < n.epoch <= seen + size


def test_with_no_higher_rank_left_the_candidate_wins_at_once():
    n = node(2)
    n.peer_failed(1, 0.0)
    actions = n.peer_failed(0, 0.0)
    assert n.is_leader and n.epoch == 2  # the smallest epoch above 1 with epoch % 5 == 2
    assert actions == claim(2, 2, 0.0, (3, 4))


def test_ok_then_coordinator_makes_a_follower():
    n = node(3)
    n.start_election(0.0)
    assert n.step(1, Ok(1), 0.2) == []
    assert n.role is Role.AWAITING_COORDINATOR
    assert n.tick(T.election_timeout) == []  # an Ok came: no victory of our own
    assert n.step(1, Coordinator(6, 1, 1.5), 1.5) == []  # a claim: no master to work for yet
    assert n.step(1, Coordinator(6, 1, 1.6, True), 1.6) == [NewLeader(1, 6)]  # not accepted: promised to 0
    assert (n.role, n.leader, n.epoch) == (Role.FOLLOWER, 1, 6)


def test_ok_from_a_lower_priority_rank_is_ignored():
    n = node(2)
    n.start_election(0.0)
    n.step(4, Ok(1), 0.1)
    assert n.role is Role.CANDIDATE
    n.tick(T.election_timeout)
    assert n.is_leader and n.epoch == 2


def test_ok_then_no_coordinator_runs_the_election_again():
    n = node(3)
    n.start_election(0.0)
    n.step(1, Ok(1), 0.2)
    assert n.tick(0.2 + T.coordinator_timeout - 0.01) == []
    actions = n.tick(0.2 + T.coordinator_timeout)
    assert sends(actions, Election) == [(0, Election(1)), (1, Election(1)), (2, Election(1))]
    assert n.role is Role.CANDIDATE


def test_follower_answers_an_election_from_below_and_runs_its_own():
    n = node(2)
    actions = n.step(4, Election(1), 0.0)
    assert actions == [Send(4, Ok(1)), Send(0, Election(1)), Send(1, Election(1))]
    assert n.role is Role.CANDIDATE


def test_candidate_answers_an_election_from_below_and_keeps_its_own():
    n = node(2)
    n.start_election(0.0)
    assert n.step(4, Election(1), 0.1) == [Send(4, Ok(1))]


def test_election_from_above_is_ignored():
    n = node(2)
    assert n.step(1, Election(1), 0.0) == [] and n.role is Role.FOLLOWER


def test_live_leader_answers_an_election_with_ok_and_a_reminder():
    n = node(0)
    assert n.step(3, Election(1), 0.0) == [Send(3, Ok(1)), Send(3, Coordinator(1, 0))]
    assert n.is_leader and n.epoch == 1


def test_candidate_ends_its_election_when_the_leader_of_its_term_speaks():
    n = node(3)
    n.start_election(0.0)
    assert n.step(0, Coordinator(1, 0), 0.1) == []  # same leader, same term: nothing new for the shell
    assert (n.role, n.leader) == (Role.FOLLOWER, 0)


def test_leader_of_an_older_term_reasserts_above_the_epoch_an_election_carries():
    n = node(0)
    actions = n.step(3, Election(8), 0.0)  # rank 3 follows term 8: someone led without us
    assert actions[:2] == [Send(3, Ok(1)), BecomeLeader(10)]  # its lease holds: it stays master
    assert actions[2:] == claim(10, 0, 0.0, (1, 2, 3, 4), confirmed=True)


# --- coordinators and epochs -------------------------------------------------------

def test_stale_coordinator_is_ignored_and_answered_with_the_present():
    n = follower_at(2, leader=1, epoch=6)
    assert n.step(4, Coordinator(3, 4), 1.0) == [Send(4, Coordinator(6, 1))]
    assert (n.leader, n.epoch, n.role) == (1, 6, Role.FOLLOWER)


def test_stale_coordinator_gets_no_answer_from_a_rank_without_a_live_leader():
    n = follower_at(2, leader=1, epoch=6)
    n.peer_failed(1, 1.0)
    assert n.step(4, Coordinator(3, 4), 1.1) == []


def test_leader_steps_down_on_a_newer_coordinator_from_a_higher_rank():
    n = leader_at(1, seen=3)
    assert n.epoch == 6
    actions = n.step(0, Coordinator(10, 0, 1.0, True), 1.0)
    assert actions == [StepDown(new_leader=0, epoch=10), NewLeader(0, 10), Send(0, Accept(10, 1.0))]
    assert (n.role, n.is_leader, n.leader, n.epoch) == (Role.FOLLOWER, False, 0, 10)


def test_leader_keeps_leading_above_a_newer_term_of_a_lower_rank():
    n = node(0)
    actions = n.step(1, Coordinator(6, 1), 1.0)
    assert actions[0] == BecomeLeader(10) and StepDown not in map(type, actions)
    assert actions[1:] == claim(10, 0, 1.0, (1, 2, 3, 4), confirmed=True)


def test_follower_adopts_a_newer_term_of_a_lower_rank_and_challenges_it():
    n = node(1)
    actions = n.step(2, Coordinator(7, 2), 1.0)
    assert actions == [Send(0, Election(7))]  # rank 2 is no master yet: nothing to announce
    assert (n.role, n.leader, n.epoch) == (Role.CANDIDATE, 2, 7)


def test_follower_follows_a_newer_term_of_a_higher_rank():
    n = follower_at(3, leader=2, epoch=7)
    assert n.step(1, Coordinator(11, 1, 1.0, True), 1.0) == [NewLeader(1, 11)]


def test_coordinator_naming_a_dead_leader_is_not_followed():
    n = node(3)
    n.peer_failed(1, 0.0)
    n.step(0, Coordinator(1, 0), 0.0)
    assert n.step(2, ProbeOk(6, 1), 0.1) == [] and n.leader == 0 and n.seen == 6


def test_stale_rank_learns_the_present_epoch_before_leading_again():
    n = node(0)
    n.pause()
    actions = n.recover(10.0)  # no higher rank: claims at once, with what it knows (epoch 1)
    assert actions == claim(5, 0, 10.0, (1, 2, 3, 4))
    n.step(1, Coordinator(6, 1), 10.1)  # rank 1 led epoch 6 meanwhile
    assert n.is_leader and n.epoch == 10


# --- failures: ULFM notices, pauses ------------------------------------------------

def test_failure_notice_about_the_leader_starts_an_election_at_once():
    n = node(3)
    actions = n.peer_failed(0, 0.3)
    assert actions == [Send(1, Election(1)), Send(2, Election(1))]
    assert (n.role, n.leader) == (Role.CANDIDATE, None)


def test_failure_notice_about_another_rank_is_remembered_until_it_speaks():
    n = node(3)
    assert n.peer_failed(1, 0.0) == [] and n.failed == {1}
    assert n.role is Role.FOLLOWER
    n.step(1, Probe(1), 0.1)
    assert n.failed == set()


def test_a_claim_becomes_a_lease_when_a_majority_accepts_and_lapses_without_renewal():
    n = node(3, size=5)
    n.peer_failed(0, 1.0)  # its promise to rank 0 ends with rank 0: its own vote counts
    n.tick(1.0 + T.election_timeout)  # no Ok from ranks 1 and 2 (cut off, say): it claims
    t, epoch = 2.0, n.epoch
    assert n.is_leader and not n.has_lease(t)  # 4 ranks not known dead: 3 votes needed
    assert n.step(4, Accept(epoch, t), t) == []
    actions = n.step(2, Accept(epoch, t), t)
    assert actions[0] == BecomeLeader(epoch) and actions[1:] == claim(epoch, 3, t, (1, 2, 4), confirmed=True)
    assert n.has_lease(t) and n.next_deadline() == t + T.renew
    end = t + T.lease
    assert LostQuorum(epoch) not in n.tick(end - 0.01)  # renewed, but nobody accepts any more
    actions = n.tick(end)
    assert actions[0] == LostQuorum(epoch) and n.is_leader and n.epoch > epoch  # a fresh claim
    assert not n.has_lease(end)


def test_a_promise_keeps_a_follower_from_backing_another_leader_until_it_ends():
    n = follower_at(3, leader=1, epoch=6)  # promised to rank 0 until T.lease (the start)
    assert n.step(1, Coordinator(6, 1, 1.0, True), 1.0) == [NewLeader(1, 6)]  # not accepted yet
    assert n.step(1, Coordinator(6, 1, T.lease, True), T.lease) == [Send(1, Accept(6, T.lease))]
    # A newer term: followed and announced (its leader has a lease), but not backed while promised to rank 1.
    assert n.step(0, Coordinator(15, 0, T.lease + 1, True), T.lease + 1) == [NewLeader(0, 15)]
    assert n.step(0, Coordinator(15, 0, T.lease + 1.5, True), T.lease + 1.5) == []
    n.peer_failed(1, T.lease + 2)  # a dead rank holds no lease: the promise ends with it
    assert n.step(0, Coordinator(15, 0, T.lease + 2, True), T.lease + 2) == [Send(0, Accept(15, T.lease + 2))]


def test_leader_renews_its_lease_with_every_rank_not_known_dead():
    n = node(0, size=4)
    n.peer_failed(3, 0.0)
    assert n.tick(T.renew) == claim(1, 0, T.renew, (1, 2), confirmed=True)
    assert n.next_deadline() == 2 * T.renew


def test_awaiting_candidate_runs_again_when_a_higher_rank_dies():
    n = node(3)
    n.start_election(0.0)
    n.step(1, Ok(1), 0.1)
    assert sends(n.peer_failed(1, 0.2)) == [(0, Election(1)), (2, Election(1))]


def test_candidate_wins_at_once_when_the_last_rank_above_it_is_reported_dead():
    """Rank 1 heard an election from below before ULFM told it rank 0 died: it need not wait out the timeout."""
    n = node(1)
    assert sends(n.step(2, Election(1), 0.0)) == [(2, Ok(1)), (0, Election(1))]
    assert n.role is Role.CANDIDATE
    actions = n.peer_failed(0, 0.1)
    assert n.is_leader and actions == claim(n.epoch, 1, 0.1, (2, 3, 4))


def test_candidate_keeps_waiting_while_a_rank_above_it_may_live():
    n = node(2)
    n.step(3, Election(1), 0.0)
    assert n.peer_failed(0, 0.1) == [] and n.role is Role.CANDIDATE  # rank 1 may still answer Ok


def test_paused_node_ignores_every_input():
    n = node(0)
    n.pause()
    assert (n.role, n.is_leader, n.next_deadline()) == (Role.PAUSED, False, None)
    assert n.step(1, Election(1), 1.0) == []
    assert n.step(1, Coordinator(9, 1), 1.0) == []
    assert n.tick(100.0) == []
    assert n.peer_failed(1, 1.0) == [] and n.failed == set()
    assert n.start_election(1.0) == []
    assert n.epoch == 1


def test_recovering_node_runs_an_election():
    n = node(3, rng=FixedRng(0.0))
    n.pause()
    n.tick(5.0)
    assert n.recover(6.0) == [Send(0, Election(1)), Send(1, Election(1)), Send(2, Election(1))]
    assert n.role is Role.CANDIDATE and n.recover(6.1) == []


def test_after_a_feigned_failure_even_the_same_leader_is_announced_again():
    """The shell lost every message while it played dead (its assignments too): it must follow afresh."""
    n = follower_at(3, leader=0, epoch=1)
    n.pause()
    n.recover(6.0)
    n.step(0, Ok(1), 6.1)
    assert n.step(0, Coordinator(1, 0, 6.2, True), 6.2) == [NewLeader(0, 1), Send(0, Accept(1, 6.2))]
    assert n.step(0, Coordinator(1, 0, 6.3, True), 6.3) == [Send(0, Accept(1, 6.3))]  # announced once


# --- purity --------------------------------------------------------------------------

FORBIDDEN = {"mpi4py", "time", "random"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for stmt in ast.walk(ast.parse(path.read_text())):
        if isinstance(stmt, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in stmt.names)
        elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
            roots.add(stmt.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(ELECTION_PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_election_modules_import_no_mpi_clock_or_randomness(path):
    assert imported_roots(path).isdisjoint(FORBIDDEN)


def test_importing_the_election_package_loads_no_mpi():
    code = ("import sys, election.bully, election.simulation, election.messages, election.actions; "
            "sys.exit('mpi4py' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ELECTION_PACKAGE.parent).returncode == 0
