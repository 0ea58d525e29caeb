"""Builds the optional C scanners (loganalyser/counting/native/*.c -> _<name>); the rest is pyproject.toml."""

from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("loganalyser/counting/native")

setup(ext_modules=[
    Extension(f"loganalyser.counting.native._{source.stem}", [str(source)], depends=[str(NATIVE / "words.h")],
              extra_compile_args=["-O2", "-std=c11", "-Wall"], optional=True)  # no compiler: the numpy path
    for source in sorted(NATIVE.glob("*.c"))
])
