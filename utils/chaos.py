#!/usr/bin/env python3
"""Chaos campaign (`make chaos`): real jobs, real signals, randomised, checked.

Each run draws, from one seeded generator: a corpus shape (many small files,
a few large ones, or mixed) in one of the 22 built-in log formats (mixed
corpora add seed-format small files beside it), a rank count (3 to 6) and one to three faults at
random moments: SIGKILL of a worker, SIGKILL of the master, SIGSTOP then
SIGCONT of any rank, SIGINT of the whole job then a resume, SIGKILL of the
whole job then a resume, or `--chaos` feigned failures. Every run is checked:
final counts equal the generator's, the job ends within a bound (no hang),
exactly one final result, no traceback on stderr, no process left behind, the
newest checkpoint loads. Seed-format corpora are analysed with statistics on
(a 1 s timeline, every template, counts per file), and those must equal the
generator's oracle too. One more scenario interrupts a single job 20 times at
random moments (SIGINT and SIGKILL mixed) and checks the resumed result.

    python -m utils.chaos --runs 50            # the full campaign
    python -m utils.chaos --runs 5 --quick     # the short one `make test` runs

Writes reports/chaos.json and prints (and writes reports/chaos.txt) a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loganalyser.counting.analysis import Analysis
from loganalyser.persistence.store import CheckpointStore
from loganalyser.work.scanning import fingerprint_of
from utils import format_logs
from utils.generate_logs import generate, merge_totals, statistics_mismatch
from utils.jobcontrol import Job, job_pids, rank_pid, session_pids, signal_pid, wait_for

REPO = Path(__file__).resolve().parent.parent

FAULTS = ("kill_worker", "kill_master", "stop_cont", "sigint_resume", "sigkill_resume", "feign")
RUN_BOUND = 150.0  # seconds a run (all its restarts) may take before it counts as a hang
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


@dataclass
class RunReport:
    run: int
    shape: str
    ranks: int
    faults: list[str]
    files: int = 0
    bytes: int = 0
    exact: bool = False
    results: int = 0  # final results printed (JSON documents), must be 1
    restarts: int = 0  # resumes after a whole-job interruption
    hang: bool = False
    traceback: bool = False
    orphans: int = 0
    checkpoint_ok: bool = True
    recovery_s: list[float] = field(default_factory=list)  # master killed -> new master announced
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exact and self.results == 1 and not (self.hang or self.traceback or self.orphans) and self.checkpoint_ok


FORMAT_NAMES = ("seed", *sorted(format_logs.FORMATS))


def generate_in(fmt: str, folder: Path, files: int, lines: int, seed: int, prefix: str = "node") -> dict:
    """`files` logs of `lines` lines in format `fmt`, traps included; their exact totals."""
    traps = {"noise": 0.05, "malformed": 0.01, "blank": 0.01}
    if fmt == "seed":  # with the statistics' oracle: a seed-only corpus is also checked for them
        return generate(folder, files=files, lines=lines, seed=seed, prefix=prefix, stats=True, bucket_s=STATS_BUCKET_S,
                        **traps)
    return format_logs.generate(fmt, str(folder), files=files, lines=lines, seed=seed, prefix=prefix, traces=0.02,
                                crlf=seed % 3 == 0, no_final_newline=seed % 4 == 0, **traps)


def make_corpus(rng: random.Random, folder: Path, quick: bool) -> tuple[str, dict]:
    """A corpus of a random shape and format; returns (shape/format, expected counts)."""
    shape = rng.choice(["many-small", "few-large", "mixed"])
    fmt = rng.choice(FORMAT_NAMES)
    scale = 0.25 if quick else 1.0
    seed = rng.randrange(1 << 30)
    if shape == "many-small":
        parts = [generate_in(fmt, folder, int(400 * scale) + 20, 200, seed)]
    elif shape == "few-large":
        parts = [generate_in(fmt, folder, rng.randint(1, 3), int(120_000 * scale), seed)]
    else:
        parts = [generate_in("seed", folder, int(60 * scale) + 5, 500, seed, prefix="small"),
                 generate_in(fmt, folder, 1, int(150_000 * scale), seed + 1, prefix="big")]
    return f"{shape}/{fmt}", merge_totals(*parts)  # zero counts dropped, as the analyser reports


CHUNK = 256 << 10  # task size the campaign asks for: many tasks, so faults land mid-run
STATS_BUCKET_S = 1
STATS_OPTIONS = ["--bucket", f"{STATS_BUCKET_S}s", "--top", "100000", "--by", "file"]  # every template listed
STATS_ANALYSIS = Analysis(bucket_s=STATS_BUCKET_S, top=100000, by="file")  # the same, for the fingerprint


def job_command(corpus: Path, ranks: int, checkpoints: Path, output: Path, chaos_seed: int | None,
                expected: dict, duration: float) -> list[str]:
    """The job's command line; the per-task delay makes it last about `duration` seconds."""
    tasks = expected["bytes"] / CHUNK + expected["files"] / 512 + 1
    delay = min(1.0, max(0.01, duration * (ranks - 1) / tasks))
    python = REPO / ".venv" / "bin" / "python"
    cmd = [REPO / ".venv" / "bin" / "mpirun", "-np", ranks, python, REPO / "distributed_log_analyser.py", corpus,
           "--no-progress", "--output", output, "--checkpoint-dir", checkpoints, "--chunk-size", CHUNK,
           "--task-delay", f"{delay:.3f}", "--worker-timeout", "2", "--checkpoint-interval", "0.5"]
    if chaos_seed is not None:
        cmd += ["--chaos", chaos_seed]
    if "stats" in expected:
        cmd += STATS_OPTIONS
    return [str(c) for c in cmd]


