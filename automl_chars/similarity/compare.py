"""``similarity``: every measure for one target against every source, with bootstrap intervals
and timings; ``similarity_matrix``: one measure for all pairs of datasets."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd
from torch import nn

from automl_chars.data.dataset import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.similarity.base import (
    ALL,
    FAST,
    MEASURES,
    Context,
    Measure,
    fast_measures,
    get_measure,
)
from automl_chars.similarity.source import (
    DEFAULT_SAMPLE_SIZE,
    Sample,
    SimilarityError,
    SourceView,
    as_source_list,
    check_shapes,
    target_sample,
)

#: Bootstrap rounds when none are given.
DEFAULT_BOOTSTRAP = 20
INTERVALS = ("normal", "percentile")


def resolve_measures(measures: str | Sequence[str] = FAST) -> list[str]:
    """``"fast"`` (every measure but the slow ones: the default), ``"all"``, one name, a
    comma-separated string or a list of names -> registered names (unknown names raise with the
    closest names)."""
    if isinstance(measures, str):
        if measures.strip() == FAST:
            return fast_measures()
        if measures.strip() == ALL:
            return MEASURES.names()
        measures = [m.strip() for m in measures.split(",") if m.strip()]
    names = list(dict.fromkeys(measures))
    if not names:
        raise InvalidConfigError(f"no similarity measure given; use {FAST!r}, {ALL!r} or names "
                                 f"from {', '.join(MEASURES.names())}.")
    for name in names:
        MEASURES.get(name)
    return names


def resolve_reference(reference: str | int | SourceView | None, sources: list[SourceView]) -> SourceView:
    """The reference source for ``sen``/``frechet``/``otdd``/``task2vec``: a source's name or
    position, a :class:`SourceView`, or ``None`` for the first source."""
    if reference is None:
        return sources[0]
    if isinstance(reference, SourceView):
        return reference
    if isinstance(reference, int) and not isinstance(reference, bool):
        if not -len(sources) <= reference < len(sources):
            raise InvalidConfigError(f"reference index {reference} is out of range for "
                                     f"{len(sources)} sources.")
        return sources[reference]
    by_name = {s.name: s for s in sources}
    if reference not in by_name:
        import difflib

        close = difflib.get_close_matches(str(reference), list(by_name), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise InvalidConfigError(f"reference {reference!r} is not one of the sources "
                                 f"({', '.join(by_name)}).{hint}")
    return by_name[reference]


def bootstrap_rows(labels: np.ndarray, rounds: int, seed: int) -> list[np.ndarray]:
    """``rounds`` stratified bootstrap resamples of positions ``0..n-1``: each class is redrawn
    with replacement to its own size, so every class stays present in every round."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    return [np.sort(np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups]))
            for _ in range(int(rounds))]


def _interval(point: float, values: np.ndarray, level: float, kind: str,
              bounds: tuple[float, float]) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 2 or not np.isfinite(point):
        return float("nan"), float("nan")
    if kind == "normal":
        half = NormalDist().inv_cdf(0.5 + level / 2) * float(np.std(values, ddof=1))
        low, high = point - half, point + half
    else:
        low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))


def _finite(value, measure: str, name: str, role: str = "source") -> float:
    value = float(value)
    if not np.isfinite(value):
        raise SimilarityError(measure, name, f"the score is {value}", role)
    return value


def _run_measure(measure: Measure, samples: list[Sample], sources: list[SourceView],
                 ctx: Context, on_error: str, level: float, interval: str,
                 errors: dict[str, str]) -> dict[str, dict[str, float]]:
    """One measure's columns: score, bootstrap interval, seconds (and any extras) per source."""
    name, target = measure.name, samples[0]
    nan = float("nan")
    start = time.perf_counter()
    try:
        tstates = [measure.target_state(s, ctx) for s in samples]
    except Exception as err:  # one failure of the target side fails the measure for all
        failure = err if isinstance(err, SimilarityError) else SimilarityError(
            name, target.name, err, role="target")
        if on_error == "raise":
            raise failure from err
        warnings.warn(str(failure), stacklevel=3)
        errors[name] = str(failure)
        return {s.name: {name: nan, f"{name}_low": nan, f"{name}_high": nan,
                         f"{name}_seconds": nan} for s in sources}
    shared = (time.perf_counter() - start) / len(sources)
    columns = {}
    for source in sources:
        start = time.perf_counter()
        try:
            sstate = measure.source_state(source, ctx)
            point = _finite(measure.score(target, tstates[0], source, sstate, ctx), name, source.name)
            boots = np.array([measure.score(s, t, source, sstate, ctx)
                              for s, t in zip(samples[1:], tstates[1:])], dtype=np.float64)
            extras = measure.extras(target, source, ctx)
        except Exception as err:
            failure = err if isinstance(err, SimilarityError) else SimilarityError(
                name, source.name, err)
            if on_error == "raise":
                raise failure from err
            warnings.warn(str(failure), stacklevel=3)
            errors[f"{name}/{source.name}"] = str(failure)
            point, boots, extras = nan, np.array([]), {}
        low, high = _interval(point, boots, level, interval, measure.bounds)
        columns[source.name] = {name: point, f"{name}_low": low, f"{name}_high": high,
                                f"{name}_seconds": time.perf_counter() - start + shared, **extras}
    return columns


