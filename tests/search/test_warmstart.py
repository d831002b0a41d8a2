"""Warm-started BOHB: the plan (seeds, priors), the searcher with the real BOHB searcher, and a
warm-started sweep that is killed and resumed without seeding again."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import kill_driver_after

from automl_chars import data, run_bohb
from automl_chars.errors import InvalidConfigError, UnknownNameError
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.spec import cnn_spec
from automl_chars.search.warmstart import (
    Prior,
    Seed,
    WarmStart,
    WarmStartPlan,
    WarmStartSearcher,
    anytime_portfolio,
    fit_to_space,
    plan_warm_start,
    seed_portfolio,
)
from automl_chars.similarity.meta_features import dataset_meta_features
from automl_chars.spaces import cnn_space, subspace
from automl_chars.store import ResultsStore
from automl_chars.store.store import rows

KEEP = ["learning_rate", "batch_size", "n_fc_layers", "fc1_units"]
PER_CLASS = 6


def _space(seed=0):
    return subspace(cnn_space(), KEEP, seed=seed)


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in ("glyphs-digits", "glyphs-greek", "glyphs-hebrew"):
        data.load(name, root=root, samples_per_class=PER_CLASS)
    return root


def _load(name, root):
    return data.load(name, root=root, samples_per_class=PER_CLASS)


def _store(path, root, budgets=(1, 3)):
    """Past sweeps on two datasets: accuracy rises with the learning rate (on another scale on
    each), so the best configurations have the highest rates. greek's meta-features are
    recorded; hebrew's are not."""
    store = ResultsStore(path)
    rng = np.random.default_rng(0)
    for name, scale, mf in (("glyphs-greek", 0.5, True), ("glyphs-hebrew", 0.9, False)):
        results = []
        for i in range(12):
            lr = float(10 ** rng.uniform(-4, -1))
            config = {"learning_rate": lr, "batch_size": int(rng.integers(16, 256)),
                      "n_fc_layers": 0}
            for b in budgets:
                results.append({"config": config, "budget": b, "val_acc": scale * (np.log10(lr) + 4) / 3,
                                "trial_id": f"{name}-{i}"})
        features = dataset_meta_features(_load(name, root)) if mf else None
        store.write(name, rows("sweep", name, "f", "cnn", results, f"/x/{name}", features))
    store.write("other", rows("sweep", "glyphs-other", "f", "cnn",
                              [{"config": {"no_such_hp": 1}, "budget": 1, "val_acc": 0.5}], "/x"))
    return store


