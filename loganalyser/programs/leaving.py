"""Leaving a job after a failure without MPI_Finalize, once that is safe.

After a rank died, MPI_Finalize can block the survivors (open-mpi/ompi#11404),
and each would only give up after FINALIZE_GRACE. Skipping it is allowed
(utils/mpi_defaults.sh) but must not lose the Release: a rank that never gets
it elects a new master, which reports a second result. So the final master
says in its Release that a failure happened; each rank that gets such a
Release answers Left and leaves without finalising; the final master leaves
without finalising once every rank it released said Left (each has its
Release), and otherwise finalises within the grace as before.
"""

from __future__ import annotations

import time

from loganalyser.cluster.backoff import IdleBackoff
from loganalyser.cluster.node import RankNode
from loganalyser.cluster.protocol import Left
from loganalyser.cluster.seams import Transport


def leave_at_once(node: RankNode, transport: Transport, grace: float) -> bool:
    """True if this rank may exit without MPI_Finalize now (see the module's docstring).
    A released rank says Left first; the final master waits up to `grace` s for every Left."""
    if node.released_by is not None:
        source, release = node.released_by
        if not release.after_failure:
            return False
        transport.send(source, Left(release.epoch))
        transport.flush(timeout=grace)
        return True
    master = node.master
    if not node.final_master or master is None or not master.released or not master.scheduler.failed_workers:
        return False
    waiting = set(master.released)
    deadline = time.monotonic() + grace
    idle = IdleBackoff()
    while waiting - transport.known_failed():
        if time.monotonic() >= deadline:
            return False
        got = transport.poll()
        if got is not None and isinstance(got[1], Left):
            waiting.discard(got[0])
            idle.reset()
        elif got is None:
            idle.sleep()
    return True
