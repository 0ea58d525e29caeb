"""Waking up when watched folders change: inotify where the kernel has it, else polling.

`wait(timeout)` returns as soon as something in a watched folder was
written, created, moved or deleted (inotify), or after `timeout`; without
inotify it sleeps with a backoff that starts short after a change and grows
to `max_poll` while nothing happens, so an idle follower costs almost
nothing either way. The caller rescans after every wake-up: the watcher only
says when, never what (events can be coalesced or lost on overflow).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import time

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE


def _inotify():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return libc if hasattr(libc, "inotify_init1") else None
    except OSError:
        return None


def watched_folders(paths, recursive: bool) -> list[str]:
    """The folders whose changes matter to inputs `paths`: each folder (and, recursive, every
    folder below it), and the folder of each file named."""
    folders = []
    for path in paths:
        if os.path.isdir(path):
            folders.append(path)
            if recursive:
                folders += [root for root, _, _ in os.walk(path)]
        else:
            folders.append(os.path.dirname(os.path.abspath(path)))
    return folders


class Watcher:
    def __init__(self, folders, min_poll: float = 0.05, max_poll: float = 1.0, use_inotify: bool = True):
        self.min_poll, self.max_poll = min_poll, max_poll
        self._poll = min_poll
        self._fd = None
        libc = _inotify() if use_inotify else None
        if libc is not None:
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0:
                watched = 0
                for folder in sorted(set(folders)):
                    if libc.inotify_add_watch(fd, os.fsencode(folder), WATCH_MASK) >= 0:
                        watched += 1
                if watched:
                    self._fd = fd
                else:
                    os.close(fd)

    @property
    def kind(self) -> str:
        return "inotify" if self._fd is not None else "polling"

    def wait(self, timeout: float) -> bool:
        """Sleeps until a change (True) or `timeout` seconds (False; polling: a poll interval at most)."""
        if self._fd is None:
            pause = min(timeout, self._poll)
            time.sleep(max(pause, 0.0))
            self._poll = min(self._poll * 2, self.max_poll)
            return False
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
        if not ready:
            return False
        self._drain()
        return True

    def changed(self) -> None:
        """The caller found something new: poll quickly again (polling mode)."""
        self._poll = self.min_poll

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            if not data:
                return

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
