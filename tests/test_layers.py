"""The layers keep to themselves, read from the source (ast), never by importing it.

The election (election/) stands alone: it imports nothing of the job
(loganalyser/). Its tags and the job protocol's tags are two enums that share
one wire, so no value may mean two message kinds. The pure cores take a clock
value and a seeded generator instead of reaching for MPI, `time` or `random`,
directly or through a project module they import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from election.messages import ELECTION_MESSAGES, ElectionTag
from loganalyser.cluster import protocol
from loganalyser.cluster.protocol import Tag

REPO = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"loganalyser", "election"}
PURE_CORES = ("election/bully.py", "loganalyser/cluster/scheduler.py", "loganalyser/work/jobstate.py",
              "loganalyser/work/tasks.py", "loganalyser/counting/result.py")
FORBIDDEN_IN_CORES = {"mpi4py", "time", "random"}


def module_name(path: Path) -> str:
    """`loganalyser/work/tasks.py` -> `loganalyser.work.tasks`; a package's __init__.py -> the package."""
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
    reached = imports_reached(REPO / "loganalyser/cluster/scheduler.py")
    assert {"loganalyser.cluster.protocol", "loganalyser.work.tasks", "loganalyser.work.inputs"} <= set(reached)


@pytest.mark.parametrize("core", PURE_CORES)
def test_pure_cores_import_no_mpi_clock_or_randomness(core):
    reached = imports_reached(REPO / core)
    offending = {m: by for m, by in reached.items() if m.split(".")[0] in FORBIDDEN_IN_CORES}
    assert not offending, f"{core} reaches {offending} (module: imported by)"


FRONT_ENDS = {"loganalyser/programs/cli.py", "loganalyser/programs/sequential.py", "loganalyser/programs/static_parallel.py",
              "loganalyser/programs/distributed.py"}


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "loganalyser").rglob("*.py")
                                        if str(p.relative_to(REPO)) not in FRONT_ENDS), ids=lambda p: p.name)
def test_the_engine_does_not_import_the_command_line(path):
    """Only the programs import loganalyser.programs.cli; warnings come from loganalyser.console."""
    assert "loganalyser.programs.cli" not in imported_modules(path)


# --- folders are layers ----------------------------------------------------------------

# Lower numbers are lower layers; a module may import its own layer and the ones below.
LAYERS = {"errors": 0, "console": 0, "counting": 1, "work": 2, "persistence": 3, "faults": 3, "monitor": 3, "cluster": 4,
          "simulation": 5, "programs": 6}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "loganalyser" and len(parts) > 1 else None


def test_every_folder_and_top_module_has_a_layer():
    package = REPO / "loganalyser"
    names = {p.stem if p.is_file() else p.name for p in package.iterdir()
             if (p.is_dir() and (p / "__init__.py").is_file()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert names == set(LAYERS)


@pytest.mark.parametrize("path", sorted((REPO / "loganalyser").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_import_reaches_up_a_layer(path):
    own = layer_of(module_name(path))
    if own is None:
        return  # loganalyser/__init__.py
    above = {m for m in imported_modules(path) if layer_of(m) in LAYERS and LAYERS[layer_of(m)] > LAYERS[own]}
    assert not above, f"{path.relative_to(REPO)} ({own}) imports {sorted(above)}"


def test_the_readme_layout_table_names_every_layer_folder():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    table = table[:table.index("\n## ", 1)]
    folders = {name for name in LAYERS if (REPO / "loganalyser" / name).is_dir()}
    for folder in folders:
        assert f"`loganalyser/{folder}/`" in table, folder
    for path in (REPO / "loganalyser").rglob("*.py"):
        if path.name != "__init__.py":
            assert re.search(rf"`(loganalyser/[\w/]*)?{re.escape(path.name)}`", table), path.relative_to(REPO)


# --- declared seams --------------------------------------------------------------------

def methods_of(path: Path, class_name: str) -> dict[str, list[str]]:
    """Public methods of a class, read from the source: name -> parameter names (self excluded)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {f.name: [a.arg for a in f.args.args[1:]] for f in cls.body
            if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}


@pytest.mark.parametrize("path, name", [("loganalyser/cluster/transport.py", "MpiTransport"),
                                        ("loganalyser/simulation/network.py", "SimTransport")])
def test_both_transports_implement_the_transport_protocol(path, name):
    """The loop runs on MPI and on the simulated network alike: both declare the one seam and fill it."""
    declared = methods_of(REPO / "loganalyser/cluster/seams.py", "Transport")
    tree = ast.parse((REPO / path).read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)
    assert "Transport" in {ast.unparse(base) for base in cls.bases}
    actual = methods_of(REPO / path, name)
    for method, params in declared.items():
        assert method in actual, f"{name} lacks {method}"
        assert actual[method][: len(params)] == params, f"{name}.{method}{actual[method]} != {params}"


def test_one_simulated_network_and_one_fault_table_serve_both_simulations():
    """election/network.py holds them (the election stands alone, the job may import it)."""
    networks, tables = [], []
    for path in sorted((REPO / "election").rglob("*.py")) + sorted((REPO / "loganalyser").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Network"):
                networks.append(str(path.relative_to(REPO)))
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "FAULT_RATES" for t in node.targets):
                tables.append(str(path.relative_to(REPO)))
    assert networks == tables == ["election/network.py"]
    for simulation in ("election/simulation.py", "loganalyser/simulation/job.py"):
        assert "election.network" in imports_reached(REPO / simulation), simulation
