"""Bytes shipped per second from the master to a worker (cluster/shipping.py over MPI), nothing counted.

Rank 0 answers shipping requests as the master does; rank 1 fetches FILE in
the steps a worker counts (4 MiB), the next step on its way while the current
one is taken, as the worker does, through the same transport (non-blocking
sends, matched probes). Each pass is timed on the wall clock at rank 1; the
median of --repeat passes is printed in MB/s. It is a figure, not a test.

    .venv/bin/mpirun -np 2 .venv/bin/python -m utils.ship_bench FILE --repeat 5
    .venv/bin/python -m utils.testcluster up 2 --slots 1      # two hosts, a rank each
    .venv/bin/python -m utils.testcluster run -- -np 2 $PWD/.venv/bin/python -m utils.ship_bench FILE
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from dataclasses import dataclass

from loganalyser.cluster.backoff import IdleBackoff
from loganalyser.cluster.shipping import ShipChunk, Shipping, ShipRequest
from loganalyser.cluster.worker import STEP_BYTES, count_steps
from loganalyser.work.inputs import find_log_files
from loganalyser.work.tasks import make_task, whole_piece

MASTER, WORKER = 0, 1


@dataclass(frozen=True)
class Done:
    """Rank 1 -> rank 0: the passes are over."""

    TAG = 99
    epoch: int = 1


def serve(transport, shipping: Shipping) -> None:
    """Rank 0: takes requests and answers them a turn's worth at a time, as the master's loop does."""
    idle = IdleBackoff()
    while True:
        got = transport.poll()
        if got is not None and isinstance(got[1], Done):
            return
        if got is not None and isinstance(got[1], ShipRequest):
            shipping.take_request(*got, 1)
        if shipping.serve_some() or got is not None:
            idle.reset()
        else:
            idle.sleep()


def fetch_all(transport, shipping: Shipping, steps) -> int:
    """Fetches every step once; returns the bytes received."""
    before = shipping.received_bytes
    for step, after in zip(steps, [*steps[1:], None]):
        while shipping.files_for(step, MASTER, 1, after) is None:
            got = transport.poll()
            if got is not None and isinstance(got[1], ShipChunk):
                shipping.on_chunk(*got)
        shipping.counted(step)
    return shipping.received_bytes - before


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.ship_bench", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="the file to ship (visible to rank 0)")
    parser.add_argument("--repeat", type=int, default=3, help="passes (default 3)")
    args = parser.parse_args(argv)
    from mpi4py import MPI

    from loganalyser.cluster.transport import MpiTransport

    comm = MPI.COMM_WORLD
    if comm.Get_size() != 2:
        parser.error("run it with mpirun -np 2")
    transport = MpiTransport(comm)
    shipping = Shipping("always", socket.gethostname(), transport.send)
    hosts = comm.allgather(socket.gethostname())
    if comm.Get_rank() == MASTER:
        serve(transport, shipping)
        transport.flush(timeout=5.0)
        return 0
    (log_file,) = find_log_files([args.file])
    steps = count_steps(make_task([whole_piece(log_file)]), STEP_BYTES)
    rates = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        shipped = fetch_all(transport, shipping, steps)
        rates.append(shipped / (time.perf_counter() - started) / 1e6)
    transport.send(MASTER, Done())
    transport.flush(timeout=5.0)
    print(f"shipped {shipped} bytes {hosts[0]} -> {hosts[1]}: median {statistics.median(rates):.0f} MB/s "
          f"({', '.join(f'{r:.0f}' for r in rates)})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
