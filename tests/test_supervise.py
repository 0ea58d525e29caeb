"""The supervisor (utils/supervise.py) without MPI: its decisions as a pure function of the
evidence on an injected clock, its argument handling, and its shell driving a fake mpirun
and a fake launch agent (real processes, no MPI): a lost host, a restart on the others,
an mpirun that hangs after the result, exactly one result on stdout."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from utils.supervise import (
    EndHung,
    Evidence,
    Finished,
    GiveUp,
    Probe,
    Restart,
    Wait,
    attempt_args,
    decide,
    read_hostfile,
    SuperviseError,
)

from .helpers import PYTHON, REPO

HOSTS = ("h1", "h2", "h3")


def evidence(**changes) -> Evidence:
    base = dict(running=False, result_at=None, exit_code=0, reachable=None, hosts=HOSTS, restarts_left=2)
    return Evidence(**{**base, **changes})


def test_a_fresh_result_finishes_the_job_and_mpirun_exit_status_does_not_matter():
    assert decide(evidence(result_at=10.0, exit_code=137), now=11.0) == Finished()
    assert decide(evidence(result_at=10.0, exit_code=0), now=11.0) == Finished()


def test_an_mpirun_that_outlives_the_result_is_ended_after_the_grace():
    running = evidence(running=True, exit_code=None, result_at=10.0)
    assert decide(running, now=14.9, hang_grace=5.0) == Wait()
    assert decide(running, now=15.0, hang_grace=5.0) == EndHung()


def test_a_running_job_without_result_is_left_alone():
    assert decide(evidence(running=True, exit_code=None), now=1e9) == Wait()


def test_exit_zero_without_a_result_is_no_success_the_hosts_are_probed():
    assert decide(evidence(exit_code=0), now=0) == Probe()


def test_a_lost_host_means_a_restart_on_the_others():
    step = decide(evidence(exit_code=0, reachable=("h2", "h3")), now=0)
    assert step == Restart(("h2", "h3"), "host(s) h1 unreachable")


def test_a_lost_host_outweighs_the_jobs_own_exit_code():
    assert isinstance(decide(evidence(exit_code=3, reachable=("h3",)), now=0), Restart)


def test_a_job_that_ended_itself_with_every_host_there_is_not_restarted():
    step = decide(evidence(exit_code=3, reachable=HOSTS), now=0)
    assert step == GiveUp(3, "the job ended itself (exit 3) with every host reachable")


def test_a_death_without_result_on_reachable_hosts_is_restarted_on_all():
    assert decide(evidence(exit_code=137, reachable=HOSTS), now=0) == Restart(HOSTS, "mpirun ended (exit 137) without a result")


def test_no_restart_left_no_host_left_or_a_stop_give_up():
    assert decide(evidence(exit_code=0, reachable=("h2",), restarts_left=0), now=0).why.endswith("no restart left")
    assert decide(evidence(exit_code=0, reachable=()), now=0).why.endswith("no host left")
    assert decide(evidence(exit_code=4, stopping=True), now=0) == GiveUp(4, "stopped by a signal")


def test_np_is_cut_to_the_slots_left():
    args = ["--bind-to", "none", "-np", "6", "python", "prog.py", "-n", "9"]
    assert attempt_args(args, 4) == ["--bind-to", "none", "-np", "4", "python", "prog.py", "-n", "9"]
    assert attempt_args(args, 8) == args
    assert attempt_args(["--np=6", "p"], 2) == ["--np=2", "p"]


def test_hostfile_lines_keep_their_slots(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("# cluster\nn1 slots=2\n\nn2 slots=4 max_slots=8  # big\nn3\n")
    assert [(h.host, h.slots) for h in read_hostfile(str(path))] == [("n1", 2), ("n2", 4), ("n3", 1)]
    path.write_text("n1 slots=x\n")
    with pytest.raises(SuperviseError, match="bad slots"):
        read_hostfile(str(path))


# --- the shell, with a fake mpirun and a fake launch agent --------------------------------

FAKE_MPIRUN = textwrap.dedent("""\
    import os, sys, time
    args = sys.argv[1:]
    state = os.environ["FAKE_STATE"]
    attempt = len([n for n in os.listdir(state) if n.startswith("ran-")]) + 1
    open(os.path.join(state, f"ran-{attempt}"), "w").write(" ".join(args))
    hostfile = open(args[args.index("--hostfile") + 1]).read().split()
    output = args[args.index("--output") + 1]
    print(f"attempt {attempt} log line", flush=True)
    if attempt == 1:  # the host h1 dies with its daemon: mpirun ends, exit status 0, no result
        open(os.path.join(state, "down"), "w").write("h1")
        sys.exit(0)
    assert "h1" not in hostfile, hostfile
    with open(output + ".tmp", "w") as f:
        f.write('{"counts": {}}')
    os.replace(output + ".tmp", output)
    print("THE RESULT", flush=True)
    time.sleep(60)  # hangs after the result (a rank stuck in MPI_Finalize)
""")

FAKE_AGENT = textwrap.dedent("""\
    #!/bin/sh
    grep -qx "$1" "$FAKE_STATE/down" 2>/dev/null && exit 255
    exit 0
""")


def test_the_supervisor_restarts_without_the_lost_host_and_ends_a_hung_mpirun(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    mpirun = tmp_path / "mpirun"
    mpirun.write_text(f"#!/bin/sh\nexec {PYTHON} {tmp_path / 'mpirun.py'} \"$@\"\n")
    (tmp_path / "mpirun.py").write_text(FAKE_MPIRUN)
    agent = tmp_path / "agent"
    agent.write_text(FAKE_AGENT)
    for script in (mpirun, agent):
        script.chmod(0o755)
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("h1 slots=2\nh2 slots=2\nh3 slots=2\n")
    env = {"PATH": "/usr/bin:/bin", "FAKE_STATE": str(fake), "PRTE_MCA_plm_ssh_agent": str(agent)}
    proc = subprocess.run([PYTHON, "-m", "utils.supervise", "--hostfile", hostfile, "--restarts", "1",
                           "--hang-grace", "0.5", "--state-dir", tmp_path / "state", "--mpirun", mpirun, "--",
                           "-np", "6", "prog"], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "attempt 2 log line\nTHE RESULT\n"  # one result: the attempt that made it
    second = (fake / "ran-2").read_text().split()
    assert second[:4] == ["--hostfile", str(tmp_path / "state" / "hostfile-2"), "--with-ft", "ulfm"]
    assert second[second.index("-np") + 1] == "4"
    assert (tmp_path / "state" / "hostfile-2").read_text() == "h2 slots=2\nh3 slots=2\n"
    assert "host(s) h1 unreachable; restarting on h2, h3" in proc.stderr
    assert "has not exited 0.5 s later; ending it" in proc.stderr


def test_bad_arguments_are_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "utils.supervise", "--hostfile", tmp_path / "none", "--", "x"],
                          capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot read hostfile" in proc.stderr
