"""Transferability of each source model to the target's labels, by the likelihood of a
predictor built on it: ``logme``, ``leep``, ``nce`` and ``nleep`` (the measures of how
separable the target classes are in its features are in :mod:`.separability`).

Unlike the distances, these run every source's own model on the target images (normalised as
that model was trained) and ask how well its features or outputs predict the target labels.
Higher is better. None looks at the source sample.
"""

from __future__ import annotations

import numpy as np

from automl_chars.similarity.base import Context, Measure, register_measure
from automl_chars.similarity.source import Sample, SourceView


def principal_components(features: np.ndarray, n_components: int | None = None,
                         variance: float | None = None) -> np.ndarray:
    """``features`` centred and projected on their first principal components (PCA by an SVD,
    deterministic up to the signs of the axes): ``n_components`` of them (at most the rank), or
    the fewest whose share of the variance exceeds ``variance`` (scikit-learn's rule for
    ``PCA(n_components=0.8)``)."""
    f = np.asarray(features, dtype=np.float64)
    centred = f - f.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    rank = int(np.sum(s > s.max(initial=0.0) * max(f.shape) * np.finfo(np.float64).eps))
    if variance is not None:
        share = np.cumsum(s[:rank] ** 2) / max(float(np.sum(s[:rank] ** 2)), 1e-300)
        k = int(np.searchsorted(share, variance, side="right")) + 1
    else:
        k = rank if n_components is None else int(n_components)
    k = max(1, min(k, rank))
    return centred @ vt[:k].T