def test_the_plan_seeds_the_nearest_datasets_best_and_caps_normalised_priors(
        glyph_root, tmp_path):
    target = _load("glyphs-digits", glyph_root)
    spec = cnn_spec(_space())
    past = _store(tmp_path / "st", glyph_root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # glyphs-other, third, is not used: its row not fitted
        plan = plan_warm_start(target, spec, WarmStart(k=2, priors_per_budget=5, builtin=False),
                               [1, 3, 9], store=past)
    # greek has meta-features (a finite distance) so it comes first; hebrew after it.
    assert list(plan.neighbours.index) == ["glyphs-greek", "glyphs-hebrew"]
    # no configuration ran on both: the portfolio takes each dataset's best (nearest first on
    # a tie), then, starting over, each one's second
    by = [s.suggested_by for s in plan.seeds]
    assert by[:2] == ["store:glyphs-greek", "store:glyphs-hebrew"]
    assert sorted(by[2:]) == ["store:glyphs-greek", "store:glyphs-hebrew"]
    store = _store(tmp_path / "st2", glyph_root).configs()
    for name in ["glyphs-greek", "glyphs-hebrew"]:
        best = sorted({c["learning_rate"] for c in store[store["dataset"] == name]["config"]})
        rates = [s.config["learning_rate"] for s in plan.seeds if s.suggested_by == f"store:{name}"]
        assert rates == pytest.approx([best[-1], best[-2]], rel=1e-9)
    by_budget = {b: [p for p in plan.priors if p.budget == b] for b in (1, 3, 9)}
    assert [len(v) for v in by_budget.values()] == [5, 5, 0]  # capped; no results at budget 9
    losses = sorted(p.loss for p in by_budget[3])
    assert losses[0] == -1.0 and losses[-1] == 0.0  # quantiles: best and worst both kept
    assert all(set(p.config) <= set(KEEP) for p in plan.priors)
    assert not any("lacks" in n for n in plan.notes)
    # with a third neighbour, glyphs-other's row is used: its unknown hyperparameter is noted
    with pytest.warns(UserWarning, match="1 store rows have hyperparameters this space lacks"):
        wide = plan_warm_start(target, spec, WarmStart(k=3, builtin=False), [1, 3, 9],
                               store=past)
    assert list(wide.neighbours.index) == ["glyphs-greek", "glyphs-hebrew", "glyphs-other"]
    assert any("lacks" in n for n in wide.notes)


def test_only_the_nearest_datasets_rows_are_fitted_and_an_unfit_one_is_passed_over(
        glyph_root, tmp_path, monkeypatch):
    """A large store's planning fits the configurations of the k nearest datasets only (each
    fit is a ConfigSpace check of about a millisecond); the nearest dataset, whose every row
    is out of the space, is passed over for the next, and its rows are noted as not fitting."""
    from automl_chars.search import warmstart

    target = _load("glyphs-digits", glyph_root)
    store = _store(tmp_path / "st", glyph_root)
    out_of_space = [{"config": {"learning_rate": 50.0 + i}, "budget": 1, "val_acc": 0.99,
                     "trial_id": f"n{i}"} for i in range(3)]  # learning_rate is at most 0.1
    store.write("near", rows("sweep", "glyphs-near", "f", "cnn", out_of_space, "/x/near",
                             dataset_meta_features(target)))
    fitted = []
    monkeypatch.setattr(warmstart, "_FITTED", {})
    monkeypatch.setattr(warmstart, "fit_to_space",
                        lambda config, space: fitted.append(config) or fit_to_space(config, space))
    with pytest.warns(UserWarning, match="3 do not fit"):
        plan = plan_warm_start(target, cnn_spec(_space()), WarmStart(k=1, builtin=False),
                               [1, 3], store=store)
    assert list(plan.neighbours.index) == ["glyphs-greek"]
    assert {s.suggested_by for s in plan.seeds} == {"store:glyphs-greek"}
    # glyphs-near's configurations, then glyphs-greek's; not hebrew's nor glyphs-other's
    rates = {c.get("learning_rate") for c in fitted}
    past = store.configs()
    by = {d: {c.get("learning_rate") for c in past[past["dataset"] == d]["config"]}
          for d in ("glyphs-near", "glyphs-greek", "glyphs-hebrew")}
    assert by["glyphs-near"] | by["glyphs-greek"] <= rates
    assert not rates & by["glyphs-hebrew"]
    assert not any("no_such_hp" in c for c in fitted)


def test_rows_of_the_sweeps_own_space_are_taken_without_a_fit(glyph_root, tmp_path, monkeypatch):
    """Rows recorded by sweeps of the very space planned for (their ``space_fingerprint``) are
    whole configurations of it: the plan takes them without ConfigSpace's check (a 100,000-row
    store planned in about a second, not minutes); rows of another or an unknown space are
    fitted; the plan is the same either way."""
    from automl_chars.search import warmstart

    target = _load("glyphs-digits", glyph_root)
    spec = cnn_spec(_space())
    past = _store(tmp_path / "st", glyph_root).configs()
    whole = past.assign(config=[json.dumps(fit_to_space(c, spec.space)) for c in past["config"]])
    fitted = []  # the store rows' configurations fitted (the few seeds are checked anyway)
    fit_all = warmstart._fit_all
    monkeypatch.setattr(warmstart, "_fit_all",
                        lambda configs, space: fit_all(fitted.extend(configs) or configs, space))
    warm = WarmStart(k=2, builtin=False)
    plans = {}
    for recorded in ("", spec.fingerprint(), "another-space"):
        store = ResultsStore(tmp_path / f"store-{recorded}")
        for dataset, group in whole.groupby("dataset"):
            store.write(dataset, group.drop(columns=["origin"], errors="ignore")
                        .assign(space_fingerprint=recorded))
        fitted.clear()
        monkeypatch.setattr(warmstart, "_FITTED", {})
        plans[recorded] = plan_warm_start(target, spec, warm, [1, 3], store=store)
        assert (fitted == []) == (recorded == spec.fingerprint()), recorded
    assert len({json.dumps(p.summary(), sort_keys=True) for p in plans.values()}) == 1


def _results(table: dict) -> pd.DataFrame:
    """Store-like rows from {dataset: {config name: val_acc}} (top budget 9)."""
    return pd.DataFrame([{"dataset": d, "config": {"name": c}, "budget": 9, "val_acc": v,
                          "dataset_fingerprint": d, "origin": "store"}
                         for d, accs in table.items() for c, v in accs.items()])


def test_the_seed_portfolio_prefers_what_is_good_everywhere_then_covers_each_dataset():
    """Greedy mean-rank selection (Wistuba et al., Syne Tune's ZeroShotTransfer): a
    configuration good on both datasets beats each one's own best; the next picks cover the
    dataset the portfolio serves worst; a result at a higher budget outranks a better one at a
    lower budget; a configuration a dataset never ran counts as its median."""
    frame = _results({"a": {"both": 0.9, "a_2nd": 0.85, "a_mid": 0.5, "a_low": 0.1},
                      "b": {"b_best": 0.9, "both": 0.85, "b_mid": 0.5, "b_low": 0.1}})
    picks = seed_portfolio(frame, 4, ["a", "b"])
    # both: quantiles 0 and 1/3; b_best: 0.5 on a (never ran there) and 0 on b
    # then every dataset is covered: start over among the rest (a_mid and b_mid tie: a nearer)
    assert [p["config"]["name"] for p in picks] == ["both", "b_best", "a_2nd", "a_mid"]
    assert [p["dataset"] for p in picks] == ["a", "b", "a", "a"]
    assert "best on a" in picks[0]["why"]
    # one dataset: its own order; n larger than the configurations: all of them
    solo = seed_portfolio(frame[frame["dataset"] == "b"], 9, ["b", "a"])
    assert [p["config"]["name"] for p in solo] == ["b_best", "both", "b_mid", "b_low"]
    # ties go to the nearer dataset's configuration
    tied = _results({"a": {"a1": 0.9, "a2": 0.1}, "b": {"b1": 0.9, "b2": 0.1}})
    assert [p["config"]["name"] for p in seed_portfolio(tied, 2, ["b", "a"])] == ["b1", "a1"]
    # a configuration stopped early ranks below the ones that reached the top budget
    early = pd.concat([frame, _results({"a": {"early": 0.95}}).assign(budget=1)])
    assert seed_portfolio(early, 1, ["a"])[0]["config"]["name"] == "both"
    assert seed_portfolio(frame, 0, ["a"]) == [] and seed_portfolio(frame, 2, []) == []


def _curves(table: dict) -> pd.DataFrame:
    """Store-like rows from {dataset: {config name: [(budget, seconds, val_acc), ...]}}."""
    return pd.DataFrame([{"dataset": d, "config": {"name": c}, "budget": b, "seconds": sec,
                          "val_acc": v, "dataset_fingerprint": d, "origin": "store"}
                         for d, curves in table.items() for c, points in curves.items()
                         for b, sec, v in points])


def _reference_anytime(frame: pd.DataFrame, n: int, datasets: list[str], window: float) -> list:
    """anytime_portfolio by brute force: each step, every candidate's events replayed."""
    picks = []
    names = list(dict.fromkeys(c["name"] for c in frame["config"]))
    for _ in range(min(n, len(names))):
        def area(members):
            total = []
            for d in datasets:
                rows = frame[frame["dataset"] == d]
                top = rows[rows["budget"] == rows["budget"].max()]
                last = [r[r["budget"] == r["budget"].max()]["val_acc"].max()
                        for _, r in rows.groupby(rows["config"].map(lambda c: c["name"]))]
                best, median = top["val_acc"].max(), float(np.median(last))
                times = np.linspace(0, window * top["seconds"].median(), 201)[1:]
                mine = rows[[c["name"] in members for c in rows["config"]]]
                incumbent = [mine[mine["seconds"] <= t]["val_acc"].max() for t in times]
                regret = [1.0 if np.isnan(i) else min(max((best - i) / (best - median), 0), 1)
                          for i in incumbent]
                total.append(np.mean(regret))
            return np.mean(total)
        left = [c for c in names if c not in picks]
        picks.append(min(left, key=lambda c: area(picks + [c])))
    return picks


def test_the_anytime_portfolio_values_good_early_as_well_as_good_last():
    """The default seed choice: a configuration that reports a good result early comes before
    the best one that reports it late, which then covers the late part; a dataset without times
    runs on its budgets; it equals a brute-force replay of every candidate's events."""
    early = {"fast": [(1, 1.0, 0.80), (9, 9.0, 0.92)], "slow": [(1, 10.0, 0.50), (9, 90.0, 0.95)],
             "mid": [(1, 5.0, 0.60), (9, 45.0, 0.70)], "low": [(1, 5.0, 0.20), (9, 45.0, 0.40)]}
    frame = _curves({"a": early})
    picks = anytime_portfolio(frame, 2, ["a"])
    assert [p["config"]["name"] for p in picks] == ["fast", "slow"]
    assert picks[0]["budget"] == 9 and "regret area" in picks[0]["why"]
    # the mean-rank portfolio takes the best at the top budget first, whatever its time
    assert seed_portfolio(frame, 1, ["a"])[0]["config"]["name"] == "slow"
    # without times the clock is the budget: fast and slow report at the same budgets, slow
    # wins the longer part of the window
    untimed = frame.assign(seconds=np.nan)
    assert anytime_portfolio(untimed, 1, ["a"])[0]["config"]["name"] == "slow"
    # several datasets, configurations missing on some, results that failed: as brute force
    rng = np.random.default_rng(3)
    table = {d: {f"c{i}": [(b, float(rng.uniform(0.5, 2)) * b, float(rng.uniform(0.1, 0.9)))
                           for b in (1, 3, 9)][: int(rng.integers(1, 4))]
                 for i in range(12) if rng.random() < 0.8} for d in ("a", "b", "c")}
    frame = _curves(table)
    failed = frame.iloc[:3].assign(val_acc=np.nan)
    got = anytime_portfolio(pd.concat([frame, failed]), 5, ["b", "a", "c"], window=2.0)
    assert [p["config"]["name"] for p in got] == _reference_anytime(frame, 5, ["b", "a", "c"], 2.0)
    assert len(anytime_portfolio(frame, 99, ["a", "b", "c"])) == \
        len({c["name"] for c in frame["config"]})
    assert anytime_portfolio(frame, 0, ["a"]) == [] and anytime_portfolio(frame, 2, []) == []
    with pytest.raises(InvalidConfigError, match="seed_choice"):
        WarmStart(seed_choice="best")


def test_the_anytime_portfolio_starts_over_holds_back_what_broke_and_scales_by_every_result():
    """Once nothing lowers the regret (the best is taken) it starts over among the rest: the
    configuration good early before the one a little better late (the tie order would take the
    latter); a configuration that broke off comes last however good; a dataset where one result
    lacks its time runs on budgets; in a HyperBand sweep, where one configuration reached the
    top budget, regret is scaled by every configuration's furthest result."""
    curves = {"best": [(1, 1.0, 0.90), (9, 9.0, 0.95)], "late": [(1, 10.0, 0.50), (9, 90.0, 0.94)],
              "early": [(1, 1.0, 0.85), (9, 9.0, 0.90)],
              **{f"low{i}": [(1, 1.0, 0.20), (9, 9.0, 0.30)] for i in range(4)},
              "crash": [(1, 0.5, 0.96)]}
    frame = _curves({"a": curves})
    frame["status"] = np.where([c["name"] == "crash" for c in frame["config"]], "FAILED",
                               "TERMINATED")
    names = [p["config"]["name"] for p in anytime_portfolio(frame, 8, ["a"])]
    assert names[:3] == ["best", "early", "late"] and names[-1] == "crash"
    assert anytime_portfolio(frame[frame["status"] == "FAILED"], 1, ["a"])[0]["config"] == \
        {"name": "crash"}  # nothing else left: it is a seed after all
    gap = frame.copy()
    gap.loc[gap.index[3], "seconds"] = np.nan
    assert [p["config"]["name"] for p in anytime_portfolio(gap, 4, ["a"])] == \
        [p["config"]["name"] for p in anytime_portfolio(frame.assign(seconds=np.nan), 4, ["a"])]
    hyperband = _curves({"a": {"top": [(1, 1.0, 0.50), (9, 9.0, 0.90)], "fast": [(1, 1.0, 0.88)],
                               "x": [(1, 2.0, 0.40)], "y": [(1, 5.0, 0.30)]}})
    first = anytime_portfolio(hyperband, 1, ["a"])[0]
    assert first["config"] == {"name": "fast"} and first["budget"] == 1


def test_an_empty_portfolio_and_store_is_a_cold_sweep_with_a_warning(glyph_root, tmp_path):
    with pytest.warns(UserWarning, match="cold BOHB sweep"):
        plan = plan_warm_start(_load("glyphs-digits", glyph_root), cnn_spec(_space()),
                               WarmStart(builtin=False), [1, 3],
                               store=ResultsStore(tmp_path / "empty"))
    assert plan.seeds == [] and plan.priors == []
    with pytest.raises(UnknownNameError, match="frechet"):
        WarmStart(measure="frechett")


def _plan(n_priors=10):
    rng = np.random.default_rng(1)
    priors = [Prior({"learning_rate": float(10 ** rng.uniform(-4, -1)), "batch_size": 32,
                     "n_fc_layers": 0}, 1, -float(q), "d") for q in np.linspace(0, 1, n_priors)]
    seeds = [Seed({"learning_rate": 0.05, "batch_size": 64, "n_fc_layers": 0}, "store:d", "best")]
    return WarmStartPlan(seeds=seeds, priors=priors)


def _bohb():
    return BOHBSearcher(_space(), metric="val_acc", mode="max", seed=0,
                        bohb_config={"random_fraction": 0})


def test_the_searcher_suggests_seeds_first_and_bohbs_model_starts_from_the_priors(tmp_path):
    """With 2(d+1) priors, hpbandster has a model before any trial: the first suggestion after
    the seed is model-based, where the same searcher without priors draws at random (BOHB's
    share of random picks set to 0, so that every pick it can make from a model is one)."""
    cold = _bohb()
    warm = WarmStartSearcher(_bohb(), _plan())
    assert warm.bohb.bohber.kde_models and not cold.bohber.kde_models
    first = warm.suggest("t0")
    assert first["suggested_by"] == "store:d" and first["learning_rate"] == 0.05
    assert warm.suggest("t1")["suggested_by"] == "model"
    assert cold.suggest("t1")["suggested_by"] == "random"
    assert len(warm.bohb.bohber.configs[1]) == 10

    # A result of the target at budget 1 retires one prior (the target's own takes its place).
    warm.on_trial_result("t0", {"val_acc": 0.9, "hyperband_info": {"budget": 1}})
    assert warm.priors_left[1] == 9 and len(warm.bohb.bohber.configs[1]) == 10
    assert warm.bohb.bohber.losses[1][-1] == -0.9
    # The priors are mapped onto the target's own range (here one result: all at its loss) ...
    assert warm.bohb.bohber.losses[1][:9] == pytest.approx([-0.9] * 9)
    warm.suggest("t1b")
    warm.on_trial_result("t1b", {"val_acc": 0.5, "hyperband_info": {"budget": 1}})
    # ... and spread over it as it grows: the best quantile at the target's best, the worst at
    # its worst (retiring takes middle priors, so both ends remain).
    priors = warm.bohb.bohber.losses[1][:8]
    assert min(priors) == pytest.approx(-0.9) and max(priors) == pytest.approx(-0.5)
    assert warm.priors_left[1] == 8

    # Saved and restored (as Tune does on resume): no seed again, priors left as they were.
    warm.save(str(tmp_path / "state.pkl"))
    again = WarmStartSearcher(_bohb(), WarmStartPlan())
    again.restore(str(tmp_path / "state.pkl"))
    assert again.pending == [] and again.priors_left == {1: 8}
    assert again.target_losses == {1: (-0.9, -0.5)}
    assert again.suggest("t2")["suggested_by"] == "model"
    assert len(again.bohb.bohber.configs[1]) == 10


def test_priors_bohb_cannot_take_leave_its_model_empty_and_the_default_goes_on_without_them():
    """A prior failing at the second budget (here a value outside the space) undoes those fed at
    the first, so the non-strict fallback's BOHB holds no prior it could never retire."""
    from automl_chars.runner.sweep import _Seeded

    plan = _plan()
    bad = Prior({"learning_rate": 5.0, "batch_size": 32, "n_fc_layers": 0}, 3, -0.5, "d")
    plan = WarmStartPlan(seeds=plan.seeds, priors=[*plan.priors, bad])
    bohb = _bohb()
    with pytest.raises(ValueError, match="learning_rate"):
        WarmStartSearcher(bohb, plan)
    assert not bohb.bohber.configs and not bohb.bohber.losses and not bohb.bohber.kde_models

    with pytest.warns(UserWarning, match="could not take the priors"):
        warm = _Seeded(plan, strict=False)(_bohb())
    assert warm.priors_left == {} and not warm.bohb.bohber.configs
    assert warm.suggest("t0")["suggested_by"] == "store:d"  # the seeds stay
    with pytest.raises(ValueError, match="learning_rate"):
        _Seeded(plan, strict=True)(_bohb())


def test_fit_to_space_drops_inactive_and_refuses_values_out_of_range():
    space = _space()
    assert fit_to_space({"learning_rate": 0.01, "n_fc_layers": 0, "fc1_units": 64}, space) == {
        "batch_size": 128, "learning_rate": 0.01, "n_fc_layers": 0}
    assert fit_to_space({"learning_rate": 5.0}, space) is None


def test_fit_to_space_gives_integer_hyperparameters_ints():
    """Configurations read back from a table carry whole floats (``27.0``); seeds, trials and
    saved files must see the space's types."""
    config = fit_to_space({"learning_rate": 0.01, "batch_size": 64.0, "n_fc_layers": 1.0,
                           "fc1_units": 20.0}, _space())
    assert config == {"learning_rate": 0.01, "batch_size": 64, "n_fc_layers": 1, "fc1_units": 20}
    assert all(type(config[k]) is int for k in ("batch_size", "n_fc_layers", "fc1_units"))
    assert fit_to_space({"batch_size": 64.5}, _space()) is None  # not whole: refused


def test_seeds_beyond_the_sweeps_trials_are_left_out_and_noted():
    plan = _plan()
    plan.seeds = plan.seeds * 3
    plan.cap_seeds(2)
    assert len(plan.seeds) == 2
    assert "1 seed(s) left out, the sweep runs 2 trial(s): store:d" in plan.describe()


def test_a_store_seed_of_the_targets_name_says_it_is_another_sample(glyph_root, tmp_path):
    """Results recorded under the target's name on other data (a glyph domain drawn at another
    size) count as the target's own dataset, and the plan says they come from another sample."""
    target = _load("glyphs-digits", glyph_root)
    store = ResultsStore(tmp_path / "st")
    results = [{"config": {"learning_rate": 0.01, "batch_size": 32.0, "n_fc_layers": 0.0},
                "budget": 1, "val_acc": 0.5, "trial_id": "t"}]
    store.write("d", rows("sweep", "glyphs-digits", "other-print", "cnn", results, "/x/d",
                          dataset_meta_features(target)))
    plan = plan_warm_start(target, cnn_spec(_space()), WarmStart(k=1, builtin=False), [1],
                           store=store)
    assert [s.suggested_by for s in plan.seeds] == ["store:glyphs-digits"]
    assert "from the store; the target's dataset drawn at another size" in plan.seeds[0].reason
    assert type(plan.seeds[0].config["batch_size"]) is int
    no_own = plan_warm_start(target, cnn_spec(_space()),
                             WarmStart(k=1, builtin=False, same_dataset=False, seed_trials=False),
                             [1], store=store)
    assert no_own.empty


DRIVER = textwrap.dedent("""
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test session's Ray
    from automl_chars import data, run_bohb
    from automl_chars.search import WarmStart
    from automl_chars.spaces import cnn_space, subspace
    ds = data.load("glyphs-digits", samples_per_class={per_class})
    run_bohb(ds, space=subspace(cnn_space(), {keep!r}, seed=0), preset="3_1_3_2",
             storage_path={storage!r}, name="warm", verbose=0,
             warm_start=WarmStart(store={store!r}, k=2, num_seeds=2, builtin=False))
""")


@pytest.mark.slow
def test_a_warm_started_sweep_survives_a_killed_driver(ray_session, ray_address, glyph_root, tmp_path):
    """Killed after some trials; resumed: every seed ran exactly once, the sweep finished, and
    BOHB proposed configurations from its model although the sweep had too few results of its
    own for one."""
    store = _store(tmp_path / "st", glyph_root, budgets=(1, 3))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(per_class=PER_CLASS, keep=KEEP, storage=str(tmp_path),
                                    store=str(store.path)))
    exp = tmp_path / "warm"
    finished = kill_driver_after(script, glyph_root, exp, finished=2, ray_address=ray_address)
    assert not (exp / "summary.json").exists()
    plan = json.loads((exp / "warm_start.json").read_text())
    assert [s["suggested_by"] for s in plan["seeds"]] == ["store:glyphs-greek", "store:glyphs-hebrew"]

    ds = _load("glyphs-digits", glyph_root)
    result = run_bohb(ds, space=_space(), preset="3_1_3_2", storage_path=tmp_path, name="warm",
                      resume=True, verbose=0,
                      warm_start=WarmStart(store=str(store.path), k=2, num_seeds=2,
                                           builtin=False))
    t = result.trials
    assert (t["status"] == "TERMINATED").all() and len(t) == 5, t["error"].to_dict()
    # The sweep's own resume (the one killed-driver run of run_bohb in the suite): the preset's
    # 5 trials, none lost, none duplicated; finished trials were kept, not rerun: their folders
    # hold a single run's results.
    assert finished <= set(t["trial_id"]) and t["trial_id"].is_unique and t["budget"].max() <= 3
    for tid, budget in zip(t["trial_id"], t["budget"]):
        if tid in finished:
            progress = (exp / f"CNNTrainable_{tid}" / "progress.csv").read_text().splitlines()
            assert len(progress) - 1 == budget
    assert sorted(t["suggested_by"][t["suggested_by"].str.startswith("store:")]) == [
        "store:glyphs-greek", "store:glyphs-hebrew"]
    assert (t["suggested_by"] == "model").sum() >= 1  # 5 trials alone never make a model
    with pytest.raises(Exception, match="different settings"):
        run_bohb(ds, space=_space(), preset="3_1_3_2", storage_path=tmp_path, name="warm",
                 resume=True, verbose=0,
                 warm_start=WarmStart(store=str(store.path), k=2, num_seeds=1, builtin=False))


