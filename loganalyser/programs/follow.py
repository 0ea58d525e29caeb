"""`--follow` for one process: count the inputs, then keep counting what is appended, like `tail -F`.

After the first pass the loop sleeps until a watched folder changes (inotify,
else polling with a backoff), rescans, and counts the new whole lines of every
stream (work/streams.py: identity, rotation, truncation, a partial last line).
Compressed files are counted once, when first seen at start-up, and never
followed: a compressed file that appears later is a rotated copy of lines
already counted. With `--state FILE` the totals and every stream's identity
and committed offset are saved atomically after each round, so a restart goes
on from there, counting lines written meanwhile once (a rotation that happened
while it was down included). SIGINT or SIGTERM stops it cleanly: the last
state, the final totals, exit 0. `--follow-for S` stops by itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import deque

from loganalyser.cluster.follow_duty import format_of, scan_inputs
from loganalyser.console import shown, warn
from loganalyser.counting.reader import analyse_appended, analyse_range
from loganalyser.counting.result import PartialResult
from loganalyser.errors import InputError
from loganalyser.monitor.terminal import TerminalView
from loganalyser.persistence.atomic import write_atomic
from loganalyser.work.scanning import job_fingerprint, stream_head
from loganalyser.work.streams import Observation, StreamTracker
from loganalyser.work.watcher import Watcher, watched_folders

from .report import emit, result_document, results_table

STATE_VERSION = 1
RATE_WINDOW_S = 60.0  # rates per level: lines per second over this window
REDRAW_S = 1.0  # the table on a terminal is redrawn at most this often
PROGRESS_S = 5.0  # a progress line elsewhere at most this often


class Follower:
    def __init__(self, args, inputs, formats, clock=time.monotonic):
        self.args = args  # the sequential program's arguments (follow options, output)
        self.formats = formats
        self.clock = clock
        self.fingerprint = job_fingerprint(inputs, formats)
        self.tracker = StreamTracker(args.partial_after)
        self.totals = PartialResult()
        self.stream_formats: dict[tuple[int, int], str] = {}  # identity -> format, decided at first count
        self.counted_whole: set[tuple[int, int]] = set()  # compressed files counted at start-up
        self.stop_requested = False
        self.started = clock()
        self.samples: deque[tuple[float, dict[str, int]]] = deque()  # (time, counts) for the rates
        self.view = TerminalView(sys.stdout, clock, self._frame, self._progress_line, REDRAW_S, PROGRESS_S)
        self._warned: set[str] = set()
        self.resumed = self._load_state()

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> dict:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        watcher = Watcher(watched_folders(self.args.paths, self.args.recursive))
        deadline = self.started + self.args.follow_for if self.args.follow_for else float("inf")
        first = not self.resumed
        try:
            while True:
                counted = self._round(first)
                first = False
                self._sample()
                if counted:
                    watcher.changed()
                    self._save_state()
                self._show()
                if self.stop_requested or self.clock() >= deadline:
                    break
                wait = min(self.args.partial_after / 2 if self._waiting_tails() else 1.0, deadline - self.clock())
                watcher.wait(max(wait, 0.0))
        finally:
            watcher.close()
            self._save_state()
        return self._document(done=True)

    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True

    def _round(self, first: bool) -> bool:
        """Counts everything new; True when something was counted."""
        files = self._scan(first)
        if files is None:
            return False  # no scan could be made (a rotation raced it): nothing is known to be gone
        counted = False
        if first:  # compressed files: once, at start-up
            for f in files:
                if f.compression and (f.device, f.inode) not in self.counted_whole:
                    fmt = format_of(self.args.format, self.formats, f.path, f.size)
                    part = analyse_range(f.path, fmt=fmt, formats=self.formats)
                    part.files, part.formats = 1, {fmt: 1}
                    self.totals.add(part)
                    self.counted_whole.add((f.device, f.inode))
                    counted = True
        seen = [Observation(f.path, f.device, f.inode, f.size) for f in files if not f.compression]
        for pending in self.tracker.observe(seen, self.clock(), stream_head):
            try:
                fmt = (self.stream_formats.get(pending.identity)
                       or format_of(self.args.format, self.formats, pending.path, pending.end))
                part, offset = analyse_appended(pending.path, pending.start, pending.end, pending.whole_tail, fmt,
                                                self.formats)
            except InputError:  # gone (or renamed) since the scan: the next scan says which
                continue
            if pending.identity not in self.stream_formats:
                self.stream_formats[pending.identity] = fmt
                self.totals.formats[fmt] = self.totals.formats.get(fmt, 0) + 1
                self.totals.files += 1
            if offset > pending.start:
                self.totals.add(part)
                self.tracker.commit(pending.identity, offset)
                counted = True
        for event in self.tracker.drain_events():
            if not (self.args.quiet or self.args.json):
                print(f"follow: {event}", file=sys.stderr, flush=True)
        return counted

    def _scan(self, first: bool):
        files = scan_inputs(self.args.paths, self.args.glob, self.args.recursive, warn=self._warn_once)
        for f in files or ():
            if not first and f.compression and (f.device, f.inode) not in self.counted_whole:
                self._warn_once(f"{shown(f.path)} appeared while following (a compressed rotation?): not counted")
        return files

    def _waiting_tails(self) -> bool:
        return any(s.size > s.offset for s in self.tracker.streams.values())

    def _warn_once(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            warn(text)

    # -- what it shows -------------------------------------------------------------------

    def _sample(self) -> None:
        now = self.clock()
        self.samples.append((now, dict(self.totals.counts)))
        while now - self.samples[0][0] > RATE_WINDOW_S:
            self.samples.popleft()

    def rates(self) -> dict[str, float]:
        """Lines per second per level over the last minute."""
        if not self.samples:
            return {}
        now, _ = self.samples[-1]
        then, old = self.samples[0]
        span = max(now - then, 1e-9)
        return {level: round((n - old.get(level, 0)) / span, 1) if now > then else 0.0
                for level, n in sorted(self.totals.counts.items())}

    def _document(self, done: bool) -> dict:
        return result_document(self.totals, self.clock() - self.started, self.formats.analysis,
                               program="sequential", ranks=1,
                               follow={"streams": len(self.tracker.streams), "done": done,
                                       "rates_per_s": self.rates(), "state": self.args.state,
                                       "resumed": self.resumed})

    def _show(self) -> None:
        if not (self.args.quiet or self.args.json) and self.view.due():
            self.view.show(self._document(done=False), force=True)

    @staticmethod
    def _frame(doc: dict) -> list[str]:
        rates = "  ".join(f"{k} {v}/s" for k, v in doc["follow"]["rates_per_s"].items())
        return results_table(doc, [f"Following {doc['follow']['streams']} stream(s); rates: {rates}"]).splitlines()

    @staticmethod
    def _progress_line(doc: dict) -> str:
        counts = " ".join(f"{k}={v}" for k, v in sorted(doc["counts"].items()))
        return f"following: {doc['lines']} lines, {counts}"

    # -- state -----------------------------------------------------------------------------

    def _save_state(self) -> None:
        if not self.args.state:
            return
        state = {"version": STATE_VERSION, "fingerprint": self.fingerprint, "totals": self.totals.to_dict(),
                 "tracker": self.tracker.to_dict(),
                 "formats": [[list(i), f] for i, f in self.stream_formats.items()],
                 "counted_whole": [list(i) for i in sorted(self.counted_whole)]}
        write_atomic(self.args.state, (json.dumps(state) + "\n").encode())

    def _load_state(self) -> bool:
        path = self.args.state
        if not path or not os.path.exists(path):
            return False
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            if state.get("version") != STATE_VERSION or state.get("fingerprint") != self.fingerprint:
                warn(f"{path} is the state of another job or version: starting afresh")
                return False
            self.totals = PartialResult.from_dict(state["totals"])
            self.tracker = StreamTracker.from_dict(state["tracker"], self.args.partial_after)
            self.stream_formats = {tuple(i): f for i, f in state["formats"]}
            self.counted_whole = {tuple(i) for i in state["counted_whole"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warn(f"cannot read the follow state {path} ({exc}): starting afresh")
            self.totals, self.tracker = PartialResult(), StreamTracker(self.args.partial_after)
            return False
        return True


def follow(args, inputs, formats) -> int:
    """Runs the follow loop and prints the final result (exit 0: a follow job has no natural end)."""
    follower = Follower(args, inputs, formats)
    doc = follower.run()
    if not (args.quiet or args.json):
        follower.view.clear()
    emit(doc, args.json, args.output, csv_dir=args.csv, html=args.html)
    return 0