def logme(features: np.ndarray, labels: np.ndarray, num_classes: int | None = None,
          max_iter: int = 100, tol: float = 1e-4) -> float:
    """LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021): the log marginal evidence per sample of a Bayesian linear regression
    from ``features`` to each one-hot label column, maximised over the prior precision ``alpha``
    and noise precision ``beta`` by MacKay's fixed-point iteration, averaged over classes.

    With ``F = U diag(s) V^T``, ``sigma = s^2`` and ``x = U^T y``, for ``t = alpha / beta``::

        gamma = sum sigma / (sigma + t)            m2  = sum sigma x^2 / (sigma + t)^2
        res2  = sum x^2 t^2 / (sigma + t)^2 + (|y|^2 - |x|^2)
        alpha = gamma / m2                         beta = (n - gamma) / res2
        evidence = d/2 log alpha + n/2 log beta - 1/2 log|alpha I + beta F^T F|
                   - beta/2 res2 - alpha/2 m2 - n/2 log 2 pi

    where ``log|alpha I + beta F^T F|`` sums ``log(alpha + beta sigma)`` over the ``d``
    eigenvalues of ``F^T F`` (the ``d - rank`` zero ones contribute ``log alpha``).
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    k = int(num_classes if num_classes is not None else y.max() + 1)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for c in np.unique(y) if k > 1 else [0]:
        target = (y == c).astype(np.float64)
        x = u.T @ target
        x2 = x**2
        outside = max(0.0, float(target @ target - x2.sum()))  # part of y outside F's span
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
            res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + outside
            alpha = gamma / (m2 + 1e-10)
            beta = (n - gamma) / (res2 + 1e-10)
            if abs(alpha / beta - t) / t <= tol:
                break
        t = alpha / beta
        m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
        res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + outside
        logdet = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
        evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * logdet
                    - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def leep(probabilities: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """LEEP (Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned
    Representations", ICML 2020): with ``theta(x)`` the source model's softmax over its own
    classes ``z``, the empirical conditional ``P(y | z)`` of target labels given source labels
    is estimated from the sample, and the score is the mean log-likelihood
    ``1/n sum_i log sum_z P(y_i | z) theta(x_i)_z`` of the resulting "expected empirical
    predictor" (<= 0; higher transfers better)."""
    theta = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    joint = np.zeros((num_classes, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= len(y)
    conditional = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)
    predicted = (theta @ conditional.T)[np.arange(len(y)), y]
    return float(np.mean(np.log(np.maximum(predicted, 1e-300))))


def nce(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """NCE (Tran et al., "Transferability and Hardness of Supervised Classification Tasks",
    ICCV 2019): the negative conditional entropy ``-H(Y | Z)`` of the target labels ``Y`` given
    the source model's hard labels ``Z = argmax_z theta(x)_z`` on the same images, from their
    empirical joint distribution::

        -H(Y | Z) = sum_{y, z} P(y, z) log P(y | z),     P(y | z) = P(y, z) / P(z)

    in nats (<= 0; 0 when every source label determines the target label). ``probabilities``
    may as well be logits: only their argmax is read."""
    z = np.asarray(probabilities).argmax(axis=1)
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    _, z = np.unique(z, return_inverse=True)
    joint = np.zeros((y.max() + 1, z.max() + 1))
    np.add.at(joint, (y, z), 1.0)
    joint /= len(y)
    conditional = joint / joint.sum(axis=0, keepdims=True)
    present = joint > 0
    return float(np.sum(joint[present] * np.log(conditional[present])))


def nleep(features: np.ndarray, labels: np.ndarray, components_per_class: int = 5,
          variance: float = 0.8, seed: int = 0) -> float:
    """NLEEP (Li et al., "Ranking Neural Checkpoints", CVPR 2021): LEEP with the posteriors of
    a Gaussian mixture fitted to the features in place of the source classifier's softmax.

    The features are reduced by PCA to the fewest components that keep more than ``variance``
    of their variance; a Gaussian mixture with ``components_per_class`` times as many components
    as there are target classes (full covariances, scikit-learn's ``GaussianMixture`` with its
    defaults and ``random_state=seed``) is fitted to them, and its posteriors ``p(v | x)`` over
    the components ``v`` go through :func:`leep`: ``1/n sum_i log sum_v P(y_i | v) p(v | x_i)``.
    The settings (80 % of the variance, five components per class) are those of the SFDA
    authors' implementation of NLEEP, which follows the paper. Unlike that implementation,
    which averages ``sum_v P(y_i | v) p(v | x_i)`` without the logarithm, the score is LEEP's
    mean log-likelihood, as in the paper (<= 0).

    The mixture has at most ``n // 2`` components, so that each can average two images
    (scikit-learn needs no more components than images, and with one image per component every
    posterior is one-hot and every source scores 0); the paper's targets have far more images
    than components, where the cap never binds.
    """
    from sklearn.mixture import GaussianMixture  # deferred: scikit-learn is slow to import

    _, y = np.unique(np.asarray(labels), return_inverse=True)
    reduced = principal_components(features, variance=variance)
    k = max(1, min(int(components_per_class) * (int(y.max()) + 1), len(y) // 2))
    mixture = GaussianMixture(n_components=k, random_state=seed).fit(reduced)
    return leep(mixture.predict_proba(reduced), y, int(y.max()) + 1)


@register_measure
class LogME(Measure):
    """LogME of each source model's penultimate features on the target labels (You et al. 2021)."""

    name = "logme"
    description = "evidence of a linear model on each source model's features (You et al. 2021)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        feats = ctx.outputs(source, target).features
        return logme(feats, target.labels, target.num_classes)


@register_measure
class LEEP(Measure):
    """LEEP of each source model's outputs on the target labels (Nguyen et al. 2020)."""

    name = "leep"
    description = "log-likelihood of the expected empirical predictor (Nguyen et al. 2020)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (-np.inf, 0.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        probs = ctx.outputs(source, target).probabilities()
        return leep(probs, target.labels, target.num_classes)


@register_measure
class NCE(Measure):
    """NCE of each source model's hard predictions on the target labels (Tran et al. 2019)."""

    name = "nce"
    description = "negative conditional entropy of target labels given source predictions (Tran et al. 2019)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (-np.inf, 0.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        return nce(ctx.outputs(source, target).logits, target.labels)


@register_measure
class NLEEP(Measure):
    """NLEEP of each source model's penultimate features on the target labels (Li et al. 2021);
    the mixture's random start is fixed by the context's seed alone, so that the same features
    give the same score whatever the source is called."""

    name = "nleep"
    description = "LEEP with a Gaussian mixture on each source model's features (Li et al. 2021)"
    higher_is_more_similar = True
    label_aware = True
    uses = "source"
    bounds = (-np.inf, 0.0)

    def score(self, target: Sample, tstate, source: SourceView, sstate, ctx: Context) -> float:
        feats = ctx.outputs(source, target).features
        return nleep(feats, target.labels, seed=ctx.seed)
