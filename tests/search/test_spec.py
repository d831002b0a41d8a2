"""One sweep runner for every Trainable: a spec with its own Trainable, model and space runs
through ``run_bohb``; resume refuses another trainable, space or BOHB options; a searcher that
wraps the BOHB searcher and suggests trials itself keeps the scheduler's contract, with the real
searcher and real Tune."""

from __future__ import annotations

import glob
import sys
from collections.abc import Mapping

import cloudpickle
import numpy as np
import pytest
import ray
from ConfigSpace import ConfigurationSpace, Float, Integer
from ray.tune.search import Searcher
from torch import nn

from automl_chars import run_bohb
from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.models import MODELS
from automl_chars.search import BracketSearcher, SweepSpec
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.trainables import SupervisedTrainable, TrialSettings, evaluate_checkpoint
from automl_chars.training import AugmentSettings, OptimizerSettings

pytestmark = pytest.mark.slow


def _mlp(arch: Mapping, num_classes: int, input_shape) -> nn.Module:
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, int(arch["hidden"])), nn.ReLU(),
                         nn.Linear(int(arch["hidden"]), num_classes))


if "test-mlp" not in MODELS:  # for evaluate_checkpoint in the driver
    MODELS.add("test-mlp", _mlp)
# Ray's workers cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class MLPTrainable(SupervisedTrainable):
    """A second Trainable: only what a configuration means differs from the CNN's."""

    @classmethod
    def settings(cls, config: Mapping) -> TrialSettings:
        unknown = set(config) - {"hidden", "learning_rate", "suggested_by"}
        if unknown:
            raise InvalidConfigError(f"unknown hyperparameters {sorted(unknown)}")
        return TrialSettings(
            model="test-mlp", arch={"hidden": int(config.get("hidden", 16))},
            optimizer=OptimizerSettings("adam", float(config.get("learning_rate", 1e-2)),
                                        batch_size=16),
            augment=AugmentSettings(), config=dict(config))

    def make_model(self, settings: TrialSettings) -> nn.Module:
        return _mlp(settings.arch, self.dataset.num_classes, self.dataset.image_shape)


def mlp_space(seed=0):
    space = ConfigurationSpace(seed=seed)
    space.add([Integer("hidden", (8, 32)), Float("learning_rate", (1e-3, 3e-2), log=True)])
    return space


def _shifted(make_dataset):
    """A learnable toy dataset whose test labels are shifted by one class, so that the
    validation and test accuracy of a trained model are far apart: a sweep that reported its
    validation accuracy as test accuracy could not go unnoticed."""
    from automl_chars.data import from_arrays

    ds = make_dataset(num_classes=4, per_class=30)
    return from_arrays("shifted", ds.x_train.numpy(), ds.y_train.numpy(), ds.x_test.numpy(),
                       (ds.y_test.numpy() + 1) % 4, x_val=ds.x_val.numpy(), y_val=ds.y_val.numpy())


def test_a_spec_with_its_own_trainable_runs_and_resume_refuses_another(ray_session, make_dataset,
                                                                       tmp_path):
    ds = _shifted(make_dataset)
    spec = SweepSpec("mlp", MLPTrainable, mlp_space())
    result = run_bohb(ds, spec=spec, preset="3_1_3_1", storage_path=tmp_path, verbose=0)
    assert result.path.name == "mlp-bohb-shifted-3_1_3_1"
    assert result.settings["trainable"] == "mlp" and set(result.incumbent) == {"hidden", "learning_rate"}
    t = result.trials.set_index("trial_id")
    assert (t["status"] == "TERMINATED").all()
    # The incumbent is the best trial at the highest budget reached (not a better one that
    # stopped lower), and its test accuracy is the test split's, evaluated from its checkpoint.
    top = t[t["budget"] == t["budget"].max()]
    assert result.incumbent_trial_id == top["val_acc"].idxmax()
    ckpt = sorted((result.path / f"MLPTrainable_{result.incumbent_trial_id}").glob("checkpoint_*"))[-1]
    assert result.test_accuracy == pytest.approx(evaluate_checkpoint(ckpt, ds, "test"))
    val = evaluate_checkpoint(ckpt, ds, "val")
    assert val == pytest.approx(t.loc[result.incumbent_trial_id, "val_acc"])
    assert abs(val - result.test_accuracy) > 0.2, "validation and test accuracy must differ here"

    # Resume refuses what would make it another sweep, before Ray does any work.
    other_space = mlp_space()
    other_space.add(Float("momentum", (0.1, 0.9)))
    for kwargs, fragment in ((dict(spec="cnn"), "trainable"),
                             (dict(spec=SweepSpec("mlp", MLPTrainable, other_space)),
                              "space_fingerprint"),
                             (dict(spec=spec, bohb_config={"top_n_percent": 30}), "bohb_config")):
        with pytest.raises(ExperimentStateError, match=f"different settings.*{fragment}"):
            run_bohb(ds, preset="3_1_3_1", storage_path=tmp_path, name=result.path.name,
                     resume=True, verbose=0, **kwargs)
    assert run_bohb(ds, spec=spec, preset="3_1_3_1", storage_path=tmp_path, resume=True,
                    verbose=0).incumbent == result.incumbent  # the same sweep is read back


