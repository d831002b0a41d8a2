"""What the measures compare: a :class:`SourceView` per source, a labelled :class:`Sample` of
the target, and the checks that the two fit together.

A source is seen only through a small stratified sample of its training images and the model
trained on it, so a portfolio can be compared with a target without the source data on disk.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from automl_chars.data.dataset import Dataset
from automl_chars.data.sampling import stratified_order
from automl_chars.errors import AutomlCharsError, InvalidConfigError
from automl_chars.training.loop import pixel_mean_std

#: Target images drawn when no ``sample_size`` is given.
DEFAULT_SAMPLE_SIZE = 300


class SimilarityError(AutomlCharsError):
    """A measure that cannot be computed for a source (names the measure, the source, the cause)."""

    def __init__(self, measure: str, source: str, cause: BaseException | str, role: str = "source"):
        self.measure, self.source = measure, source
        why = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else cause
        super().__init__(f"measure {measure!r} failed on {role} {source!r}: {why}")


@dataclass(frozen=True, eq=False)
class SourceView:
    """One source as the measures see it.

    Attributes:
        name: the source's name (a portfolio entry or dataset name).
        model: a model with the ``features(x)``/``head`` split of :mod:`automl_chars.models`,
            trained on the source, in evaluation mode on the CPU.
        x: a stratified sample of the source's training images, ``uint8 (n, C, H, W)``.
        y: their labels, ``int64 (n,)``, in ``[0, len(classes))``.
        classes: the source's class names (the model's outputs, in order).
        mean: pixel mean (images in [0, 1]) the model was trained with.
        std: pixel standard deviation the model was trained with.
        meta: anything else, e.g. ``num_train`` (the full training size, used by the
            ``meta_features`` measure) or stored meta-features.
    """

    name: str
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    mean: float
    std: float
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        x, y = self.x, self.y
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4:
            raise InvalidConfigError(
                f"source {self.name!r}: x must be a uint8 tensor of shape (n, C, H, W), got "
                f"{tuple(getattr(x, 'shape', ()))} {getattr(x, 'dtype', type(x).__name__)}.")
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != (len(x),):
            raise InvalidConfigError(
                f"source {self.name!r}: y must be an int64 tensor of shape ({len(x)},), got "
                f"{tuple(getattr(y, 'shape', ()))} {getattr(y, 'dtype', type(y).__name__)}.")
        if len(x) == 0:
            raise InvalidConfigError(f"source {self.name!r} has an empty sample.")
        if int(y.min()) < 0 or int(y.max()) >= len(self.classes):
            raise InvalidConfigError(
                f"source {self.name!r}: labels lie outside [0, {len(self.classes)}).")
        if not (self.std > 0):
            raise InvalidConfigError(f"source {self.name!r}: std must be > 0, got {self.std}.")
        if not callable(getattr(self.model, "features", None)) or not isinstance(
                getattr(self.model, "head", None), nn.Linear):
            raise InvalidConfigError(
                f"source {self.name!r}: the model ({type(self.model).__name__}) does not split "
                f"into features(x) and an nn.Linear head; see automl_chars.models.")

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def sample(self) -> Sample:
        """The source's images and labels as a :class:`Sample`."""
        return Sample.create(self.name, self.x, self.y, self.classes, key=f"source:{self.name}",
                             meta={"num_train": train_size(self.meta, len(self.y))})

    @classmethod
    def from_dataset(
        cls,
        name: str,
        dataset: Dataset,
        model: nn.Module,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        seed: int = 0,
        *,
        mean: float | None = None,
        std: float | None = None,
        meta: dict | None = None,
    ) -> SourceView:
        """A view of ``dataset`` with ``model``: a stratified ``sample_size`` of its training
        images; ``mean``/``std`` default to the training set's (what the training loop uses)."""
        if mean is None or std is None:
            mean, std = pixel_mean_std(dataset.x_train)
        x, y = stratified_sample(dataset.x_train, dataset.y_train, sample_size, seed,
                                 what=f"source {name!r}")
        info = {"num_train": int(len(dataset.y_train)), "dataset": dataset.name, **(meta or {})}
        return cls(name=name, model=model.eval(), x=x, y=y, classes=tuple(dataset.classes),
                   mean=float(mean), std=float(std), meta=info)


