"""What the benchmark ran on: cores, memory, load, and the versions of Python, numpy, MPI, awk and grep."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess

from .runners import MPIRUN, command_env


def tool_version(cmd) -> str:
    """The first line a tool prints about its version, or "unknown"."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=command_env())
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def machine_info() -> dict:
    """The machine and software figures that go into stage1.json and the report headers."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    try:
        mpi4py_version = version("mpi4py")
    except PackageNotFoundError:
        mpi4py_version = "unknown"
    mpirun = tool_version([MPIRUN, "--version"])
    match = re.search(r"Open MPI\)?\s*([0-9][0-9.a-z]*)", mpirun)
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "mpi4py": mpi4py_version,
        "open_mpi": match.group(1) if match else mpirun,
        "awk": tool_version(["awk", "-W", "version"]) if "mawk" in os.path.realpath(shutil.which("awk") or "")
        else tool_version(["awk", "--version"]),
        "grep": tool_version(["grep", "--version"]),
        "memory_gb": _memory_gb(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        # When set, no .pyc is written: every process compiles the project's modules at start.
        "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }


def _memory_gb():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return None