def similarity(
    target,
    sources,
    measures: str | Sequence[str] = FAST,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    reference: str | int | SourceView | None = None,
    *,
    level: float = 0.95,
    interval: str = "normal",
    on_error: str = "warn",
    context: Context | None = None,
) -> pd.DataFrame:
    """Compares ``target`` with every source by each measure.

    Args:
        target: a ``Dataset`` (a stratified ``sample_size`` of its training split is used), a
            :class:`SourceView`, or ``(x, y, classes)``. With fewer images than
            ``sample_size``, all are used and a warning says so.
        sources: a list of :class:`SourceView`, or an object with a ``sources()`` method (a
            portfolio). Every source must have the target's image shape.
        measures: ``"fast"`` (default: every measure but the slow ones, i.e. ``task2vec``,
            which takes ~11 s per source with a ResNet-18 on a CPU), ``"all"``, a name, a
            comma-separated string or a list of names of :data:`MEASURES`.
        sample_size: target images to draw (stratified, fixed by ``seed``).
        seed: fixes the target sample, the bootstrap resamples and any random draw of a measure.
        bootstrap: resamples of the target sample (stratified, with replacement) for the
            intervals; 0 for none (the interval columns are then NaN).
        reference: the source whose model is the reference network of ``sen``, ``frechet``,
            ``otdd`` and ``task2vec`` (name, position or view); default the first source.
        level: coverage of the intervals.
        interval: ``"normal"`` (score +- z * bootstrap standard deviation; always contains the
            score) or ``"percentile"`` (bootstrap percentiles; may exclude a biased score).
        on_error: ``"warn"`` (default): a measure that fails on a source gives NaN for it and a
            warning naming measure, source and cause (also kept in ``frame.attrs["errors"]``);
            ``"raise"``: raise :class:`SimilarityError` instead.
        context: a :class:`Context` to reuse network outputs and source states across calls
            with the same sources (e.g. one per target of a benchmark); it fixes the reference.

    Returns:
        One row per source (index: source names) and, per measure ``m``, the columns ``m``,
        ``m_low``, ``m_high`` (interval) and ``m_seconds`` (time spent on that source, with the
        target-side work shared equally), plus ``sen_label_l1`` and ``sen_labels_only`` for
        ``sen`` (see :class:`~automl_chars.similarity.distribution.SEN`). ``frame.attrs`` holds
        ``higher_is_more_similar`` (per measure), ``target``, ``reference``, ``sample_size``
        (images actually used), ``bootstrap``, ``level``, ``interval`` and ``errors``.
    """
    if on_error not in ("warn", "raise"):
        raise InvalidConfigError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
    if interval not in INTERVALS:
        raise InvalidConfigError(f"interval must be one of {INTERVALS}, got {interval!r}.")
    if not 0.0 < level < 1.0:
        raise InvalidConfigError(f"level must lie in (0, 1), got {level}.")
    if int(bootstrap) < 0:
        raise InvalidConfigError(f"bootstrap must be >= 0, got {bootstrap}.")
    names = resolve_measures(measures)
    views = as_source_list(sources)
    sample = target_sample(target, sample_size, seed)
    check_shapes(sample, views)
    ref = resolve_reference(reference, views) if context is None else context.reference
    if context is not None and reference is not None and \
            resolve_reference(reference, views) is not context.reference:
        raise InvalidConfigError(f"reference {reference!r} differs from the context's reference "
                                 f"{context.reference.name!r}; pass one of them.")
    if ref.image_shape != tuple(sample.x.shape[1:]):
        check_shapes(sample, [ref])
    ctx = context or Context(ref, seed)
    ctx.target, ctx.sources = sample, views
    ctx.register(sample)
    samples = [sample] + [sample.take(rows) for rows in bootstrap_rows(sample.labels, bootstrap, seed)]
    errors: dict[str, str] = {}
    rows: dict[str, dict[str, float]] = {v.name: {} for v in views}
    for name in names:
        columns = _run_measure(get_measure(name), samples, views, ctx, on_error, level, interval,
                               errors)
        for source, values in columns.items():
            rows[source].update(values)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "source"
    frame.attrs.update(
        higher_is_more_similar={n: MEASURES.get(n).higher_is_more_similar for n in names},
        target=sample.name, reference=ref.name, sample_size=len(sample.y),
        bootstrap=int(bootstrap), level=level, interval=interval, errors=errors,
    )
    return frame