@dataclass(frozen=True, eq=False)
class Sample:
    """Labelled images the measures read, possibly a bootstrap resample of a base sample.

    ``key`` names the base sample and ``rows`` are this sample's positions in it, so that network
    outputs computed once on the base are reused by every resample (see :class:`Context`).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    key: str
    rows: np.ndarray
    meta: dict = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, x: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...],
               key: str, meta: dict | None = None) -> Sample:
        return cls(name, x, y, tuple(classes), key, np.arange(len(y)), dict(meta or {}))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> np.ndarray:
        return self.y.numpy()

    def take(self, rows: np.ndarray) -> Sample:
        """The items at positions ``rows`` of this sample (repeats allowed), same base."""
        rows = np.asarray(rows, dtype=np.int64)
        idx = torch.from_numpy(rows)
        return Sample(self.name, self.x[idx], self.y[idx], self.classes, self.key,
                      self.rows[rows], self.meta)

    def class_frequencies(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes) / max(1, len(self.y))


def train_size(meta: dict, default: int) -> int:
    """The full training size recorded in ``meta`` (``num_train``, as portfolio entries store
    it, or ``n_train``), else ``default``."""
    for key in ("num_train", "n_train"):
        if key in meta:
            return int(meta[key])
    return int(default)


def stratified_sample(x: torch.Tensor, y: torch.Tensor, sample_size: int, seed: int,
                      what: str = "target") -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified ``sample_size`` of ``(x, y)`` (every class in proportion to its size).

    With fewer than ``sample_size`` images, all are used and a warning says so.
    """
    if int(sample_size) < 1:
        raise InvalidConfigError(f"sample_size must be >= 1, got {sample_size}.")
    n = len(y)
    if n < sample_size:
        warnings.warn(f"{what} has {n} images, fewer than sample_size={sample_size}; using all "
                      f"{n}.", stacklevel=3)
    rows = np.sort(stratified_order(y.numpy(), seed)[: min(n, int(sample_size))])
    idx = torch.from_numpy(rows)
    return x[idx], y[idx]


def target_sample(target, sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0) -> Sample:
    """The target as a :class:`Sample`: a ``Dataset`` (its training split), a ``SourceView``
    (its sample), or a tuple ``(x, y, classes)`` or ``(name, x, y, classes)``."""
    if isinstance(target, Sample):
        return target
    if isinstance(target, Dataset):
        x, y = stratified_sample(target.x_train, target.y_train, sample_size, seed,
                                 what=f"target {target.name!r}")
        return Sample.create(target.name, x, y, target.classes, key=f"target:{target.name}",
                             meta={"num_train": int(len(target.y_train))})
    if isinstance(target, SourceView):
        x, y = stratified_sample(target.x, target.y, sample_size, seed, what=f"target {target.name!r}")
        return Sample.create(target.name, x, y, target.classes, key=f"target:{target.name}",
                             meta={"num_train": train_size(target.meta, len(target.y))})
    if isinstance(target, tuple) and len(target) in (3, 4):
        name, x, y, classes = target if len(target) == 4 else ("target", *target)
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.dtype != torch.uint8 or x.ndim != 4 or y.shape != (len(x),):
            raise InvalidConfigError(
                f"target {name!r}: x must be uint8 (n, C, H, W) with one int label per image; "
                f"got x {tuple(x.shape)} {x.dtype}, y {tuple(y.shape)}.")
        y = y.to(torch.int64)
        if len(y) == 0 or int(y.min()) < 0 or int(y.max()) >= len(classes):
            raise InvalidConfigError(f"target {name!r}: needs labels in [0, {len(classes)}).")
        n_all = len(y)
        x, y = stratified_sample(x, y, sample_size, seed, what=f"target {name!r}")
        return Sample.create(str(name), x, y, tuple(str(c) for c in classes), key=f"target:{name}",
                             meta={"num_train": n_all})
    raise InvalidConfigError(
        f"target must be a Dataset, a SourceView or (x, y, classes); got {type(target).__name__}.")


def as_source_list(sources) -> list[SourceView]:
    """``sources`` as a list: a list/iterable of :class:`SourceView`, or an object with a
    ``sources()`` method (a portfolio). An empty result raises."""
    what = type(sources).__name__
    if callable(getattr(sources, "sources", None)):
        sources = sources.sources()
    if isinstance(sources, SourceView):
        sources = [sources]
    if not isinstance(sources, Iterable):
        raise InvalidConfigError(f"sources must be SourceViews or a portfolio, got {what}.")
    views = list(sources)
    if not views:
        raise InvalidConfigError(
            f"no sources to compare with: the {what} given has no entries. Add entries to the "
            f"portfolio (or pass a non-empty list of SourceView).")
    bad = [type(v).__name__ for v in views if not isinstance(v, SourceView)]
    if bad:
        raise InvalidConfigError(f"sources must be SourceView objects; got {', '.join(sorted(set(bad)))}.")
    names = [v.name for v in views]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidConfigError(f"source names must be unique; repeated: {', '.join(dup)}.")
    return views


def check_shapes(target: Sample, sources: list[SourceView]) -> None:
    """Every source's images must have the target's shape (names the source and both shapes)."""
    shape = tuple(target.x.shape[1:])
    for s in sources:
        if s.image_shape != shape:
            raise InvalidConfigError(
                f"source {s.name!r} has images of shape {s.image_shape}, the target "
                f"{target.name!r} has {shape} (channels, height, width): their models cannot "
                f"read each other's images. Compare datasets of one shape (portfolio entries "
                f"trained on images like the target's), or bring the data to one shape "
                f"(automl_chars.data.from_arrays: image_size= and the same channels).")
