"""Debian's Chromium, headless, as the tests and `make report` run it: as root, offline.

`chromium()` finds it (None where it is not installed); `run_chromium(...)`
runs it once with a fresh profile and the flags that keep it off the network.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# No network beyond the page: the machine is offline, and Chromium's own
# background connections would only be refused.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def run_chromium(browser: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """One headless run of `browser` with `args` (e.g. --dump-dom URL) and a fresh profile."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)
