"""Every third-party module the project imports is declared in ``pyproject.toml``: a module that
only happens to be installed (another package's dependency) makes a new user's first command fail
on a fresh machine, while CI on a machine that had it stays green."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
#: Folders whose code a user or the suite runs.
CODE = ("automl_chars", "tests", "benchmarks", "experiments", "scripts")
#: Modules of this repository's own (test helpers imported by their folder's name).
LOCAL = {"automl_chars"} | {p.stem for d in CODE for p in (ROOT / d).rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path``, functions' own imports included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def third_party(modules: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and m not in LOCAL
            and m != "__future__"}


def requirement_name(req: str) -> str:
    """``"ray[default,tune]>=2.60"`` -> ``"ray"`` (normalised as pip does)."""
    name = re.match(r"\s*([A-Za-z0-9._-]+)", req).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {requirement_name(r) for r in reqs}


def undeclared(modules: set[str], names: set[str]) -> dict[str, list[str]]:
    """Modules whose distribution is not among ``names`` (a module no installed distribution
    provides counts as undeclared too: it would not import on a fresh machine)."""
    dists = importlib.metadata.packages_distributions()
    out = {}
    for m in sorted(modules):
        provided = [requirement_name(d) for d in dists.get(m, [])]
        if not any(d in names for d in provided):
            out[m] = provided
    return out


def test_every_imported_module_is_declared():
    modules = set()
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            modules |= third_party(imported_modules(path))
    assert modules, "no imports found: the scan is broken"
    missing = undeclared(modules, declared())
    assert not missing, (f"imported but not declared in pyproject.toml (module: distributions "
                         f"that provide it): {missing}")


def test_the_check_catches_an_undeclared_import(tmp_path):
    """A module installed only as another package's dependency (ray brings ``aiohttp``) fails."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    import aiohttp.web\n    from ray import tune\n")
    modules = third_party(imported_modules(source))
    assert modules == {"aiohttp", "ray"}
    assert set(undeclared(modules, declared())) == {"aiohttp"}
    assert requirement_name("ray[default,tune]>=2.60,<2.61") == "ray"
