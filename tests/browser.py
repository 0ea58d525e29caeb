"""A real headless browser for the tests: Debian's Chromium, run as root, offline.

`dump_dom(url)` loads a page, lets its scripts run and returns the resulting
DOM as HTML. Tests that need it call `require_browser()`, which skips them
with a clear message where Chromium is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# No network beyond the page: the machine is offline, and Chromium's own
# background connections would only be refused.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def browser() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def require_browser() -> str:
    path = browser()
    if path is None:
        pytest.skip("no Chromium here: install Debian's chromium package (apt-get install chromium) "
                    "to run the browser tests; .ci/run does")
    return path


def dump_dom(url: str, timeout: float = 60, budget_ms: int = 5000) -> str:
    """The DOM of `url` after its scripts ran (at most `budget_ms` of virtual time)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.run([require_browser(), *FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
