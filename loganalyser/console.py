"""One-line warnings on stderr: what every layer may say, without importing the CLI."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