def run_one(index: int, seed: int, scratch: Path, quick: bool) -> RunReport:
    rng = random.Random(f"{seed}:{index}")
    folder = scratch / f"run{index:03d}"
    shutil.rmtree(folder, ignore_errors=True)
    corpus = folder / "logs"
    shape, expected = make_corpus(rng, corpus, quick)
    ranks = rng.randint(3, 6)
    faults = [rng.choice(FAULTS) for _ in range(rng.randint(1, 3))]
    report = RunReport(index, shape, ranks, faults, expected["files"], expected["bytes"])
    chaos_seed = rng.randrange(1000) if "feign" in faults else None
    cmd = job_command(corpus, ranks, folder / "checkpoints", folder / "result.json", chaos_seed, expected,
                      duration=4.0 if quick else 8.0)
    started = time.monotonic()
    outputs = []
    pending = [f for f in faults if f != "feign"]
    while True:
        job = Job.start(cmd, env=ENV, cwd=folder)
        try:
            interrupted = _inject(job, pending, rng, str(corpus), report, started)
            code = job.wait(max(1.0, RUN_BOUND - (time.monotonic() - started)))
        except AssertionError as exc:  # the bound ran out: a hang
            report.hang = True
            report.problems.append(str(exc).splitlines()[0])
            job.kill()
            break
        outputs.append(job)
        if interrupted and code != 0:
            report.restarts += 1
            continue
        if code != 0:
            report.problems.append(f"exit code {code}: {job.stderr.strip().splitlines()[-1:] }")
        break
    report.wall_s = round(time.monotonic() - started, 3)
    _check(report, outputs, expected, folder, corpus)
    return report


def _inject(job: Job, pending: list[str], rng: random.Random, marker: str, report: RunReport, started: float) -> bool:
    """Fires the pending faults at random moments of this job; True if it ended the whole job."""
    try:
        wait_for(lambda: job.count("Assigning") >= 2 or not job.running(), 60, "the first assignments")
    except AssertionError:
        return False
    while pending and job.running():
        fault = pending.pop(0)
        deadline = time.monotonic() + rng.uniform(0.2, 2.0)
        while time.monotonic() < deadline and job.running():
            time.sleep(0.02)
        if not job.running():
            return False
        if fault in ("sigint_resume", "sigkill_resume"):
            _interrupt_job(job, fault, marker)
            return True
        _hurt_rank(job, fault, rng, marker, report, report.ranks)
    return False


def _interrupt_job(job: Job, fault: str, marker: str) -> None:
    if fault == "sigint_resume":
        pid = rank_pid(0, marker)
        master = pid if pid is not None else job.pid
        signal_pid(master, signal.SIGINT)  # the master checkpoints and ends the job resumably
    else:
        for pid in session_pids(job.pid):
            signal_pid(pid, signal.SIGKILL)


