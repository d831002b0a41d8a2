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


def _commands(parser, prefix=()):
    """(command words, its --options) for every leaf command of the ``automl-chars`` parser."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*prefix, name))
    if prefix and not subs:
        yield " ".join(prefix), [o for a in parser._actions for o in a.option_strings
                                 if o.startswith("--") and o != "--help"]


def test_cli_doc_synopsis_lists_every_command_and_option():
    """docs/cli.md's synopsis is the real ``--help`` usage: a flag added, renamed or removed in
    the code without the doc fails here."""
    from automl_chars.cli.main import build_parser

    text = (DOCS / "cli.md").read_text()
    synopsis = text.split("```", 2)[1]
    blocks = {}
    for line in synopsis.splitlines():
        if line.startswith("automl-chars "):
            current = re.split(r" \[| --| (?:DIR|FILE)\b", line, maxsplit=1)[0]
            blocks[current] = line
        elif line.strip():
            blocks[current] += " " + line.strip()
    commands = dict(_commands(build_parser()))
    assert set(blocks) == {f"automl-chars {c}" for c in commands}
    for command, options in commands.items():
        documented = set(re.findall(r"--[a-z][a-z-]*", blocks[f"automl-chars {command}"]))
        assert documented == set(options), (command, set(options) ^ documented)


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
    "similarity.md": {r"automl-chars similarity": _cli("similarity"),
                      r"automl-chars bohb": _cli("bohb"),
                      r"benchmarks/transferability\.py": _script("benchmarks/transferability.py"),
                      r"scripts/train_learned_ranker\.py": _script("scripts/train_learned_ranker.py")},
    "report.md": {r"automl-chars report": _cli("report"),
                  r"automl-chars similarity": _cli("similarity")},
    "tabular.md": {r"table build": _cli("table", "build"), r"table show": _cli("table", "show"),
                   r"scripts/build_glyph_table\.py": _script("scripts/build_glyph_table.py")},
    "hardware-aware.md": {r"automl-chars bohb": _cli("bohb"), r"automl-chars pareto": _cli("pareto"),
                          r"automl-chars supernet": _cli("supernet")},
    "named-experiments.md": {r"automl-chars train": _cli("train"),
                             r"automl-chars bohb": _cli("bohb")},
    "valleys.md": {r"experiments/valleys\.py": _script("experiments/valleys.py")},
    "supernet.md": {r"automl-chars supernet": _cli("supernet"),
                    r"experiments/supernet_mnist\.py": _script("experiments/supernet_mnist.py"),
                    r"benchmarks/supernet_ranking\.py": _script("benchmarks/supernet_ranking.py"),
                    r"benchmarks/darts_warm_start\.py": _script("benchmarks/darts_warm_start.py")},
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


def test_every_registered_model_and_model_family_is_on_the_models_page():
    from automl_chars.models import MODELS
    from automl_chars.search.spec import MODEL_FAMILIES

    text = (DOCS / "models.md").read_text()
    names = {n for n in MODELS.names() if not n.startswith("test-")} | set(MODEL_FAMILIES)
    assert all(f"`{name}`" in text for name in names), names
