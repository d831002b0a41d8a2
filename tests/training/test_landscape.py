"""The loss landscape between minima: distances, the interpolated states, BatchNorm statistics
recomputed at each point of a path, and the barrier of a path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.training.landscape import (
    PathPoint,
    barrier,
    interpolate_states,
    loss_path,
    pairwise_distances,
    recompute_batchnorm,
)
from automl_chars.training.loop import DeviceData, evaluate


def test_pairwise_distances_by_hand():
    vectors = [torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0])]
    d = pairwise_distances(vectors)
    assert d.dtype == torch.float64
    expected = torch.tensor([[0.0, 5.0, 1.0], [5.0, 0.0, 18**0.5], [1.0, 18**0.5, 0.0]],
                            dtype=torch.float64)
    assert torch.allclose(d, expected, atol=1e-6)
    # float64 keeps a difference that float32 would round away near large weights
    far = [torch.full((4,), 1e4, dtype=torch.float64), torch.full((4,), 1e4 + 1e-3,
                                                                  dtype=torch.float64)]
    assert float(pairwise_distances(far)[0, 1]) == pytest.approx(2e-3, rel=1e-3)
    with pytest.raises(InvalidConfigError, match="different sizes"):
        pairwise_distances([torch.zeros(2), torch.zeros(3)])


def test_interpolation_is_linear_in_floats_and_keeps_counters():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([4.0, -2.0]), "n": torch.tensor(9)}
    mid = interpolate_states(a, b, 0.25)
    assert torch.equal(mid["w"], torch.tensor([1.0, 1.0]))
    assert int(mid["n"]) == 5
    assert torch.equal(interpolate_states(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate_states(a, b, 1.0)["w"], b["w"])
    with pytest.raises(InvalidConfigError, match="different models"):
        interpolate_states(a, {"w": b["w"]}, 0.5)
    with pytest.raises(InvalidConfigError, match="shape"):
        interpolate_states(a, {"w": torch.zeros(3), "n": b["n"]}, 0.5)


def test_barrier_is_the_rise_above_the_line_between_the_ends():
    flat = [PathPoint(a, 1.0 + a, 0.5) for a in (0.0, 0.5, 1.0)]  # on the line: no barrier
    assert barrier(flat) == pytest.approx(0.0)
    hill = [PathPoint(0.0, 1.0, 1), PathPoint(0.5, 4.0, 0), PathPoint(1.0, 2.0, 1)]
    assert barrier(hill) == pytest.approx(4.0 - 1.5)
    valley = [PathPoint(0.0, 1.0, 1), PathPoint(0.5, 0.2, 1), PathPoint(1.0, 1.0, 1)]
    assert barrier(valley) == pytest.approx(0.0)  # the ends themselves are on the line


def _bn_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _data(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    return DeviceData.create(x, torch.randint(0, 3, (n,), generator=g), torch.device("cpu"))


def test_batchnorm_statistics_are_those_of_the_data():
    net, data = _bn_net(0), _data()
    net.eval()
    recompute_batchnorm(net, data, batch_size=16)  # several batches: a cumulative average
    with torch.no_grad():
        conv = net[0](data.batch(slice(None))[0])
    bn = net[1]
    assert torch.allclose(bn.running_mean, conv.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, conv.var((0, 2, 3)), rtol=0.05)
    assert not net.training  # its mode is restored
    plain = nn.Linear(2, 2)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    recompute_batchnorm(plain, DeviceData.create(torch.zeros(4, 2, dtype=torch.uint8),
                                                 torch.zeros(4, dtype=torch.int64),
                                                 torch.device("cpu")))
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())


def test_loss_path_recomputes_batchnorm_at_every_point():
    data = _data()
    a, b = _bn_net(0), _bn_net(1)
    bright = DeviceData.create(torch.full((16, 1, 8, 8), 250, dtype=torch.uint8),
                               torch.zeros(16, dtype=torch.int64), torch.device("cpu"),
                               data.mean, data.std)
    for net in (a, b):  # end points with statistics of other data
        recompute_batchnorm(net, bright)
    sa, sb = a.state_dict(), b.state_dict()
    probe = _bn_net(2)
    path = loss_path(probe, sa, sb, data, points=5)
    assert [p.alpha for p in path] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    # Each point is the interpolated network with the data's own BatchNorm statistics.
    for point in (path[0], path[2], path[-1]):
        net = _bn_net(3)
        net.load_state_dict(interpolate_states(sa, sb, point.alpha))
        stale = evaluate(net, data)[0]
        recompute_batchnorm(net, data)
        assert evaluate(net, data)[0] == pytest.approx(point.loss, rel=1e-5)
        assert stale != pytest.approx(point.loss, rel=1e-3)  # the stored statistics differ
    with pytest.raises(InvalidConfigError, match="at least 2 points"):
        loss_path(probe, sa, sb, data, points=1)
