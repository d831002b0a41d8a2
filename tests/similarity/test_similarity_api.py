"""similarity(), similarity_matrix(), plot_heatmap() and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from automl_chars.errors import InvalidConfigError, UnknownNameError
from automl_chars.similarity import (
    MEASURES,
    Measure,
    SimilarityError,
    plot_heatmap,
    similarity,
    similarity_matrix,
)

CHEAP = ["sen", "frechet", "logme"]


def test_table_layout(fresh, views):
    table = similarity(fresh["vbars"], views, CHEAP, sample_size=40, bootstrap=3)
    assert list(table.index) == ["hbars", "vbars", "boxes"]
    for m in CHEAP:
        assert {m, f"{m}_low", f"{m}_high", f"{m}_seconds"} <= set(table.columns)
    assert {"sen_label_l1", "sen_labels_only"} <= set(table.columns)
    assert table.attrs["reference"] == "hbars" and table.attrs["sample_size"] == 40
    assert table.attrs["higher_is_more_similar"] == {"sen": False, "frechet": False, "logme": True}
    assert table.attrs["target"] == "vbars" and table.attrs["errors"] == {}


def test_same_seed_same_numbers_and_reference_by_name(fresh, views):
    a = similarity(fresh["boxes"], views, "sen,frechet", sample_size=40, bootstrap=3, seed=5)
    b = similarity(fresh["boxes"], views, ["sen", "frechet"], sample_size=40, bootstrap=3, seed=5)
    pd.testing.assert_frame_equal(a.drop(columns=[c for c in a if c.endswith("_seconds")]),
                                  b.drop(columns=[c for c in b if c.endswith("_seconds")]))
    c = similarity(fresh["boxes"], views, ["frechet"], sample_size=40, bootstrap=0, reference="boxes")
    assert c.attrs["reference"] == "boxes"
    assert c["frechet_low"].isna().all()  # no bootstrap, no interval
    assert not np.allclose(c["frechet"], a["frechet"])


def test_percentile_interval(fresh, views):
    table = similarity(fresh["boxes"], views, ["frechet"], sample_size=40, bootstrap=6,
                       interval="percentile")
    assert (table["frechet_low"] <= table["frechet_high"]).all()


def test_target_as_arrays_and_portfolio_like_sources(fresh, views):
    class FakePortfolio:
        def sources(self):
            return views

    ds = fresh["hbars"]
    table = similarity((ds.x_train, ds.y_train, ds.classes), FakePortfolio(), ["sen"],
                       sample_size=40, bootstrap=0)
    assert table["sen"].idxmin() == "hbars"


def test_small_target_uses_what_there_is_and_says_so(fresh, views):
    ds = fresh["hbars"]
    with pytest.warns(UserWarning, match=rf"{len(ds.y_train)} images, fewer than sample_size=5000"):
        table = similarity(ds, views, ["sen"], sample_size=5000, bootstrap=0)
    assert table.attrs["sample_size"] == len(ds.y_train)


def test_unknown_measure_suggests_close_names(fresh, views):
    with pytest.raises(UnknownNameError, match="frechet"):
        similarity(fresh["hbars"], views, ["frechit"])
    with pytest.raises(UnknownNameError, match="logme"):
        similarity(fresh["hbars"], views, "sen,logmee")


def test_measure_sets_fast_by_default_and_all(fresh, views, monkeypatch):
    """The default leaves out the slow measures (task2vec); "all" and a name still reach them,
    and a measure marked slow leaves the default set."""
    from automl_chars.similarity import resolve_measures

    assert resolve_measures() == resolve_measures("fast") == [
        m for m in MEASURES.names() if m != "task2vec"]
    assert resolve_measures("all") == MEASURES.names() and "task2vec" in MEASURES.names()
    assert resolve_measures("task2vec") == ["task2vec"]

    class Slow(_Broken):
        name, slow = "slowpoke", True

    class Fast(_Broken):
        name = "quick"

    monkeypatch.setitem(MEASURES._items, "slowpoke", Slow)
    monkeypatch.setitem(MEASURES._items, "quick", Fast)
    assert "quick" in resolve_measures() and "slowpoke" not in resolve_measures()
    table = similarity(fresh["hbars"], views[:1], sample_size=40, bootstrap=0)
    assert "quick" in table and "slowpoke" not in table and "task2vec" not in table


def test_a_measure_cannot_take_the_name_of_a_set():
    from automl_chars.similarity import register_measure

    for name in ("all", "fast"):
        with pytest.raises(TypeError, match="names a set of measures"):
            register_measure(type("M", (_Broken,), {"name": name}))
    assert "all" not in MEASURES and "fast" not in MEASURES


def test_no_sources_is_a_clear_error(fresh):
    class EmptyPortfolio:
        def sources(self):
            return []

    for empty in ([], EmptyPortfolio()):
        with pytest.raises(InvalidConfigError, match="no entries"):
            similarity(fresh["hbars"], empty, ["sen"])


def test_source_with_another_image_size(fresh, views):
    big = dataclasses.replace(views[1], name="big", x=torch.zeros(8, 1, 32, 32, dtype=torch.uint8),
                              y=torch.arange(8) % 4)
    with pytest.raises(InvalidConfigError, match=r"'big'.*\(1, 32, 32\).*\(1, 28, 28\)"):
        similarity(fresh["hbars"], [views[0], big], ["sen"], sample_size=40)


def test_unknown_reference(fresh, views):
    with pytest.raises(InvalidConfigError, match="Did you mean 'boxes'"):
        similarity(fresh["hbars"], views, ["sen"], sample_size=40, reference="boxs")


def test_bad_source_views(views):
    v = views[0]
    with pytest.raises(InvalidConfigError, match="uint8"):
        dataclasses.replace(v, x=v.x.float())
    with pytest.raises(InvalidConfigError, match="labels lie outside"):
        dataclasses.replace(v, y=v.y + 10)
    with pytest.raises(InvalidConfigError, match="features"):
        dataclasses.replace(v, model=torch.nn.Linear(3, 3))
    with pytest.raises(InvalidConfigError, match="unique"):
        similarity(v, [v, v], ["sen"])


class _Broken(Measure):
    name = "broken"
    description = "fails on vbars"
    uses = "none"

    def score(self, target, tstate, source, sstate, ctx):
        if source.name == "vbars":
            raise RuntimeError("boom")
        return 1.0


def test_a_failing_measure_warns_or_raises(fresh, views, monkeypatch):
    monkeypatch.setitem(MEASURES._items, "broken", _Broken)
    with pytest.warns(UserWarning, match="measure 'broken' failed on source 'vbars': RuntimeError: boom"):
        table = similarity(fresh["hbars"], views, ["sen", "broken"], sample_size=40, bootstrap=2)
    assert np.isnan(table.loc["vbars", "broken"]) and table.loc["hbars", "broken"] == 1.0
    assert np.isfinite(table["sen"]).all()
    assert "broken/vbars" in table.attrs["errors"]
    with pytest.raises(SimilarityError, match="measure 'broken' failed on source 'vbars'"):
        similarity(fresh["hbars"], views, ["broken"], sample_size=40, on_error="raise")


def test_matrix_of_views_and_heatmaps(fresh, views, tmp_path):
    matrix = similarity_matrix(views, "frechet")
    assert list(matrix.index) == list(matrix.columns) == ["hbars", "vbars", "boxes"]
    assert np.allclose(np.diag(matrix), 0.0, atol=1e-6)
    assert matrix.attrs == {"measure": "frechet", "higher_is_more_similar": False, "reference": "hbars"}
    table = similarity(fresh["boxes"], views, CHEAP, sample_size=40, bootstrap=0)
    for frame, name in ((matrix, "matrix.png"), (table, "table.png")):
        path = plot_heatmap(frame, tmp_path / name)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_matrix_of_datasets(domains, models):
    matrix = similarity_matrix(domains, "logme", models=models, sample_size=40)
    assert all(matrix.loc[d].idxmax() == d for d in domains)
    meta = similarity_matrix(domains, "meta_features", sample_size=40)  # needs no model
    assert meta.shape == (3, 3)
    with pytest.raises(InvalidConfigError, match="no model for vbars, boxes"):
        similarity_matrix(domains, "leep", models={"hbars": models["hbars"]})
    with pytest.raises(InvalidConfigError, match="reference network"):
        similarity_matrix(domains, "sen")
