#!/usr/bin/env python3
"""`make report`: seed 004's Stage 2 scenarios run for real, and reports/report_stage2.txt written from them.

Scenarios, each a real `mpirun -np 4` of the distributed analyser on a copy
of the shipped sample_logs/ with its own checkpoint folder and event log:

1. normal operation (the seed's Test 1);
2. a worker crash: rank 2 calls sys.exit(1) a third of the way in (the seed's
   Test 2, as `--inject exit:2@0.33`);
3. interrupt and resume: Ctrl-C (SIGINT to mpirun) after the first
   checkpoint, then the same command again (the seed's Test 3);
4. the master crash: rank 0 SIGKILLed 40% of the way in, a new master
   elected by the bully algorithm, which finishes the job.

Each run's console output is kept (trimmed in the report), its counts are
checked against the sequential analyser's, and its event log is drawn as a
timeline PNG (utils/timeline.py) into reports/. The report's figures (times,
detection delays, checkpoints, exactness) come from these runs; its prose
explains the design.

    python -m utils.stage2_report [--out reports]   # from the repository root
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from loganalyser.monitor.events import read_events
from utils import timeline
from utils.browser import chromium, run_chromium
from utils.jobcontrol import Job, clear_stale_sessions, free_port, rank_pid, signal_pid, wait_for
from utils.stage2_text import report_text

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
MPIRUN = REPO / ".venv" / "bin" / "mpirun"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
RUN_TIMEOUT = 180
DELAY = "0.15"  # seconds per task: a run lasts long enough for faults to land mid-way
KEPT_LINES = 40  # console lines of each run shown in the report


def command(logs: Path, folder: Path, *extra) -> list[str]:
    return [str(MPIRUN), "--oversubscribe", "-np", "4", str(PYTHON), str(REPO / "distributed_log_analyser.py"),
            str(logs), "--checkpoint-dir", str(folder / "checkpoints"), "--events", str(folder / "events.jsonl"),
            "--output", str(folder / "result.json"), "--task-delay", DELAY, "--chunk-size", "64K",
            "--no-progress", "--worker-timeout", "3", *map(str, extra)]


def run(cmd: list[str], folder: Path, interrupt_after_checkpoint: bool = False, screenshot: Path | None = None) -> dict:
    clear_stale_sessions()
    port = free_port() if screenshot else None
    if port:
        cmd = cmd + ["--dashboard", str(port)]
    job = Job.start(cmd, env=ENV, cwd=folder)
    if port:
        _screenshot(f"http://127.0.0.1:{port}/", screenshot, job)
    if interrupt_after_checkpoint:
        wait_for(lambda: any(p.name.isdigit() for p in (folder / "checkpoints").glob("*")) or not job.running(),
                 60, "a first checkpoint")
        master = wait_for(lambda: rank_pid(0, str(folder / "checkpoints")), 30, "the master's pid")
        signal_pid(master, signal.SIGINT)
    code = job.wait(RUN_TIMEOUT)
    return {"exit": code, "stdout": job.stdout, "stderr": job.stderr, "seconds": round(job.elapsed, 2)}


def scenarios(logs: Path, scratch: Path, out_dir: Path) -> dict:
    out = {}
    for name, extra in (("normal", []), ("worker_crash", ["--inject", "exit:2@0.33"]),
                        ("master_crash", ["--inject", "kill:0@0.4"])):
        folder = scratch / name
        folder.mkdir()
        shot = out_dir / "dashboard.png" if name == "worker_crash" else None  # the dashboard, once a worker failed
        out[name] = {"runs": [run(command(logs, folder, *extra), folder, screenshot=shot)], "folder": folder}
    folder = scratch / "interrupt_resume"
    folder.mkdir()
    early = ("--checkpoint-every", "2")  # a first checkpoint well before the end, so Ctrl-C lands mid-run
    first = run(command(logs, folder, *early), folder, interrupt_after_checkpoint=True)
    second = run(command(logs, folder, *early), folder)
    out["interrupt_resume"] = {"runs": [first, second], "folder": folder}
    return out


def _screenshot(url: str, path: Path, job) -> None:
    """A headless Chromium's picture of the live dashboard, once the master reports a failed worker
    (nothing where Chromium is not installed: the report says so)."""
    browser = chromium()
    if browser is None:
        return

    def failed_seen() -> bool:
        try:
            with urllib.request.urlopen(url + "status.json", timeout=2) as r:
                return bool(json.loads(r.read()).get("failed"))
        except (OSError, ValueError):
            return False

    try:
        wait_for(lambda: failed_seen() or not job.running(), 60, "a failed worker on the dashboard")
    except AssertionError:
        return
    if not job.running():
        return
    run_chromium(browser, "--window-size=1100,900", "--virtual-time-budget=2000", f"--screenshot={path}", url)


def reference_counts(logs: Path) -> dict:
    proc = subprocess.run([str(PYTHON), str(REPO / "base_log_analyser.py"), str(logs), "--json"],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def figures(name: str, scenario: dict, reference: dict, out_dir: Path) -> dict:
    folder = scenario["folder"]
    result = json.loads((folder / "result.json").read_text()) if (folder / "result.json").exists() else None
    events = read_events(str(folder / "events.jsonl")) if (folder / "events.jsonl").exists() else []
    fig = {"exits": [r["exit"] for r in scenario["runs"]], "seconds": [r["seconds"] for r in scenario["runs"]],
           "exact": result is not None and result["counts"] == reference["counts"] and result["lines"] == reference["lines"],
           "events": len(events)}
    if result:
        for key in ("failed_workers", "reassigned_tasks", "checkpoints_saved", "master_rank", "epoch", "elections",
                    "tasks", "resumed_from", "restored_tasks"):
            if key in result:
                fig[key] = result[key]
    kinds = [e["event"] for e in events]
    fig["event_counts"] = {k: kinds.count(k) for k in sorted(set(kinds))}
    fig["detection_s"] = _detection_delay(events)
    if events:
        png = f"timeline_{name}.png"
        timeline.draw(events, str(out_dir / png), title=f"Stage 2: {name.replace('_', ' ')}")
        fig["timeline"] = png
    return fig


def _detection_delay(events: list[dict]) -> float | None:
    """Seconds from the last word of a rank that failed to the master's failure event."""
    failure = next((e for e in events if e["event"] == "failure"), None)
    if failure is None:
        return None
    heard = [e for e in events if e.get("worker") == failure.get("worker") and e["event"] in ("result", "assign")
             and e["time"] <= failure["time"]]
    if not heard:
        return None
    return round((_stamp(failure) - _stamp(heard[-1])).total_seconds(), 3)


def _stamp(event: dict) -> datetime:
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00"))


def trimmed(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) <= KEPT_LINES:
        return "\n".join(lines)
    head, tail = lines[: KEPT_LINES // 2], lines[-KEPT_LINES // 2:]
    return "\n".join(head + [f"    ... ({len(lines) - KEPT_LINES} lines left out) ..."] + tail)


def write_report(results: dict, figs: dict, reference: dict, out: Path) -> str:
    text = report_text(results, figs, reference, trimmed)
    (out / "report_stage2.txt").write_text(text)
    (out / "report_stage2.json").write_text(json.dumps(figs, indent=2, default=str) + "\n")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="stage2_report.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "reports"))
    parser.add_argument("--logs", default=str(REPO / "sample_logs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stage2_") as scratch:
        logs = Path(scratch) / "sample_logs"
        shutil.copytree(args.logs, logs)
        reference = reference_counts(logs)
        results = scenarios(logs, Path(scratch), out)
        figs = {name: figures(name, scenario, reference, out) for name, scenario in results.items()}
        text = write_report(results, figs, reference, out)
    print(text)
    print(f"generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}", file=sys.stderr)
    return 0 if all(f["exact"] for f in figs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
