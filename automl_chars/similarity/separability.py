"""Transferability of each source model to the target's labels, by how separable the target
classes are in its penultimate features: ``hscore``, ``sfda``, ``parc`` and ``knn``.

Like ``logme`` and ``leep`` (:mod:`.transferability`), these run every source's own model on the
target images and never look at the source sample; higher is better. Each measure is a pure
function of the features and the target labels, tested on hand-computable cases
(tests/similarity/test_similarity_separability.py).
"""

from __future__ import annotations

import numpy as np

from automl_chars.similarity.base import Context, Measure, register_measure
from automl_chars.similarity.source import Sample, SourceView
from automl_chars.similarity.transferability import principal_components


def _classes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels as ``0..k-1`` over the classes present; fewer than two classes raise."""
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    k = int(y.max()) + 1 if len(y) else 0
    if k < 2:
        raise ValueError(f"needs images of at least two classes, got {k}")
    return y, k


def _rank(singular_values: np.ndarray, shape: tuple[int, ...]) -> int:
    """Numerical rank: singular values above ``s_max * max(shape) * eps``, the tolerance of
    ``numpy.linalg.matrix_rank``."""
    s = singular_values
    return int(np.sum(s > s.max(initial=0.0) * max(shape) * np.finfo(np.float64).eps))


def _check_not_constant(features: np.ndarray) -> None:
    if len(features) and not np.ptp(features, axis=0).any():
        raise ValueError("the features are the same for every image of the sample (a dead "
                         "network?): nothing to separate the classes by")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _class_means(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, y, x)
    return means / np.bincount(y, minlength=k)[:, None]


def hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score (Bao et al., "An Information-Theoretic Approach to Transferability in Task
    Transfer Learning", ICIP 2019)::

        H(f) = tr(cov(f)^+ cov(E[f | y]))

    where ``cov(f)`` is the features' covariance over the sample, ``E[f | y]`` replaces each
    image's features by the mean of its class, and ``^+`` is the Moore-Penrose pseudo-inverse.
    With the centred features ``F = U diag(s) V^T`` and the centred class means ``G`` (one row
    per image), ``cov(f)^+ = (n - 1) sum_k v_k v_k^T / s_k^2`` over the singular values above
    ``numpy.linalg.matrix_rank``'s tolerance, so ``H = sum_k |G v_k|^2 / s_k^2`` (the ``n - 1``
    of both covariances cancels).

    ``H`` lies in ``[0, C - 1]`` for ``C`` classes. With the pseudo-inverse, a sample of no more
    images than feature dimensions (``n <= d``) gives ``C - 1`` for every source (the features
    then separate any labelling linearly), the weakness that Ibrahim et al. (ICLR 2022) fix by
    shrinking the covariance; compare sources on samples larger than their feature width.
    """
    f = np.asarray(features, dtype=np.float64)
    y, k = _classes(labels)
    centred = f - f.mean(axis=0)
    between = _class_means(centred, y, k)[y]  # E[f | y], centred (the global mean is 0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    r = _rank(s, f.shape)
    return float(np.sum(np.square(between @ vt[:r].T) / s[:r] ** 2))


def _shrunk(cov: np.ndarray, shrinkage: float, dim: int) -> np.ndarray:
    """``(1 - shrinkage) cov + shrinkage tr(cov) / dim I`` (``dim``: the features' width)."""
    return (1.0 - shrinkage) * cov + shrinkage * np.trace(cov) / dim * np.eye(len(cov))


def _fisher_bayes(x: np.ndarray, y: np.ndarray, k: int, dim: int,
                  shrinkage: float | None) -> tuple[np.ndarray, float]:
    """SFDA's regularised Fisher projection of ``x`` and the Bayes classifier on it: the class
    probabilities of every row, and the shrinkage used (``exp(-5 lambda_max(S_w))`` if None)."""
    from scipy.linalg import eigh  # deferred, as every scipy import of the measures

    n = len(y)
    priors = np.bincount(y, minlength=k) / n
    means = _class_means(x, y, k)
    within = x - means[y]
    sw = within.T @ within / n  # sum_c prior_c cov_c, each covariance normalised by n_c
    if shrinkage is None:
        largest = float(np.linalg.eigvalsh(sw)[-1])
        shrinkage = max(float(np.exp(-5.0 * largest)), 1e-10)
    centred = x - x.mean(axis=0)
    sw_shrunk = _shrunk(sw, shrinkage, dim)
    sb = _shrunk(centred.T @ centred / n, shrinkage, dim) - sw_shrunk
    _, u = eigh(sb, sw_shrunk)  # u^T shrink(S_w) u = I, eigenvalues ascending
    u = u[:, ::-1]  # the most discriminative directions first
    coef = means @ u @ u.T  # class means in the Fisher space, mapped back
    intercept = -0.5 * np.sum(means * coef, axis=1) + np.log(priors)
    return _softmax(x @ coef.T + intercept), shrinkage


