"""Seed 003's valley study on a toy dataset: the arms share their start, the regularizer pushes
the chain away, the tables agree with each other, a rerun trains only what is missing, and a
folder of other settings is refused."""

from __future__ import annotations

import pandas as pd
import pytest

from automl_chars.errors import DamagedFileWarning, ExperimentStateError, InvalidConfigError
from automl_chars.workflows.valleys import (
    ARMS,
    ValleySettings,
    load_valley_study,
    run_valley_study,
    summarize,
)

TINY = dict(minima=3, epochs=2, batch_size=16, points=3, path_samples=0, learning_rate=0.05,
            strength=50.0, width=2.0)


@pytest.fixture
def toy(make_dataset):
    return make_dataset(num_classes=4, per_class=16, test_per_class=6)


@pytest.mark.slow
def test_study_tables(toy, tmp_path):
    lines = []
    result = run_valley_study(ValleySettings(**TINY), [0], tmp_path / "v", dataset=toy,
                              log=lines.append)
    m = result.minima.set_index(["arm", "index"])
    assert len(m) == len(ARMS) * 3
    # Every chain starts at the first independent minimum: the same weights, the same accuracy.
    first = m.xs(0, level="index")
    assert first["norm"].nunique() == 1 and first["test_acc"].nunique() == 1
    # The regularizer pushes the chain away from where it was; plain restarts stay near.
    assert m.loc[("distance", 1), "dist_prev"] > 2 * m.loc[("restarts", 1), "dist_prev"]
    assert (m.loc[("merged", 1), "dist_prev"]
            == pytest.approx(m.loc[("distance", 1), "dist_prev"]))  # one minimum: its own mean
    # Pairs: every pair of every arm, 3 points per path whose ends are the minima's losses.
    assert len(result.pairs) == len(ARMS) * 3 and (result.pairs["barrier"] >= 0).all()
    assert result.pairs["disagreement"].between(0, 1).all()
    assert len(result.path_losses) == len(result.pairs) * 3
    near = result.pairs.set_index(["arm", "i", "j"]).loc[("distance", 0, 1), "distance"]
    assert near == pytest.approx(m.loc[("distance", 1), "dist_prev"])
    # Ensembles: one member is the first minimum; the last row is the summary's ensemble.
    e = result.ensembles.set_index(["arm", "members"])["test_acc"]
    for arm in ARMS:
        assert e[(arm, 1)] == pytest.approx(m.loc[(arm, 0), "test_acc"])
    s = result.summary
    assert list(s["seed"]) == ["0"] * 4 + ["mean"] * 4
    row = s[(s["seed"] == "0") & (s["arm"] == "distance")].iloc[0]
    assert row["ensemble_acc"] == pytest.approx(e[("distance", 3)])
    assert row["vs_independent"] == pytest.approx(e[("distance", 3)] - e[("independent", 3)])
    assert any("distance to the nearest earlier minimum" in line for line in lines)
    back = load_valley_study(tmp_path / "v")
    pd.testing.assert_frame_equal(back.pairs, result.pairs)


@pytest.mark.slow
def test_rerun_trains_only_what_is_missing(toy, tmp_path):
    settings = ValleySettings(**{**TINY, "minima": 2})
    out = tmp_path / "v"
    first = run_valley_study(settings, [0, 1], out, dataset=toy, log=lambda _: None)
    lines = []
    again = run_valley_study(settings, [0, 1], out, dataset=toy, log=lines.append)
    assert sum("done before" in line for line in lines) == 2
    pd.testing.assert_frame_equal(again.summary, first.summary)
    # Seed 1 cut short after one restart, its last minimum's file damaged: only that minimum is
    # trained again, with a warning naming the file.
    for name in ("minima", "pairs", "path", "ensembles"):
        (out / "seed-1" / f"{name}.csv").unlink()
    damaged = out / "seed-1" / "merged-1.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])
    lines = []
    with pytest.warns(DamagedFileWarning, match="merged-1.pt is damaged.*trained again"):
        resumed = run_valley_study(settings, [0, 1], out, dataset=toy, log=lines.append)
    trained = [line for line in lines if "train loss" in line]
    assert trained and all(line.startswith("seed 1 merged 1") for line in trained), lines
    # training is deterministic: the same minimum again
    pd.testing.assert_frame_equal(resumed.minima.drop(columns="train_s"),
                                  first.minima.drop(columns="train_s"))
    with pytest.raises(ExperimentStateError, match="other settings.*width"):
        run_valley_study(ValleySettings(**{**TINY, "minima": 2, "width": 3.0}), [0], out,
                         dataset=toy)


@pytest.mark.parametrize("change, message", [
    ({"minima": 1}, "minima must be >= 2"), ({"strength": 0.0}, "strength must be > 0"),
    ({"points": 1}, "points must be >= 2"), ({"width": 0.0}, "dist_width must be > 0"),
    ({"learning_rate": -1.0}, "learning_rate must be > 0"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(InvalidConfigError, match=message):
        ValleySettings(**change)


def test_duplicate_seeds_are_refused(tmp_path):
    with pytest.raises(InvalidConfigError, match="distinct"):
        run_valley_study(ValleySettings(), [0, 0], tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything is written or loaded


def test_summarize_by_hand():
    minima = pd.DataFrame({"seed": [0] * 4, "arm": ["independent"] * 2 + ["distance"] * 2,
                           "index": [0, 1, 0, 1], "test_acc": [0.5, 0.7, 0.5, 0.6],
                           "norm": [2.0, 2.0, 2.0, 5.0]})
    pairs = pd.DataFrame({"seed": [0, 0], "arm": ["independent", "distance"], "i": [0, 0],
                          "j": [1, 1], "distance": [10.0, 4.0], "barrier": [1.0, 0.0],
                          "disagreement": [0.3, 0.1]})
    ensembles = pd.DataFrame({"seed": [0] * 4, "arm": ["independent"] * 2 + ["distance"] * 2,
                              "members": [1, 2, 1, 2], "test_acc": [0.5, 0.8, 0.5, 0.65]})
    s = summarize(minima, pairs, ensembles).set_index(["seed", "arm"])
    assert s.loc[("0", "distance"), "vs_independent"] == pytest.approx(-0.15)
    assert s.loc[("0", "distance"), "ensemble_gain"] == pytest.approx(0.15)
    assert s.loc[("0", "independent"), "minimum_acc"] == pytest.approx(0.6)
    assert s.loc[("mean", "distance"), "distance"] == pytest.approx(4.0)
    assert s.loc[("0", "distance"), "norm_ratio"] == pytest.approx(2.5)
    assert s.loc[("mean", "independent"), "disagreement"] == pytest.approx(0.3)
