"""What BOHB learns from, through the project's searcher and scheduler on hand-made trials (no
Ray cluster needed): hpbandster's options, where each suggestion came from, revived and adopted
trials, failed and stopped results at their rung's budget."""

from __future__ import annotations

import numpy as np
import pytest
from ConfigSpace import ConfigurationSpace, Float
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from support import FakeController

from automl_chars.errors import InvalidConfigError
from automl_chars.search.bohb import check_bohb_config
from automl_chars.search.scheduler import ResumableHyperBandForBOHB
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.trainables.base import FAILURE


def test_bohb_config_refuses_booleans():
    """``True`` is an int to Python but no BOHB option's value (it would silently mean 1)."""
    with pytest.raises(InvalidConfigError, match="must be numbers"):
        check_bohb_config({"top_n_percent": True})


# -- what BOHB learns from ----------------------------------------------------------------------
def _space():
    space = ConfigurationSpace(seed=0)
    space.add([Float("x", (0.0, 1.0))])
    return space


def _searcher(**bohb_config):
    np.random.seed(0)  # hpbandster draws from numpy's global generator
    return BOHBSearcher(_space(), metric="val_acc", mode="max", seed=0,
                        bohb_config={"min_points_in_model": 3, **bohb_config})


def _feed(searcher, tid, acc, budget=1):
    searcher.on_trial_result(tid, {"val_acc": acc, "hyperband_info": {"budget": budget}})


def test_suggestions_say_whether_the_model_or_chance_proposed_them():
    """Random picks until BOHB's model has enough results, model picks after (random_fraction 0),
    and points given up front are labelled "given"."""
    searcher = _searcher(random_fraction=0.0)
    labels = []
    for i in range(10):
        config = searcher.suggest(f"t{i}")
        labels.append(config["suggested_by"])
        assert searcher.sources[f"t{i}"] == config["suggested_by"]
        _feed(searcher, f"t{i}", config["x"])
        searcher.on_trial_complete(f"t{i}", {"val_acc": config["x"]})
    assert labels[0] == "random" and labels[-1] == "model"
    first_model = labels.index("model")
    assert set(labels[:first_model]) == {"random"} and set(labels[first_model:]) == {"model"}

    given = BOHBSearcher(_space(), metric="val_acc", mode="max", seed=0,
                         points_to_evaluate=[{"x": 0.5}])
    assert given.suggest("g0") == {"x": 0.5, "suggested_by": "given"}
    assert given.suggest("g1")["suggested_by"] == "random"


def test_a_revived_trials_results_still_reach_bohbs_model():
    """A trial that errored (Tune forgets its parameters) and is revived on resume is learned
    from with its own configuration."""
    searcher = _searcher()
    config = searcher.suggest("t0")
    searcher.on_trial_complete("t0", None, error=True)
    _feed(searcher, "t0", 0.7, budget=3)
    vectors = [c[0] for c in searcher.bohber.configs[3]]
    assert len(vectors) == 1
    assert vectors[0] == pytest.approx(_space()["x"].to_vector(config["x"]))
    assert searcher.bohber.losses[3] == [-0.7]


def test_an_adopted_configuration_is_running_and_learned_from():
    """A wrapper's own suggestion counts as running (BOHB's concurrency) and its results reach
    the model like BOHB's own."""
    searcher = _searcher()
    assert searcher.adopt("w0", {"x": 0.25}, "seed") == {"x": 0.25, "suggested_by": "seed"}
    assert "w0" in searcher.running and searcher.sources["w0"] == "seed"
    _feed(searcher, "w0", 0.4)
    assert searcher.bohber.losses[1] == [-0.4]
    searcher.on_trial_complete("w0", {"val_acc": 0.4})
    assert "w0" not in searcher.running


def _scheduler():
    return ResumableHyperBandForBOHB(time_attr="training_iteration", metric="val_acc", mode="max",
                                     min_t=1, max_t=3, reduction_factor=3)


def test_a_failed_result_stops_the_trial_and_reaches_bohb_at_its_rung_budget():
    """A failure ends the trial at once (no retry, no waiting at the rung) and BOHB's model gets
    it at the budget of the rung the trial was heading for."""
    sched = _scheduler()
    ctrl = FakeController(sched)
    trials = [Trial("CNNTrainable", stub=True, trial_id=f"t{i}") for i in range(3)]
    for t in trials:
        sched.on_trial_add(ctrl, t)
    trials[0].set_status(Trial.RUNNING)
    failed = {"training_iteration": 1, "val_acc": float("nan"), FAILURE: "diverged"}
    assert sched.on_trial_result(ctrl, trials[0], failed) == TrialScheduler.STOP
    assert [tid for tid, _ in ctrl.fed] == ["t0"]
    assert ctrl.fed[0][1]["hyperband_info"] == {"budget": 1}


def test_the_last_result_of_a_rung_reaches_bohb_even_when_it_is_stopped():
    """Tune passes STOP results to no searcher: the scheduler must, or BOHB never learns the
    result that completed a rung (nor one halved away on arrival)."""
    sched = _scheduler()
    ctrl = FakeController(sched)
    trials = [Trial("CNNTrainable", stub=True, trial_id=f"t{i}") for i in range(3)]
    for t in trials:
        sched.on_trial_add(ctrl, t)
    decisions = []
    for t, acc in zip(trials, (0.9, 0.5, 0.1)):
        t.set_status(Trial.RUNNING)
        decisions.append(sched.on_trial_result(ctrl, t, {"training_iteration": 1, "val_acc": acc}))
        if decisions[-1] == TrialScheduler.PAUSE:
            t.set_status(Trial.PAUSED)
    assert decisions[-1] == TrialScheduler.STOP
    assert ("t2", 1) in [(tid, r["hyperband_info"]["budget"]) for tid, r in ctrl.fed]
