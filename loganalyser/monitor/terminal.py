"""`--tui`: the live status on the master's terminal.

On a terminal the view is redrawn in place: the cursor goes home and each
line is rewritten and cleared to its end, so nothing flickers (the screen is
never blanked). Elsewhere (a pipe, a file) it falls back to one plain line
every few seconds. Drawn from the same status document as the dashboard.
"""

from __future__ import annotations

import sys
import time

HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
PLAIN_INTERVAL = 2.0  # seconds between two plain lines
DRAW_INTERVAL = 0.2  # seconds between two redraws on a terminal


def frame(doc: dict, width: int = 100) -> list[str]:
    """The lines of one view of a status document."""
    state = "finished" if doc.get("done") else "running"
    lines = [f"log analyser - {state} - master rank {doc.get('master_rank')}, epoch {doc.get('epoch')}",
             f"{doc.get('lines', 0):,} lines, {doc.get('bytes_done', 0) / 1e6:.1f} of "
             f"{doc.get('bytes_total', 0) / 1e6:.1f} MB, {doc.get('rate_mb_s', 0):.1f} MB/s"
             + (f", ETA {doc['eta_s']:.0f} s" if doc.get("eta_s") is not None and not doc.get("done") else ""),
             "counts: " + "  ".join(f"{k} {v:,}" for k, v in sorted((doc.get("counts") or {}).items())), ""]
    lines.append(f"{'rank':>4}  {'role':8} {'state':9} {'tasks':>6} {'MB':>9} {'MB/s':>6}  task")
    for r in doc.get("ranks", []):
        lines.append(f"{r['rank']:>4}  {r['role']:8} {r['state']:9} {r.get('tasks_done', 0):>6} "
                     f"{r.get('bytes_done', 0) / 1e6:>9.1f} {r.get('rate_mb_s') or 0:>6.1f}  {r.get('task') or ''}")
    queue = doc.get("queue") or {}
    lines += ["", f"queue: {queue.get('tasks_pending', 0)} pending, {queue.get('in_flight', 0)} in flight; "
                  f"failed ranks {doc.get('failed', [])}; re-queued {doc.get('requeued', 0)}; "
                  f"elections {doc.get('elections', 0)}"]
    return [line[:width] for line in lines]


def plain_line(doc: dict) -> str:
    """A status document in one line, for a stream that is not a terminal."""
    top = frame(doc)
    return f"{top[0]}; {top[1]}; {top[2]}"


class TerminalView:
    """Shows documents on a stream: redrawn in place on a terminal, a plain line elsewhere,
    each at most so often. `render` and `plain` say how a document looks (default: the status)."""

    def __init__(self, stream=None, clock=time.monotonic, render=frame, plain=plain_line,
                 draw_every: float = DRAW_INTERVAL, plain_every: float = PLAIN_INTERVAL):
        self.stream = stream or sys.stdout
        self.clock = clock
        self.render, self.plain = render, plain
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = draw_every if self.live else plain_every
        self._last = float("-inf")

    def due(self) -> bool:
        """Whether a document shown now would be drawn (callers may skip building it)."""
        return self.clock() - self._last >= self.every

    def show(self, doc: dict, force: bool = False) -> None:
        if not force and not self.due():
            return
        self._last = self.clock()
        if self.live:
            body = "".join(f"{line}{CLEAR_LINE}\n" for line in self.render(doc))
            self.stream.write(HOME + body + CLEAR_BELOW)
        else:
            self.stream.write(self.plain(doc) + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Blanks what the view drew (on a terminal), before a final result is printed below."""
        if self.live:
            self.stream.write(HOME + CLEAR_BELOW)
            self.stream.flush()
