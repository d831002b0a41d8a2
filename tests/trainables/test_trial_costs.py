"""Every trial's model costs, and objectives, in CNNTrainable (in-process: no actors needed)."""

import math

import pytest
from ray import tune

from automl_chars.models import build_model, count_flops, count_params
from automl_chars.models.costs import ModelCosts
from automl_chars.trainables import (
    COSTS_ERROR,
    FAILURE,
    INFEASIBLE,
    CNNTrainable,
    base,
    cnn_settings,
)
from automl_chars.training.objective import COST_METRICS, OBJECTIVE, Objective

pytestmark = pytest.mark.slow

CONFIG = {"batch_size": 32, "conv1_channels": 8}


def _trial(ds, config=CONFIG, objective=None):
    return tune.with_parameters(CNNTrainable, dataset=ds, seed=0, objective=objective)(
        config=config)


def test_every_result_reports_the_costs_measured_once(ray_session, make_dataset, one_thread):
    ds = make_dataset()
    t = _trial(ds)
    first, second = t.train(), t.train()
    net = build_model("cnn", cnn_settings(CONFIG).arch, ds.num_classes, ds.image_shape)
    assert first["params"] == count_params(net)
    assert first["flops"] == count_flops(net, ds.image_shape) > 0
    assert first["latency_ms"] > 0 and first["throughput"] > 0
    # Measured when the model was built, not again every epoch: the same numbers.
    assert {k: second[k] for k in COST_METRICS} == {k: first[k] for k in COST_METRICS}
    assert OBJECTIVE not in first  # no objective: the sweep optimises val_acc
    t.stop()


def test_a_model_over_a_limit_trains_nothing_and_reports_its_violation(ray_session, make_dataset,
                                                                         one_thread):
    ds = make_dataset()
    t = _trial(ds, objective=Objective(max_params=1000, max_latency_ms=1e6))
    first = t.train()
    params = first["params"]
    assert params > 1000 and "params" in first[INFEASIBLE] and "max_params 1000" in first[INFEASIBLE]
    assert first[OBJECTIVE] == pytest.approx(-(params / 1000 - 1))  # graded, below any accuracy
    assert first["samples_seen"] == 0 and math.isnan(first["val_acc"])  # trained nothing
    assert FAILURE not in first and not first.get("done")  # the scheduler stops it at its rung
    assert t.train()["done"] is True
    t.stop()


def test_a_feasible_model_reports_its_reward(ray_session, make_dataset, one_thread):
    ds = make_dataset()
    objective = Objective(max_params=10**7, reward_targets={"flops": 10_000})
    t = _trial(ds, objective=objective)
    r = t.train()
    assert INFEASIBLE not in r and r["samples_seen"] > 0
    assert r[OBJECTIVE] == pytest.approx(r["val_acc"] * (r["flops"] / 10_000) ** -0.07)
    assert r[OBJECTIVE] < r["val_acc"]  # over its FLOPs target: the reward is smaller
    t.stop()


def _latencies(monkeypatch, *latencies):
    """Cost measurements that return ``latencies`` in turn (then the last one again)."""
    calls = []

    def measure(model, input_shape):
        calls.append(len(calls))
        latency = latencies[min(len(calls) - 1, len(latencies) - 1)]
        return ModelCosts(params=count_params(model), flops=1000, latency_ms=latency,
                          throughput=1000.0 / latency)

    monkeypatch.setattr(base, "measure_costs", measure)
    return calls


def test_a_resumed_trial_keeps_its_measured_costs_and_verdict(ray_session, make_dataset,
                                                               one_thread, monkeypatch, tmp_path):
    ds = make_dataset()
    calls = _latencies(monkeypatch, 1.0, 2.0)  # a rebuild would measure the slower latency
    objective = Objective(max_latency_ms=1.5)
    paused = _trial(ds, objective=objective)
    first = paused.train()
    checkpoint = paused.save(str(tmp_path / "ckpt"))
    paused.stop()
    resumed = _trial(ds, objective=objective)
    resumed.restore(checkpoint)
    assert len(calls) == 2  # rebuilt (and measured) before the checkpoint was loaded
    second = resumed.train()
    assert INFEASIBLE not in second and FAILURE not in second and second["budget"] == 2
    assert {k: second[k] for k in COST_METRICS} == {k: first[k] for k in COST_METRICS}
    assert second["latency_ms"] == 1.0
    resumed.stop()


def _failing_measurement(monkeypatch):
    def measure(model, input_shape):
        raise RuntimeError("FlopCounterMode cannot count this op")

    monkeypatch.setattr(base, "measure_costs", measure)


def test_a_failed_cost_measurement_without_objective_still_trains(ray_session, make_dataset,
                                                                  one_thread, monkeypatch):
    _failing_measurement(monkeypatch)
    t = _trial(make_dataset())
    r = t.train()
    assert FAILURE not in r and INFEASIBLE not in r and r["samples_seen"] > 0
    assert math.isfinite(r["val_acc"])
    assert all(math.isnan(r[k]) for k in COST_METRICS)
    assert "could not be measured" in r[COSTS_ERROR] and "FlopCounterMode" in r[COSTS_ERROR]
    t.stop()


def test_a_failed_cost_measurement_with_an_objective_fails_the_trial(ray_session, make_dataset,
                                                                     one_thread, monkeypatch):
    _failing_measurement(monkeypatch)
    t = _trial(make_dataset(), objective=Objective(max_params=10**7))
    r = t.train()
    assert "costs could not be measured" in r[FAILURE] and "objective" in r[FAILURE]
    assert "cannot be built" not in r[FAILURE]  # the configuration itself is fine
    assert r["samples_seen"] == 0 and math.isnan(r[OBJECTIVE])
    t.stop()


def test_an_objective_without_measured_costs_fails_the_trial_by_name(ray_session, make_dataset,
                                                                     one_thread, monkeypatch):
    monkeypatch.setattr(CNNTrainable, "model_costs", lambda self: None)
    t = _trial(make_dataset(), objective=Objective(max_params=10**7))
    r = t.train()  # no KeyError from the objective: a failed result naming the missing costs
    assert "measures no model costs" in r[FAILURE] and math.isnan(r[OBJECTIVE])
    t.stop()
