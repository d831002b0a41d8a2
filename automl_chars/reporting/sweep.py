"""What a finished sweep found, how fast, and which hyperparameters mattered: the best accuracy
so far against wall time (several sweeps overlaid), every trial's learning curve coloured by the
budget it reached, parallel coordinates of the hyperparameters against accuracy, and their
importance from a random forest (scikit-learn). Pure functions return frames; ``plot_*`` write
PNG files (matplotlib, no display) and return their paths, as :mod:`.plots` does."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from automl_chars.layout import CONFIG_PREFIX  # noqa: E402
from automl_chars.reporting.plots import save_figure  # noqa: E402

#: A numeric hyperparameter spanning at least this ratio (max / min > 0) gets a log axis.
LOG_RATIO = 100.0
#: Fewest trials with an accuracy to fit importances on.
MIN_TRIALS_FOR_IMPORTANCE = 5


# -- best so far against wall time -------------------------------------------------------------
def incumbent_trace(curves: pd.DataFrame, started_at: float | None = None,
                    metric: str = "val_acc") -> pd.DataFrame:
    """The best ``metric`` reported so far (any trial, any budget) against seconds since
    ``started_at`` (default: the first result's time): one row per improvement, ``seconds`` and
    ``best``, from :func:`~automl_chars.reporting.plots.learning_curves` rows with their
    ``timestamp``. Failed results (NaN) never count."""
    if curves.empty or "timestamp" not in curves:
        return pd.DataFrame(columns=["seconds", "best"])
    done = curves.dropna(subset=[metric, "timestamp"]).sort_values("timestamp", kind="stable")
    if done.empty:
        return pd.DataFrame(columns=["seconds", "best"])
    start = float(done["timestamp"].min() if started_at is None else started_at)
    best = done.groupby("timestamp", sort=True)[metric].max().cummax()
    improved = best[best.diff().fillna(1.0) > 0]
    return pd.DataFrame({"seconds": improved.index.to_numpy(dtype=float) - start,
                         "best": improved.to_numpy(dtype=float)})


def plot_incumbents(traces: Mapping[str, pd.DataFrame], out: str | os.PathLike,
                    ends: Mapping[str, float] | None = None) -> Path:
    """One step line per sweep (label -> :func:`incumbent_trace`), each drawn on to its end
    (``ends``: label -> seconds of its last result), to compare e.g. a warm with a cold sweep."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, trace in traces.items():
        if trace.empty:
            continue
        x, y = list(trace["seconds"]), list(trace["best"])
        end = (ends or {}).get(label)
        if end is not None and end > x[-1]:
            x, y = x + [end], y + [y[-1]]
        ax.step(x, y, where="post", lw=2, label=label, marker="o", markersize=3)
    ax.set_xlim(left=0)
    ax.set(xlabel="wall time since the sweep started (s)",
           ylabel="best validation accuracy so far", title="Best accuracy against wall time")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return save_figure(fig, Path(out))


# -- learning curves by budget -----------------------------------------------------------------
def plot_budget_curves(curves: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Every trial's validation accuracy over the budget, coloured by the budget it reached (a
    successive-halving sweep's promotions at a glance)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    reached = curves.groupby("trial_id")["budget"].max()
    levels = sorted(reached.unique())
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, max(1, len(levels))))
    colour = dict(zip(levels, colours))
    for tid, trial in curves.groupby("trial_id"):
        trial = trial.sort_values("budget")
        ax.plot(trial["budget"], trial["val_acc"], color=colour[reached[tid]], alpha=0.6, lw=1.2,
                marker=".")
    for level in levels:
        ax.plot([], [], color=colour[level], lw=2,
                label=f"reached {level:g} ({int((reached == level).sum())} trials)")
    ax.set(xlabel="budget", ylabel="validation accuracy",
           title="Learning curves, coloured by the budget reached")
    ax.grid(alpha=0.3)
    if levels:
        ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, Path(out))


