"""Docs stay in step with the code."""

import re
from pathlib import Path

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
            current = line.split(" [", 1)[0].split(" --", 1)[0].split(" DIR", 1)[0]
            blocks[current] = line
        elif line.strip():
            blocks[current] += " " + line.strip()
    commands = dict(_commands(build_parser()))
    assert set(blocks) == {f"automl-chars {c}" for c in commands}
    for command, options in commands.items():
        documented = set(re.findall(r"--[a-z][a-z-]*", blocks[f"automl-chars {command}"]))
        assert documented == set(options), (command, set(options) ^ documented)
