"""The plot of a valley study (:mod:`automl_chars.workflows.valleys`), from its tables: the loss
along the straight paths between minima, distance against barrier and disagreement, each
minimum's norm and accuracy, and ensembles against epochs (matplotlib, files only)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from automl_chars.reporting.plots import save_figure  # noqa: E402

#: One colour per arm, in the study's order (others get matplotlib's next colours).
ARM_COLORS = {"independent": "tab:gray", "restarts": "tab:blue", "distance": "tab:red",
              "merged": "tab:orange"}


def plot_valleys(minima: pd.DataFrame, pairs: pd.DataFrame, path: pd.DataFrame,
                 ensembles: pd.DataFrame, out: str | os.PathLike, title: str = "") -> Path:
    """Six panels, one line or colour per arm, means over seeds (and pairs) with the seeds'
    spread. Top: the training loss along the straight path between two minima; each pair's
    distance against its barrier; and against how often the two disagree on test images.
    Bottom: each minimum's weight norm and test accuracy by its place in the arm; the test
    accuracy of the ensemble of an arm's first minima against the epochs they cost."""
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    arms = list(dict.fromkeys(minima["arm"]))
    colors = {arm: ARM_COLORS.get(arm) for arm in arms}

    ax = axes[0][0]
    for arm in arms:
        curve = path[path["arm"] == arm].groupby("alpha")["train_loss"]
        mean, low, high = curve.mean(), curve.min(), curve.max()
        ax.plot(mean.index, mean.values, color=colors[arm], label=arm, marker=".")
        ax.fill_between(mean.index, low.values, high.values, color=colors[arm], alpha=0.12)
    ax.set(xlabel="alpha (0: minimum i, 1: minimum j)", ylabel="training loss",
           title="loss on the straight path between minima (mean, range)")
    ax.legend()

    ax = axes[0][1]
    for arm in arms:
        p = pairs[pairs["arm"] == arm]
        ax.scatter(p["distance"], p["barrier"], color=colors[arm], label=arm, s=18, alpha=0.8)
    ax.set(xlabel="distance in weight space", ylabel="loss barrier",
           title="every pair of minima: distance and barrier")
    ax.legend()

    ax = axes[0][2]
    for arm in arms:
        p = pairs[pairs["arm"] == arm]
        ax.scatter(p["distance"], p["disagreement"], color=colors[arm], label=arm, s=18,
                   alpha=0.8)
    ax.set(xlabel="distance in weight space", ylabel="test predictions that differ",
           title="every pair of minima: distance and disagreement")
    ax.legend()

    ax = axes[1][0]
    for arm in arms:
        norm = minima[minima["arm"] == arm].groupby("index")["norm"]
        ax.errorbar(norm.mean().index, norm.mean().values, yerr=norm.std().fillna(0).values,
                    color=colors[arm], label=arm, marker="o", capsize=3)
    ax.set(xlabel="minimum (0: the first; chains restart from the one before)",
           ylabel="weight norm", title="each minimum's weight norm (mean, std over seeds)")
    ax.legend()

    ax = axes[1][1]
    for arm in arms:
        acc = minima[minima["arm"] == arm].groupby("index")["test_acc"]
        ax.errorbar(acc.mean().index, acc.mean().values, yerr=acc.std().fillna(0).values,
                    color=colors[arm], label=arm, marker="o", capsize=3)
    ax.set(xlabel="minimum (0: the first; chains restart from the one before)",
           ylabel="test accuracy", title="each minimum (mean, std over seeds)")
    ax.legend()

    ax = axes[1][2]
    for arm in arms:
        acc = ensembles[ensembles["arm"] == arm].groupby("epochs")["test_acc"]
        ax.errorbar(acc.mean().index, acc.mean().values, yerr=acc.std().fillna(0).values,
                    color=colors[arm], label=arm, marker="o", capsize=3)
    ax.set(xlabel="training epochs of the members (equal compute at equal x)",
           ylabel="ensemble test accuracy", title="ensemble of the first minima (averaged softmax)")
    ax.legend()
    for ax in (axes[1][0], axes[1][1]):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(out))


__all__ = ["plot_valleys"]