# -- hyperparameters ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """How one hyperparameter maps to [0, 1]: numbers by value (``log``: by log10), categories
    (and booleans) evenly spaced in sorted order. Inactive values (NaN) stay NaN."""

    name: str
    log: bool = False
    low: float = 0.0
    high: float = 1.0
    categories: tuple[str, ...] = ()

    def encode(self, values: pd.Series) -> np.ndarray:
        if self.categories:
            where = {c: i for i, c in enumerate(self.categories)}
            span = max(1, len(self.categories) - 1)
            return np.array([np.nan if _missing(v) else where[str(v)] / span for v in values])
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        if self.log:
            x = np.log10(x)
        return (x - self.low) / (self.high - self.low) if self.high > self.low else x * 0 + 0.5

    def tick(self, end: int) -> str:
        """The value at the bottom (0) or the top (1) of the axis, as text."""
        if self.categories:
            return self.categories[-1 if end else 0]
        v = self.high if end else self.low
        return f"{10 ** v:.3g}" if self.log else f"{v:.3g}"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def axis_for(name: str, values: pd.Series) -> Axis:
    """The :class:`Axis` of a column of values (a ``trials.csv`` configuration column)."""
    known = values.dropna()
    numeric = pd.to_numeric(known, errors="coerce")
    if (known.empty or numeric.isna().any() or pd.api.types.is_bool_dtype(known)
            or known.map(lambda v: isinstance(v, (bool, np.bool_))).any()):
        return Axis(name, categories=tuple(sorted({str(v) for v in known})))
    x = numeric.to_numpy(dtype=float)
    log = bool(x.min() > 0 and x.max() / x.min() >= LOG_RATIO)
    if log:
        x = np.log10(x)
    return Axis(name, log=log, low=float(x.min()), high=float(x.max()))


def hyperparameter_columns(trials: pd.DataFrame) -> list[str]:
    """The configuration columns of ``trials`` whose value varies between trials (or is
    inactive in some), without the prefix; ``suggested_by`` is where a trial came from, not a
    hyperparameter."""
    out = []
    for col in trials.columns:
        if not col.startswith(CONFIG_PREFIX) or col == f"{CONFIG_PREFIX}suggested_by":
            continue
        values = trials[col]
        if values.dropna().astype(str).nunique() + int(values.isna().any()) > 1:
            out.append(col[len(CONFIG_PREFIX):])
    return out


def encode_trials(trials: pd.DataFrame, names: list[str] | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Axis]]:
    """Each trial's budget and hyperparameters in [0, 1] (NaN where inactive), one column per
    name (default :func:`hyperparameter_columns`), with the :class:`Axis` of each."""
    names = hyperparameter_columns(trials) if names is None else names
    axes = {"budget": axis_for("budget", trials["budget"])}
    axes.update({n: axis_for(n, trials[CONFIG_PREFIX + n]) for n in names})
    encoded = pd.DataFrame({n: a.encode(trials["budget" if n == "budget" else CONFIG_PREFIX + n])
                            for n, a in axes.items()}, index=trials.index)
    return encoded, axes


def hyperparameter_importance(trials: pd.DataFrame, metric: str = "val_acc",
                              seed: int = 0) -> pd.DataFrame:
    """How much each hyperparameter (and the budget) explains ``metric`` across the trials:
    scikit-learn's random-forest impurity importances (they sum to 1) and their standard
    deviation over the trees, most important first. Inactive values count as a value of their
    own (-1). Fewer than :data:`MIN_TRIALS_FOR_IMPORTANCE` trials with a result raise
    ``ValueError``."""
    from sklearn.ensemble import RandomForestRegressor

    done = trials.dropna(subset=[metric])
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        raise ValueError(f"{len(done)} trial(s) with a {metric}: too few to estimate importances "
                         f"(at least {MIN_TRIALS_FOR_IMPORTANCE}).")
    encoded, _ = encode_trials(done)
    x = encoded.fillna(-1.0).to_numpy()
    forest = RandomForestRegressor(n_estimators=300, random_state=seed, min_samples_leaf=2)
    forest.fit(x, done[metric].to_numpy(dtype=float))
    spread = np.std([tree.feature_importances_ for tree in forest.estimators_], axis=0)
    frame = pd.DataFrame({"hyperparameter": list(encoded.columns),
                          "importance": forest.feature_importances_, "std": spread})
    return frame.sort_values("importance", ascending=False, ignore_index=True)


def plot_importance(importance: pd.DataFrame, out: str | os.PathLike, top: int = 15) -> Path:
    """Horizontal bars of the ``top`` importances (:func:`hyperparameter_importance`)."""
    shown = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(shown)))
    low = np.minimum(shown["std"], shown["importance"])  # importances are never below 0
    ax.barh(shown["hyperparameter"], shown["importance"], xerr=[low, shown["std"]],
            color="tab:blue", alpha=0.8, error_kw={"alpha": 0.5})
    ax.set_xlim(left=0)
    ax.set(xlabel="importance (random forest, impurity decrease)",
           title="Which hyperparameters mattered")
    ax.grid(alpha=0.3, axis="x")
    return save_figure(fig, Path(out))


def plot_parallel_coordinates(trials: pd.DataFrame, out: str | os.PathLike,
                              names: list[str] | None = None, metric: str = "val_acc") -> Path:
    """One line per trial across the budget, the hyperparameters ``names`` (default every one
    that varies) and ``metric``, coloured by ``metric`` (the best drawn on top); each axis
    labelled with its lowest and highest value; inactive values below the axis."""
    done = trials.dropna(subset=[metric]).sort_values(metric)
    encoded, axes = encode_trials(done, names)
    acc = axis_for(metric, done[metric])
    encoded[metric] = acc.encode(done[metric])
    axes[metric] = acc
    values = encoded.fillna(-0.12).to_numpy()
    cols = list(encoded.columns)
    fig, ax = plt.subplots(figsize=(max(7.5, 0.85 * len(cols)), 4.6))
    xs = np.arange(len(cols))
    segments = [np.column_stack([xs, row]) for row in values]
    norm = plt.Normalize(float(done[metric].min()), float(done[metric].max()) or 1.0)
    lines = LineCollection(segments, cmap="viridis", norm=norm, alpha=0.75, lw=1.4)
    lines.set_array(done[metric].to_numpy(dtype=float))
    ax.add_collection(lines)
    for x, name in zip(xs, cols):
        a = axes[name]
        ax.axvline(x, color="0.3", lw=0.8)
        ax.text(x, 1.03, a.tick(1), ha="center", va="bottom", fontsize=7)
        ax.text(x, -0.03, a.tick(0), ha="center", va="top", fontsize=7)
    ax.axhline(-0.12, color="0.85", lw=0.6, ls=":")
    ax.set_xticks(xs, [f"{c}{' (log)' if axes[c].log else ''}" for c in cols], rotation=35,
                  ha="right", fontsize=8)
    ax.set(xlim=(-0.3, len(cols) - 0.7), ylim=(-0.2, 1.12), yticks=[],
           title="Parallel coordinates (dotted line: inactive)")
    fig.colorbar(lines, ax=ax, label=metric, fraction=0.04)
    return save_figure(fig, Path(out))
