"""``learned``: a ranker over the transferability measures' scores and cheap meta-features,
trained on a ground truth (``benchmarks/transferability.py``) and shipped with the package, so
a new target needs no training.

The model is a ridge regression fitted *within* targets (a fixed-effects regression): per
(regime, target) the features are centred and the measured fine-tuning accuracies
standardised, so each target weighs the same and only the order of its sources is learned.
The measures' weights are kept >= 0: each is built so that higher means a better transfer, and
a negative weight would fit the noise of a small ground truth (the meta-features may take
either sign).
Its prediction for a source is the linear score ``sum_j w_j x_j / s_j`` of its uncentred
features ``x`` (``s``: the features' pooled within-target standard deviation): within a target
the same order as the centred model gives, but an absolute number, so a target whose labels
its sources' features separate worse scores lower (as every label-aware measure does).

Features (:func:`ranking_features`): every base measure's score, oriented so that higher is
better; ``log_params`` (log10 of the source body's parameters: "bigger is better" is one of
them), ``log_params_x_shots`` (that times log10 of the target's training images per class:
small models may suit few-shot targets) and ``log_source_classes``. Only measures that run each
source's own model (``uses = "source"``) can be bases: they read no source labels and need no
reference network.

:func:`leave_one_target_out` gives each target the predictions of a ranker that never saw its
rows (the benchmark's honest figure); :meth:`LearnedRanker.fit` and ``scripts/
train_learned_ranker.py`` retrain the shipped file from a ground-truth run's ``scores.csv``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from automl_chars.errors import DamagedFileError, InvalidConfigError
from automl_chars.layout import PACKAGE_DATA_REMEDY, read_json, write_json
from automl_chars.similarity.base import MEASURES, Context, Measure, register_measure
from automl_chars.similarity.source import Sample, SourceView

#: The shipped ranker (package data); ``scripts/train_learned_ranker.py`` rewrites it.
SHIPPED_PATH = Path(__file__).with_name("data") / "learned_ranker.json"
#: Version of the saved format; another version is refused.
FORMAT_VERSION = 1
#: The meta-features every ranker uses besides the measures.
META = ("log_params", "log_params_x_shots", "log_source_classes")
#: Base measures of a ranker trained without a choice: the cheap source-model measures
#: (``nleep``'s Gaussian mixture costs ~1 s per source and is left out).
DEFAULT_BASES = ("logme", "leep", "nce", "hscore", "sfda", "parc", "knn")
#: Columns a ground-truth scores table has besides the measures' scores.
#: Ridge penalties the fit chooses from (on standardised features).
ALPHAS = (0.1, 1.0, 10.0, 100.0)
SCORE_COLUMNS = ("regime", "target", "source", "accuracy", "params", "images_per_class",
                 "source_classes")


def body_parameters(model: nn.Module) -> int:
    """Parameters of ``model`` outside its head (what transfer keeps; the head is replaced)."""
    return int(sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head.")))


def check_bases(measures: Sequence[str]) -> tuple[str, ...]:
    """``measures`` as base measures of a ranker: registered, each running its source's own
    model (the ranker reads no source labels and no reference network), ``learned`` excluded."""
    names = tuple(dict.fromkeys(measures))
    for m in names:
        cls = MEASURES.get(m)
        if cls.uses != "source" or m == Learned.name:
            raise InvalidConfigError(
                f"{m!r} cannot be a base measure of the learned ranker: only measures that run "
                f"each source's own model qualify ({', '.join(source_measures())}).")
    if not names:
        raise InvalidConfigError("The learned ranker needs at least one base measure.")
    return names


def source_measures() -> list[str]:
    """The registered measures that can be bases (each source's own model)."""
    return [m for m in MEASURES.names() if MEASURES.get(m).uses == "source" and m != "learned"]


def ranking_features(scores: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """The ranker's features of each row of ``scores`` (columns: each measure's raw score,
    ``params``, ``images_per_class``, ``source_classes``): the measures oriented so that higher
    is better, then :data:`META`."""
    out = pd.DataFrame(index=scores.index)
    for m in measures:
        sign = 1.0 if MEASURES.get(m).higher_is_more_similar else -1.0
        out[m] = sign * scores[m].astype(float)
    log_params = np.log10(scores["params"].astype(float).clip(lower=1.0))
    out["log_params"] = log_params
    out["log_params_x_shots"] = log_params * np.log10(
        scores["images_per_class"].astype(float).clip(lower=1.0))
    out["log_source_classes"] = np.log10(scores["source_classes"].astype(float).clip(lower=1.0))
    return out


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float, lower: np.ndarray) -> np.ndarray:
    """Ridge regression without intercept, ``min |x w - y|^2 + alpha |w|^2`` subject to
    ``w >= lower``: a bounded least-squares problem on ``x`` stacked over ``sqrt(alpha) I``
    (``scipy.optimize.lsq_linear``)."""
    from scipy.optimize import lsq_linear  # deferred: only training needs it

    d = x.shape[1]
    a = np.vstack([x, np.sqrt(alpha) * np.eye(d)])
    b = np.concatenate([y, np.zeros(d)])
    return lsq_linear(a, b, bounds=(lower, np.full(d, np.inf))).x


def _within(frame: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    return frame - frame.groupby(groups.to_numpy()).transform("mean")


@dataclass(frozen=True)
class LearnedRanker:
    """A fitted ranker: base measures, feature scales and ridge weights (see the module).

    Attributes:
        measures: the base measures, in feature order (then :data:`META`).
        scale: per feature, its pooled within-target standard deviation in the training data.
        fill: per feature, the value a missing one takes (its training mean).
        coef: per feature, the ridge weight on the scaled feature.
        alpha: the ridge penalty chosen (leave-one-target-out error).
        trained_on: what it was fitted on (targets, regimes, rows, the run).
    """

    measures: tuple[str, ...]
    scale: tuple[float, ...]
    fill: tuple[float, ...]
    coef: tuple[float, ...]
    alpha: float
    trained_on: dict = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.measures, *META)

    @classmethod
    def fit(cls, scores: pd.DataFrame, measures: Sequence[str] = DEFAULT_BASES,
            alphas: Sequence[float] = ALPHAS, note: str = "") -> LearnedRanker:
        """Fits on a ground-truth scores table (:data:`SCORE_COLUMNS` and each measure's raw
        score; one row per regime, target and source): features centred and accuracies
        standardised within each (regime, target); ridge with the measures' weights kept >= 0
        (:func:`ridge_fit`), its penalty the one of ``alphas`` with the least squared error
        when each target is left out in turn."""
        measures = check_bases(measures)
        missing = [c for c in (*SCORE_COLUMNS, *measures) if c not in scores]
        if missing:
            raise InvalidConfigError(f"The scores table lacks the columns {missing}.")
        groups = scores["regime"].astype(str) + "|" + scores["target"].astype(str)
        if groups.nunique() < 2:
            raise InvalidConfigError("The learned ranker needs the ground truth of at least two "
                                     "targets.")
        x = ranking_features(scores, measures)
        fill = x.mean().fillna(0.0)
        x = x.fillna(fill)
        xc = _within(x, groups)
        scale = xc.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
        acc = scores["accuracy"].astype(float)
        yc = _within(acc.to_frame(), groups)["accuracy"]
        sd = acc.groupby(groups.to_numpy()).transform("std").replace(0.0, 1.0).fillna(1.0)
        xs, y, g = (xc / scale).to_numpy(float), (yc / sd).to_numpy(float), groups.to_numpy()
        lower = np.array([0.0] * len(measures) + [-np.inf] * len(META))

        def cv_error(alpha: float) -> float:
            err = 0.0
            for held in np.unique(g):
                w = ridge_fit(xs[g != held], y[g != held], alpha, lower)
                err += float(np.sum((xs[g == held] @ w - y[g == held]) ** 2))
            return err

        alpha = min(sorted(alphas, reverse=True), key=cv_error)  # ties: the larger penalty
        coef = ridge_fit(xs, y, alpha, lower)
        info = {"targets": sorted(map(str, scores["target"].unique())),
                "regimes": sorted(map(str, scores["regime"].unique())), "rows": int(len(scores)),
                "note": note}
        return cls(measures, tuple(map(float, scale)), tuple(map(float, fill)),
                   tuple(map(float, coef)), float(alpha), info)

    def predict(self, scores: pd.DataFrame) -> np.ndarray:
        """The score of each row (higher = predicted to transfer better); rows need the base
        measures' raw scores, ``params``, ``images_per_class`` and ``source_classes``."""
        x = ranking_features(scores, self.measures)[list(self.features)]
        x = x.fillna(pd.Series(self.fill, index=list(self.features)))
        return x.to_numpy(float) @ (np.asarray(self.coef) / np.asarray(self.scale))

    def weights(self) -> pd.Series:
        """Each feature's weight on its scaled value (comparable between features)."""
        return pd.Series(self.coef, index=list(self.features))

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the ranker as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"version": FORMAT_VERSION, **asdict(self)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> LearnedRanker:
        """Reads a saved ranker (default: the shipped one); a missing, damaged or other-version
        file raises naming it and what to do (reinstall the package for the shipped one)."""
        path = Path(path or SHIPPED_PATH)
        remedy = (PACKAGE_DATA_REMEDY if path.resolve() == SHIPPED_PATH.resolve() else
                  "Retrain it with scripts/train_learned_ranker.py.")
        if not path.exists():
            raise DamagedFileError(path, "it is missing", remedy)
        data = read_json(path, remedy)
        if data.get("version") != FORMAT_VERSION:
            raise DamagedFileError(path, f"it is not a learned ranker of format version "
                                   f"{FORMAT_VERSION} (it says {data.get('version')!r})", remedy)
        try:
            ranker = cls(tuple(data["measures"]), tuple(data["scale"]), tuple(data["fill"]),
                         tuple(data["coef"]), float(data["alpha"]), dict(data["trained_on"]))
        except (KeyError, TypeError, ValueError) as err:
            raise DamagedFileError(path, f"{err!r} missing or wrong", remedy) from None
        n = len(ranker.features)
        if not (len(ranker.scale) == len(ranker.fill) == len(ranker.coef) == n):
            raise DamagedFileError(path, f"{n} features but {len(ranker.coef)} weights", remedy)
        check_bases(ranker.measures)
        return ranker


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> LearnedRanker:
    return LearnedRanker.load(path)


def shipped_ranker(path: str | os.PathLike | None = None) -> LearnedRanker:
    """The ranker in ``path`` (default: the shipped one), read once per file version."""
    path = Path(path or SHIPPED_PATH)
    return _load_cached(str(path), path.stat().st_mtime if path.exists() else math.nan)


def leave_one_target_out(scores: pd.DataFrame, measures: Sequence[str] = DEFAULT_BASES,
                         by: str = "target", **fit_args: Any) -> pd.Series:
    """Each row's prediction by a ranker fitted on the rows of every *other* value of ``by``
    (default: the target domain, all regimes): no target's own ground truth trains the ranker
    that ranks its sources."""
    out = pd.Series(np.nan, index=scores.index, dtype=float)
    for held_out in scores[by].unique():
        mask = (scores[by] == held_out).to_numpy()
        ranker = LearnedRanker.fit(scores[~mask], measures, **fit_args)
        out[mask] = ranker.predict(scores[mask])
    return out


def source_scores(target: Sample, sources: Sequence[SourceView], measures: Sequence[str],
                  ctx: Context) -> pd.DataFrame:
    """The raw inputs of a ranker for ``target``: each base measure's score per source (NaN
    where it fails) and the meta columns of :data:`SCORE_COLUMNS`."""
    from automl_chars.similarity.base import get_measure

    rows: dict[str, dict[str, float]] = {}
    per_class = target.meta.get("num_train", len(target.y)) / max(1, target.num_classes)
    for view in sources:
        rows[view.name] = {"params": ctx.cached(("body_parameters", id(view.model)),
                                                lambda v=view: body_parameters(v.model)),
                           "images_per_class": float(per_class),
                           "source_classes": float(len(view.classes))}
    for m in measures:
        measure = get_measure(m)
        tstate = measure.target_state(target, ctx)
        for view in sources:
            sstate = ctx.cached(("source_state", m, id(view)),
                                lambda v=view, ms=measure: ms.source_state(v, ctx))
            try:
                value = float(measure.score(target, tstate, view, sstate, ctx))
            except Exception:  # a base that fails on a source counts as its training mean
                value = float("nan")
            rows[view.name][m] = value if np.isfinite(value) else float("nan")
    return pd.DataFrame.from_dict(rows, orient="index")


@register_measure
class Learned(Measure):
    """The shipped :class:`LearnedRanker` over its base measures and meta-features; the bases
    run for every source of the comparison at once (once per bootstrap round), as the ranker
    needs them side by side only through its features."""

    name = "learned"
    description = "a ridge ranker over the source-model measures and model size, trained on a ground truth"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"

    def target_state(self, target: Sample, ctx: Context) -> dict[str, float]:
        ranker = shipped_ranker()
        frame = source_scores(target, ctx.sources, ranker.measures, ctx)
        return dict(zip(frame.index, ranker.predict(frame)))

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        return tstate[source.name]


__all__ = ["DEFAULT_BASES", "META", "SCORE_COLUMNS", "SHIPPED_PATH", "Learned", "LearnedRanker",
           "body_parameters", "check_bases", "leave_one_target_out", "ranking_features",
           "shipped_ranker", "source_measures", "source_scores"]
