"""Shipping under a real mpirun: exact counts from bytes sent by the master.

On one host `--ship always` makes every worker count shipped bytes only. On
the namespace cluster (utils/testcluster.py) the corpus folder is hidden from
every host but the first (an empty tmpfs over it): the ranks of hosts 2 and 3
cannot see a file, so `--ship auto` must ship and `--ship never` must fail,
naming a file and a host. The cluster tests need root, `ip` and `unshare` and
skip, saying why, elsewhere.
"""

from __future__ import annotations

import gzip
import re

import pytest

from utils.testcluster import TestCluster, leftovers, missing_requirements, unique_prefix

from .helpers import MPIRUN, PYTHON, REPO, assert_exact, json_of, program_env, run_program
from .test_distributed import PROG, generate_logs, merged
from .test_distributed_faults import CHUNK, Run
from .test_hosts import HOSTS, PER_HOST, ClusterRun

JOB_TIMEOUT = 90


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, exact totals): 30 small CRLF files, a 2 MB file without its last newline, a .gz."""
    root = tmp_path_factory.mktemp("ship_corpus")
    logs = root / "logs"  # alone in its folder: the cluster hides it, not the results beside it
    small = generate_logs.generate(logs, files=30, lines=200, seed=31, prefix="node", noise=0.1, malformed=0.05,
                                   blank=0.05, crlf=True)
    big = generate_logs.generate(logs, files=1, seed=32, prefix="big", total_bytes=2_000_000, noise=0.1,
                                 malformed=0.05, blank=0.05, no_final_newline=True)
    plain = root / "plain"
    zipped = generate_logs.generate(plain, files=1, lines=2000, seed=33, prefix="zipped", noise=0.1)
    with gzip.open(logs / "zipped1.log.gz", "wb") as dst:
        dst.write((plain / "zipped1.log").read_bytes())
    return logs, merged(small, big, zipped)


@pytest.fixture(scope="module")
def sequential(corpus):
    folder, _ = corpus
    return json_of(run_program("base_log_analyser.py", folder, "--json"))


def counts_of(doc: dict) -> dict:
    return {key: doc[key] for key in ("counts", "lines", "malformed", "blank", "files", "bytes")}


def test_ship_always_counts_what_the_sequential_program_counts(corpus, sequential, jobs, tmp_path):
    folder, expected = corpus
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--json", "--ship", "always", np=3)
    doc = run.finish(JOB_TIMEOUT)
    assert_exact(doc, expected)
    assert counts_of(doc) == counts_of(sequential)
    on_disk = sum(path.stat().st_size for path in folder.iterdir())
    assert on_disk <= doc["shipped_bytes"] < 2 * on_disk  # every byte at least once, line ends a little more
    assert run.job.stderr.strip() == "", run.job.stderr


def test_auto_ships_nothing_where_every_file_is_visible(corpus, jobs, tmp_path):
    folder, expected = corpus
    doc = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--json", np=3).finish(JOB_TIMEOUT)
    assert_exact(doc, expected)
    assert doc["shipped_bytes"] == 0


def test_a_worker_killed_while_counting_shipped_bytes(corpus, jobs, tmp_path):
    """Its tasks go back to the queue as usual; the master kept nothing of the shipment to clean."""
    folder, expected = corpus
    run = Run(jobs, tmp_path, folder, "--chunk-size", CHUNK, "--ship", "always", "--inject", "kill:2@0.3", np=3)
    doc = run.finish(JOB_TIMEOUT)
    assert_exact(doc, expected)
    assert doc["failed_workers"] == [2]
    assert "[Rank 2] Injected fault: kill" in run.job.stdout


@pytest.fixture(scope="module")
def hidden_cluster(corpus):
    """3 hosts x 2 slots where only the first host (ranks 0 and 1) sees the corpus folder."""
    why = missing_requirements()
    if why:
        pytest.skip(f"no test cluster of network namespaces here: {why}")
    folder, _ = corpus
    made = TestCluster.up(HOSTS, prefix=unique_prefix("lash"), slots=PER_HOST, hidden=[folder])
    yield made
    made.down()
    assert leftovers(made.prefix) == []


def test_files_seen_on_the_first_host_only_are_shipped_exactly(hidden_cluster, corpus, sequential, jobs, tmp_path):
    folder, expected = corpus
    run = ClusterRun(jobs, hidden_cluster, tmp_path, folder, "--chunk-size", CHUNK, "--json")
    doc = run.finish()
    assert_exact(doc, expected)
    assert counts_of(doc) == counts_of(sequential)
    assert list(doc["hosts"]) == list(hidden_cluster.hosts)
    assert doc["shipped_bytes"] > 0
    noise = [line for line in run.job.stderr.splitlines() if "setpgid" not in line]  # the ssh launcher's race
    assert noise == [], run.job.stderr


def test_ship_never_names_the_file_and_the_host_that_cannot_see_it(hidden_cluster, corpus, jobs, tmp_path):
    folder, _ = corpus
    output = tmp_path / "result.json"
    program = [PYTHON, REPO / PROG, folder, "--chunk-size", CHUNK, "--ship", "never", "--output", output,
               "--no-progress"]
    cmd = hidden_cluster.mpirun_cmd(MPIRUN, ["-np", HOSTS * PER_HOST], program)
    job = jobs.start(cmd, marker=str(output), env=hidden_cluster.env(program_env()), cwd=tmp_path)
    code = job.wait(JOB_TIMEOUT)
    errors = [line for line in job.stderr.splitlines() if "setpgid" not in line]
    assert code != 0 and not output.exists(), job.stderr
    assert len(errors) == 1 and "Traceback" not in job.stderr, job.stderr
    far = "|".join(hidden_cluster.hosts[1:])
    assert errors[0].startswith(f"{PROG}: error: "), errors
    assert re.search(rf"{folder}/\S+ is not visible on host ({far}) .*--ship never", errors[0]), errors


def test_the_hidden_folder_is_empty_on_the_other_hosts_only(hidden_cluster, corpus, jobs, tmp_path):
    """The cluster's --hide itself: the first host lists the corpus, the others an empty folder."""
    folder, _ = corpus
    marker = str(tmp_path / "listing")  # names this job's processes
    script = f"import os, socket; print(socket.gethostname(), len(os.listdir({str(folder)!r})))"
    cmd = hidden_cluster.mpirun_cmd(MPIRUN, ["-np", HOSTS * PER_HOST], [PYTHON, "-c", script, marker])
    job = jobs.start(cmd, marker=marker, env=hidden_cluster.env(program_env()), cwd=tmp_path)
    assert job.wait(JOB_TIMEOUT) == 0, job.stderr
    seen = dict(line.split() for line in job.stdout.splitlines() if line.strip())
    assert seen == {host: str(len(list(folder.iterdir()))) if host == hidden_cluster.hosts[0] else "0"
                    for host in hidden_cluster.hosts}, job.stdout

