"""The PMF warm start: the factorisation, the GP's expected-improvement picks, the searcher with
the real BOHB searcher (seeds first, then BOHB, save/restore), the plan and the CLI option."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from automl_chars.errors import InvalidConfigError
from automl_chars.search.pmf import (
    PMFSearcher,
    factorise,
    fit_pmf,
    normal_scores,
)
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.spec import cnn_spec
from automl_chars.search.warmstart import (
    Evidence,
    Prior,
    TargetInfo,
    WarmStart,
    WarmStartPlan,
    WarmStartSearcher,
    plan_from,
)
from automl_chars.spaces import cnn_space, subspace
from automl_chars.spaces.values import config_key

KEEP = ["learning_rate", "batch_size", "n_fc_layers"]


def _space():
    return subspace(cnn_space(), KEEP, seed=0)


def test_factorise_recovers_held_out_entries_of_a_low_rank_matrix():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(60, 3)) @ rng.normal(size=(3, 14))
    hidden = rng.random(y.shape) < 0.3
    f = factorise(np.where(hidden, np.nan, y), rank=3, reg=0.01, seed=1)
    error = np.sqrt(np.mean((f.complete() - y)[hidden] ** 2))
    assert error < 0.1 * y.std()
    # rank 1 cannot hold a rank-3 matrix: the test can fail
    f1 = factorise(np.where(hidden, np.nan, y), rank=1, reg=0.01, seed=1)
    assert np.sqrt(np.mean((f1.complete() - y)[hidden] ** 2)) > 0.3 * y.std()
    again = factorise(np.where(hidden, np.nan, y), rank=3, reg=0.01, seed=1)
    assert np.array_equal(again.rows, f.rows)  # deterministic given the seed
    with pytest.raises(ValueError, match="observed entries"):
        factorise(np.full((3, 3), np.nan))


def test_normal_scores_keep_order_and_gaps_only_as_ranks():
    z = normal_scores(np.array([0.9, np.nan, 0.1, 0.5, -100.0]))
    assert np.isnan(z[1]) and z[0] > z[3] > z[2] > z[4]
    assert z[[0, 2, 3, 4]].sum() == pytest.approx(0)  # symmetric: an outlier is one rank below
    assert np.allclose(normal_scores(np.array([1.0, 2.0, 3.0])),
                       normal_scores(np.array([10.0, 200.0, 3000.0])))


def _circle(n=36):
    """Configurations on a circle (angle θ_i, encoded in the learning rate); dataset a peaks at
    θ = 0, b at 90° and c at 45°, so the best on average sits near 45°."""
    theta = 2 * np.pi * (np.arange(n) + 0.3) / n
    lrs = np.geomspace(1e-4, 1e-1, n)
    configs = [{"learning_rate": float(lr), "batch_size": 32, "n_fc_layers": 0} for lr in lrs]
    acc = {d: 0.5 + 0.3 * np.cos(theta - peak)
           for d, peak in (("a", 0), ("b", np.pi / 2), ("c", np.pi / 4))}
    rows = [{"dataset": d, "config": c, "budget": b, "val_acc": acc[d][i] - 0.1 * (b == 1),
             "trial_id": f"{d}-{i}", "dataset_fingerprint": d, "trainable": "cnn"}
            for d in acc for i, c in enumerate(configs) for b in (1, 3)]
    return pd.DataFrame(rows), configs, acc


def _picks(model, truth, configs, n=6):
    """``n`` sequential picks, each result (the truth at the top budget) fed back."""
    index = {config_key(c): i for i, c in enumerate(configs)}
    obs, picked = [], []
    for _ in range(n):
        pick, _ = model.propose(obs, exclude=set(picked))
        picked.append(pick)
        obs.append((pick, model.top, float(truth[index[config_key(model.candidates[pick])]])))
    return [index[config_key(model.candidates[p])] for p in picked]


def test_the_gp_starts_from_the_best_on_average_and_moves_towards_the_targets_good_results():
    frame, configs, acc = _circle()
    model = fit_pmf(frame, [1, 3])
    on_a, on_b = _picks(model, acc["a"], configs), _picks(model, acc["b"], configs)
    best_on_average = np.argmax(sum(normal_scores(acc[d]) for d in "abc"))
    assert best_on_average == np.argmax(sum(acc.values())) == 4  # 43 degrees
    assert on_a[0] == on_b[0] == best_on_average  # no target result yet: best on average
    # the target is a copy of a (of b): its picks move to a's peak (b's) and find it
    assert on_a[1:] != on_b[1:]
    assert acc["a"][on_a].max() >= acc["a"].max() - 0.01
    assert acc["b"][on_b].max() >= acc["b"].max() - 0.01
    assert np.mean(acc["a"][on_a[1:]]) > np.mean(acc["a"][on_b[1:]])


def test_trials_running_at_once_spread_out_and_the_plan_summary_is_plain_data():
    frame, configs, _ = _circle()
    model = fit_pmf(frame, [1, 3])
    first, _ = model.propose([])
    second, _ = model.propose([], pending=[first], exclude={first})
    assert second != first
    # a running trial at its predicted value: the next pick is not its nearest neighbour
    nearest = np.argsort(((model.latent - model.latent[first]) ** 2).sum(1))[1]
    assert second != nearest
    summary = json.loads(json.dumps(model.summary()))
    assert summary["candidates"] == 36 and summary["datasets"] == ["a", "b", "c"]
    assert summary["observed"] == 1.0 and summary["budgets"] == [1, 3]


def test_a_sparse_store_fits_and_completes_what_a_dataset_never_ran():
    frame, configs, acc = _circle()
    sparse = frame[~((frame["dataset"] == "b") & (frame["trial_id"].str[2:].astype(int) % 2 == 0))]
    model = fit_pmf(sparse, [1, 3, 9])  # no result reached 9: it takes 3's prior mean
    assert model.observed == pytest.approx(5 / 6)
    assert np.isfinite(model.prior_mean).all()
    # b's missing half is filled in from the factors: the means match the full matrix's
    full = fit_pmf(frame, [1, 3])
    assert np.corrcoef(model.prior_mean[:, 1], full.prior_mean[:, 1])[0, 1] > 0.95
    assert np.array_equal(model.prior_mean[:, 2], model.prior_mean[:, 1])
    assert fit_pmf(frame.iloc[:0], [1, 3]) is None


def _bohb():
    return BOHBSearcher(_space(), metric="val_acc", mode="max", seed=0,
                        bohb_config={"random_fraction": 0})


def _searcher(trials=2):
    frame, configs, acc = _circle()
    priors = [Prior(c, 1, -float(q), "a") for c, q in zip(configs[:10], np.linspace(0, 1, 10))]
    warm = WarmStartSearcher(_bohb(), WarmStartPlan(priors=priors))
    return PMFSearcher(warm, fit_pmf(frame, [1, 3]), trials), acc, configs


def test_the_searcher_proposes_its_picks_first_then_bohbs_and_bohb_learns_from_them(tmp_path):
    pmf, acc, configs = _searcher(trials=2)
    t0 = pmf.suggest("t0")
    assert t0["suggested_by"] == "pmf" and pmf.pending() == [pmf.proposed["t0"]]
    pmf.on_trial_result("t0", {"val_acc": 0.8, "hyperband_info": {"budget": 3}})
    pmf.on_trial_complete("t0", {"val_acc": 0.8, "training_iteration": 3})
    assert pmf.observations() == [(pmf.proposed["t0"], 1, 0.8)]
    bohber = pmf.inner.bohb.bohber
    assert bohber.losses[3] == [-0.8]  # BOHB learned from the PMF trial
    t1 = pmf.suggest("t1")
    assert t1["suggested_by"] == "pmf" and t1 != t0
    # saved and restored (Tune's resume: it pickles the searcher, then restores its state):
    # the same state, the same next moves
    import cloudpickle

    pmf.save(str(tmp_path / "state.pkl"))
    again = cloudpickle.loads(cloudpickle.dumps(
        PMFSearcher(WarmStartSearcher(_bohb(), WarmStartPlan()), None, 0)))
    again.restore(str(tmp_path / "state.pkl"))
    assert again.proposed == pmf.proposed and again.results == pmf.results and again.left == 0
    assert again.inner.priors_left == pmf.inner.priors_left == {1: 10}
    assert again.inner.bohb.bohber.losses[3] == [-0.8]
    assert again.pending() == pmf.pending() == [pmf.proposed["t1"]]
    # its picks done, BOHB's own suggestions (its model from the priors at budget 1)
    assert pmf.suggest("t2")["suggested_by"] == "model"
    assert again.suggest("t2")["suggested_by"] == "model"


def test_the_saved_state_refuses_another_format(tmp_path):
    import cloudpickle

    from automl_chars.errors import ExperimentStateError

    pmf, _, _ = _searcher()
    path = str(tmp_path / "state.pkl")
    pmf.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.pkl"]
    with open(path, "rb") as f:
        state = cloudpickle.load(f)
    state["format"] = 99
    with open(path, "wb") as f:
        cloudpickle.dump(state, f)
    with pytest.raises(ExperimentStateError, match="format 99"):
        _searcher()[0].restore(path)


def _evidence():
    frame, _, _ = _circle()
    mf = {"a": 1.0, "b": 2.0, "c": 3.0}
    return Evidence(results=frame.assign(**{"mf_x": frame["dataset"].map(mf)}, origin="store"))


def test_the_pmf_plan_has_priors_and_pmf_trials_instead_of_store_seeds():
    target = TargetInfo("t", "t", {"x": 1.2})
    spec = cnn_spec(_space())
    plan = plan_from(target, spec, WarmStart(method="pmf", k=2, num_seeds=3, builtin=False),
                     [1, 3], _evidence())
    knn = plan_from(target, spec, WarmStart(k=2, num_seeds=3, builtin=False), [1, 3], _evidence())
    assert plan.seeds == [] and len(knn.seeds) == 3
    assert plan.pmf_trials == 3 and plan.first_trials == 3 and len(plan.pmf.candidates) == 36
    assert len(plan.priors) == len(knn.priors) > 0
    summary = json.loads(json.dumps(plan.summary()))
    assert summary["pmf"]["trials"] == 3 and summary["pmf"]["first_pick"]["config"]
    assert "PMF: the first 3 trials picked by expected improvement" in plan.describe()
    plan.cap_seeds(2)
    assert plan.pmf_trials == 2 and "1 PMF trial(s) left out" in plan.describe()
    assert not plan.empty


def test_the_runner_wraps_bohb_in_the_pmf_searcher_and_leads_with_its_trials():
    from automl_chars.runner.sweep import _Seeded

    plan = plan_from(TargetInfo("t", "t", {"x": 1.2}), cnn_spec(_space()),
                     WarmStart(method="pmf", k=2, num_seeds=2, builtin=False), [1, 3], _evidence())
    searcher = _Seeded(plan, lead=plan.first_trials)(_bohb())
    assert isinstance(searcher, PMFSearcher) and isinstance(searcher.inner, WarmStartSearcher)
    assert searcher.inner.priors_left  # the priors are in BOHB's model
    assert [searcher.suggest(f"t{i}")["suggested_by"] for i in range(3)] == ["pmf", "pmf", "model"]


def test_bad_pmf_settings_are_refused_with_what_to_do(tmp_path, capsys):
    from automl_chars.cli.main import main

    with pytest.raises(InvalidConfigError, match="method must be one of"):
        WarmStart(method="svd")
    with pytest.raises(InvalidConfigError, match="leave portfolio out"):
        WarmStart(method="pmf", portfolio="somewhere")
    code = main(["bohb", "--dataset", "glyphs-digits", "--warm-method", "pmf", "--warm-start",
                 str(tmp_path / "pf"), "--storage", str(tmp_path)])
    assert code == 2 and "leave out --warm-start" in capsys.readouterr().err
    code = main(["bohb", "--dataset", "glyphs-digits", "--warm-method", "pmf", "--num-seeds",
                 "-1", "--storage", str(tmp_path)])
    assert code == 2 and "--num-seeds must be a whole number >= 0" in capsys.readouterr().err
    code = main(["bohb", "--dataset", "glyphs-digits", "--warm-method", "pmf", "--seed-choice",
                 "rank", "--storage", str(tmp_path)])
    assert code == 2 and "leave out one of the two" in capsys.readouterr().err
    code = main(["bohb", "--dataset", "glyphs-digits", "--no-priors", "--seed-choice", "rank",
                 "--storage", str(tmp_path)])
    assert code == 2 and "--no-priors starts the sweep cold" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_the_cli_option_turns_the_pmf_warm_start_on(monkeypatch, tmp_path):
    from automl_chars.cli import main as cli

    seen = {}

    def sweep(ds, args, preset, warm_start=None, **options):
        seen["warm"] = warm_start
        raise InvalidConfigError("stop here")

    monkeypatch.setattr(cli, "sweep", sweep)
    monkeypatch.setattr(cli, "load_dataset", lambda name, args: SimpleNamespace(name=name))
    assert cli.main(["bohb", "--dataset", "glyphs-digits", "--warm-method", "pmf",
                     "--num-seeds", "6", "--storage", str(tmp_path)]) == 2
    assert seen["warm"].method == "pmf" and seen["warm"].num_seeds == 6
    assert seen["warm"].seed_choice == "anytime"
    # --seed-choice alone: the default sweep's warm start (not strict, not the target's own
    # results), its seeds chosen so
    from dataclasses import replace

    from automl_chars.search.warmstart import DEFAULT_PRIORS

    assert cli.main(["bohb", "--dataset", "glyphs-digits", "--seed-choice", "rank",
                     "--storage", str(tmp_path)]) == 2
    assert seen["warm"] == replace(DEFAULT_PRIORS, seed_choice="rank")
    assert cli.main(["bohb", "--dataset", "glyphs-digits", "--store", str(tmp_path / "st"),
                     "--seed-choice", "rank", "--storage", str(tmp_path)]) == 2
    assert seen["warm"].strict and seen["warm"].seed_choice == "rank"
    assert cli.main(["bohb", "--dataset", "glyphs-digits", "--storage", str(tmp_path)]) == 2
    assert seen["warm"] is None  # no warm-start option: the default sweep
