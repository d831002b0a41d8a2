"""Plots of supernet runs (matplotlib, files only): supernet vs standalone accuracy with ranks,
each subnet's running accuracy over training rounds per sampler (seed 002's dynamics plot), and
how often each subnet was sampled."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402

from automl_chars.reporting.plots import save_figure  # noqa: E402
from automl_chars.supernet.result import SupernetResult  # noqa: E402

SCATTER_FILE = "supernet_vs_standalone.png"
DYNAMICS_FILE = "dynamics.png"
COUNTS_FILE = "sampling_counts.png"


def plot_scatter(result: SupernetResult, out: str | os.PathLike | None = None) -> Path:
    """Each subnet at (standalone top-1, supernet top-1), labelled ``name s/t`` with its rank in
    the supernet (s) and standalone (t); the title gives Kendall's tau and Spearman's rho."""
    t = result.table.dropna(subset=["standalone_acc"])  # a standalone sample: the sampled
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(t["standalone_acc"], t["supernet_acc"], color="tab:blue", zorder=3)
    for _, r in t.iterrows():
        ax.annotate(f"{r['subnet']} {r['supernet_rank']}/{r['standalone_rank']}",
                    (r["standalone_acc"], r["supernet_acc"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    done = t.dropna(subset=["finetuned_acc"])
    if not done.empty:
        ax.scatter(done["standalone_acc"], done["finetuned_acc"], marker="x", color="tab:red",
                   label="after fine-tuning", zorder=3)
        ax.legend(loc="lower right")
    ax.set(xlabel="top-1 standalone (test)", ylabel="top-1 in the supernet (test)",
           title=f"{result.sampler}: Kendall tau {result.kendall_tau:.2f}, "
                 f"Spearman {result.spearman:.2f}")
    ax.grid(alpha=0.3)
    return save_figure(fig, Path(out) if out else result.path / SCATTER_FILE)


def plot_dynamics(results: Sequence[SupernetResult], out: str | os.PathLike) -> Path:
    """One panel per sampler: every subnet's running validation top-1 over training rounds."""
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False,
                             sharey=True)
    for ax, result in zip(axes[0], results):
        for name, h in result.history.groupby("subnet", sort=False):
            ax.plot(h["round"], h["running_acc"], lw=1.2, label=name)
        ax.set(xlabel="training round (batch)", ylabel="running validation top-1",
               title=f"sampler {result.sampler}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if 0 < len(labels) <= 20:
        axes[0][-1].legend(handles, labels, fontsize=7, loc="lower right")
    return save_figure(fig, Path(out))


def plot_counts(results: Sequence[SupernetResult], out: str | os.PathLike) -> Path:
    """Rounds that trained each subnet, one bar group per subnet, one bar per sampler."""
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(results[0].table)), 4))
    width = 0.8 / len(results)
    for k, result in enumerate(results):
        t = result.table
        ax.bar([i + k * width for i in range(len(t))], t["sampled"], width, label=result.sampler)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(results[0].table))])
    ax.set_xticklabels(results[0].table["subnet"], rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="rounds sampled", title="Sampling counts per subnet")
    ax.legend()
    return save_figure(fig, Path(out))


#: The plots :func:`plot_result` writes into a sampler's folder.
RESULT_PLOTS = (SCATTER_FILE, DYNAMICS_FILE, COUNTS_FILE)


def plot_result(result: SupernetResult) -> list[Path]:
    """The three plots of one sampler's run (:data:`RESULT_PLOTS`), in its folder."""
    return [plot_scatter(result), plot_dynamics([result], result.path / DYNAMICS_FILE),
            plot_counts([result], result.path / COUNTS_FILE)]
