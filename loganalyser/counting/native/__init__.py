"""Compiled scanners: small C modules that pip builds at install with the machine's C compiler.

They are optional. Each `*.c` here becomes the module `_<name>` (setup.py);
`load(name)` returns it, or None when it was not built (no compiler) or when
LOGANALYSER_NATIVE=0 asks for the numpy path, which then runs instead and
counts the same (the tests compare both on the same inputs). The scanners take
byte buffers and write into numpy arrays through the buffer protocol, so they
need neither numpy's headers nor anything but the C library.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

ENABLED = os.environ.get("LOGANALYSER_NATIVE", "1") != "0"


def load(name: str):
    """The compiled module `_<name>`, or None (not built, or turned off)."""
    if not ENABLED:
        return None
    try:
        return importlib.import_module(f"{__name__}._{name}")
    except ImportError:
        return None


def in_use() -> list[str]:
    """The names of the scanners this process uses (built, and not turned off)."""
    if not ENABLED:
        return []
    return sorted(m.name[1:] for m in pkgutil.iter_modules(__path__) if m.name.startswith("_") and load(m.name[1:]))
