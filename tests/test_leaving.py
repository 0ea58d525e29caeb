"""Leaving without MPI_Finalize after a failure (programs/leaving.py), with a fake transport: a
released rank says Left before it goes; the final master skips Finalize only once every rank it
released said Left (or is known dead), and otherwise finalises as before."""

from __future__ import annotations

from types import SimpleNamespace

from loganalyser.cluster.protocol import Left, Release
from loganalyser.programs.leaving import leave_at_once


class FakeTransport:
    def __init__(self, incoming=(), failed=()):
        self.incoming = list(incoming)
        self.failed = set(failed)
        self.sent = []
        self.flushed = False

    def send(self, dest, message):
        self.sent.append((dest, message))

    def flush(self, timeout):
        self.flushed = True

    def poll(self):
        return self.incoming.pop(0) if self.incoming else None

    def known_failed(self):
        return set(self.failed)


def worker(release):
    return SimpleNamespace(released_by=(0, release) if release else None, final_master=False, master=None)


def final_master(released, failed_workers=(3,)):
    master = SimpleNamespace(released=released, scheduler=SimpleNamespace(failed_workers=list(failed_workers)))
    return SimpleNamespace(released_by=None, final_master=True, master=master)


def test_a_rank_released_after_a_failure_says_left_then_leaves():
    transport = FakeTransport()
    assert leave_at_once(worker(Release(2, after_failure=True)), transport, grace=1.0)
    assert transport.sent == [(0, Left(2))] and transport.flushed


def test_without_a_failure_every_rank_finalises():
    transport = FakeTransport()
    assert not leave_at_once(worker(Release(2)), transport, grace=1.0)
    assert transport.sent == []
    assert not leave_at_once(final_master([1, 2], failed_workers=()), FakeTransport(), grace=1.0)
    assert not leave_at_once(worker(None), FakeTransport(), grace=1.0)  # ended otherwise (aborted, feigning)


def test_the_final_master_leaves_once_every_released_rank_said_left():
    transport = FakeTransport([(1, Left(2)), (4, Release(2)), (2, Left(2))], failed={3})
    assert leave_at_once(final_master([1, 2]), transport, grace=5.0)
    dead_meanwhile = FakeTransport([(1, Left(2))], failed={2})
    assert leave_at_once(final_master([1, 2]), dead_meanwhile, grace=5.0)


def test_a_missing_left_makes_the_final_master_finalise_after_the_grace():
    transport = FakeTransport([(1, Left(2))])
    assert not leave_at_once(final_master([1, 2]), transport, grace=0.05)
