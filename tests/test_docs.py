"""Docs stay in step with the code."""

import re
import runpy
from pathlib import Path

import pytest

from automl_chars.spaces import cnn_space

DOCS = Path(__file__).parents[1] / "docs"


def test_space_table_lists_every_hyperparameter():
    text = (DOCS / "space.md").read_text()
    rows = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert rows == set(cnn_space())


def test_every_registered_preset_is_documented():
    from automl_chars.search import PRESETS

    text = (DOCS / "experiments.md").read_text()
    assert all(name in text for name in PRESETS.names())


ROOT = Path(__file__).parents[1]


def _options(run, capsys) -> set[str]:
    """The ``--options`` a command's ``--help`` lists (``run`` takes an argv)."""
    with pytest.raises(SystemExit) as done:
        run(["--help"])
    assert done.value.code == 0
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", capsys.readouterr().out))


def _cli(*command):
    from automl_chars.cli.main import main

    return lambda argv: main([*command, *argv])


def _script(path):
    return lambda argv: runpy.run_path(str(ROOT / path), run_name="docs_check")["main"](argv)


#: Per page: how it names each command, and the command. An option belongs to the command named
#: last before it (before any, to the first one listed).
COMMANDS = {
    "portfolio.md": {r"portfolio build|`build`": _cli("portfolio", "build"),
                     r"portfolio show|`show`": _cli("portfolio", "show")},
    "similarity.md": {r"automl-chars similarity": _cli("similarity")},
    "supernet.md": {r"automl-chars supernet": _cli("supernet"),
                    r"experiments/supernet_mnist\.py": _script("experiments/supernet_mnist.py"),
                    r"benchmarks/supernet_ranking\.py": _script("benchmarks/supernet_ranking.py")},
}


@pytest.mark.parametrize("page", sorted(COMMANDS))
def test_every_option_a_page_names_is_in_its_commands_help(page, capsys):
    """docs/portfolio.md once gave ``portfolio show`` the dataset options of ``build``."""
    commands = COMMANDS[page]
    known = {pattern: _options(run, capsys) for pattern, run in commands.items()}
    text = (DOCS / page).read_text()
    pattern = "|".join(f"(?P<c{i}>{p})" for i, p in enumerate(commands)) + \
        r"|(?<![\w-])(?P<option>--[a-z][a-z0-9-]*)"
    current, wrong = next(iter(commands)), []
    for match in re.finditer(pattern, text):
        if match["option"] is None:
            current = list(commands)[int(match.lastgroup[1:])]
        elif match["option"] not in known[current]:
            wrong.append(f"{match['option']} ({current})")
    assert not wrong, f"docs/{page} names options its command does not take: {wrong}"