def sfda(features: np.ndarray, labels: np.ndarray, shrinkage: float | None = None) -> float:
    """SFDA (Shao et al., "Not All Models Are Equal: Predicting Model Transferability in a
    Self-challenging Fisher Space", ECCV 2022), as in its authors' code (``SFDA_Score`` in
    github.com/TencentARC/SFDA, metrics.py).

    1. Regularised Fisher discriminant: with ``S_w = sum_c p_c cov_c`` (class priors ``p_c``,
       covariances normalised by the class size), ``S_t`` the total covariance and
       ``shrink(S) = (1 - lam) S + lam tr(S) / d I``, the projection ``U`` solves
       ``(shrink(S_t) - shrink(S_w)) u = e shrink(S_w) u`` with ``U^T shrink(S_w) U = I``, and
       ``lam = max(exp(-5 lambda_max(S_w)), 1e-10)`` unless ``shrinkage`` is given.
    2. The Bayes classifier in the Fisher space (unit covariance):
       ``p(c | x) = softmax_c(x^T U U^T mu_c - 1/2 mu_c^T U U^T mu_c + log p_c)``.
    3. Self-challenge (ConfMix): the probabilities are softened by another softmax, ``q_i =
       softmax(p(. | x_i))_{y_i}``, and each image moves towards the mean of the other classes'
       means, ``x_i <- q_i x_i + (1 - q_i) mean_{c != y_i} mu_c``.
    4. Steps 1-2 again on the moved features, with the same ``lam``; the score is the mean
       probability of the true class, ``1/n sum_i p(y_i | x_i)``, in ``[0, 1]``.

    Choices, as the authors' code makes them: all ``d`` Fisher directions are kept (so
    ``U U^T = shrink(S_w)^-1`` and step 2 is linear discriminant analysis with the shrunk
    within-class covariance); the score has no logarithm ("ignored in case of instability");
    the shrinkage is also applied to ``S_t``. One departure: ``lambda_max(S_w)`` is computed
    exactly, where the code takes three steps of the power iteration. The score is invariant to
    translating the features, so they are centred and written in the basis of their span first
    (exact: outside the span the centred features and class means are 0, so those directions add
    nothing; centring avoids adding to every class's score a term of order ``1 / lam`` from the
    features' mean that cancels only in the softmax, and the span has at most ``n - 1``
    dimensions, which makes wide features cheap). With fewer
    images than dimensions the classes are linearly separable and, unless ``lam`` is large
    (features of small variance), every source scores close to 1. Features that are the same
    for every image raise ``ValueError``.
    """
    f = np.asarray(features, dtype=np.float64)
    y, k = _classes(labels)
    n, dim = f.shape
    _check_not_constant(f)
    centred = f - f.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    x = centred @ vt[: max(1, _rank(s, f.shape))].T
    probs, shrinkage = _fisher_bayes(x, y, k, dim, shrinkage)
    confidence = _softmax(probs)[np.arange(n), y][:, None]
    means = _class_means(x, y, k)
    others = (means.sum(axis=0) - means) / (k - 1)
    mixed = confidence * x + (1.0 - confidence) * others[y]
    probs, _ = _fisher_bayes(mixed, y, k, dim, shrinkage)
    return float(np.mean(probs[np.arange(n), y]))


def _row_correlations(a: np.ndarray) -> np.ndarray:
    """Pearson correlation between every two rows of ``a`` (0 with a constant row)."""
    centred = a - a.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    unit = centred / np.where(norms > 0, norms, 1.0)[:, None]
    return unit @ unit.T


