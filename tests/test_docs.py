"""Docs stay in step with the code."""

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
