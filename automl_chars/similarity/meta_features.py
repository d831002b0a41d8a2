"""Hand-made meta-features of a labelled image sample, and the ``meta_features`` measure.

The classic way to say which earlier tasks resemble a new one (Feurer et al., "Efficient and
Robust Automated Machine Learning", NeurIPS 2015; the survey of seed 004): describe every dataset
by a few statistics, standardise them across the datasets compared, and take a distance.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from automl_chars.similarity.base import Context, Measure, register_measure
from automl_chars.similarity.source import Sample, SourceView, train_size

#: The meta-features, in order, with what each says.
META_FEATURES: dict[str, str] = {
    "log_classes": "log of the number of classes",
    "log_samples_per_class": "log of training images per class (the full dataset's, when known)",
    "class_entropy": "entropy of the class frequencies / log(classes) (1 = balanced)",
    "pixel_mean": "mean pixel brightness (images in [0, 1]; RGB as luma)",
    "pixel_std": "standard deviation of pixel brightness",
    "ink_fraction": "share of pixels brighter than 0.5",
    "ink_variation": "coefficient of variation of the ink per image",
    "stroke_width": "2 * ink area / ink perimeter, in pixels (mean stroke thickness)",
    "edge_density": "mean gradient magnitude",
    "edge_orientation": "share of the gradient across rows (high for horizontal strokes)",
    "components": "mean number of connected ink regions per image",
    "centroid_spread": "spread of the ink's centre of mass across images / image side",
    "box_fill": "share of the ink's bounding box that is ink",
    "class_separability": "share of the pixel variance explained by the class means",
}


_CROSS = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]])


def dataset_meta_features(dataset, sample_size: int = 300, seed: int = 0) -> dict[str, float]:
    """The :data:`META_FEATURES` of a dataset's training split, on a stratified sample (what
    the results store keeps per sweep, for the warm start's nearest datasets)."""
    from automl_chars.similarity.source import target_sample

    with warnings.catch_warnings():  # a small dataset is used whole: no news here
        warnings.simplefilter("ignore")
        return meta_features(target_sample(dataset, sample_size, seed))


def meta_features(sample: Sample) -> dict[str, float]:
    """The :data:`META_FEATURES` of ``sample`` (``sample.meta["num_train"]`` sets the size)."""
    from scipy import ndimage  # deferred: only this measure needs it

    x = brightness(sample.x)  # (n, H, W): the ink features are about shapes, not colours
    y = sample.labels
    n, h, w = x.shape
    k = sample.num_classes
    freq = np.bincount(y, minlength=k) / n
    nz = freq[freq > 0]
    entropy = float(-(nz * np.log(nz)).sum() / np.log(k)) if k > 1 else 1.0
    ink = x > 0.5
    ink_per_image = ink.flatten(1).float().sum(1)
    # perimeter: ink pixels with a dark 4-neighbour (outside the image counts as dark)
    dark = 1.0 - F.pad(ink.float().unsqueeze(1), (1, 1, 1, 1))
    dark_neighbours = F.conv2d(dark, _CROSS)[:, 0]
    perimeter = (ink & (dark_neighbours > 0)).flatten(1).float().sum(1)
    gy, gx = torch.gradient(x, dim=(1, 2))
    edge = torch.sqrt(gx**2 + gy**2).mean()
    ink_np = ink.numpy()
    components = np.mean([ndimage.label(img)[1] for img in ink_np])
    weights = x.flatten(1)
    mass = weights.sum(1).clamp(min=1e-6)
    rows = torch.arange(h, dtype=torch.float32).repeat_interleave(w)
    cols = torch.arange(w, dtype=torch.float32).repeat(h)
    cy, cx = (weights @ rows) / mass, (weights @ cols) / mass
    spread = float(torch.sqrt(cy.var(unbiased=False) + cx.var(unbiased=False))) / max(h, w)
    fills = []
    for img in ink_np:
        r, c = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
        if len(r):
            fills.append(img.sum() / ((r[-1] - r[0] + 1) * (c[-1] - c[0] + 1)))
    flat = x.flatten(1).double().numpy()
    total = flat.var(axis=0).sum()
    means = np.stack([flat[y == c].mean(axis=0) for c in np.unique(y)])
    between = (freq[np.unique(y)][:, None] * np.square(means - flat.mean(axis=0))).sum()
    n_train = float(train_size(sample.meta, n))
    return {
        "log_classes": float(np.log(k)),
        "log_samples_per_class": float(np.log(max(n_train, 1.0) / k)),
        "class_entropy": entropy,
        "pixel_mean": float(x.mean()),
        "pixel_std": float(x.std()),
        "ink_fraction": float(ink.float().mean()),
        "ink_variation": float(ink_per_image.std() / ink_per_image.mean().clamp(min=1e-6)),
        "stroke_width": float(2.0 * ink_per_image.sum() / perimeter.sum().clamp(min=1.0)),
        "edge_density": float(edge),
        "edge_orientation": float(gy.abs().mean() / (gx.abs().mean() + gy.abs().mean()).clamp(min=1e-12)),
        "components": float(components),
        "centroid_spread": spread,
        "box_fill": float(np.mean(fills)) if fills else 0.0,
        "class_separability": float(between / total) if total > 0 else 0.0,
    }


