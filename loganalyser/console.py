"""One-line warnings on stderr and paths as the console shows them: what every layer may say, without importing the CLI."""

from __future__ import annotations

import os
import sys


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def shown(path: str) -> str:
    """A path as the console shows it: relative to the working folder when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
