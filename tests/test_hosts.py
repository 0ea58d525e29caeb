"""The distributed analyser across several hosts: 3 network namespaces x 2 ranks (utils/testcluster.py).

Real processes: mpirun runs in the cluster's head namespace and starts one
daemon (`prted`) per host through the cluster's launch agent, so the ranks of
different hosts talk over TCP across a bridge, each host with its own name.
The tests need root, `ip` and `unshare` (CI has them); elsewhere they skip,
saying why. Every wait polls a condition with a deadline; at the end no
namespace, link, file or process of a cluster may be left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from loganalyser.programs.distributed import FINALIZE_GRACE
from utils.jobcontrol import Jobs, job_pids, signal_pid, wait_for
from utils.testcluster import TestCluster, leftovers, missing_requirements, namespace_pids, unique_prefix

from .helpers import MPIRUN, PYTHON, REPO, assert_exact, program_env
from .test_distributed import PROG
from .test_distributed_faults import EXIT_GRACE, START_TIMEOUT, Run, corpus  # noqa: F401 - corpus is a fixture

HOSTS, PER_HOST = 3, 2
BIG = os.environ.get("HOSTS_BIG", "")  # opt-in (make chaos): a corpus of this size, e.g. 1GB, across the hosts


@pytest.fixture(scope="module")
def cluster():
    """3 hosts of 2 slots and a head, made once for the module; gone, with all it held, afterwards."""
    why = missing_requirements()
    if why:
        pytest.skip(f"no test cluster of network namespaces here: {why}")
    made = TestCluster.up(HOSTS, prefix=unique_prefix(), slots=PER_HOST)
    yield made
    made.down()
    assert leftovers(made.prefix) == []


class ClusterRun(Run):
    """A Run over the cluster's hosts: mpirun in the head namespace, PER_HOST ranks on each host."""

    def __init__(self, jobs: Jobs, cluster: TestCluster, tmp_path: Path, folder, *args):
        self.cluster = cluster
        self.output = tmp_path / "result.json"
        self.marker = str(self.output)
        program = [PYTHON, REPO / PROG, folder, *args, "--output", self.output, "--no-progress"]
        cmd = cluster.mpirun_cmd(MPIRUN, ["-np", HOSTS * PER_HOST], program)
        self.job = jobs.start(cmd, marker=self.marker, env=cluster.env(program_env()), cwd=tmp_path)

    def finish(self) -> dict:
        """Run.finish, then every process on every host gone; notes how long mpirun took to exit after the result."""
        doc = super().finish()
        ended = time.time() - (time.monotonic() - self.job.ended)
        self.exit_after_result = ended - self.output.stat().st_mtime
        wait_for(lambda: not self.processes_left(), EXIT_GRACE, "every process on the hosts to exit")
        return doc

    def processes_left(self) -> dict:
        """{namespace: pids} of the cluster's namespaces that still hold processes."""
        return {node: pids for node in self.cluster.nodes if (pids := namespace_pids(node))}


def test_three_hosts_two_ranks_each_count_exactly(cluster, corpus, jobs, tmp_path):
    folder, expected = corpus
    run = ClusterRun(jobs, cluster, tmp_path, folder, "--chunk-size", "64K", "--json")
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == [] and doc["reassigned_tasks"] == 0
    assert doc["hosts"] == {host: [PER_HOST * i + k for k in range(PER_HOST)] for i, host in enumerate(cluster.hosts)}
    assert json.loads(run.job.stdout) == doc
    noise = [line for line in run.job.stderr.splitlines() if "setpgid" not in line]  # the ssh launcher's race
    assert noise == [], run.job.stderr


@pytest.mark.skipif(not BIG, reason="opt-in, run by make chaos: HOSTS_BIG=1GB counts a corpus of that size on 3 hosts")
def test_three_hosts_count_a_big_corpus_exactly(cluster, jobs, tmp_path):
    from utils.generate_logs import generate

    folder = tmp_path / "big"
    expected = generate(str(folder), 8, seed=16, total_bytes=BIG, noise=0.05, malformed=0.01, blank=0.01)
    run = ClusterRun(jobs, cluster, tmp_path, folder, "--json", "--no-checkpoint")
    doc = run.finish()
    assert_exact(doc, expected)
    assert len(doc["hosts"]) == HOSTS and doc["failed_workers"] == []
    print(f"\n{BIG} on {HOSTS} hosts x {PER_HOST} ranks: {doc['elapsed_s']:.2f} s inside the job")


def test_ranks_of_one_host_killed_mid_run_its_daemon_alive(cluster, corpus, jobs, tmp_path):
    """Both ranks of host 2 die by SIGKILL while its prted lives on: the survivors get a process-failure
    error, the job finishes exactly within the same mpirun, and nothing hangs in MPI_Finalize."""
    folder, expected = corpus
    run = ClusterRun(jobs, cluster, tmp_path, folder, "--chunk-size", "64K", "--task-delay", "0.1")
    victims = [PER_HOST * 1 + k for k in range(PER_HOST)]  # the ranks of cluster.hosts[1]
    pids = [run.pid_of(rank) for rank in victims]
    assert all(pid in namespace_pids(cluster.hosts[1]) for pid in pids)
    run.wait_assigned(10)
    for pid in pids:
        assert signal_pid(pid, signal.SIGKILL)
    killed_at = run.assigned()
    assert any("prted" in _cmdline(pid) for pid in namespace_pids(cluster.hosts[1])), "host 2's daemon died too"
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == victims
    assert doc["reassigned_tasks"] >= 1
    assert doc["tasks"] > killed_at, "the kill did not land mid-run"
    assert sorted(doc["hosts"]) == sorted(cluster.hosts)
    # Survivors may hang in MPI_Finalize after a failure (open-mpi/ompi#11404); they give up after the grace.
    assert run.exit_after_result < FINALIZE_GRACE + 5, f"mpirun exited {run.exit_after_result:.1f} s after the result"


def test_down_removes_every_namespace_link_file_and_process(jobs):
    """A cluster taken down with a process still running inside each host leaves nothing behind."""
    why = missing_requirements()
    if why:
        pytest.skip(f"no test cluster of network namespaces here: {why}")
    cluster = TestCluster.up(2, prefix=unique_prefix() + "d")
    marker = f"testcluster-down-{cluster.prefix}"
    try:
        made = set(leftovers(cluster.prefix))
        assert {f"namespace {node}" for node in cluster.nodes} | {f"link {cluster.bridge}"} <= made
        for host in cluster.hosts:
            jobs.start(["ip", "netns", "exec", host, PYTHON, "-c", "import time; time.sleep(600)", marker],
                       marker=marker)
        wait_for(lambda: all(namespace_pids(host) for host in cluster.hosts), START_TIMEOUT, "a process in each host")
    finally:
        killed = cluster.down()
    assert len(killed) == len(cluster.hosts)
    assert leftovers(cluster.prefix) == []
    assert job_pids(marker) == []
    assert cluster.down() == [] and leftovers(cluster.prefix) == []  # idempotent


def test_the_agent_runs_nothing_outside_its_cluster(cluster):
    proc = subprocess.run([cluster.agent, "-x", "elsewhere", "true"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 255 and "no host of cluster" in proc.stderr
    proc = subprocess.run([cluster.agent, cluster.hosts[0], "hostname; echo $PRTE_MCA_plm_ssh_agent."],
                          capture_output=True, text=True, timeout=10, env=cluster.env())
    assert proc.stdout.split() == [cluster.hosts[0], "."], proc.stderr  # its own name, a fresh environment


def test_without_root_the_reason_is_given(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert missing_requirements() == "network namespaces need root"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""
