"""``automl-chars similarity`` against a stand-in for ``automl_chars.portfolio.Portfolio``.

The real portfolio lives in another part of the issue; here a stub module with the agreed API
(``Portfolio.load(dir).sources(sample_size=..., seed=...) -> list[SourceView]``) serves views of
the tiny synthetic portfolio, and the target is a built-in glyph domain (generated offline).
"""

from __future__ import annotations

import argparse
import sys
import types

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


def test_similarity_command_prints_table_and_writes_heatmap(fake_portfolio, data_root, tmp_path,
                                                            capsys):
    png = tmp_path / "heat.png"
    args = _parse(["similarity", "--target", "glyphs-digits", "--portfolio", str(tmp_path / "pf"),
                   "--measure", "sen,logme", "--sample-size", "40", "--bootstrap", "3",
                   "--samples-per-class", "5", "--heatmap", str(png), "--reference", "vbars"])
    assert run_command(args.func, args) == 0
    out = capsys.readouterr().out
    assert "Target: glyphs-digits (40 images), reference network: vbars" in out
    assert "sen_label_l1" in out and "logme" in out and "hbars" in out
    assert "(lower = more similar)" in out and "(higher = more similar)" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert fake_portfolio[0] == str(tmp_path / "pf") and fake_portfolio[1] == (300, 0)


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
                   "--measure", "all", "--sample-size", "40", "--bootstrap", "2",
                   "--source-sample-size", "40", "--samples-per-class", "5", "--heatmap", str(png)])
    assert run_command(args.func, args) == 0
    out = capsys.readouterr().out
    assert "reference network: hbars" in out and "failed" not in out
    assert png.is_file()

