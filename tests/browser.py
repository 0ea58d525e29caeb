"""A real headless browser for the tests (utils/browser.py: Debian's Chromium, as root, offline).

`dump_dom(url)` loads a page, lets its scripts run and returns the resulting
DOM as HTML. Tests that need it call `require_browser()`, which skips them
with a clear message where Chromium is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import pytest

from utils.browser import chromium, run_chromium


def require_browser() -> str:
    path = chromium()
    if path is None:
        pytest.skip("no Chromium here: install Debian's chromium package (apt-get install chromium) "
                    "to run the browser tests; .ci/run does")
    return path


def dump_dom(url: str, timeout: float = 60, budget_ms: int = 5000) -> str:
    """The DOM of `url` after its scripts ran (at most `budget_ms` of virtual time)."""
    proc = run_chromium(require_browser(), f"--virtual-time-budget={budget_ms}", "--dump-dom", url, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
