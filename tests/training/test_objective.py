"""Objectives: cost limits (feasibility, graded violation) and MnasNet's reward; pure Python."""

import math

import pytest

from automl_chars.errors import InvalidConfigError
from automl_chars.training.objective import MNASNET_WEIGHT, Objective

COSTS = {"params": 120_000, "flops": 2e6, "latency_ms": 0.8, "throughput": 5000.0}


def test_without_limits_or_targets_the_objective_is_the_accuracy():
    o = Objective()
    assert not o.active and o.describe() == {} and o.value(0.7, COSTS) == 0.7
    assert math.isnan(o.value(float("nan"), COSTS))  # a failed trial


def test_a_model_over_its_limits_is_infeasible_with_a_graded_violation():
    o = Objective(max_params=100_000, max_latency_ms=0.4, max_flops=1e7)
    assert o.limits == {"params": 100_000, "flops": 1e7, "latency_ms": 0.4}
    assert not o.feasible(COSTS)
    assert o.violations(COSTS) == ["params 120000 > max_params 100000",
                                   "latency_ms 0.8 > max_latency_ms 0.4"]
    assert o.violation(COSTS) == pytest.approx(0.2 + 1.0)
    assert o.value(0.99, COSTS) == pytest.approx(-1.2)  # below any accuracy, whatever it is
    assert o.value(float("nan"), COSTS) == pytest.approx(-1.2)  # infeasible trials train nothing
    further = {**COSTS, "params": 300_000}
    assert o.value(0.5, further) < o.value(0.5, COSTS), "further over is worse"


def test_a_model_at_its_limit_is_feasible():
    o = Objective(max_params=120_000)
    assert o.feasible(COSTS) and o.value(0.6, COSTS) == 0.6


def test_mnasnet_reward_soft_and_hard():
    soft = Objective(reward_targets={"latency_ms": 0.4})
    assert soft.value(0.8, COSTS) == pytest.approx(0.8 * 2.0 ** MNASNET_WEIGHT)
    under = {**COSTS, "latency_ms": 0.2}
    assert soft.value(0.8, under) == pytest.approx(0.8 * 0.5 ** MNASNET_WEIGHT)
    assert soft.value(0.8, under) > 0.8  # under its target: a bonus
    hard = Objective(reward_targets={"latency_ms": 0.4}, reward_weight=0, reward_weight_over=-1)
    assert hard.value(0.8, under) == pytest.approx(0.8)
    assert hard.value(0.8, COSTS) == pytest.approx(0.4)
    two = Objective(reward_targets={"latency_ms": 0.4, "params": 60_000})
    assert two.value(0.8, COSTS) == pytest.approx(0.8 * 2.0 ** -0.07 * 2.0 ** -0.07)


def test_limits_and_reward_combine():
    o = Objective(max_params=200_000, reward_targets={"latency_ms": 0.4})
    assert o.value(0.8, COSTS) == pytest.approx(0.8 * 2.0 ** -0.07)
    assert o.value(0.8, {**COSTS, "params": 400_000}) == pytest.approx(-1.0)


def test_the_description_round_trips():
    o = Objective(max_params=5e4, max_latency_ms=2.0, reward_targets={"flops": 1e6},
                  reward_weight=-0.1)
    assert Objective.from_description(o.describe()) == o
    assert not Objective.from_description({}).active


@pytest.mark.parametrize("kwargs,named", [
    ({"max_params": 0}, "max_params"), ({"max_flops": -5}, "max_flops"),
    ({"max_latency_ms": float("nan")}, "max_latency_ms"), ({"max_params": True}, "max_params"),
    ({"reward_targets": {"throughput": 100}}, "reward_targets names unknown costs"),
    ({"reward_targets": {"flops": 0}}, "reward_targets must be numbers > 0"),
    ({"reward_weight": float("inf")}, "reward_weight"),
    ({"reward_weight_over": "x"}, "reward_weight_over"),
])
def test_bad_values_name_the_argument(kwargs, named):
    with pytest.raises(InvalidConfigError, match=named):
        Objective(**kwargs)