def _hurt_rank(job: Job, fault: str, rng: random.Random, marker: str, report: RunReport, ranks: int) -> None:
    if fault == "kill_master":
        master = _current_master(job)
        pid = rank_pid(master, marker)
        if pid is not None and signal_pid(pid, signal.SIGKILL):
            killed_at = time.monotonic()
            before = job.count("Became master")
            try:
                wait_for(lambda: job.count("Became master") > before or not job.running(), 30, "a new master")
                if job.running() or job.count("Became master") > before:
                    report.recovery_s.append(round(time.monotonic() - killed_at, 3))
            except AssertionError:
                report.problems.append("no new master within 30 s")
    elif fault == "kill_worker":
        master = _current_master(job)
        pid = rank_pid(rng.choice([r for r in range(ranks) if r != master]), marker)
        if pid is not None:
            signal_pid(pid, signal.SIGKILL)
    elif fault == "stop_cont":
        pid = rank_pid(rng.randrange(ranks), marker)
        if pid is not None and signal_pid(pid, signal.SIGSTOP):
            end = time.monotonic() + rng.uniform(1.0, 5.0)
            while time.monotonic() < end and job.running():
                time.sleep(0.02)
            signal_pid(pid, signal.SIGCONT)


def _current_master(job: Job) -> int:
    """The newest master the job announced (rank 0 until an election)."""
    master = 0
    for line in job.stdout.splitlines():
        if "] Became master" in line and line.startswith("[Rank "):
            master = int(line[6 : line.index("]")])
    return master


def _check(report: RunReport, jobs: list[Job], expected: dict, folder: Path, corpus: Path) -> None:
    report.traceback = any("Traceback" in job.stderr for job in jobs)
    report.results = sum(job.stdout.count("ANALYSIS RESULTS") for job in jobs)
    try:
        result = json.loads((folder / "result.json").read_text())
        keys = ("counts", "lines", "malformed", "blank", "continuation", "files", "bytes")
        report.exact = all(result[k] == expected.get(k, 0) for k in keys)
        if not report.exact:
            report.problems.append(f"counts {result['counts']} lines {result['lines']} != {expected['counts']} {expected['lines']}")
        if "stats" in expected:
            wrong = statistics_mismatch(result, expected["stats"])
            report.exact = report.exact and not wrong
            report.problems += wrong
    except (OSError, ValueError, KeyError) as exc:
        report.problems.append(f"no result: {exc}")
    try:
        wait_for(lambda: not job_pids(str(corpus)), 15, "the job's processes to exit")
    except AssertionError:
        left = job_pids(str(corpus))
        report.orphans = len(left)
        for pid in left:
            signal_pid(pid, signal.SIGCONT)
            signal_pid(pid, signal.SIGKILL)
    store = CheckpointStore(str(folder / "checkpoints"), warn=report.problems.append)
    fingerprint = fingerprint_of([str(corpus)], analysis=STATS_ANALYSIS if "stats" in expected else None)
    report.checkpoint_ok = store.load_latest(fingerprint) is not None or not store.sequences()


def many_interruptions(seed: int, scratch: Path, quick: bool, times: int = 20) -> dict:
    """One job interrupted `times` times at random moments (SIGINT and SIGKILL), then finished.

    The job is made long (a per-task delay), and an attempt that ends before its
    interruption lands does not count: the loop goes on until `times` really happened.
    """
    rng = random.Random(f"{seed}:interrupt")
    folder = scratch / "interrupted"
    shutil.rmtree(folder, ignore_errors=True)
    corpus = folder / "logs"
    expected = generate(corpus, files=40 if quick else 120, lines=2000, seed=seed, noise=0.05, stats=True,
                        bucket_s=STATS_BUCKET_S)
    cmd = job_command(corpus, 3, folder / "checkpoints", folder / "result.json", None, expected,
                      duration=0.6 * times + 4.0)
    kinds = Counter()
    started = time.monotonic()
    for _ in range(3 * times):
        if sum(kinds.values()) >= times:
            break
        job = Job.start(cmd, env=ENV, cwd=folder)
        try:
            wait_for(lambda: job.count("Assigning") >= 1 or not job.running(), 60, "a start")
        except AssertionError:
            pass
        end = time.monotonic() + rng.uniform(0.1, 1.0)
        while time.monotonic() < end and job.running():
            time.sleep(0.02)
        kind = rng.choice(["sigint_resume", "sigkill_resume"])
        if job.running():
            _interrupt_job(job, kind, str(corpus))
            kinds[kind] += 1
        job.wait(60)
    final = Job.start(cmd, env=ENV, cwd=folder)
    final.wait(RUN_BOUND)
    result = json.loads((folder / "result.json").read_text())
    exact = all(result[k] == expected[k] for k in ("counts", "lines", "malformed", "blank", "files", "bytes"))
    exact = exact and not statistics_mismatch(result, expected["stats"])
    return {"interruptions": dict(kinds), "exact": exact, "wall_s": round(time.monotonic() - started, 3),
            "resumed_from": result.get("resumed_from"), "restored_files": result.get("restored_files")}


