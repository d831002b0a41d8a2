"""The house's layers (docs/architecture.md): data flows one way, so no module imports a module
of a higher layer, at module level or inside a function. Lazy re-exports that keep an old public
path working (a package ``__init__``'s ``__getattr__`` naming a module as a string, with its
``if TYPE_CHECKING:`` imports for type checkers) are not imports at run time and are allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "automl_chars"

#: Bottom to top. A module may import its own layer and the ones below it.
LAYERS = [
    {"errors", "registry", "checkpoints", "ray_compat", "lazy", "uris"},
    {"data", "spaces", "models", "layout"},
    {"training"},
    {"similarity", "supernet"},
    {"portfolio", "store", "tabular"},
    {"trainables"},
    {"search"},
    {"runner"},
    {"workflows"},
    {"reporting"},
    {"cli"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def part_of(module: str) -> str:
    """``automl_chars.runner.sweep`` -> ``runner``; ``automl_chars.errors`` -> ``errors``."""
    return module.split(".")[1] if module.count(".") else ""


def imports_of(path: Path) -> set[str]:
    """Every ``automl_chars`` module ``path`` imports, functions' own imports included."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module[: -len(".__init__")]
    tree = ast.parse(path.read_text(), str(path))
    hints = set()  # a package's type hints for its lazy re-exports: not imports at run time
    if path.name == "__init__.py":
        for block in ast.walk(tree):
            if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING":
                hints |= {id(n) for n in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("automl_chars.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "automl_chars":  # from automl_chars import data, run_bohb
                out |= {f"automl_chars.{a.name}" for a in node.names}
            elif name.startswith("automl_chars."):
                out.add(name)
    return out


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = part_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if here in ("", "__init__"):
            continue  # the package root: lazy re-exports only
        for target in sorted(imports_of(path)):
            there = part_of(target)
            if there in LEVEL and LEVEL[there] > LEVEL[here]:
                out.append(f"{path.relative_to(PACKAGE.parent)} ({here}) imports {target} ({there})")
    return out


def test_every_package_has_a_layer():
    parts = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
             if not p.name.startswith("_") and (p.is_dir() or p.suffix == ".py")}
    parts.discard("__pycache__")
    assert parts - set(LEVEL) == set(), "add the new package to LAYERS (and docs/architecture.md)"


def test_no_module_imports_a_higher_layer():
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_check_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    fake = tmp_path / "automl_chars"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "x.py").write_text(
        "def f():\n    from automl_chars.runner import sweep\n    from ..cli import main\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imports_of(fake / "data" / "x.py") == {"automl_chars.runner", "automl_chars.cli"}
    assert len(violations()) == 2


def test_the_layers_match_the_architecture_doc():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for name in LEVEL:
        assert f"{name}" in text, name


if __name__ == "__main__":  # pragma: no cover
    print("\n".join(violations()))
    pytest.main([__file__])
