"""The built-in priors (the shipped learning-curve table): what ships, that a default sweep's
BOHB model starts from them, that a nearer dataset in the user's store wins, that they can be
turned off."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from automl_chars import data, run_bohb
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.spec import cnn_spec
from automl_chars.search.warmstart import (
    DEFAULT_PRIORS,
    WarmStart,
    WarmStartSearcher,
    builtin_priors,
    fit_to_space,
    plan_warm_start,
)
from automl_chars.similarity.meta_features import dataset_meta_features
from automl_chars.spaces import cnn_space
from automl_chars.store import ResultsStore
from automl_chars.store.store import rows
from automl_chars.tabular.shipped import glyph_curves, shipped_domains

D = len(cnn_space())


@pytest.fixture(scope="module")
def latin_upper(tmp_path_factory):
    return data.load("glyphs-latin-upper", root=tmp_path_factory.mktemp("data"),
                     samples_per_class=6)


def test_the_builtin_priors_are_every_curve_of_the_shipped_table():
    shipped = shipped_domains()
    frame = builtin_priors()
    assert (frame["origin"] == "built-in priors").all() and (frame["kind"] == "table").all()
    assert set(frame["dataset"]) == set(shipped) and len(shipped) >= 2
    # every finished epoch of every configuration (failed epochs have no result)
    table = glyph_curves().frame
    assert len(frame) == table["val_acc"].notna().sum()
    assert (frame["trainable"] == "cnn").all() and frame["val_acc"].between(0, 1).all()
    assert frame.filter(like="mf_").notna().all().all() and frame.filter(like="mf_").shape[1] > 5
    per = frame.groupby(["dataset", "budget"])["trial_id"].nunique().unstack()
    # Any 3 domains hold 2 (d + 1) results at budget 1: what hpbandster needs for a model.
    assert (per[1.0] * 3 >= 2 * (D + 1)).all(), per
    space = cnn_space()
    assert all(fit_to_space(c, space) is not None for c in frame["config"].iloc[::97])
    frame.loc[:, "val_acc"] = -1.0  # a copy: the cached rows are not the caller's to change
    assert (builtin_priors()["val_acc"] >= 0).all()


def test_a_default_plan_gives_bohbs_model_the_builtin_priors_from_the_first_trial(
        latin_upper, tmp_path):
    spec = cnn_spec(cnn_space())
    plan = plan_warm_start(latin_upper, spec, DEFAULT_PRIORS, [1, 3, 9],
                           store=ResultsStore(tmp_path / "empty"))
    assert len(plan.seeds) == DEFAULT_PRIORS.num_seeds and len(plan.neighbours) == 3
    # the default leaves the target's own dataset out (it is in the table)
    assert latin_upper.name not in set(plan.neighbours.index) | {p.dataset for p in plan.priors}
    assert set(plan.neighbours.index) <= set(builtin_priors()["dataset"])
    per_budget = pd.Series([p.budget for p in plan.priors]).value_counts()
    assert (per_budget <= 2 * (D + 1)).all() and per_budget.get(1, 0) == 2 * (D + 1)  # the cap
    searcher = WarmStartSearcher(BOHBSearcher(spec.space, metric="val_acc", mode="max", seed=0),
                                 plan)
    # a model at every budget with the cap's results
    assert set(searcher.bohb.bohber.kde_models) == set(per_budget[per_budget == 2 * (D + 1)].index)
    cold = BOHBSearcher(spec.space, metric="val_acc", mode="max", seed=0)
    assert not cold.bohber.kde_models  # a cold sweep needs d + 1 results of its own first


def test_a_nearer_dataset_in_the_users_store_comes_before_the_builtin_ones(latin_upper, tmp_path):
    """A warm start from the user's store: their past results on this very dataset are nearest
    (distance 0). The default priors leave the target's own results out: a sweep does not
    depend on earlier sweeps of the same data."""
    store = ResultsStore(tmp_path / "store")
    config = dict(cnn_space().get_default_configuration())
    store.write("mine", rows("sweep", latin_upper.name, "f", "cnn",
                             [{"config": config, "budget": 1, "val_acc": 0.5, "trial_id": "t"}],
                             "/x", dataset_meta_features(latin_upper)))
    plan = plan_warm_start(latin_upper, cnn_spec(cnn_space()), WarmStart(), [1, 3], store=store)
    assert plan.neighbours.index[0] == latin_upper.name
    assert plan.neighbours["distance"].iloc[0] == pytest.approx(0)
    off = plan_warm_start(latin_upper, cnn_spec(cnn_space()),
                          WarmStart(seed_trials=False, builtin=False), [1, 3], store=store)
    assert list(off.neighbours.index) == [latin_upper.name] and len(off.priors) == 1
    default = plan_warm_start(latin_upper, cnn_spec(cnn_space()),
                              WarmStart(seed_trials=False, same_dataset=False), [1, 3],
                              store=store)
    assert latin_upper.name not in set(default.neighbours.index) and len(default.neighbours) == 3


def test_a_default_sweep_starts_from_the_builtin_seeds_then_bohbs_model(ray_session, tmp_path):
    """The README demo's situation, shrunk: a default sweep's first trials are the built-in
    priors' seed portfolio, trained to the top budget at once (the lead bracket); every later
    configuration comes from BOHB's model (its share of random picks set to 0), which a cold
    sweep of so few results could not fit."""
    ds = data.load("glyphs-latin-upper", root=tmp_path / "data", samples_per_class=6)
    result = run_bohb(ds, preset="3_1_3_1", num_samples=6, storage_path=tmp_path, name="pri",
                      bohb_config={"random_fraction": 0}, verbose=0)
    t = result.trials.sort_values("trial_id")
    seeds = t[t["suggested_by"].str.startswith("store:")]
    assert len(seeds) == DEFAULT_PRIORS.num_seeds and (seeds["budget"] == 3).all()
    assert list(t["suggested_by"][~t.index.isin(seeds.index)]) == ["model"] * 2
    assert result.settings["priors"] is True
    plan = json.loads((result.path / "warm_start.json").read_text())
    # the cap at each of the preset's budgets (1 and 3)
    assert len(plan["seeds"]) == 4 and plan["priors"]["count"] == 2 * 98
    assert {s["suggested_by"][len("store:"):] for s in plan["seeds"]} <= set(shipped_domains())


def test_no_priors_on_the_command_line_reaches_run_bohb(monkeypatch, tmp_path):
    from automl_chars.cli import main as cli

    seen = {}
    monkeypatch.setattr("automl_chars.run_bohb", lambda *a, **kw: seen.update(kw) or 1 / 0)
    for flags, expected in (([], True), (["--no-priors"], False)):
        with pytest.raises(ZeroDivisionError):
            cli.main(["bohb", "--dataset", "glyphs-digits", "--storage", str(tmp_path),
                      "--preset", "3_1_3_1", *flags])
        assert seen["priors"] is expected


def test_default_priors_that_fail_leave_a_cold_sweep_with_a_warning(latin_upper, tmp_path,
                                                                     monkeypatch):
    """Priors help; they never stop a sweep (an explicit warm start's failure still raises)."""
    from automl_chars.runner import sweep
    from automl_chars.search.presets import BOHBPreset

    def broken(*args, **kwargs):
        raise ValueError("meta-features of 5-channel images")

    monkeypatch.setattr(sweep, "plan_warm_start", broken)
    spec, bohb = cnn_spec(cnn_space()), BOHBPreset.parse("3_1_9_1")
    with pytest.warns(UserWarning, match="starts cold"):
        assert sweep._warm_start_searcher(latin_upper, spec, DEFAULT_PRIORS, bohb,
                                          tmp_path / "exp", 0, 0) is None
    with pytest.raises(ValueError, match="5-channel"):
        sweep._warm_start_searcher(latin_upper, spec, WarmStart(), bohb, tmp_path / "exp", 0, 0)
