"""Ensembles: the accuracy of averaged softmax outputs of the first j members."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.training.ensemble import disagreement, ensemble_accuracies, predict_proba
from automl_chars.training.loop import DeviceData


def test_averaging_probabilities_not_votes():
    labels = torch.tensor([0, 1, 1])
    probabilities = torch.tensor([
        [[0.9, 0.1], [0.6, 0.4], [0.6, 0.4]],   # member 1: right on the first only
        [[0.4, 0.6], [0.45, 0.55], [0.1, 0.9]],  # member 2: right on the last two
        [[0.4, 0.6], [0.4, 0.6], [0.45, 0.55]],  # member 3: the same votes as member 2
    ])
    accuracies = ensemble_accuracies(probabilities, labels)
    assert accuracies[0] == pytest.approx(1 / 3)
    # members 1+2: mean (0.65, 0.35) right, (0.525, 0.475) wrong, (0.35, 0.65) right
    assert accuracies[1] == pytest.approx(2 / 3)
    # 1+2+3: (0.567, 0.433) right, (0.483, 0.517) right, (0.383, 0.617) right; a majority
    # vote would get the first wrong (two members say 1)
    assert accuracies[2] == pytest.approx(1.0)
    assert ensemble_accuracies(probabilities[[1, 2]], labels) == pytest.approx([2 / 3, 2 / 3])  # order
    majority_wrong = torch.tensor([[[0.99, 0.01]], [[0.4, 0.6]], [[0.4, 0.6]]])
    assert ensemble_accuracies(majority_wrong, torch.tensor([0]))[2] == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(InvalidConfigError, match="members, samples, classes"):
        ensemble_accuracies(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(InvalidConfigError, match="labels"):
        ensemble_accuracies(torch.zeros(1, 3, 2), torch.zeros(4))


def test_predict_proba_is_the_softmax_in_evaluation_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3))
    x = torch.randint(0, 256, (5, 1, 4, 4), dtype=torch.uint8)
    data = DeviceData.create(x, torch.zeros(5, dtype=torch.int64), torch.device("cpu"))
    net.train()
    p = predict_proba(net, data, batch_size=2)
    assert p.shape == (5, 3) and torch.allclose(p.sum(1), torch.ones(5))
    expected = torch.softmax(net.eval()(data.batch(slice(None))[0]), 1)
    assert torch.allclose(p, expected.detach(), atol=1e-6)  # no dropout: evaluation mode


def test_disagreement_counts_different_predictions():
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    q = torch.tensor([[0.6, 0.4], [0.7, 0.3], [0.1, 0.9], [0.3, 0.7]])
    assert disagreement(p, q) == pytest.approx(3 / 4)
    assert disagreement(p, 10 * p) == 0.0  # the classes, not the probabilities
    with pytest.raises(InvalidConfigError, match="same shape"):
        disagreement(p, q[:2])