def _portfolio(path, root, names=("glyphs-greek", "glyphs-hebrew"), crop=None):
    """Untrained CNN entries (the ranking needs models, not good ones), each with a config."""
    import dataclasses

    import torch

    from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec, build_model
    from automl_chars.portfolio import Portfolio

    arch = CNNSpec(conv=(ConvLayerSpec(4, 3, 1, 1, False, 0.0, 2),), fc=(FCLayerSpec(8, False, 0.0),))
    p = Portfolio(path)
    for i, name in enumerate(names):
        ds = _load(name, root)
        if crop:
            ds = dataclasses.replace(ds, **{f"x_{s}": getattr(ds, f"x_{s}")[..., :crop, :crop]
                                            for s in ("train", "val", "test")})
        torch.manual_seed(i)
        net = build_model("cnn", arch, ds.num_classes, ds.image_shape)
        p.add(ds, "cnn", arch, net.state_dict(), trainable="cnn", sample_size=40,
              config={"learning_rate": 0.01 * (i + 1), "batch_size": 32, "n_fc_layers": 1,
                      "fc1_units": 32})
    return p


def test_portfolio_entries_seed_their_configurations_ranked_by_the_measure(glyph_root,
                                                                          tmp_path, monkeypatch):
    """A CNN sweep is seeded with the CNN entries' configurations in the measure's order; a
    measure that fails on the target falls back to meta_features, and the plan says so."""
    from automl_chars.similarity import DEFAULT_MEASURE, get_measure

    pf = _portfolio(tmp_path / "pf", glyph_root)
    target = _load("glyphs-digits", glyph_root)
    plan = plan_warm_start(target, cnn_spec(_space()), WarmStart(
        portfolio=pf, k=2, measure="meta_features", builtin=False), [1, 3])
    assert [s.suggested_by for s in plan.seeds] == [f"portfolio:{n}" for n in plan.ranking.index]
    assert {s.config["learning_rate"] for s in plan.seeds} == {0.01, 0.02}
    assert "rank 1 by meta_features" in plan.seeds[0].reason

    def broken(*args, **kwargs):
        raise RuntimeError("no features for you")

    monkeypatch.setattr(type(get_measure(DEFAULT_MEASURE)), "score", broken)
    plan = plan_warm_start(target, cnn_spec(_space()), WarmStart(portfolio=pf, k=1, builtin=False),
                           [1, 3])
    assert set(plan.ranking["measure"]) == {"meta_features"} and len(plan.seeds) == 1
    assert any(f"{DEFAULT_MEASURE} failed" in n for n in plan.notes)


