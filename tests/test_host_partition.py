"""A host's network cut mid-run on the namespace cluster: the majority rule with real processes.

The master's host (ranks 0 and 1 of 3 hosts x 2 ranks: a third of the job)
loses its link (`ip link set eth0 down` inside its namespace). Nothing tells
the others (no ULFM heartbeat detector): the four ranks left elect a master
of their own once rank 0's lease has run out, and it reports the one exact
result; rank 0, alone with rank 1, loses the majority and reports nothing.
Then the link comes back, the cut-off ranks read the Release that waited for
them in TCP, and every process ends.
"""

from __future__ import annotations

import json
import subprocess

from utils.jobcontrol import wait_for

from .helpers import assert_exact
from .test_failover import assert_one_exact_table
from .test_distributed_faults import EXIT_GRACE, JOB_TIMEOUT, corpus  # noqa: F401 - corpus is a fixture
from .test_hosts import PER_HOST, ClusterRun, cluster  # noqa: F401 - cluster is a fixture


def _link(host: str, state: str) -> None:
    subprocess.run(["ip", "-n", host, "link", "set", "eth0", state], check=True, capture_output=True, timeout=10)


def test_the_master_s_host_cut_off_mid_run_gives_one_exact_result_from_the_majority(cluster, corpus, jobs, tmp_path):
    folder, expected = corpus
    run = ClusterRun(jobs, cluster, tmp_path, folder, "--chunk-size", "64K", "--task-delay", "0.3")
    cut_off = cluster.hosts[0]  # ranks 0 (the master) and 1
    run.wait_assigned(10)
    _link(cut_off, "down")
    try:
        wait_for(lambda: run.output.exists() or not run.job.running(), JOB_TIMEOUT, "the majority's result")
        assert run.output.exists(), f"no result\nstdout:\n{run.job.stdout[-2000:]}\nstderr:\n{run.job.stderr[-3000:]}"
        doc = json.loads(run.output.read_text())
        assert run.job.running(), "mpirun ended while a host was cut off"
    finally:
        _link(cut_off, "up")
    assert_exact(doc, expected)
    assert doc["master_rank"] >= PER_HOST and doc["epoch"] > 1  # a master of the majority's side
    wait_for(lambda: not run.job.running(), EXIT_GRACE + 30, "mpirun to end once the link is back")
    assert_one_exact_table(run.job.stdout, expected)  # the cut-off side printed no result of its own
    assert "[Rank 0] Lost the majority (epoch 1)" in run.job.stdout, run.job.stdout[-3000:]
    wait_for(lambda: not run.processes_left(), EXIT_GRACE, "every process on the hosts to exit")
