#!/usr/bin/env python3
"""Draw a job's event log as a timeline: ranks on the y axis, tasks as bars over time.

    python -m utils.timeline EVENTS.jsonl -o timeline.png

A task's bar runs from its assignment to its result on the rank that counted
it; a task whose result this log does not show (its rank failed or became
master, or the result reached a later master by a resend) is a thin orange bar
beneath; failures, re-queues
and splits, elections, handovers and checkpoints are marked and listed in a
legend. Reads the file `--events FILE` wrote (loganalyser/monitor/events.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from loganalyser.monitor.events import read_events

MARKS = {  # event -> (marker, colour, label)
    "failure": ("X", "#c62828", "failure detected"),
    "requeue": ("v", "#ef6c00", "task re-queued"),
    "split": ("|", "#6a1b9a", "range split"),
    "election_start": ("o", "#00838f", "election started"),
    "election_result": ("*", "#1565c0", "new master"),
    "handover": ("D", "#283593", "handover"),
    "checkpoint": ("s", "#2e7d32", "checkpoint written"),
    "resume": ("P", "#558b2f", "resumed"),
}


def seconds(event: dict, start: datetime) -> float:
    return (datetime.fromisoformat(event["time"].replace("Z", "+00:00")) - start).total_seconds()


def task_bars(events: list[dict], start: datetime) -> list[tuple[int, float, float, bool]]:
    """(rank, begin, end, finished) for every assignment."""
    open_tasks: dict[tuple[int, str], float] = {}
    bars = []
    for e in events:
        t = seconds(e, start)
        if e["event"] == "assign":
            open_tasks[(e["worker"], e["task"])] = t
        elif e["event"] == "split" and (e["worker"], e["task"]) in open_tasks:  # it goes on with the part it kept
            begin = open_tasks.pop((e["worker"], e["task"]))
            if e["kept"] is not None:
                open_tasks[(e["worker"], e["kept"])] = begin
        elif e["event"] == "result" and (e["worker"], e["task"]) in open_tasks:
            bars.append((e["worker"], open_tasks.pop((e["worker"], e["task"])), t, True))
        elif e["event"] in ("failure", "election_result"):  # a lost rank, or a worker become master, drops its tasks
            rank = e.get("worker", e.get("master"))
            for key in [k for k in open_tasks if k[0] == rank]:
                bars.append((key[0], open_tasks.pop(key), t, False))
    end = max((seconds(e, start) for e in events), default=0.0)
    bars += [(rank, begin, end, False) for (rank, _), begin in open_tasks.items()]
    return bars


def draw(events: list[dict], output: str, title: str = "Job timeline") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not events:
        raise ValueError("no events to draw")
    start = datetime.fromisoformat(events[0]["time"].replace("Z", "+00:00"))
    bars = task_bars(events, start)
    ranks = sorted({e["rank"] for e in events} | {b[0] for b in bars} | {e["worker"] for e in events if "worker" in e})
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * len(ranks)))
    for rank, begin, end, finished in sorted(bars, key=lambda bar: bar[3]):  # unfinished first, beneath
        ax.barh(rank, max(end - begin, 0.002), left=begin, height=0.6 if finished else 0.3,
                color="#90caf9" if finished else "#ffab91", edgecolor="#1e88e5" if finished else "#d84315",
                linewidth=0.5, zorder=2 if finished else 1)
    for name, (marker, colour, label) in MARKS.items():
        points = [(seconds(e, start), e.get("worker", e["rank"])) for e in events if e["event"] == name]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, color=colour, s=60,
                       label=f"{label} ({len(points)})", zorder=3)
    for e in events:  # who is master from when
        if e["event"] in ("job_start", "election_result"):
            master = e.get("master", e["rank"])
            ax.annotate(f"master (epoch {e['epoch']})", (seconds(e, start), master), xytext=(4, -12),
                        textcoords="offset points", fontsize=7, color="#1565c0")
    ax.set_yticks(ranks, [f"rank {r}" for r in ranks])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first event")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="timeline.py", description=__doc__.splitlines()[0])
    parser.add_argument("events", help="the event log (--events FILE of the distributed analyser)")
    parser.add_argument("-o", "--output", default="timeline.png", help="PNG to write (default timeline.png)")
    parser.add_argument("--title", default="Job timeline")
    args = parser.parse_args(argv)
    try:
        draw(read_events(args.events), args.output, args.title)
    except (OSError, ValueError) as exc:
        print(f"timeline.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
