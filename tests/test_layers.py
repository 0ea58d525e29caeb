"""The layers keep to themselves, read from the source (ast), never by importing it.

The election (election/) stands alone: it imports nothing of the job
(loganalyser/). Its tags and the job protocol's tags are two enums that share
one wire, so no value may mean two message kinds. The pure cores take a clock
value and a seeded generator instead of reaching for MPI, `time` or `random`,
directly or through a project module they import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from election.messages import ELECTION_MESSAGES, ElectionTag
from loganalyser import protocol
from loganalyser.protocol import Tag

REPO = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"loganalyser", "election"}
PURE_CORES = ("election/bully.py", "loganalyser/scheduler.py", "loganalyser/jobstate.py",
              "loganalyser/tasks.py", "loganalyser/result.py")
FORBIDDEN_IN_CORES = {"mpi4py", "time", "random"}


def module_name(path: Path) -> str:
    """`loganalyser/tasks.py` -> `loganalyser.tasks`; a package's __init__.py -> the package."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The absolute names of every module `path` imports (relative imports resolved)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            names.add(module)
            # `from pkg import name` may import the submodule pkg.name
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def source_of(module: str) -> Path | None:
    """The project file that defines `module`, or None for the standard library and third parties."""
    if module.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module


def imports_reached(path: Path) -> dict[str, str]:
    """Every module imported by `path` or by the project modules it pulls in: name -> first importer."""
    reached: dict[str, str] = {}
    todo = [path]
    seen = {path}
    while todo:
        current = todo.pop()
        modules = imported_modules(current)
        # importing a.b.c runs a/__init__.py and a/b/__init__.py too
        modules |= {m.rsplit(".", k)[0] for m in modules for k in range(1, m.count(".") + 1)}
        for module in sorted(modules):
            reached.setdefault(module, module_name(current))
            source = source_of(module)
            if source is not None and source not in seen:
                seen.add(source)
                todo.append(source)
    return reached


# --- the election stands alone ---------------------------------------------------------

@pytest.mark.parametrize("path", sorted((REPO / "election").rglob("*.py")), ids=lambda p: p.name)
def test_election_imports_nothing_of_the_job(path):
    offending = {m for m in imported_modules(path) if m.split(".")[0] == "loganalyser"}
    assert not offending, f"{path.relative_to(REPO)} imports {sorted(offending)}"


# --- one wire, two vocabularies --------------------------------------------------------

def test_election_and_job_tags_never_overlap():
    assert {int(t) for t in ElectionTag}.isdisjoint({int(t) for t in Tag})


def test_every_tag_value_names_one_message_kind():
    job_messages = [cls for cls in vars(protocol).values() if isinstance(getattr(cls, "TAG", None), Tag)]
    tags = [int(cls.TAG) for cls in job_messages] + [int(tag) for tag in ELECTION_MESSAGES]
    assert len(tags) == len(set(tags))
    assert set(ELECTION_MESSAGES) == set(ElectionTag)


# --- pure cores ------------------------------------------------------------------------

def test_the_import_walk_sees_through_relative_imports():
    """The walk below must follow `from .x import y`, or it would pass by seeing nothing."""
    reached = imports_reached(REPO / "loganalyser/scheduler.py")
    assert {"loganalyser.protocol", "loganalyser.tasks", "loganalyser.inputs"} <= set(reached)


@pytest.mark.parametrize("core", PURE_CORES)
def test_pure_cores_import_no_mpi_clock_or_randomness(core):
    reached = imports_reached(REPO / core)
    offending = {m: by for m, by in reached.items() if m.split(".")[0] in FORBIDDEN_IN_CORES}
    assert not offending, f"{core} reaches {offending} (module: imported by)"


FRONT_ENDS = {"loganalyser/cli.py", "loganalyser/sequential.py", "loganalyser/static_parallel.py",
              "loganalyser/distributed.py"}


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "loganalyser").rglob("*.py")
                                        if str(p.relative_to(REPO)) not in FRONT_ENDS), ids=lambda p: p.name)
def test_the_engine_does_not_import_the_command_line(path):
    """Only the programs import loganalyser.cli; warnings come from loganalyser.console."""
    assert "loganalyser.cli" not in imported_modules(path)