#: ITU-R BT.601 luma weights of R, G, B.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def brightness(x: torch.Tensor) -> torch.Tensor:
    """``uint8 (n, C, H, W)`` images as brightness in [0, 1], ``(n, H, W)``: gray images as they
    are, RGB as their luma (ITU-R BT.601), other channel counts as the channels' mean."""
    x = x.float().div(255.0)
    if x.shape[1] == 3:
        return torch.einsum("nchw,c->nhw", x, _LUMA)
    return x.mean(1)


def _vector(values: dict[str, float]) -> np.ndarray:
    return np.array([values[k] for k in META_FEATURES], dtype=np.float64)


@register_measure
class MetaFeatures(Measure):
    """Root-mean-square difference of the standardised :data:`META_FEATURES` of target and
    source. Each meta-feature is standardised by its mean and standard deviation over the
    datasets compared in the call (the full target sample and every source), so the score is
    relative to that set: with a single source it only says "differs". A source whose
    ``meta["meta_features"]`` holds stored values (a dict with every name) uses them instead of
    its sample. Label-aware through ``class_entropy`` and ``class_separability``."""

    name = "meta_features"
    description = "distance of standardised hand-made meta-features (classes, sizes, ink, strokes)"
    higher_is_more_similar = False
    label_aware = True
    uses = "none"
    bounds = (0.0, np.inf)

    def _source_vector(self, source: SourceView, ctx: Context) -> np.ndarray:
        def compute():
            stored = source.meta.get("meta_features")
            if isinstance(stored, dict) and set(META_FEATURES) <= set(stored):
                return _vector(stored)
            return _vector(meta_features(source.sample()))

        return ctx.cached(("meta_features", "source", source.name), compute)

    def _scale(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        def compute():
            rows = [_vector(meta_features(ctx.target))]
            rows += [self._source_vector(s, ctx) for s in ctx.sources]
            table = np.stack(rows)
            spread = table.std(axis=0)
            return table.mean(axis=0), np.where(spread > 1e-12, spread, np.inf)

        return ctx.cached(("meta_features", "scale", ctx.target.key), compute)

    def source_state(self, source: SourceView, ctx: Context) -> np.ndarray:
        centre, spread = self._scale(ctx)
        return (self._source_vector(source, ctx) - centre) / spread

    def target_state(self, target: Sample, ctx: Context) -> np.ndarray:
        centre, spread = self._scale(ctx)
        return (_vector(meta_features(target)) - centre) / spread

    def score(self, target, tstate, source, sstate, ctx) -> float:
        return float(np.sqrt(np.mean(np.square(tstate - sstate))))
