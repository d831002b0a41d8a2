"""``automl-chars similarity`` against a stand-in for ``automl_chars.portfolio.Portfolio``.

The real portfolio lives in another part of the issue; here a stub module with the agreed API
(``Portfolio.load(dir).sources(sample_size=..., seed=...) -> list[SourceView]``) serves views of
the tiny synthetic portfolio, and the target is a built-in glyph domain (generated offline).
"""

from __future__ import annotations

import argparse
import sys
import types

import pandas as pd
import pytest
from similarity_helpers import SPEC

from automl_chars.cli.main import run_command
from automl_chars.cli.similarity import add_parser


@pytest.fixture
def fake_portfolio(monkeypatch, views):
    calls = []

    class Portfolio:
        @classmethod
        def load(cls, path):
            calls.append(path)
            return cls()

        def sources(self, sample_size=300, seed=0):
            calls.append((sample_size, seed))
            return views

    module = types.ModuleType("automl_chars.portfolio")
    module.Portfolio = Portfolio
    monkeypatch.setitem(sys.modules, "automl_chars.portfolio", module)
    return calls


def _parse(argv):
    parser = argparse.ArgumentParser(prog="automl-chars")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _lines(out: str) -> list[str]:
    return out.splitlines()


def test_similarity_command_prints_blocks_and_writes_the_table_and_heatmap(
        fake_portfolio, data_root, tmp_path, capsys):
    png, csv = tmp_path / "heat.png", tmp_path / "table.csv"
    args = _parse(["similarity", "--target", "glyphs-digits", "--portfolio", str(tmp_path / "pf"),
                   "--measure", "sen,logme", "--sample-size", "40", "--bootstrap", "3",
                   "--samples-per-class", "5", "--heatmap", str(png), "--csv", str(csv),
                   "--reference", "vbars"])
    assert run_command(args.func, args) == 0
    out = capsys.readouterr().out
    assert "Target: glyphs-digits (40 images); reference network: vbars" in out
    assert "sen (lower = more similar)" in out and "logme (higher = more similar)" in out
    assert "label_l1" in out and "labels_only" in out and "hbars" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert fake_portfolio[0] == str(tmp_path / "pf") and fake_portfolio[1] == (300, 0)
    # The CSV keeps every column at full precision, the printed blocks their rounded form.
    table = pd.read_csv(csv, index_col="source")
    assert set(table.index) == {"hbars", "vbars", "boxes"}
    for m in ("sen", "logme"):
        assert {m, f"{m}_low", f"{m}_high", f"{m}_seconds"} <= set(table.columns)
    assert {"sen_label_l1", "sen_labels_only"} <= set(table.columns)
    logme = _lines(out)[_lines(out).index("logme (higher = more similar)") + 2]
    best = table["logme"].idxmax()
    assert logme.split()[:3] == ["1", best, f"{table.loc[best, 'logme']:.4g}"]


def test_similarity_command_defaults_to_the_fast_measures(fake_portfolio, data_root, tmp_path,
                                                          capsys, monkeypatch):
    from automl_chars.similarity import MEASURES

    monkeypatch.chdir(tmp_path)  # the default heatmap and CSV land in the current folder
    args = _parse(["similarity", "--target", "glyphs-digits", "--portfolio", "pf",
                   "--sample-size", "40", "--bootstrap", "0", "--samples-per-class", "5"])
    assert args.measure == "fast"
    assert run_command(args.func, args) == 0
    out = capsys.readouterr().out
    fast = [m for m in MEASURES.names() if not MEASURES.get(m).slow]
    assert "task2vec" in MEASURES.names() and "task2vec" not in fast
    assert all(f"\n{m} (" in out for m in fast) and "task2vec" not in out
    table = pd.read_csv(tmp_path / "similarity-glyphs-digits.csv", index_col="source")
    assert {c for c in table.columns if c in MEASURES} == set(fast)
    assert (tmp_path / "similarity-glyphs-digits.png").is_file()


def test_similarity_help_says_what_the_default_leaves_out():
    from automl_chars.cli.similarity import MEASURE_HELP
    from automl_chars.similarity import MEASURES

    default, everything = MEASURE_HELP.split("'all'")
    assert default.startswith("'fast' (default)")
    for name in MEASURES.names():
        assert name in (everything if MEASURES.get(name).slow else default), name


def test_similarity_blocks_fit_a_terminal():
    """Eight sources with long names, every measure, awkward numbers: no line over MAX_WIDTH
    (the old one-row-per-source table was ~290 characters wide)."""
    import numpy as np

    from automl_chars.cli.similarity import MAX_WIDTH, format_blocks
    from automl_chars.similarity import MEASURES

    names = [f"glyphs-latin-upper-{i}" for i in range(8)]
    rng = np.random.default_rng(0)
    values = {}
    for m in MEASURES.names():
        score = rng.choice([-1234567.891, 1.23456789e-7, 0.123456789, np.nan], size=8)
        values.update({m: score, f"{m}_low": score - 1.5e-9, f"{m}_high": score + 12345.678,
                       f"{m}_seconds": rng.uniform(0, 200, size=8)})
    values.update(sen_label_l1=rng.random(8), sen_labels_only=rng.random(8))
    frame = pd.DataFrame(values, index=pd.Index(names, name="source"))
    text = format_blocks(frame, MEASURES.names())
    assert max(len(line) for line in text.splitlines()) <= MAX_WIDTH
    for m in MEASURES.names():  # every source ranked in every block
        block = text.split(f"{m} (")[1].split("\n\n")[0]
        assert sum(name in block for name in names) == 8


def test_similarity_command_unknown_measure_is_one_line(fake_portfolio, capsys):
    args = _parse(["similarity", "--target", "glyphs-digits", "--portfolio", "x", "--measure", "otd"])
    assert run_command(args.func, args) == 2
    assert "Did you mean 'otdd'" in capsys.readouterr().err
    assert fake_portfolio == []  # failed before loading anything


def test_similarity_command_on_a_real_portfolio(views, domains, data_root, tmp_path, capsys):
    """End to end with ``automl_chars.portfolio`` (skipped where that package is absent): the
    tiny models added to a portfolio folder, loaded back, compared with a glyph target."""
    portfolio = pytest.importorskip("automl_chars.portfolio", exc_type=ImportError)
    pf = portfolio.Portfolio(tmp_path / "pf")
    for view in views:
        pf.add(domains[view.name], "cnn", SPEC, view.model.state_dict(), sample_size=40)
    loaded = portfolio.Portfolio.load(tmp_path / "pf").sources(sample_size=40)
    assert [v.name for v in loaded] == [v.name for v in views]
    assert all(v.meta.get("num_train") == len(domains[v.name].y_train) for v in loaded)
    png = tmp_path / "heat.png"
    args = _parse(["similarity", "--target", "glyphs-digits", "--portfolio", str(tmp_path / "pf"),
                   "--measures", "all", "--sample-size", "40", "--bootstrap", "2",
                   "--source-sample-size", "40", "--samples-per-class", "5", "--heatmap", str(png),
                   "--csv", str(tmp_path / "table.csv")])
    assert run_command(args.func, args) == 0
    out = capsys.readouterr().out
    assert "reference network: hbars" in out and "failed" not in out
    assert "task2vec (lower = more similar)" in out  # --measures all: the slow one too
    # the tables fit 100 columns (the lines naming the files written carry the tmp path)
    assert max(len(line) for line in out.splitlines() if str(tmp_path) not in line) <= 100
    assert png.is_file()

