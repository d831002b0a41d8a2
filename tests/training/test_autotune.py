"""AutotuneLR: the refined grid search, short runs that leave the model as it was, a Trainable
that tunes its learning rate inside its first budget unit, and the sweep option that takes
``learning_rate`` out of the space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from automl_chars.errors import InvalidConfigError
from automl_chars.models import build_cnn
from automl_chars.search.spec import cnn_spec, supernet_spec
from automl_chars.trainables import CNNTrainable, SupernetTrainable
from automl_chars.trainables.base import autotune_settings
from automl_chars.trainables.cnn import cnn_settings
from automl_chars.training import DeviceData
from automl_chars.training.autotune import (
    AutotuneSettings,
    autotune_lr,
    refined_grid_search,
)


def _bowl(best: float):
    """A score whose minimum over learning rates is at ``best`` (in log space)."""
    return lambda lr: (math.log10(lr) - math.log10(best)) ** 2


def test_the_fine_grid_refines_the_best_coarse_rate():
    result = refined_grid_search(_bowl(3e-3), AutotuneSettings(coarse=4, fine=2))
    tried = [lr for lr, _ in result.grid]
    assert tried[:4] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])  # the coarse grid first
    # Best coarse rate 1e-3; two rates towards each neighbour: 10^-3.67, 10^-3.33, 10^-2.67...
    assert tried[4:] == pytest.approx([10**-3.333, 10**-3.667, 10**-2.667, 10**-2.333], rel=1e-3)
    assert result.learning_rate == pytest.approx(10**-2.667, rel=1e-3)  # closer than 1e-3
    assert result.seconds >= 0 and len(result.grid) == AutotuneSettings(fine=2).runs


def test_a_best_rate_at_the_edge_is_refined_on_one_side_and_divergence_loses():
    tune = AutotuneSettings(low=1e-3, high=1e-1, coarse=3, fine=1)
    edge = refined_grid_search(lambda lr: -lr, tune)  # the bigger the better
    assert [lr for lr, _ in edge.grid] == pytest.approx([1e-3, 1e-2, 1e-1, 10**-1.5])
    assert edge.learning_rate == pytest.approx(0.1)
    nan_above = refined_grid_search(lambda lr: float("nan") if lr > 0.05 else -lr, tune)
    assert dict(nan_above.grid)[0.1] == math.inf  # diverged: never chosen
    assert len(nan_above.grid) == 5  # 1e-2 is the best coarse rate: refined on both sides
    assert nan_above.learning_rate == pytest.approx(10**-1.5)


@pytest.mark.parametrize("bad", [{"low": 0.0}, {"low": 1.0, "high": 0.1}, {"coarse": 1},
                                 {"fine": -1}, {"steps": 0}, {"steps": 2.5}])
def test_bad_settings_are_named(bad):
    with pytest.raises(InvalidConfigError, match="AutotuneLR settings"):
        AutotuneSettings(**bad)


def test_autotune_leaves_the_model_and_the_random_state_as_they_were(make_dataset):
    ds = make_dataset(num_classes=4, per_class=20)
    settings = cnn_settings({"optimizer": "adam", "batch_size": 16})
    torch.manual_seed(0)
    model = build_cnn(settings.arch, ds.num_classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train = DeviceData.create(ds.x_train, ds.y_train, torch.device("cpu"))
    val = DeviceData.create(ds.x_val, ds.y_val, torch.device("cpu"), train.mean, train.std)
    rng = torch.get_rng_state()
    tune = AutotuneSettings(low=1e-4, high=10.0, coarse=3, fine=1, steps=8)
    result = autotune_lr(model, settings.optimizer, train, val, tune, seed=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    losses = dict(result.grid)
    best = min(losses.values())
    assert len(losses) == 5 and len(set(losses.values())) > 1
    assert result.learning_rate == min(lr for lr, loss in losses.items() if loss == best)
    again = autotune_lr(model, settings.optimizer, train, val, tune, seed=1)
    assert again.grid == result.grid  # every rate sees the same batches: reproducible


def _in_process(cls, dataset, **parameters):
    class Local(cls):
        def setup(self, config):
            super().setup(config, dataset=dataset, **parameters)

    return Local


def test_a_trial_tunes_its_rate_once_inside_its_first_unit(make_dataset, tmp_path):
    ds = make_dataset(num_classes=4, per_class=12)
    tune = AutotuneSettings(coarse=3, fine=1, steps=3)
    Trial = _in_process(CNNTrainable, ds, autotune_lr=tune.to_dict())
    trial = Trial(config={"batch_size": 16, "learning_rate": 0.5})
    first, second = trial.train(), trial.train()
    lr = first["autotuned_lr"]
    assert lr in [p[0] for p in trial.autotuned.grid] and lr != 0.5
    assert first["autotune_runs"] == 4 and second["autotune_s"] == first["autotune_s"]
    assert first["elapsed_s"] >= first["autotune_s"] > 0  # counted in the trial's own time
    assert first["time_this_iter_s"] >= first["autotune_s"]
    assert trial.optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    saved = trial.save(str(tmp_path / "ckpt"))
    resumed = Trial(config={"batch_size": 16, "learning_rate": 0.5})
    resumed.restore(saved)
    assert resumed.autotuned == trial.autotuned
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    assert resumed.train()["autotuned_lr"] == lr  # not tuned again
    trial.stop()
    resumed.stop()


def test_the_sweep_option_takes_learning_rate_out_of_the_space():
    spec = cnn_spec(seed=0).with_autotune_lr(True, seed=0)
    assert "learning_rate" not in spec.space and "batch_size" in spec.space
    assert spec.parameters["autotune_lr"] == AutotuneSettings()
    assert cnn_spec(seed=0).with_autotune_lr(None) == cnn_spec(seed=0)
    with pytest.raises(InvalidConfigError, match="SupernetTrainable cannot tune"):
        supernet_spec().with_autotune_lr(True)
    with pytest.raises(InvalidConfigError, match="Unknown AutotuneLR setting.*'grid'"):
        autotune_settings({"grid": 3}, CNNTrainable)
    with pytest.raises(InvalidConfigError, match="autotune_lr must be"):
        autotune_settings("yes", CNNTrainable)
    assert SupernetTrainable.supports_autotune is False
    assert np.isclose(autotune_settings({"steps": 5}).steps, 5)


def test_the_cli_flag_reaches_the_sweep(data_root, monkeypatch, capsys):
    from automl_chars.cli.main import main

    seen = {}

    def fake_run_bohb(dataset, **kwargs):
        seen.update(kwargs)
        raise InvalidConfigError("stop here")

    monkeypatch.setattr("automl_chars.run_bohb", fake_run_bohb)
    argv = ["bohb", "--dataset", "glyphs-digits", "--samples-per-class", "2", "--autotune-lr"]
    assert main(argv) == 2 and "stop here" in capsys.readouterr().err
    assert seen["autotune_lr"] is True
    assert main(argv[:-1]) == 2 and seen["autotune_lr"] is False
