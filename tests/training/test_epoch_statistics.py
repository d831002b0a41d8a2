"""The training loop's epoch statistics, found by breaking it on purpose: an infinite loss, evaluation in
training mode, and statistics over a shuffled epoch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl_chars.errors import NonFiniteLossError
from automl_chars.training import DeviceData, evaluate, train_epoch
from automl_chars.training.fidelity import Fidelity


class _Fixed(nn.Module):
    """Returns the same two logits for every image, scaled by one trainable weight."""

    def __init__(self, logits):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x):
        return self.w * self.logits.expand(len(x), -1)


def _data(labels, value=100):
    y = torch.tensor(labels)
    x = torch.full((len(y), 1, 28, 28), value, dtype=torch.uint8)
    return DeviceData.create(x, y, torch.device("cpu"))


def test_an_infinite_loss_is_a_diverged_epoch_too():
    """A loss of +inf (finite logits far apart), not only NaN, raises NonFiniteLossError."""
    model = _Fixed([-3e38, 3e38])  # label 0: cross-entropy 6e38 overflows float32 to inf
    data = _data([0] * 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with torch.no_grad():
        assert torch.isinf(nn.functional.cross_entropy(model(torch.zeros(1, 1, 28, 28)),
                                                       torch.tensor([0])))
    with pytest.raises(NonFiniteLossError, match="inf"):
        train_epoch(model, opt, data, 8, torch.Generator().manual_seed(0))  # one batch


def test_evaluate_runs_the_model_in_evaluation_mode():
    """Dropout is off while evaluating: the same model scores the same twice, exactly as in
    ``eval()`` mode, and its loss is the mean cross-entropy over every sample."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(28 * 28, 3))
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8, generator=gen)
    data = DeviceData.create(x, torch.randint(0, 3, (50,), generator=gen), torch.device("cpu"))
    model.train()
    first, second = evaluate(model, data, batch_size=16), evaluate(model, data, batch_size=16)
    assert first == second
    model.eval()
    with torch.no_grad():
        xb, yb = data.batch(slice(0, 50))
        out = model(xb)
    assert first[0] == pytest.approx(float(nn.functional.cross_entropy(out, yb)), rel=1e-5)
    assert first[1] == pytest.approx(float((out.argmax(1) == yb).float().mean()))


class _Brightness(nn.Module):
    """Class 1 for images brighter than the training mean, else class 0 (a tie goes to 0)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(m), self.w * m], 1)


def test_epoch_accuracy_compares_each_prediction_with_its_own_label():
    """The epoch's accuracy matches each prediction with the label of the same sample in the
    shuffled order they trained in: a model that is always right scores exactly 1.0."""
    labels = torch.tensor([0, 1] * 8)
    x = (labels * 255).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).contiguous()
    data = DeviceData.create(x, labels, torch.device("cpu"))
    model = _Brightness()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    stats = train_epoch(model, opt, data, 4, torch.Generator().manual_seed(3))
    assert stats.accuracy == 1.0 and stats.samples == 16
    assert evaluate(model, data)[1] == 1.0


def test_subset_sizes_are_rounded_not_truncated():
    """Budget 1 of 3 on 10 samples trains on round(10 / 3) = 3 of them, budget 2 on 7
    (truncating would give 6 and lose a sample at every odd budget)."""
    fid = Fidelity("subset", max_budget=3, data_seed=0)
    order = fid.order(torch.arange(10).remainder(2).numpy())
    assert len(fid.indices(1, order)) == 3 and len(fid.indices(2, order)) == 7
    assert fid.indices(3, order) is None
