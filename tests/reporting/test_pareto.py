"""Pareto fronts: the fast front against a brute-force one, sweeps' points, the plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.reporting import pareto_front, pareto_fronts, plot_pareto, sweep_pareto
from automl_chars.reporting.pareto import FRONT, sweep_points
from automl_chars.training.objective import Objective, within_limits


def brute_force_front(points: pd.DataFrame, cost: str, metric: str) -> set:
    """Index labels of the rows no other row dominates, by the definition, in O(n^2)."""
    p = points.dropna(subset=[cost, metric])
    c, m = p[cost].to_numpy(), p[metric].to_numpy()
    keep = set()
    for i, label in enumerate(p.index):
        dominated = ((c <= c[i]) & (m >= m[i]) & ((c < c[i]) | (m > m[i]))).any()
        if not dominated:
            keep.add(label)
    return keep


@pytest.mark.parametrize("seed", range(40))
def test_the_front_is_the_brute_force_front(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    # Few distinct values: ties in cost, in accuracy and whole duplicate points are common.
    points = pd.DataFrame({"params": rng.integers(1, 8, n) * 1000.0,
                           "val_acc": rng.integers(0, 6, n) / 5,
                           "latency_ms": rng.random(n)})
    points.loc[rng.random(n) < 0.1, "val_acc"] = np.nan  # failed trials
    for cost in ("params", "latency_ms"):
        front = pareto_front(points, cost)
        assert set(front.index) == brute_force_front(points, cost, "val_acc")
        assert front[cost].is_monotonic_increasing
        assert front["val_acc"].is_monotonic_increasing  # cheaper and worse, or dearer and better


def test_the_front_of_a_hand_example():
    points = pd.DataFrame({"trial_id": list("abcdef"),
                           "params": [10, 20, 20, 30, 40, 40],
                           "val_acc": [0.5, 0.7, 0.6, 0.65, 0.9, 0.9]})
    front = pareto_front(points, "params")
    assert list(front["trial_id"]) == ["a", "b", "e", "f"]  # c, d dominated by b; e, f tied


def test_fronts_of_each_cost_are_stacked_and_limits_filter():
    points = pd.DataFrame({"params": [10, 20, 30], "flops": [300, 200, 100],
                           "latency_ms": [1, 1, 1], "val_acc": [0.5, 0.6, 0.7]})
    fronts = pareto_fronts(points)
    assert list(fronts.columns)[0] == FRONT
    assert fronts.groupby(FRONT).size().to_dict() == {"params": 3, "flops": 1, "latency_ms": 1}
    assert list(within_limits(points, Objective(max_params=20, max_flops=250))["params"]) == [20]
    with pytest.raises(InvalidConfigError, match="'missing'"):
        pareto_front(points, "missing")


def _sweep_folder(folder, with_costs=True):
    rows = [  # trial, status, budget, val_acc, params, flops, latency_ms
        ("t1", "TERMINATED", 3, 0.80, 5000, 1e5, 0.2),
        ("t2", "TERMINATED", 3, 0.90, 20000, 4e5, 0.3),
        ("t3", "TERMINATED", 3, 0.85, 30000, 2e5, 0.1),
        ("t4", "TERMINATED", 1, 0.95, 1000, 1e4, 0.05),  # lower budget: not comparable
        ("t5", "FAILED", 1, float("nan"), 100, 1e3, 0.01),
        ("t6", "INFEASIBLE", 1, float("nan"), 90000, 9e6, 0.9),
    ]
    t = pd.DataFrame(rows, columns=["trial_id", "status", "budget", "val_acc", "params",
                                    "flops", "latency_ms"])
    t["suggested_by"], t["train_acc"], t["num_params"], t["config/x"] = "random", 0.9, 1, 1
    if not with_costs:
        t = t.drop(columns=["params", "flops", "latency_ms"])
    t.to_csv(folder / "trials.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({
        "incumbent": {"x": 1}, "incumbent_trial_id": "t2", "test_accuracy": 0.88,
        "n_trials": len(t), "settings": {"dataset": "d", "preset": "3_1_3_1"}}))
    return folder


def test_a_sweeps_front_takes_its_results_at_the_highest_budget(tmp_path):
    folder = _sweep_folder(tmp_path)
    assert set(sweep_points(folder)["trial_id"]) == {"t1", "t2", "t3"}
    fronts = sweep_pareto(folder)
    by = {c: list(f["trial_id"]) for c, f in fronts.groupby(FRONT)}
    assert by == {"params": ["t1", "t2"], "flops": ["t1", "t3", "t2"], "latency_ms": ["t3", "t2"]}
    assert "config/x" in fronts
    assert list(sweep_pareto(folder, ["params"], budget=1)["trial_id"]) == ["t4"]
    with pytest.raises(InvalidConfigError, match="reached budget 2"):
        sweep_points(folder, budget=2)
    out = plot_pareto(sweep_points(folder), tmp_path / "p.png", title="test")
    assert out.exists() and out.stat().st_size > 5000


def test_a_sweep_from_before_costs_says_so(tmp_path):
    with pytest.raises(ExperimentStateError, match="ran before trials measured"):
        sweep_pareto(_sweep_folder(tmp_path, with_costs=False))
