"""Heatmaps of similarity tables (matplotlib, written to PNG, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _oriented(values: np.ndarray, higher_is_more_similar: bool) -> np.ndarray:
    """Scores rescaled to [0, 1] with 1 = most similar (NaN stays NaN)."""
    v = values.astype(np.float64)
    if not higher_is_more_similar:
        v = -v
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return v
    lo, hi = finite.min(), finite.max()
    return np.where(np.isfinite(v), (v - lo) / (hi - lo) if hi > lo else 1.0, np.nan)


def plot_heatmap(frame: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> Path:
    """Writes a heatmap of ``frame`` to ``path`` (PNG) and returns the path.

    ``frame`` is either a :func:`~automl_chars.similarity.similarity` table (rows sources, one
    column per measure; each column is rescaled to [0, 1] with dark = most similar, the raw
    scores written in the cells) or a :func:`~automl_chars.similarity.similarity_matrix` (rows
    targets, columns sources; oriented by ``frame.attrs["higher_is_more_similar"]``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    orientation = frame.attrs.get("higher_is_more_similar")
    if isinstance(orientation, dict):  # a similarity() table: one column per measure
        measures = [m for m in orientation if m in frame]
        raw = frame[measures].to_numpy(dtype=np.float64)
        colour = np.column_stack([_oriented(raw[:, j], orientation[m])
                                  for j, m in enumerate(measures)])
        xlabels = [f"{m}\n({'higher' if orientation[m] else 'lower'} = similar)" for m in measures]
        default = f"Similarity to target {frame.attrs.get('target', '')}"
        xlabel, ylabel = "measure", "source"
    else:
        measures = list(frame.columns)
        raw = frame.to_numpy(dtype=np.float64)
        colour = _oriented(raw.ravel(), bool(orientation)).reshape(raw.shape)
        xlabels = [str(c) for c in frame.columns]
        m = frame.attrs.get("measure", "score")
        default = f"{m} ({'higher' if orientation else 'lower'} = more similar)"
        xlabel, ylabel = "source", "target"
    fig, ax = plt.subplots(figsize=(1.0 + 1.1 * raw.shape[1], 1.2 + 0.5 * raw.shape[0]))
    image = ax.imshow(colour, cmap="viridis_r", vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), value in np.ndenumerate(raw):
        text = "nan" if not np.isfinite(value) else f"{value:.3g}"
        shade = colour[i, j]
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if np.isfinite(shade) and shade > 0.55 else "black")
    ax.set_xticks(range(len(xlabels)), xlabels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(raw.shape[0]), [str(i) for i in frame.index], fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or default)
    fig.colorbar(image, ax=ax, label="similarity (1 = most similar)", fraction=0.05)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
