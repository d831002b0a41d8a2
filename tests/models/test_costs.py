"""A model's costs (automl_chars.models.costs): FLOPs against hand counts, parameters, latency."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.models import build_model
from automl_chars.models.costs import (
    LatencySettings,
    count_flops,
    count_params,
    measure_costs,
    measure_latency,
    time_passes,
)
from automl_chars.trainables.cnn import cnn_settings
from automl_chars.training.objective import COST_METRICS


def test_flops_of_a_linear_layer_are_two_per_multiply_add():
    assert count_flops(nn.Linear(10, 7), (1, 1, 10)) == 2 * 10 * 7
    assert count_flops(nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 5, 6)), (3, 4, 5)) == 2 * 60 * 6


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups", [(1, 8, 3, 1, 1, 1), (4, 6, 5, 2, 0, 1),
                                                          (4, 8, 3, 1, 1, 2)])
def test_flops_of_a_convolution_match_the_hand_count(cin, cout, k, stride, pad, groups):
    h = w = 28
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups)
    out = (h + 2 * pad - k) // stride + 1
    hand = 2 * cout * out * out * (cin // groups) * k * k
    assert count_flops(conv, (cin, h, w)) == hand


def test_flops_of_a_cnn_add_up_its_layers_and_leave_elementwise_ones_out():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
    hand = 2 * 4 * 28 * 28 * 1 * 9 + 2 * 4 * 14 * 14 * 10
    assert count_flops(net, (1, 28, 28)) == hand
    assert net.training, "counting must leave the model in its mode"


def test_params_count_every_parameter_frozen_ones_too():
    net = build_model("cnn", cnn_settings({}).arch, 10, (1, 28, 28))
    total = sum(p.numel() for p in net.parameters())
    assert count_params(net) == total
    next(net.parameters()).requires_grad_(False)
    assert count_params(net) == total


def test_latency_is_the_median_of_the_timed_passes_after_warm_up():
    calls = []

    def run():  # a slow first (warm-up) pass and one slow timed pass among fast ones
        calls.append(None)
        time.sleep(0.2 if len(calls) in (1, 4) else 0.005)

    times = time_passes(run, torch.device("cpu"), warmup=1, repeats=5)
    assert len(calls) == 6 and len(times) == 5
    assert max(times) >= 200 and sorted(times)[2] < 100, "warm-up timed, or the outlier dropped"


def test_slow_passes_are_cut_to_the_budget_but_never_below_three_timed_ones():
    calls = []

    def run():
        calls.append(None)
        time.sleep(0.03)

    times = time_passes(run, torch.device("cpu"), warmup=3, repeats=7, budget_ms=40)
    assert len(times) == 3 and len(calls) == 1 + 3  # one 30 ms warm-up pass took half the budget
    assert len(time_passes(run, torch.device("cpu"), warmup=0, repeats=2, budget_ms=1)) == 2


def test_measured_costs_of_a_cnn():
    net = build_model("cnn", cnn_settings({}).arch, 10, (1, 28, 28))
    costs = measure_costs(net, (1, 28, 28), LatencySettings(warmup=1, repeats=3, batch_size=8))
    assert costs.params == count_params(net) and costs.flops == count_flops(net, (1, 28, 28))
    assert costs.latency_ms > 0 and math.isfinite(costs.throughput) and costs.throughput > 0
    assert costs.device == "cpu" and set(costs.metrics()) == set(COST_METRICS)
    assert measure_latency(net, (1, 28, 28), 4, LatencySettings(1, 3)) > 0


@pytest.mark.parametrize("bad", [{"repeats": 0}, {"warmup": -1}, {"batch_size": 1.5},
                                 {"budget_ms": 0}])
def test_bad_latency_settings_name_the_setting(bad):
    with pytest.raises(InvalidConfigError, match=next(iter(bad))):
        LatencySettings(**bad)
