"""The bully election on a simulated network: scripted scenarios, then seeded random schedules.

Every schedule is checked for safety (one leader per epoch, never two leaders
holding a majority's lease at once, epochs never go back) and, after 30 quiet
seconds, for agreement: one live leader, the lowest live rank, followed by
every live rank at its epoch, and leased if a majority of the ranks not known
dead live. A failing schedule names
its seed; rerun it with its transcript printed:

    .venv/bin/python -c "from tests.test_election_sim import replay; replay(123, 'leader')"
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from election import bully
from election.bully import Role
from election.simulation import Simulation, random_schedule

SCHEDULES = 250  # per focus; six focuses make 1,500 schedules a run


def replay(seed: int, focus: str = "mixed") -> Simulation:
    """Reruns one random schedule, printing its transcript and what went wrong."""
    sim = random_schedule(random.Random(seed), log=print, focus=focus)
    print(f"problems: {sim.problems or 'none'}")
    return sim


def run_schedules(focus: str, seeds=range(SCHEDULES)) -> Counter:
    """Runs the seeded schedules; fails with the seeds that broke a property. Returns what they covered."""
    covered, failures = Counter(), []
    for seed in seeds:
        sim = random_schedule(random.Random(seed), focus=focus)
        covered.update(sim.seen_events)
        if sim.problems:
            failures.append(f"seed {seed}: {sim.problems[:3]}  -> replay({seed}, {focus!r})")
    assert not failures, f"{len(failures)} of {len(seeds)} {focus!r} schedules failed:\n" + "\n".join(failures[:10])
    return covered


def quiet_sim(size: int, seed: int = 0, ulfm: bool = False, log=None) -> Simulation:
    return Simulation(size, random.Random(seed), log=log, notify_failures=ulfm)


def run_until(sim: Simulation, t: float, step: float = 0.05) -> None:
    """Moves the clock in small steps, delivering every message between them."""
    while sim.now < t:
        sim.advance(step)
        while sim.deliver_random():
            pass


def states(sim: Simulation) -> dict[int, tuple]:
    return {r: (sim.nodes[r].leader, sim.nodes[r].epoch) for r in sim.live()}


# --- scripted scenarios ----------------------------------------------------------------

def test_quiet_cluster_keeps_rank_0_at_epoch_1():
    sim = quiet_sim(5)
    sim.settle(60.0)
    assert sim.problems == [] and states(sim) == {r: (0, 1) for r in range(5)}
    assert sim.leaders_by_epoch == {1: {0}}


@pytest.mark.parametrize("ulfm", [False, True])
def test_crashed_leader_is_replaced_by_the_lowest_live_rank(ulfm):
    sim = quiet_sim(4, ulfm=ulfm)
    sim.settle(5.0)
    sim.crash(0)
    if ulfm:  # the notice starts the election at once: rank 1 has nobody above to ask
        assert sim.nodes[1].is_leader
    sim.settle(30.0)
    assert sim.problems == [] and sim.leaders() == [1]
    assert states(sim) == {r: (1, 5) for r in (1, 2, 3)}  # 5: the first epoch above 1 that is 1 mod 4


def test_two_leaders_crash_in_a_row():
    sim = quiet_sim(5, seed=3)
    sim.settle(5.0)
    sim.crash(0)
    sim.settle(30.0)
    assert sim.leaders() == [1]
    sim.crash(1)
    sim.settle(30.0)
    assert sim.problems == [] and sim.leaders() == [2]
    assert {r: leader for r, (leader, _) in states(sim).items()} == {2: 2, 3: 2, 4: 2}


def test_candidate_crashing_mid_election_is_outwaited():
    sim = quiet_sim(5, seed=4)
    sim.crash(0)
    while sim.nodes[1].role is not Role.CANDIDATE:  # rank 1 finds out by a probe timeout
        sim.advance(0.05)
        while sim.deliver_random():
            pass
    sim.crash(1)  # ranks 2..4 have heard nothing from it yet, or an Ok at most
    sim.settle(30.0)
    assert sim.problems == [] and sim.leaders() == [2]


def test_rank_0_paused_past_the_probe_timeout_takes_the_lead_back_at_a_newer_epoch():
    lines = []
    sim = quiet_sim(4, seed=5, log=lines.append)
    sim.pause(0, 15.0)
    run_until(sim, 14.0)
    assert sim.leaders() == [1] and [sim.nodes[r].leader for r in (1, 2, 3)] == [1, 1, 1]
    successor_epoch = sim.nodes[1].epoch
    sim.settle(30.0)  # rank 0 recovers, runs an election, learns the present epoch and wins above it
    assert sim.problems == [] and sim.leaders() == [0] and sim.nodes[0].epoch > successor_epoch
    assert any("1: StepDown(new_leader=0" in line for line in lines)


def test_isolated_leader_and_its_successor_reconcile():
    sim = quiet_sim(3, seed=6)
    sim.isolate(0, 10.0)  # nobody hears rank 0, it hears nobody, and it still thinks it leads
    run_until(sim, 9.5)
    assert sorted(sim.leaders()) == [0, 1]  # two leaders, at different epochs ...
    assert sim.leased() == [1]  # ... but only rank 1 has a majority behind it
    sim.settle(30.0)  # the links heal; rank 0's renewals reach the others
    assert sim.problems == [] and sim.leaders() == sim.leased() == [0]


def test_split_leaves_the_leader_in_a_minority_then_heals():
    lines = []
    sim = quiet_sim(5, seed=8, log=lines.append)
    sim.settle(2.0)
    sim.split([{0, 1}, {2, 3, 4}], 20.0)
    run_until(sim, 6.0)
    assert sim.leased() == []  # rank 0's lease ran out; ranks 2..4 still keep their promises to it
    assert "0: LostQuorum(epoch=1)" in "\n".join(lines)
    run_until(sim, 19.0)
    assert sim.leased() == [2] and sim.nodes[0].is_leader  # rank 0 still claims, backed by rank 1 alone
    assert sim.problems == []
    sim.settle(30.0)
    assert sim.problems == [] and sim.leased() == [0]
    assert all(sim.nodes[r].leader == 0 for r in range(5))


def test_three_way_split_leases_nobody_until_it_heals():
    sim = quiet_sim(6, seed=9)
    sim.split([{0, 1}, {2, 3}, {4, 5}], 30.0)
    run_until(sim, 29.0)
    assert sim.leased() == [] and sim.problems == []
    sim.settle(30.0)
    assert sim.problems == [] and sim.leased() == [0]


def test_dead_ranks_leave_the_count_so_the_last_host_goes_on():
    """4 of 6 ranks die with ULFM notices (two hosts of three): the two left are a majority of the living."""
    sim = quiet_sim(6, seed=10, ulfm=True)
    sim.settle(2.0)
    for rank in (0, 1, 2, 3):
        sim.crash(rank)
    sim.settle(30.0)
    assert sim.problems == [] and sim.leased() == [4]


def test_silent_deaths_of_half_the_ranks_lease_nobody():
    """Without notices a dead rank cannot be told from a cut-off one: no majority, no leader acts."""
    sim = quiet_sim(4, seed=11, ulfm=False)
    sim.settle(2.0)
    sim.crash(0)
    sim.crash(1)
    sim.settle(30.0)
    assert sim.problems == [] and sim.leaders() == [2] and sim.leased() == []


def test_leader_dying_while_announcing_its_victory():
    sim = quiet_sim(5, seed=7)
    sim.crash(0)
    sim.crash_on_declare = 1.0  # the next leader dies after sending some of its Coordinators
    while not sim.seen_events["leader crashed while announcing"]:
        run_until(sim, sim.now + 0.05)
    sim.crash_on_declare = 0.0
    sim.settle(30.0)
    assert sim.seen_events["leader crashed while announcing"] == 1 and 1 in sim.crashed
    assert sim.problems == [] and sim.leaders() == [2]


# --- seeded random schedules --------------------------------------------------------------

@pytest.mark.parametrize("focus, must_cover", [
    ("mixed", ["leader crashed", "candidate crashed mid-election", "leader isolated",
               "rank 0 paused past the probe timeout, recovered", "leader crashed while announcing"]),
    ("leader", ["leader crashed", "second leader crashed", "leader crashed while announcing"]),
    ("candidate", ["candidate crashed mid-election"]),
    ("feign", ["rank 0 paused past the probe timeout, recovered"]),
    ("isolate", ["leader isolated"]),
    ("partition", ["leased leader cut off in a minority", "leader lost its majority", "a leased leader while split",
                   "split with no majority side"]),
])
def test_random_schedules_elect_one_leader_the_lowest_live_rank(focus, must_cover):
    covered = run_schedules(focus)
    for event in must_cover:
        assert covered[event] >= SCHEDULES // 5, f"only {covered[event]} schedules with {event!r}: {covered}"


def test_replay_is_deterministic_and_prints_the_transcript(capsys):
    first = replay(11, "leader")
    out = capsys.readouterr().out
    again = replay(11, "leader")
    assert capsys.readouterr().out == out
    assert "Coordinator" in out and "problems: none" in out
    assert states(first) == states(again) and first.now == again.now


# --- the checks catch a broken protocol ---------------------------------------------------

def test_a_rank_picking_any_fresh_epoch_is_caught_leading_an_epoch_twice(monkeypatch):
    monkeypatch.setattr(bully.BullyNode, "_next_own_epoch", lambda self: self.seen + 1)
    with pytest.raises(AssertionError, match=r"epoch \d+ has leaders"):
        run_schedules("leader", range(30))


def test_a_rank_that_never_challenges_a_lower_leader_is_caught(monkeypatch):
    monkeypatch.setattr(bully.BullyNode, "_learn", lambda self, leader, epoch, now: (
        [] if leader == self.rank or leader in self.failed else self._follow(leader, epoch, now)))
    with pytest.raises(AssertionError, match=r"replay\(\d+, 'isolate'\)"):
        run_schedules("isolate", range(60))


def test_a_leader_that_never_renews_its_lease_is_caught(monkeypatch):
    def silent(self, now):
        self._renew_at = now + self.timing.renew
        return []
    monkeypatch.setattr(bully.BullyNode, "_renew", silent)
    with pytest.raises(AssertionError, match="leaders"):
        run_schedules("isolate", range(60))


def test_bully_without_the_majority_rule_is_caught_with_two_leased_leaders(monkeypatch):
    monkeypatch.setattr(bully.BullyNode, "_lease_end", lambda self, now: float("inf"))
    with pytest.raises(AssertionError, match="both hold a majority's lease"):
        run_schedules("partition", range(60))


def test_a_rank_that_backs_two_leaders_at_once_is_caught(monkeypatch):
    monkeypatch.setattr(bully.BullyNode, "_free_to_back", lambda self, leader, now: True)
    with pytest.raises(AssertionError, match="both hold a majority's lease"):
        run_schedules("partition", range(100))