def rank_sources(frame: pd.DataFrame, measure: str) -> list[str]:
    """Source names of a :func:`similarity` table, most similar first by ``measure`` (NaN last)."""
    MEASURES.get(measure)
    if measure not in frame:
        raise InvalidConfigError(f"measure {measure!r} is not a column of this table "
                                 f"(columns: {', '.join(map(str, frame.columns))}).")
    higher = MEASURES.get(measure).higher_is_more_similar
    return list(frame[measure].sort_values(ascending=not higher, na_position="last").index)


def similarity_matrix(
    datasets: Mapping[str, Dataset] | Sequence[SourceView],
    measure: str,
    *,
    models: Mapping[str, nn.Module] | None = None,
    reference: str | int | SourceView | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    on_error: str = "warn",
) -> pd.DataFrame:
    """One measure for every (target, source) pair of ``datasets``: rows targets, columns sources.

    Args:
        datasets: ``name -> Dataset`` or a list of :class:`SourceView`. Datasets are seen as
            sources through a stratified sample of their training split (``seed``) and as
            targets through another one (``seed + 1``); views are their own target (so the
            diagonal of a distance is 0).
        measure: one name of :data:`MEASURES`.
        models: for datasets, ``name -> model`` trained on that dataset (``logme``/``leep``
            need one per dataset; datasets without one are seen through the reference model).
        reference: the dataset (name or position) or view whose model is the reference network;
            default the first dataset that has a model.
        sample_size, seed, on_error: as in :func:`similarity` (no bootstrap here).

    Returns:
        A square DataFrame; ``attrs`` holds ``measure`` and ``higher_is_more_similar``.
    """
    (name,) = resolve_measures([measure])
    cls = MEASURES.get(name)
    if isinstance(datasets, Mapping):
        if not datasets:
            raise InvalidConfigError("similarity_matrix needs at least one dataset.")
        models = dict(models or {})
        unknown = sorted(set(models) - set(datasets))
        if unknown:
            raise InvalidConfigError(f"models given for unknown datasets: {', '.join(unknown)}.")
        if reference is None:
            reference = next((n for n in datasets if n in models), None)
        elif isinstance(reference, str) and reference not in models:
            raise InvalidConfigError(f"reference {reference!r} has no model in models= "
                                     f"(models: {', '.join(models) or 'none'}).")
        missing = [n for n in datasets if n not in models]
        if cls.uses == "source" and missing:
            raise InvalidConfigError(f"measure {name!r} runs each source's own model; no model "
                                     f"for {', '.join(missing)}.")
        if cls.uses == "reference" and reference is None:
            raise InvalidConfigError(f"measure {name!r} needs a reference network: pass "
                                     f"models= (and reference=).")
        fallback = models.get(reference) if isinstance(reference, str) else None
        def model_for(n):
            chosen = models.get(n, fallback)
            return _NoModel() if chosen is None else chosen

        views = [SourceView.from_dataset(n, ds, model_for(n), sample_size, seed)
                 for n, ds in datasets.items()]
        targets = [SourceView.from_dataset(n, ds, v.model, sample_size, seed + 1)
                   for (n, ds), v in zip(datasets.items(), views)]
        if reference is None:
            reference = 0
    else:
        views = as_source_list(list(datasets))
        targets = views
    ref = resolve_reference(reference, views)
    ctx = Context(ref, seed)
    table = {}
    for target in targets:
        frame = similarity(target, views, [name], sample_size=len(target.y), seed=seed,
                           bootstrap=0, on_error=on_error, context=ctx)
        table[target.name] = frame[name]
    out = pd.DataFrame(table).T
    out.index.name, out.columns.name = "target", "source"
    out.attrs.update(measure=name, higher_is_more_similar=cls.higher_is_more_similar,
                     reference=ref.name)
    return out


class _NoModel(nn.Module):
    """Stands in for a model where a measure needs none (``meta_features``)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 1)

    def features(self, x):  # pragma: no cover - never called by a measure that uses none
        raise InvalidConfigError("this measure needs a model; pass models= or reference=.")
