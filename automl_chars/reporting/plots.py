"""Plots of a sweep from its trials' ``progress.csv`` files (matplotlib, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from automl_chars import uris  # noqa: E402
from automl_chars.layout import PROGRESS_FILE, read_progress, run_folder  # noqa: E402

#: Columns of :func:`learning_curves`, then ``timestamp`` (when each result came) where Ray wrote it.
CURVE_COLUMNS = ("trial_id", "budget", "train_loss", "val_loss", "train_acc", "val_acc")


def learning_curves(exp_dir: str | os.PathLike) -> pd.DataFrame:
    """Every trial's per-budget metrics: ``trial_id``, ``budget``, train/val loss and accuracy,
    and the ``timestamp`` of each result (seconds since the epoch). ``exp_dir``: a folder or
    a storage URI (the trials' logs are downloaded first)."""
    frames = []
    for progress in sorted(run_folder(exp_dir, "exp_dir", recursive=True).glob(
            f"*/{PROGRESS_FILE}")):
        df = read_progress(progress)
        if df.empty or "budget" not in df:
            continue
        df["trial_id"] = progress.parent.name.rsplit("_", 1)[-1]
        frames.append(df[[*CURVE_COLUMNS, *(c for c in ("timestamp",) if c in df)]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_learning_curves(exp_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Train and validation loss over the budget for every trial (seed 001's loss comparison).

    Saved to ``out`` (default ``<exp_dir>/learning_curves.png``; at a storage URI, uploaded
    too); returns the (local) path.
    """
    curves = learning_curves(exp_dir)
    out = (uris.local_path(out, "out") if out else
           run_folder(exp_dir, "exp_dir") / "learning_curves.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for _, trial in curves.groupby("trial_id"):
        trial = trial.sort_values("budget")
        axes[0].plot(trial["budget"], trial["train_loss"], color="tab:blue", alpha=0.35, lw=1)
        axes[0].plot(trial["budget"], trial["val_loss"], color="tab:orange", alpha=0.35, lw=1)
        axes[1].plot(trial["budget"], trial["val_acc"], color="tab:green", alpha=0.45, lw=1, marker=".")
    axes[0].plot([], [], color="tab:blue", label="train loss")
    axes[0].plot([], [], color="tab:orange", label="validation loss")
    axes[0].set(xlabel="budget", ylabel="cross-entropy", yscale="log",
                title="Train vs validation loss per trial")
    axes[0].legend()
    axes[1].set(xlabel="budget", ylabel="validation accuracy", title="Validation accuracy per trial")
    return save_figure(fig, out)


def save_figure(fig, out: Path) -> Path:
    """Writes ``fig`` to ``out`` (PNG, tight layout) and closes it, and uploads it when ``out``
    is in the mirror of a storage URI; returns ``out``."""
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    uris.push(out)
    return out