def test_a_portfolio_for_other_images_is_refused_before_ray(glyph_root, tmp_path, capsys):
    from automl_chars.cli.main import main

    pf = _portfolio(tmp_path / "pf", glyph_root, names=("glyphs-greek",), crop=20)
    code = main(["bohb", "--dataset", "glyphs-digits", "--samples-per-class", str(PER_CLASS),
                 "--root", str(glyph_root), "--warm-start", str(pf.path), "--storage",
                 str(tmp_path), "--preset", "2_1_2_1"])
    assert code == 2
    assert "glyphs-greek (1x20x20)" in capsys.readouterr().err
    assert not list(tmp_path.glob("bohb-*/experiment_state*"))
    code = main(["bohb", "--dataset", "glyphs-digits", "--store", str(tmp_path / "st"),
                 "--num-seeds", "-1", "--storage", str(tmp_path)])
    assert code == 2 and "--num-seeds must be a whole number >= 0" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_warm_start_prints_the_seeded_trials(ray_session, glyph_root, tmp_path, capsys):
    from automl_chars.cli.main import main

    pf = _portfolio(tmp_path / "pf", glyph_root)
    code = main(["bohb", "--dataset", "glyphs-digits", "--samples-per-class", str(PER_CLASS),
                 "--root", str(glyph_root), "--warm-start", str(pf.path), "--measure",
                 "meta_features", "--k", "2", "--storage", str(tmp_path), "--preset", "2_1_2_1",
                 "--verbose", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Seeded trials (warm start):" in out and "portfolio:glyphs-greek" in out
    assert json.loads((tmp_path / "bohb-glyphs-digits-2_1_2_1" / "warm_start.json").read_text())[
        "ranking"][0]["measure"] == "meta_features"


def test_the_saved_state_holds_the_wrapped_searchers_own_and_refuses_another_format(tmp_path):
    import cloudpickle

    from automl_chars.errors import ExperimentStateError

    warm = WarmStartSearcher(_bohb(), _plan())
    written = []
    save = warm.bohb.save
    warm.bohb.save = lambda p: (written.append(p), save(p))
    path = str(tmp_path / "state.pkl")
    warm.save(path)
    # The wrapped searcher's file never appears in the folder Tune uploads while the sweep runs
    # (a file that vanishes mid-copy breaks Tune's copy: a traceback in the user's console).
    assert len(written) == 1 and tmp_path not in Path(written[0]).parents
    assert [p.name for p in tmp_path.iterdir()] == ["state.pkl"]
    with open(path, "rb") as f:
        state = cloudpickle.load(f)
    inner = cloudpickle.loads(state["bohb_state"])  # what TuneBOHB.save wrote
    assert len(inner["bohber"].configs[1]) == 10
    state["format"] = 1
    with open(path, "wb") as f:
        cloudpickle.dump(state, f)
    with pytest.raises(ExperimentStateError, match="format 1"):
        WarmStartSearcher(_bohb(), _plan()).restore(path)