def parc(features: np.ndarray, labels: np.ndarray, n_dims: int = 32) -> float:
    """PARC (Bolya et al., "Scalable Diverse Model Selection for Accessible Transfer Learning",
    NeurIPS 2021): the Spearman correlation between the upper triangles of two dissimilarity
    matrices over the images, ``1 - Pearson correlation`` of their features and of their
    one-hot labels. As in the paper's code, features wider than ``n_dims`` (32) are first
    reduced by PCA, and every feature is standardised (zero mean, unit variance over the
    sample; a constant one stays 0). Between -1 and 1 (the paper prints it times 100).
    Two images of one class have label dissimilarity 0, of two classes ``C / (C - 1)``.
    Features that are the same for every image raise ``ValueError`` (the correlation would be
    undefined).
    """
    from scipy.stats import spearmanr  # deferred, as every scipy import of the measures

    f = np.asarray(features, dtype=np.float64)
    y, k = _classes(labels)
    _check_not_constant(f)
    if f.shape[1] > n_dims:
        f = principal_components(f, n_components=n_dims)
    std = f.std(axis=0)
    f = (f - f.mean(axis=0)) / np.where(std > 0, std, 1.0)
    upper = np.triu_indices(len(y), 1)
    feature_rdm = 1.0 - _row_correlations(f)[upper]
    label_rdm = 1.0 - _row_correlations(np.eye(k)[y])[upper]
    return float(spearmanr(feature_rdm, label_rdm)[0])


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5,
                 groups: np.ndarray | None = None) -> float:
    """Leave-one-out accuracy of the ``k``-nearest-neighbour classifier of the target labels
    on the features, with the cosine distance ``1 - <a, b> / (|a| |b|)`` (blind to each
    image's feature norm, as the k-NN evaluations of learned features use it; a zero vector is
    at distance 1 from everything).

    Each image is classified by the majority label of its ``k`` nearest other images; a tie
    goes to the tied class of the nearest of them. ``groups`` (e.g. a bootstrap resample's
    base rows) leaves out every image of the query's group, so that copies of an image are not
    its neighbours. In ``[0, 1]``. ``k = 5``: a majority of a few neighbours, fewer than the
    images per class of the smallest target samples (5-10 per class).
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.unique(np.asarray(labels), return_inverse=True)[1]
    n = len(y)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    unit = f / np.where(norms > 0, norms, 1.0)
    dist = 1.0 - unit @ unit.T
    g = np.arange(n) if groups is None else np.asarray(groups)
    dist[g[:, None] == g[None, :]] = np.inf  # the image itself (and its copies) is no neighbour
    order = np.argsort(dist, axis=1, kind="stable")[:, : int(k)]
    correct = 0
    for i in range(n):
        near = order[i][np.isfinite(dist[i, order[i]])]
        if len(near) == 0:
            continue
        votes = np.bincount(y[near])
        tied = votes == votes.max()
        correct += int(next(y[j] for j in near if tied[y[j]]) == y[i])
    return correct / n


@register_measure
class HScore(Measure):
    """H-score of each source model's penultimate features on the target labels (Bao et al. 2019)."""

    name = "hscore"
    description = "between-class share of each source model's feature covariance (Bao et al. 2019)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (0.0, np.inf)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        return hscore(ctx.outputs(source, target).features, target.labels)


@register_measure
class SFDA(Measure):
    """SFDA of each source model's penultimate features on the target labels (Shao et al. 2022)."""

    name = "sfda"
    description = "Bayes classifier in a self-challenging Fisher space of each source model's features (Shao et al. 2022)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (0.0, 1.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        return sfda(ctx.outputs(source, target).features, target.labels)


@register_measure
class PARC(Measure):
    """PARC of each source model's penultimate features on the target labels (Bolya et al. 2021)."""

    name = "parc"
    description = "rank correlation of feature and label dissimilarities (Bolya et al. 2021)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (-1.0, 1.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        return parc(ctx.outputs(source, target).features, target.labels)


@register_measure
class KNN(Measure):
    """Leave-one-out 5-NN accuracy (cosine) of the target labels on each source model's
    penultimate features; copies of an image in a bootstrap resample are not its neighbours."""

    name = "knn"
    description = "leave-one-out 5-nearest-neighbour accuracy on each source model's features"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (0.0, 1.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        return knn_accuracy(ctx.outputs(source, target).features, target.labels,
                            groups=target.rows)
