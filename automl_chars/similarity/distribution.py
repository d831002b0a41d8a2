"""Measures that compare target and source samples through one reference network: ``sen``,
``frechet`` and ``otdd``. Lower is more similar for all three."""

from __future__ import annotations

import numpy as np

from automl_chars.similarity.base import Context, Measure, register_measure
from automl_chars.similarity.gaussian import Gaussian, classwise_w2_squared, w2_squared
from automl_chars.similarity.source import Sample, SourceView


def _padded_sorted(*dists: np.ndarray) -> list[np.ndarray]:
    """Distributions over different label sets made comparable: sorted in decreasing order and
    zero-padded to the longest (their shapes are compared, not which label is which)."""
    width = max(len(d) for d in dists)
    return [np.pad(np.sort(d)[::-1], (0, width - len(d))) for d in dists]


@register_measure
class SEN(Measure):
    """Seed 000's similarity estimation network.

    Target and source samples are fed through the reference network (seed 000: the portfolio
    model trained on Omniglot); each sample's softmax outputs are averaged into a normalised
    output distribution over the reference's classes, and the score is their symmetric
    difference ``sum_k |p_target(k) - p_source(k)|`` (the L1 distance, in ``[0, 2]``).

    The flaw seed 000 found: a well-trained reference maps a dataset's images to (nearly) their
    labels, so on its own training data the output distribution is that data's label
    distribution, and the score compares label histograms more than images. :meth:`extras`
    makes that visible next to every score:

    - ``sen_label_l1``: L1 distance between the source's output distribution and the source's
      class frequencies (aligned by class when the source has the reference's classes, else both
      sorted and zero-padded). Near 0: the output only mirrors the label distribution.
    - ``sen_labels_only``: the score a network that outputs label frequencies would give: L1
      distance between the sorted class frequencies of target and source. Where ``sen`` follows
      this column across sources, it measures label distributions, not images.
    """

    name = "sen"
    description = "L1 distance of mean softmax outputs under a reference network (seed 000)"
    higher_is_more_similar = False
    label_aware = False
    uses = "reference"
    bounds = (0.0, 2.0)

    def _distribution(self, sample: Sample, ctx: Context) -> np.ndarray:
        return ctx.outputs(ctx.reference, sample).probabilities().mean(axis=0)

    def source_state(self, source: SourceView, ctx: Context) -> np.ndarray:
        return self._distribution(source.sample(), ctx)

    def target_state(self, target: Sample, ctx: Context) -> np.ndarray:
        return self._distribution(target, ctx)

    def score(self, target, tstate, source, sstate, ctx) -> float:
        return float(np.abs(tstate - sstate).sum())

    def extras(self, target: Sample, source: SourceView, ctx: Context) -> dict[str, float]:
        out = self.source_state(source, ctx)
        freq = source.sample().class_frequencies()
        if tuple(source.classes) == tuple(ctx.reference.classes):
            label_l1 = np.abs(out - freq).sum()
        else:
            a, b = _padded_sorted(out, freq)
            label_l1 = np.abs(a - b).sum()
        t, s = _padded_sorted(target.class_frequencies(), freq)
        return {"sen_label_l1": float(label_l1), "sen_labels_only": float(np.abs(t - s).sum())}


@register_measure
class Frechet(Measure):
    """Fréchet distance between Gaussian fits of the reference network's penultimate features
    of the target and source samples (the squared 2-Wasserstein distance, as in FID: Heusel et
    al., "GANs trained by a two time-scale update rule converge to a local Nash equilibrium",
    NeurIPS 2017). Computed exactly from the samples (see :mod:`.gaussian`), stable for
    ``n < d``. Ignores labels."""

    name = "frechet"
    description = "Fréchet distance of reference-network features (FID-style)"
    higher_is_more_similar = False
    label_aware = False
    uses = "reference"
    bounds = (0.0, np.inf)

    def source_state(self, source: SourceView, ctx: Context) -> Gaussian:
        return Gaussian.fit(ctx.outputs(ctx.reference, source.sample()).features)

    def target_state(self, target: Sample, ctx: Context) -> Gaussian:
        return Gaussian.fit(ctx.outputs(ctx.reference, target).features)

    def score(self, target, tstate, source, sstate, ctx) -> float:
        return w2_squared(tstate, sstate)


@register_measure
class OTDD(Measure):
    """Optimal-transport dataset distance (Alvarez-Melis & Fusi, "Geometric Dataset Distances
    via Optimal Transport", NeurIPS 2020), in the reference network's feature space.

    Each item is a pair (features, label). Labels are compared through their class-conditional
    feature distributions: the distance between a target class and a source class is the
    2-Wasserstein distance between Gaussian fits of the two (the paper's Bures-Wasserstein
    approximation). The cost between items is ``||f - f'||^2 + W2^2(class(y), class(y'))`` and
    the score is the square root of the exact optimal-transport cost between the two samples
    with uniform weights (POT's ``ot.emd2``). Label-aware: shuffling a sample's labels changes
    it; renaming classes does not.
    """

    name = "otdd"
    description = "optimal-transport distance over (feature, label) pairs (Alvarez-Melis & Fusi 2020)"
    higher_is_more_similar = False
    label_aware = True
    uses = "reference"
    bounds = (0.0, np.inf)

    def _items(self, sample: Sample, ctx: Context) -> tuple[np.ndarray, np.ndarray, int]:
        return ctx.outputs(ctx.reference, sample).features, sample.labels, sample.num_classes

    def source_state(self, source: SourceView, ctx: Context):
        return self._items(source.sample(), ctx)

    def target_state(self, target: Sample, ctx: Context):
        return self._items(target, ctx)

    def score(self, target, tstate, source, sstate, ctx) -> float:
        import ot  # POT; deferred so that `import automl_chars` stays fast

        ft, yt, kt = tstate
        fs, ys, ks = sstate
        label_cost = classwise_w2_squared(ft, yt, kt, fs, ys, ks)
        cost = ot.dist(ft, fs, metric="sqeuclidean") + label_cost[np.ix_(yt, ys)]
        a = np.full(len(ft), 1.0 / len(ft))
        b = np.full(len(fs), 1.0 / len(fs))
        value = ot.emd2(a, b, cost, numItermax=1_000_000)
        return float(np.sqrt(max(0.0, float(value))))
