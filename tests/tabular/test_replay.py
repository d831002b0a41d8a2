"""``ReplayTrainable``: a replayed curve equals the stored one, failures included, across
checkpoints, and a BOHB sweep runs on it unchanged."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from ray import tune
from table_helpers import make_table

from automl_chars.errors import InvalidConfigError
from automl_chars.spaces import cnn_space, default_config
from automl_chars.tabular.nearest import ConfigIndex
from automl_chars.trainables import FAILURE, ReplayTrainable
from automl_chars.trainables.replay import lookup
from automl_chars.trainables.simclock import EVENTS_FILE
from automl_chars.training.fidelity import Fidelity
from automl_chars.workflows.table import draw_configs


def test_a_configuration_is_found_by_id_by_its_values_or_nearest():
    table = make_table()
    assert lookup(table, {"config_id": 2}) == (2, 0.0)
    assert lookup(table, {**default_config(), "suggested_by": "random"}) == (0, 0.0)
    assert lookup(table, {"learning_rate": 0.01}) == (1, 0.0)
    for bad in ({"config_id": 7}, {"config_id": "1"}, {"learning_rate": 0.02}):
        with pytest.raises(InvalidConfigError, match="table"):
            lookup(table, bad)  # without a space, only exact lookups
    index = ConfigIndex(table.configs, cnn_space())
    cid, distance = lookup(table, {"learning_rate": 0.3}, index)
    assert cid == 2 and 0 < distance < 0.2  # 0.3 is nearer to 0.5 than to 0.01 on a log scale
    assert lookup(table, {"learning_rate": 0.02}, index)[0] == 1
    with pytest.raises(InvalidConfigError, match="lacks"):
        lookup(table, {"no_such_hp": 1}, index)


def test_every_hyperparameter_weighs_about_one_in_the_distance():
    space = cnn_space()
    configs = {0: default_config(), 1: draw_configs(1, seed=3)[1]}
    index = ConfigIndex(configs, space)
    far = index.encode(configs[1]) - index.encode(configs[0])
    assert np.sqrt((far ** 2).sum()) <= np.sqrt(2 * len(space))
    for name in ("learning_rate", "activation"):  # one hyperparameter changed: distance <= ~1
        hp = space[name]
        values = hp.choices if hasattr(hp, "choices") else (hp.lower, hp.upper)
        other = next(v for v in values if v != configs[0][name])
        assert 0 < index.lookup({**configs[0], name: other})[1] <= 1.0 + 1e-9


def test_parameters_are_checked():
    table = make_table()
    assert ReplayTrainable.check_parameters(table, "a", Fidelity("epochs", 3)) == (table, "a")
    for args, fragment in (((None, "a"), "needs a LearningCurveTable"),
                           ((table, "c"), "no dataset 'c'"),
                           ((table, "a", Fidelity("subset", 3)), "'subset' cannot be replayed"),
                           ((table, "a", Fidelity("epochs", 9)), "max_budget \\(9\\)")):
        with pytest.raises(InvalidConfigError, match=fragment):
            ReplayTrainable.check_parameters(*args)


def _replay(table, dataset, config):
    return tune.with_parameters(ReplayTrainable, table=table, dataset=dataset)(config=config)


@pytest.mark.slow
def test_a_replayed_curve_equals_the_stored_one(ray_session, tmp_path):
    table = make_table()
    for cid, ds in ((0, "a"), (1, "a"), (0, "b")):
        t = _replay(table, ds, {"config_id": cid})
        stored = table.curve(cid, ds)
        for epoch in stored.index:
            r = t.train()
            for key, col in (("val_acc", "val_acc"), ("val_loss", "val_loss"),
                             ("train_acc", "train_acc"), ("train_loss", "train_loss"),
                             ("epoch_s", "epoch_seconds"), ("num_params", "num_params")):
                assert r[key] == stored.loc[epoch, col], (cid, ds, epoch, key)
            assert r["budget"] == epoch == r["training_iteration"]
            # Tune's clock is the table's: the stored epochs' seconds
            assert r["time_total_s"] == pytest.approx(stored["epoch_seconds"].loc[:epoch].sum())
        ckpt = t.save(str(tmp_path / f"{cid}{ds}")).checkpoint.path
        assert ReplayTrainable.evaluate_checkpoint(ckpt, None, "test") == pytest.approx(
            stored.loc[3, "test_acc"])
        t.stop()


@pytest.mark.slow
def test_a_stored_failure_is_replayed_and_a_checkpoint_resumes(ray_session, tmp_path):
    table = make_table()
    t = _replay(table, "b", {"config_id": 2})
    assert t.train()["val_acc"] == 0.7
    failed = t.train()
    assert math.isnan(failed["val_acc"]) and "diverged" in failed[FAILURE]
    assert not failed.get("done") and t.train()["done"] is True

    t = _replay(table, "a", {"config_id": 1})
    t.train()
    ckpt = t.save(str(tmp_path / "ckpt"))
    again = _replay(table, "a", {"config_id": 0})
    again.restore(ckpt)
    assert again.train()["val_acc"] == table.curve(1, "a").loc[2, "val_acc"]
    assert again.reset(new_config={"config_id": 2}) and again.train()["val_acc"] == 0.1
    for x in (t, again):
        x.stop()


@pytest.mark.slow
def test_bohb_sweeps_a_table_unchanged(ray_session, make_dataset, tmp_path):
    from automl_chars import run_bohb
    from automl_chars.search.spec import replay_spec

    table = make_table()
    result = run_bohb(make_dataset("a"), spec=replay_spec(table, seed=0), preset="3_1_3_1",
                      storage_path=tmp_path, priors=False, verbose=0)
    trials = result.trials
    assert len(trials) > 1 and (trials["status"] == "TERMINATED").all()
    events = pd.read_csv(result.path / EVENTS_FILE)  # every result, as the clock released it
    # one trial at a time: the simulated clock adds up the stored epochs, one after the other
    assert np.allclose(events["sim_time"], events["time_this_iter_s"].cumsum())
    config_of = events.groupby("trial_id")["config_id"].first()
    for _, row in trials.iterrows():
        cid = int(config_of[row["trial_id"]])
        assert row["val_acc"] == table.curve(cid, "a").loc[int(row["budget"]), "val_acc"]
    best = int(config_of[result.incumbent_trial_id])
    assert result.test_accuracy == pytest.approx(
        table.curve(best, "a").loc[int(trials.set_index("trial_id").loc[
            result.incumbent_trial_id, "budget"]), "test_acc"])


def test_a_replay_warm_starts_from_the_tables_cnn_results():
    """A replay of a CNN table draws on CNN results (the evidence's trainable), not on results
    of a trainable called "replay": the other dataset's rows become seeds and priors."""
    from automl_chars.search.spec import replay_spec
    from automl_chars.search.warmstart import Evidence, TargetInfo, WarmStart, plan_from

    table = make_table()
    spec = replay_spec(table, seed=0)
    assert spec.name == "replay" and spec.results_of == "cnn"
    plan = plan_from(TargetInfo("a", "fp-a", {"log_classes": 2.3}), spec,
                     WarmStart(k=1, num_seeds=1, builtin=False, priors_per_budget=3), [1, 3],
                     Evidence(results=table.store_rows(["b"])))
    assert [s.suggested_by for s in plan.seeds] == ["store:b"]
    assert plan.seeds[0].config == default_config()  # b's best at the top budget: config 0
    assert plan.priors and {p.dataset for p in plan.priors} == {"b"}


def test_a_replayed_trials_actor_imports_no_torch():
    """What a replay actor unpickles (the Trainable, its fidelity, the table) leaves torch out:
    importing it costs seconds per actor, more than a whole replayed trial."""
    import subprocess
    import sys

    code = ("import sys, pickle\n"
            "import automl_chars.trainables.replay, automl_chars.training.fidelity\n"
            "import automl_chars.tabular, automl_chars.trainables.simclock\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
