"""The master's whole host lost, under the supervisor (utils/supervise.py), on the namespace cluster.

3 hosts x 2 ranks; each host keeps its own checkpoints (`--checkpoint-dir
.../{host}`), and each checkpoint is copied to a rank on another host and
committed once two hosts hold it. Mid-run the master's host dies as a machine
does: every process in it is SIGKILLed, Open MPI's daemon too
(`TestCluster.lose`), and its checkpoint folder disappears with it (renamed
away). mpirun ends the whole job; the supervisor sees no result, finds the host
unreachable, and starts the job again on the other two, which resumes from the
newest committed checkpoint (a copy on a surviving host). The result is exact,
and the tasks the last committed checkpoint held before the loss are not
counted again. A replica that dies is replaced by the next rank in line. Needs root, `ip` and `unshare`; skips elsewhere, saying why.
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from loganalyser.persistence.store import read_commit
from utils.jobcontrol import signal_pid, wait_for
from utils.testcluster import TestCluster, leftovers, missing_requirements, namespace_pids, unique_prefix

from .helpers import PYTHON, REPO, assert_exact, program_env
from .test_distributed import PROG
from .test_hosts import ClusterRun
from .test_distributed_faults import JOB_TIMEOUT, START_TIMEOUT, corpus  # noqa: F401 - corpus is a fixture

HOSTS, PER_HOST = 3, 2
COMMITTED = re.compile(r"\[Master\] Checkpoint (\d+) committed \((\d+) task result")


@pytest.fixture
def cluster():
    why = missing_requirements()
    if why:
        pytest.skip(f"no test cluster of network namespaces here: {why}")
    made = TestCluster.up(HOSTS, prefix=unique_prefix("lhl"), slots=PER_HOST)
    yield made
    made.down()
    assert leftovers(made.prefix) == []


def committed(text: str) -> list[tuple[int, int]]:
    """(sequence, task results) of each commit the master announced."""
    return [(int(seq), int(tasks)) for seq, tasks in COMMITTED.findall(text)]


def test_master_host_lost_with_its_checkpoints_supervisor_resumes_on_the_others(cluster, corpus, jobs, tmp_path):
    folder, expected = corpus
    checkpoints, state = tmp_path / "ck", tmp_path / "state"
    program = [PYTHON, REPO / PROG, folder, "--chunk-size", "64K", "--task-delay", "0.4", "--no-progress",
               "--checkpoint-dir", f"{checkpoints}/{{host}}", "--checkpoint-every", "1", "--checkpoint-interval", "0.5"]
    cmd = cluster.head_cmd([PYTHON, "-m", "utils.supervise", "--hostfile", cluster.hostfile, "--restarts", "2",
                            "--state-dir", state, "--", "--bind-to", "none", "-np", HOSTS * PER_HOST, *program])
    started = time.monotonic()
    job = jobs.start(cmd, marker=str(state), env=cluster.env(program_env()), cwd=REPO)
    first = state / "attempt-1.out"
    wait_for(lambda: len(committed(_read(first))) >= 2 or not job.running(), START_TIMEOUT + JOB_TIMEOUT,
             "two committed checkpoints")
    assert job.running(), f"the job ended before the loss:\n{job.stderr[-2000:]}"

    lost = cluster.hosts[0]  # ranks 0 and 1: the master
    assert any("prted" in _cmdline(pid) for pid in namespace_pids(lost))
    killed = cluster.lose(lost)
    lost_at = time.monotonic()
    (checkpoints / lost).rename(checkpoints / f"{lost}.unreachable")
    assert not (state / "result.json").exists(), "the loss came after the result"
    before = committed(_read(first))
    assert len(killed) >= PER_HOST + 1  # the ranks and the daemon at least

    second = state / "attempt-2.out"
    wait_for(lambda: "[Master] Assigning" in _read(second) or not job.running(), JOB_TIMEOUT, "a new assignment")
    recovery = time.monotonic() - lost_at
    code = job.wait(JOB_TIMEOUT)
    total = time.monotonic() - started
    assert code == 0, job.stderr[-3000:]
    assert "attempt 1: host(s) " + lost + " unreachable" in job.stderr

    doc = json.loads((state / "result.json").read_text())
    assert_exact(doc, expected)
    assert job.stdout.count("ANALYSIS RESULTS") == 1  # one result on stdout
    assert sorted(doc["hosts"]) == sorted(cluster.hosts[1:])
    assert doc["resumed_from"].startswith(str(checkpoints)) and lost not in doc["resumed_from"]
    last_sequence, last_tasks = before[-1]
    assert doc["restored_tasks"] >= last_tasks, f"resumed {doc['restored_tasks']} results; {before[-1]} was committed"
    wait_for(lambda: not any(namespace_pids(node) for node in cluster.nodes if node != lost), 15,
             "every process on the surviving hosts to exit")
    print(f"\nlost host: killed at {lost_at - started:.2f} s; recovery (kill -> first new assignment) {recovery:.2f} s; run wall time {total:.2f} s "
          f"(attempt 2: {doc['elapsed_s']:.2f} s); resumed {doc['restored_tasks']} of {doc['tasks']} tasks from "
          f"{doc['resumed_from']} (last committed before the loss: {last_sequence}, {last_tasks} results)\n"
          + "\n".join(line for line in job.stderr.splitlines() if line.startswith("supervise:")))


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _read(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_a_dead_replica_is_replaced_by_the_next_rank_in_line(cluster, corpus, jobs, tmp_path):
    """The ranks of the replica's host are SIGKILLed (its daemon lives): the master sends checkpoints to a
    rank on the third host instead, commits go on, and the same mpirun finishes exact."""
    folder, expected = corpus
    checkpoints = tmp_path / "ck"
    run = ClusterRun(jobs, cluster, tmp_path, folder, "--chunk-size", "64K", "--task-delay", "0.2",
                     "--checkpoint-dir", f"{checkpoints}/{{host}}", "--checkpoint-every", "1",
                     "--checkpoint-interval", "0.5")
    victims = [PER_HOST * 1 + k for k in range(PER_HOST)]  # host 2: rank 2 is the replica
    pids = [run.pid_of(rank) for rank in victims]
    wait_for(lambda: committed(run.job.stdout) or not run.job.running(), START_TIMEOUT + JOB_TIMEOUT, "a commit")
    for pid in pids:
        assert signal_pid(pid, signal.SIGKILL)
    commits_before = len(committed(run.job.stdout))
    doc = run.finish()
    assert_exact(doc, expected)
    assert doc["failed_workers"] == victims
    # Rank 3 (on the same host) may take rank 2's place before its own death is noticed: the line ends on host 3.
    replaced = re.findall(r"\[Master\] Replica rank (\d) lost: checkpoints go to rank (\d) instead", run.job.stdout)
    assert replaced and replaced[-1] == ("3" if len(replaced) > 1 else "2", str(PER_HOST * 2)), replaced
    assert len(committed(run.job.stdout)) > commits_before  # the quorum is met with host 3's copy
    final = committed(run.job.stdout)[-1][0]
    for host in (cluster.hosts[0], cluster.hosts[2]):
        assert read_commit(str(checkpoints / host))[0] == final
