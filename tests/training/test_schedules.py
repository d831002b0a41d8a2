"""The learning-rate schedules: warm restarts and drops at given budget units join constant,
cosine and step, as configuration options outside the searched spaces (the shipped
learning-curve table stays valid); trials report their own elapsed seconds."""

from __future__ import annotations

import math

import pytest
import torch
from ConfigSpace import Categorical

from automl_chars.errors import InvalidConfigError
from automl_chars.spaces import cnn_space, subspace
from automl_chars.spaces import training as space_training
from automl_chars.trainables import CNNTrainable
from automl_chars.trainables.cnn import cnn_settings
from automl_chars.training import OptimizerSettings
from automl_chars.training.settings import SCHEDULES, parse_milestones


def _rates(settings: OptimizerSettings, horizon: int) -> list[float]:
    """The learning rate of each budget unit 1..horizon."""
    opt = settings.make(torch.nn.Linear(1, 1))
    schedule = settings.make_schedule(opt, horizon)
    rates = []
    for _ in range(horizon):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return rates


def test_cosine_with_warm_restarts_restarts_every_period_growing_by_the_factor():
    s = OptimizerSettings(learning_rate=1.0, schedule="cosine_restarts", restart_period=2,
                          restart_mult=2)
    half = 0.5 * (1 + math.cos(math.pi / 2))  # halfway through a cycle of 2
    quarter = [0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]  # the cycle of 4
    assert _rates(s, 6) == pytest.approx([1.0, half, *quarter])
    default = OptimizerSettings(learning_rate=1.0, schedule="cosine_restarts")
    assert _rates(default, 9)[::3] == pytest.approx([1.0, 1.0, 1.0])  # a third of 9: cycles of 3


def test_multistep_drops_at_the_given_units_or_at_thirds():
    s = OptimizerSettings(learning_rate=1.0, schedule="multistep", milestones=(2, 3), gamma=0.5)
    assert _rates(s, 5) == pytest.approx([1.0, 1.0, 0.5, 0.25, 0.25])
    default = OptimizerSettings(learning_rate=1.0, schedule="multistep")
    assert _rates(default, 6) == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_the_new_schedules_are_configuration_options_outside_the_searched_space():
    assert {"cosine_restarts", "multistep"} <= set(SCHEDULES)
    assert cnn_space()["lr_schedule"].choices == space_training.SCHEDULES == (
        "constant", "cosine", "step")  # the shipped table's space is unchanged
    opt = cnn_settings({"lr_schedule": "multistep", "lr_milestones": "3, 6",
                        "lr_gamma": 0.2}).optimizer
    assert (opt.schedule, opt.milestones, opt.gamma) == ("multistep", (3, 6), 0.2)
    opt = cnn_settings({"lr_schedule": "cosine_restarts", "lr_restart_period": 4.0,
                        "lr_restart_mult": 2}).optimizer
    assert (opt.restart_period, opt.restart_mult) == (4, 2)
    assert parse_milestones([2.0, 5]) == (2, 5) and parse_milestones("") == ()


@pytest.mark.parametrize("options, named", [
    ({"lr_schedule": "warm"}, "schedule must be one of"),
    ({"lr_milestones": "3,a"}, "lr_milestones"),
    ({"lr_milestones": [4, 2]}, "lr_milestones"),
    ({"lr_gamma": 0.0}, "lr_gamma"),
    ({"lr_restart_mult": 0}, "lr_restart_mult"),
    ({"lr_restart_period": 1.5}, "lr_restart_period"),
])
def test_bad_schedule_options_are_named(options, named):
    with pytest.raises(InvalidConfigError, match=named):
        cnn_settings(options)


def test_a_space_may_search_every_schedule(make_dataset):
    """A sweep over all five: the CNN space with ``lr_schedule`` widened (outside cnn_space())."""
    base = cnn_space()
    space = subspace(base, [n for n in base if n != "lr_schedule"], seed=0)
    space.add(Categorical("lr_schedule", list(SCHEDULES), default="constant"))
    CNNTrainable.check_space(space, make_dataset(num_classes=3, per_class=4))


def test_a_trial_follows_its_schedule_and_reports_its_elapsed_seconds(make_dataset, tmp_path):
    ds = make_dataset(num_classes=3, per_class=8)

    class Local(CNNTrainable):
        def setup(self, config):
            super().setup(config, dataset=ds)

    config = {"batch_size": 16, "learning_rate": 0.01, "lr_schedule": "multistep",
              "lr_milestones": [1], "lr_gamma": 0.5}
    trial = Local(config=config)
    first = trial.train()
    assert trial.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    second = trial.train()
    assert 0 < first["elapsed_s"] < second["elapsed_s"]
    assert second["elapsed_s"] >= first["epoch_s"] + second["epoch_s"]
    saved = trial.save(str(tmp_path / "ckpt"))
    resumed = Local(config=config)
    resumed.restore(saved)
    assert resumed.elapsed_s == pytest.approx(second["elapsed_s"])
    trial.stop()
    resumed.stop()