class SeedFirst(Searcher):
    """A wrapper that suggests its first trial itself and hands the rest to BOHB (the shape of
    a warm-start searcher), keeping :class:`BracketSearcher`."""

    SEED = {"hidden": 31, "learning_rate": 0.01}

    def __init__(self, bohb: BOHBSearcher):
        super().__init__(metric=bohb.metric, mode=bohb.mode)
        self.bohb, self.seeded = bohb, False

    def set_search_properties(self, metric, mode, config, **spec):
        return self.bohb.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id):
        if not self.seeded:
            self.seeded = True
            return self.bohb.adopt(trial_id, self.SEED, "seed")
        return self.bohb.suggest(trial_id)

    def on_trial_result(self, trial_id, result):
        self.bohb.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.bohb.on_trial_complete(trial_id, result, error)

    def on_pause(self, trial_id):
        self.bohb.on_pause(trial_id)

    def on_unpause(self, trial_id):
        self.bohb.on_unpause(trial_id)

    def save(self, checkpoint_path):
        with open(checkpoint_path, "wb") as f:
            cloudpickle.dump({"seeded": self.seeded, "bohb": self.bohb.__dict__}, f)

    def restore(self, checkpoint_path):
        with open(checkpoint_path, "rb") as f:
            state = cloudpickle.load(f)
        self.seeded = state["seeded"]
        self.bohb.__dict__.update(state["bohb"])


def test_a_wrapping_searcher_suggests_trials_itself_and_bohb_learns_from_them(
        ray_session, make_dataset, tmp_path):
    ds = make_dataset(num_classes=4, per_class=20)
    spec = SweepSpec("mlp", MLPTrainable, mlp_space())
    assert isinstance(SeedFirst(BOHBSearcher(mlp_space(), metric="val_acc", mode="max")),
                      BracketSearcher)
    result = run_bohb(ds, spec=spec, preset="3_1_3_2", storage_path=tmp_path, name="wrapped",
                      verbose=0, searcher=SeedFirst)
    t = result.trials
    seeded = t[t["suggested_by"] == "seed"]
    assert len(seeded) == 1 and seeded["config/hidden"].iloc[0] == 31
    assert len(t) == 5 and (t["status"] == "TERMINATED").all()
    # BOHB's model got the seeded trial's result like its own (its configuration, as an array).
    state_file = sorted(glob.glob(str(tmp_path / "wrapped" / "searcher-state-*.pkl")))[-1]
    with open(state_file, "rb") as f:
        bohber = cloudpickle.load(f)["bohb"]["bohber"]
    hidden = mlp_space()["hidden"]
    seed_vector = hidden.to_vector(31)
    assert any(np.isclose(c[0], seed_vector) for cs in bohber.configs.values() for c in cs)
    # Every rung result reached BOHB: 3 at budget 1 and the best of them at 3 (first bracket),
    # then 2 at budget 3 (second). Tune alone passes on only those the scheduler does not stop:
    # the last of each rung would be missing.
    assert {b: len(v) for b, v in bohber.losses.items()} == {1: 3, 3: 3}


def test_adopt_refuses_a_configuration_outside_the_space():
    bohb = BOHBSearcher(mlp_space(), metric="val_acc", mode="max")
    with pytest.raises(ValueError):
        bohb.adopt("t0", {"hidden": 1000, "learning_rate": 0.01}, "seed")


def test_a_spec_may_not_set_what_the_sweep_sets():
    with pytest.raises(InvalidConfigError, match="set by the sweep"):
        SweepSpec("mlp", MLPTrainable, mlp_space(), parameters={"dataset": None})