def summary(reports: list[RunReport], interrupted: dict | None) -> str:
    by_kind = Counter(f for r in reports for f in r.faults)
    recoveries = [s for r in reports for s in r.recovery_s]
    lines = [
        "CHAOS CAMPAIGN",
        "==============",
        f"runs: {len(reports)}   exact: {sum(r.exact for r in reports)}/{len(reports)}   "
        f"all checks passed: {sum(r.ok for r in reports)}/{len(reports)}",
        f"hangs: {sum(r.hang for r in reports)}   one result each: {sum(r.results == 1 for r in reports)}/{len(reports)}   "
        f"tracebacks: {sum(r.traceback for r in reports)}   orphan processes: {sum(r.orphans for r in reports)}   "
        f"bad checkpoints: {sum(not r.checkpoint_ok for r in reports)}",
        f"resumes after whole-job interruptions: {sum(r.restarts for r in reports)}",
        f"longest recovery (master killed -> new master announced): {max(recoveries):.2f} s" if recoveries
        else "longest recovery: no master was killed",
        f"longest run: {max((r.wall_s for r in reports), default=0):.1f} s",
        "",
        "faults by kind:",
    ]
    lines += [f"  {kind:16s} {by_kind.get(kind, 0)}" for kind in FAULTS]
    lines += ["", f"{'run':>4} {'shape/format':28} {'np':>2} {'files':>6} {'MB':>6} {'wall s':>7} {'ok':>3}  faults / problems"]
    for r in reports:
        note = ", ".join(r.faults) + (f"  !! {'; '.join(r.problems)}" if not r.ok else "")
        lines.append(f"{r.run:>4} {r.shape:28} {r.ranks:>2} {r.files:>6} {r.bytes / 1e6:>6.1f} {r.wall_s:>7.1f} "
                     f"{'yes' if r.ok else 'NO':>3}  {note}")
    if interrupted is not None:
        lines += ["", f"one job interrupted {sum(interrupted['interruptions'].values())} times "
                      f"({interrupted['interruptions']}), then resumed: exact = {interrupted['exact']}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smaller corpora (for the test suite)")
    parser.add_argument("--interruptions", type=int, default=20, help="the many-interruptions scenario (0: skip)")
    parser.add_argument("--data", default=str(REPO / "bench_data" / "chaos"))
    parser.add_argument("--out", default=str(REPO / "reports"))
    args = parser.parse_args(argv)
    scratch = Path(args.data)
    scratch.mkdir(parents=True, exist_ok=True)
    reports = []
    for index in range(args.runs):
        report = run_one(index, args.seed, scratch, args.quick)
        reports.append(report)
        print(f"run {index:3d}: {'ok' if report.ok else 'FAILED'} {report.shape} np={report.ranks} "
              f"{report.faults} {report.wall_s:.1f}s {'; '.join(report.problems)}", flush=True)
    interrupted = many_interruptions(args.seed, scratch, args.quick, args.interruptions) if args.interruptions else None
    text = summary(reports, interrupted)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.txt").write_text(text + "\n")
    (out / "chaos.json").write_text(json.dumps({
        "seed": args.seed, "runs": [dict(asdict(r), ok=r.ok) for r in reports], "interrupted_job": interrupted,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n")
    good = all(r.ok for r in reports) and (interrupted is None or interrupted["exact"])
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
