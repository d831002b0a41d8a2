"""The distance regularizer: its value by hand, its gradient pointing away from a minimum, the
merged-mean mode, and a Trainable of each registered model training with it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.trainables import FAILURE, CNNTrainable, ResNetTrainable
from automl_chars.training.regularizers import (
    DistanceRegularizer,
    DistanceSettings,
    flat_parameters,
    minimum_vector,
)


def _model(values):
    """A 2 -> 1 linear layer whose parameters are ``values`` (weight w1, w2, then bias)."""
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([values[:2]]))
        net.bias.copy_(torch.tensor(values[2:]))
    return net


def test_the_value_matches_a_hand_computation():
    net = _model([1.0, 2.0, 3.0])
    minima = [torch.tensor([1.0, 2.0, 1.0]), torch.tensor([0.0, 0.0, 3.0])]  # d^2 = 4 and 5
    reg = DistanceRegularizer.for_model(net, minima, DistanceSettings(strength=0.5, width=2.0))
    expected = 0.5 * (math.exp(-4 / 8) + math.exp(-5 / 8))
    assert float(reg(net).detach()) == pytest.approx(expected, rel=1e-6)
    report = reg.report(net)
    assert report["distance_penalty"] == pytest.approx(expected, rel=1e-6)
    assert report["distance_min"] == pytest.approx(2.0)


def test_the_gradient_pushes_away_from_a_minimum():
    net = _model([1.0, 2.0, 3.0])
    minimum = torch.tensor([0.5, 2.5, 3.0])
    reg = DistanceRegularizer.for_model(net, [minimum], DistanceSettings(strength=1.0, width=1.0))
    reg(net).backward()
    grad = torch.cat([net.weight.grad.reshape(-1), net.bias.grad])
    away = flat_parameters(net).detach() - minimum
    # The gradient is antiparallel to "away": a descent step moves further from the minimum.
    cosine = torch.nn.functional.cosine_similarity(grad, away, dim=0)
    assert float(cosine) == pytest.approx(-1.0, abs=1e-6)
    before = float(away.norm())
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    assert float((flat_parameters(net).detach() - minimum).norm()) > before


def test_merged_mode_is_one_minimum_at_the_mean():
    net = _model([0.3, -0.2, 0.1])
    minima = [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([-1.0, 2.0, 2.0])]
    merged = DistanceRegularizer.for_model(net, minima, DistanceSettings(1.0, 1.5, merge=True))
    mean = DistanceRegularizer.for_model(net, [torch.tensor([0.0, 1.0, 1.0])],
                                         DistanceSettings(1.0, 1.5))
    apart = DistanceRegularizer.for_model(net, minima, DistanceSettings(1.0, 1.5))
    value = float(merged(net).detach())
    assert value == pytest.approx(float(mean(net).detach()), rel=1e-6)
    assert value != pytest.approx(float(apart(net).detach()), rel=1e-3)


def test_minima_come_as_models_state_dicts_or_vectors_of_the_same_architecture():
    net, other = _model([1.0, 2.0, 3.0]), _model([4.0, 5.0, 6.0])
    for given in (other, other.state_dict(), flat_parameters(other)):
        assert minimum_vector(net, given).tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(InvalidConfigError, match="another architecture"):
        minimum_vector(net, nn.Linear(3, 1))
    with pytest.raises(InvalidConfigError, match="another architecture"):
        minimum_vector(net, torch.zeros(4))
    with pytest.raises(InvalidConfigError, match="not str"):
        minimum_vector(net, "minimum.pt")
    with pytest.raises(InvalidConfigError, match="needs stored minima"):
        DistanceRegularizer.for_model(net, [], DistanceSettings(1.0))
    for bad in ({"strength": -1.0}, {"width": 0.0}, {"width": float("nan")}):
        with pytest.raises(InvalidConfigError, match="dist_"):
            DistanceSettings(**bad)


# -- in the Trainables of registered models ------------------------------------------------------
def _in_process(cls, dataset, **parameters):
    class Local(cls):
        def setup(self, config):
            super().setup(config, dataset=dataset, **parameters)

    return Local


@pytest.mark.parametrize("cls, config", [
    (CNNTrainable, {"batch_size": 16, "optimizer": "adam", "learning_rate": 0.01}),
    (ResNetTrainable, {"batch_size": 32, "width": 0.25}),
])
def test_a_trainable_trains_away_from_its_earlier_minimum(cls, config, make_dataset, tmp_path,
                                                          one_thread):
    ds = make_dataset(num_classes=3, per_class=12)
    first = _in_process(cls, ds)(config=config)
    first.train()
    minimum = first.save(str(tmp_path / "minimum")).checkpoint.path  # a checkpoint folder
    first.stop()
    options = {"dist_strength": 10.0, "dist_width": 100.0}
    second = _in_process(cls, ds, minima=[minimum])(config={**config, **options})
    assert float(second.penalty(second.model).detach()) > 0
    result = second.train()
    assert FAILURE not in result
    assert 0 < result["distance_penalty"] <= 10.0 and result["distance_min"] > 0
    second.stop()
    plain = _in_process(cls, ds, minima=[minimum])(config=config)
    assert plain.penalty is None and "distance_penalty" not in plain.train()  # off by default
    plain.stop()


def test_a_trial_with_strength_but_no_minima_fails_clearly(make_dataset):
    ds = make_dataset(num_classes=3, per_class=6)
    trial = _in_process(CNNTrainable, ds)(config={"dist_strength": 1.0})
    assert "needs stored minima" in trial.train()[FAILURE]
    trial.stop()
    with pytest.raises(InvalidConfigError, match="needs stored minima"):
        CNNTrainable.check_config({"dist_strength": 1.0}, ds)
    with pytest.raises(InvalidConfigError, match="dist_merge"):
        CNNTrainable.check_config({"dist_merge": "yes"}, ds)


@pytest.mark.parametrize("bad, named", [("missing", "holds no"), ("garbled", "cannot be read"),
                                        (None, "is not a minimum"), (3, "is not a minimum")])
def test_minima_that_cannot_be_read_are_named_before_the_sweep_and_fail_the_trial(
        make_dataset, tmp_path, bad, named):
    from automl_chars.checkpoints import CHECKPOINT_FILE

    ds = make_dataset(num_classes=3, per_class=6)
    if bad in ("missing", "garbled"):
        folder = tmp_path / bad
        folder.mkdir()
        if bad == "garbled":
            (folder / CHECKPOINT_FILE).write_bytes(b"not a torch file")
        bad = str(folder)
    config = {"dist_strength": 1.0}
    with pytest.raises(InvalidConfigError, match=named):
        CNNTrainable.check_config(config, ds, minima=[bad])
    trial = _in_process(CNNTrainable, ds, minima=[bad])(config=config)
    assert named in trial.train()[FAILURE]
    trial.stop()
    plain = _in_process(CNNTrainable, ds, minima=[bad])(config={})  # regularizer off: not read
    assert FAILURE not in plain.train()
    plain.stop()
