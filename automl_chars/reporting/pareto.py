"""Pareto fronts of accuracy against each cost (parameters, FLOPs, latency), as tables and a plot.

A point is on the front of a cost when no other point is as cheap or cheaper *and* at least as
accurate, better in one of the two (identical points are both on it). Any finished sweep gives
its fronts from the trials that are results (neither failed nor infeasible) at the highest budget
reached (accuracies at lower budgets are not comparable), and a supernet run from its subnets
(:mod:`automl_chars.supernet.select`). Reads folders only: no Ray, no torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from automl_chars import uris  # noqa: E402
from automl_chars.errors import ExperimentStateError, InvalidConfigError  # noqa: E402
from automl_chars.layout import CONFIG_PREFIX  # noqa: E402
from automl_chars.reporting.plots import save_figure  # noqa: E402
from automl_chars.runner.result import SweepResult  # noqa: E402
from automl_chars.training.objective import LIMITED_COSTS  # noqa: E402

#: The costs a front is drawn against by default.
PARETO_COSTS = LIMITED_COSTS
#: File :func:`plot_pareto` writes into a sweep's folder by default.
PARETO_FILE = "pareto.png"
#: Column of :func:`pareto_fronts` naming the cost a row's front is drawn against.
FRONT = "front"


def pareto_front(points: pd.DataFrame, cost: str, metric: str = "val_acc") -> pd.DataFrame:
    """The rows of ``points`` that no other row dominates in (lower ``cost``, higher
    ``metric``), cheapest first; rows missing either value are left out."""
    for column in (cost, metric):
        if column not in points:
            raise InvalidConfigError(f"The points have no {column!r} column; they have "
                                     f"{list(points.columns)}.")
    p = points.dropna(subset=[cost, metric])
    order = p.sort_values([cost, metric], ascending=[True, False], kind="stable")
    keep, best_cheaper = [], float("-inf")  # best metric among strictly cheaper points
    for _, group in order.groupby(cost, sort=True):
        top = group[metric].max()
        if top > best_cheaper:  # a cheaper point as good or better dominates the whole group
            keep.extend(group.index[group[metric] == top])
        best_cheaper = max(best_cheaper, top)
    return order.loc[keep]


def pareto_fronts(points: pd.DataFrame, costs: Sequence[str] = PARETO_COSTS,
                  metric: str = "val_acc") -> pd.DataFrame:
    """:func:`pareto_front` of each cost, stacked; column :data:`FRONT` names the cost."""
    frames = [pareto_front(points, c, metric).assign(**{FRONT: c}) for c in costs]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out[[FRONT, *[c for c in out.columns if c != FRONT]]]


def sweep_points(result: SweepResult | str | os.PathLike, budget: int | None = None,
                 ) -> pd.DataFrame:
    """The trials a sweep's fronts are drawn from: its results (no failed or infeasible trial)
    that reached ``budget`` (default: the highest budget any of them reached)."""
    result = result if isinstance(result, SweepResult) else SweepResult.load(result)
    missing = [c for c in PARETO_COSTS if c not in result.trials
               or result.trials[c].isna().all()]
    if missing:
        raise ExperimentStateError(
            f"The trials of {result.path} report no {', '.join(missing)}: the sweep ran before "
            f"trials measured their model's costs. Run it again to draw its Pareto front.")
    points = result.results
    if points.empty:
        raise ExperimentStateError(f"{result.path} has no trial with a result.")
    budget = int(points["budget"].max()) if budget is None else budget
    points = points[points["budget"] == budget]
    if points.empty:
        raise InvalidConfigError(f"No trial of {result.path} reached budget {budget}; they "
                                 f"reached {sorted(set(result.results['budget']))}.")
    return points


def sweep_pareto(result: SweepResult | str | os.PathLike, costs: Sequence[str] = PARETO_COSTS,
                 budget: int | None = None) -> pd.DataFrame:
    """A finished sweep's Pareto fronts of ``val_acc`` against each cost (see
    :func:`sweep_points` for the trials they are drawn from)."""
    points = sweep_points(result, budget)
    columns = ["trial_id", "budget", "val_acc", *PARETO_COSTS,
               *[c for c in points if c.startswith(CONFIG_PREFIX)]]
    return pareto_fronts(points[columns], costs, "val_acc")


def plot_pareto(points: pd.DataFrame, out: str | os.PathLike, costs: Sequence[str] = PARETO_COSTS,
                metric: str = "val_acc", title: str = "") -> Path:
    """One panel per cost: every point, and its Pareto front as a staircase (log scale for
    parameters and FLOPs). Saved to ``out`` (a path or a storage URI, uploaded then); returns
    the local path."""
    fig, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 4), squeeze=False)
    for ax, cost in zip(axes[0], costs):
        p = points.dropna(subset=[cost, metric])
        front = pareto_front(p, cost, metric)
        ax.scatter(p[cost], p[metric], color="tab:gray", alpha=0.5, s=18, label="trials")
        ax.step(front[cost], front[metric], where="post", color="tab:red", marker="o",
                label="Pareto front")
        ax.set(xlabel=cost, ylabel=metric, xscale="log" if cost in ("params", "flops") else
               "linear")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="lower right")
    if title:
        fig.suptitle(title)
    out = uris.local_path(out, "out")
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out)


__all__ = ["FRONT", "PARETO_COSTS", "PARETO_FILE", "pareto_front", "pareto_fronts",
           "plot_pareto", "sweep_pareto", "sweep_points"]
